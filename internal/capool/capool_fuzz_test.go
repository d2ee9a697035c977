package capool

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// FuzzParse: whatever file is named as a CA bundle (--tls-client-ca,
// --ca-cert), Parse never panics; it accepts a file only if every
// certificate it begins reads, and then trusts each of them; it refuses
// in words that name the flag and the file.
func FuzzParse(f *testing.F) {
	cert := func(cn string) []byte {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Unix(0, 0),
			NotAfter: time.Unix(1<<32, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			f.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	a, b := cert("CA one"), cert("CA two")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x00}})
	for _, seed := range [][]byte{
		a, append(bytes.Clone(a), b...), append([]byte("# our CAs\n"), a...), append(bytes.Clone(keyPEM), a...),
		bytes.ReplaceAll(a, []byte("\n"), []byte("\r\n")),
		bytes.Clone(a[:len(a)-len("-----END CERTIFICATE-----\n")]),               // END line missing
		append(bytes.Clone(a[:40]), a[80:]...),                                   // a line damaged
		append(bytes.Clone(a[:len(a)-len("-----END CERTIFICATE-----\n")]), b...), // END line missing before the next
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}),
		keyPEM, nil, []byte("-----BEGIN CERTIFICATE-----"), []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		pool, err := Parse("--tls-client-ca", "ca.pem", data)
		if !bytes.Equal(data, in) {
			t.Fatal("Parse changed its input")
		}
		if err != nil {
			if pool != nil {
				t.Fatalf("refused with a pool: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "--tls-client-ca ca.pem") {
				t.Fatalf("the refusal does not name the flag and the file: %v", err)
			}
			return
		}
		var certs []*x509.Certificate
		for rest := data; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			if block.Type == "CERTIFICATE" {
				c, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					t.Fatalf("accepted a bundle with a certificate that does not parse: %v", err)
				}
				certs = append(certs, c)
			}
		}
		if begun := bytes.Count(data, []byte("-----BEGIN CERTIFICATE-----")); len(certs) == 0 || begun != len(certs) {
			t.Fatalf("accepted a bundle that begins %d certificates, of which %d read", begun, len(certs))
		}
		want := x509.NewCertPool()
		for _, c := range certs {
			want.AddCert(c)
		}
		if !pool.Equal(want) {
			t.Fatalf("the pool does not trust exactly the %d certificates of the bundle", len(certs))
		}
	})
}
