// Package capool reads the PEM bundles of CA certificates that the server
// trusts for client certificates and the admin commands for the server's:
// every certificate in one must read, not only some.
package capool

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// Parse reads data, the CA bundle at path that flag (--tls-client-ca,
// --ca-cert) named. Every certificate in it must read:
// x509.CertPool.AppendCertsFromPEM leaves out one that does not (damaged
// in copying, a line or its END line missing) without a word, and the
// clients of that CA were then refused as strangers, or the server that
// CA signed as unknown.
func Parse(flag, path string, data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		n++
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: its certificate %d does not parse: %w", flag, path, n, err)
		}
		pool.AddCert(cert)
	}
	if begun := bytes.Count(data, []byte("-----BEGIN CERTIFICATE-----")); begun != n {
		return nil, fmt.Errorf("%s %s: of the %d certificates it begins, %d read as PEM: one is damaged (a line of it or its END line missing?)", flag, path, begun, n)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", flag, path)
	}
	return pool, nil
}
