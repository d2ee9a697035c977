package clientauth

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/keyward/keyward/internal/storage"
)

// certificate authenticates a client by its TLS certificate (RFC 8705 §2):
// a CA-issued certificate whose subject matches the account's binding
// (tls_client_auth), or one of the self-signed certificates registered as
// the account's keys (self_signed_tls_client_auth). intermediates are the
// certificates the client sent after its own, which a CA-issued
// certificate may need to chain to ClientCAs; they are trusted only as far
// as that chain verifies.
func (a *Authenticator) certificate(ctx context.Context, source string, p *Principal, cert *x509.Certificate, intermediates []*x509.Certificate) (*Client, error) {
	if err := a.resolve(ctx, source, p); err != nil {
		return nil, err
	}
	acct := p.Account
	now := a.cfg.Now()
	if slices.Contains(acct.AuthMethods, storage.AuthTLS) && !acct.TLS.IsZero() && a.cfg.ClientCAs != nil {
		opts := x509.VerifyOptions{Roots: a.cfg.ClientCAs, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if len(intermediates) > 0 {
			opts.Intermediates = x509.NewCertPool()
			for _, c := range intermediates {
				opts.Intermediates.AddCert(c)
			}
		}
		_, verr := cert.Verify(opts)
		if verr == nil && matchesBinding(cert, acct.TLS) {
			if err := allowed(acct, storage.AuthTLS); err != nil {
				return nil, err
			}
			return &Client{Account: acct, Method: storage.AuthTLS, Certificate: cert}, nil
		}
	}
	if slices.Contains(acct.AuthMethods, storage.AuthSelfSignedTLS) {
		keys, err := a.dir.ListKeys(ctx, acct.ID)
		if err != nil {
			return nil, unavailable(err)
		}
		for _, k := range keys {
			if k.Certificate != nil && bytes.Equal(k.Certificate, cert.Raw) && !k.Disabled && !k.Expired(now) {
				if err := allowed(acct, storage.AuthSelfSignedTLS); err != nil {
					return nil, err
				}
				return &Client{Account: acct, Method: storage.AuthSelfSignedTLS, CredentialID: k.ID, Certificate: cert}, nil
			}
		}
	}
	return nil, errors.New("the client certificate matches neither the account's TLS binding nor a registered certificate")
}

// matchesBinding compares the certificate with the one bound field.
func matchesBinding(cert *x509.Certificate, b storage.TLSBinding) bool {
	switch {
	case b.SubjectDN != "":
		return matchesDN(cert.RawSubject, b.SubjectDN)
	case b.SANDNS != "":
		return slices.ContainsFunc(cert.DNSNames, func(n string) bool { return equalFoldASCII(n, b.SANDNS) })
	case b.SANURI != "":
		want, err := url.Parse(b.SANURI)
		return err == nil && slices.ContainsFunc(cert.URIs, func(u *url.URL) bool { return urisMatch(u, want) })
	case b.SANIP != "":
		ip := net.ParseIP(b.SANIP)
		return ip != nil && slices.ContainsFunc(cert.IPAddresses, func(x net.IP) bool { return x.Equal(ip) })
	case b.SANEmail != "":
		return slices.ContainsFunc(cert.EmailAddresses, func(e string) bool { return emailsMatch(e, b.SANEmail) })
	}
	return false
}

// equalFoldASCII reports whether a and b are equal but for the case of
// ASCII letters. Unlike strings.EqualFold it folds nothing else, so no
// look-alike (the Kelvin sign for K, say) matches a letter.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

// emailsMatch compares email addresses as RFC 5280 §7.5 does: the local
// part exactly, the domain (after the last @) without regard to ASCII
// case.
func emailsMatch(a, b string) bool {
	i, j := strings.LastIndexByte(a, '@'), strings.LastIndexByte(b, '@')
	if i < 0 || j < 0 {
		return a == b
	}
	return a[:i] == b[:j] && equalFoldASCII(a[i+1:], b[j+1:])
}

// urisMatch compares URIs as RFC 5280 §7.4 does: the scheme and the host
// without regard to ASCII case (url.Parse has put the scheme in lower
// case), the rest exactly.
func urisMatch(a, b *url.URL) bool {
	if a.Scheme != b.Scheme || !equalFoldASCII(a.Host, b.Host) {
		return false
	}
	x, y := *a, *b
	x.Host, y.Host = "", ""
	return x.String() == y.String()
}

// maxForwardedChain bounds the certificates read from a proxy's header:
// the client's own and its intermediates.
const maxForwardedChain = 8

// parseForwardedCert reads a certificate a proxy forwarded: URL-encoded PEM
// (nginx's $ssl_client_escaped_cert), PEM, or base64 DER. PEM may hold the
// client's certificate followed by its intermediates, as a proxy that
// forwards the chain sends it; the result is never empty.
func parseForwardedCert(v string) ([]*x509.Certificate, error) {
	if d, err := url.QueryUnescape(v); err == nil {
		v = d
	}
	rest := []byte(v)
	var chain []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if len(chain) == maxForwardedChain {
			return nil, fmt.Errorf("the forwarded client certificate chain holds more than %d certificates", maxForwardedChain)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	if len(chain) > 0 {
		return chain, nil
	}
	der, err := decodeBase64(strings.TrimSpace(v))
	if err != nil {
		return nil, errors.New("the forwarded client certificate is neither PEM nor base64 DER")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{c}, nil
}

func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}
