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
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/keyfile"
	"github.com/keyward/keyward/internal/oauth2"
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
	now := a.cfg.Now()
	// The chain is verified before the account is looked up, whatever
	// client_id names: a refusal that verified none, for an ID that names
	// no account (or one without a TLS binding), came sooner than one
	// that did, so timing told which client IDs are accounts. Its answer
	// counts only for an account with a TLS binding.
	var verr, chainErr error
	if a.cfg.ClientCAs != nil {
		verr, chainErr = a.verifyChain(cert, intermediates, now)
	}
	if err := a.resolve(ctx, source, p); err != nil {
		return nil, err
	}
	acct := p.Account
	// tlsErr is why tls_client_auth refused the certificate, for the log:
	// an expired certificate is not one that matches no binding.
	tlsErr := errNoTLSClientAuth
	if slices.Contains(acct.AuthMethods, storage.AuthTLS) && !acct.TLS.IsZero() && a.cfg.ClientCAs != nil {
		switch {
		case verr != nil && chainErr != nil:
			tlsErr = fmt.Errorf("its chain does not verify against --tls-client-ca (%w), and %w", verr, chainErr)
		case verr != nil:
			tlsErr = fmt.Errorf("its chain does not verify against --tls-client-ca: %w", verr)
		case !matchesBinding(cert, acct.TLS):
			tlsErr = errors.New("it does not match the account's TLS binding")
		default:
			if err := allowed(acct, storage.AuthTLS); err != nil {
				return nil, err
			}
			return &Client{Account: acct, Method: storage.AuthTLS, Certificate: cert}, nil
		}
	}
	if slices.Contains(acct.AuthMethods, storage.AuthSelfSignedTLS) {
		keys, err := a.dir.ListKeys(ctx, acct.ID)
		if err != nil {
			return nil, oauth2.StoreUnavailable(err)
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
	return nil, fmt.Errorf("the client certificate is none of the account's registered certificates, and %w", tlsErr)
}

// chainChecks counts the certificate chains verifyChain has verified.
var chainChecks atomic.Uint64

// verifyChain verifies cert against ClientCAs, through the intermediates
// the client sent: verr is the verification's error, chainErr why some
// intermediates were left out (intermediatePool). Intermediates refused
// for their number or subjects are left out, not held against the
// certificate: one a CA of ClientCAs issued directly needs none of them.
func (a *Authenticator) verifyChain(cert *x509.Certificate, intermediates []*x509.Certificate, now time.Time) (verr, chainErr error) {
	chainChecks.Add(1)
	pool, chainErr := intermediatePool(intermediates)
	_, verr = cert.Verify(x509.VerifyOptions{Roots: a.cfg.ClientCAs, Intermediates: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return verr, chainErr
}

// errNoTLSClientAuth is why tls_client_auth refused a certificate it did
// not look at.
var errNoTLSClientAuth = errors.New("the account cannot use tls_client_auth (it does not allow it or has no TLS binding, or the server has no --tls-client-ca)")

// maxIntermediates bounds the intermediates a certificate is verified
// through: those a client sent after its own, in the TLS handshake or in
// a proxy's header.
const maxIntermediates = maxForwardedChain - 1

// intermediatePool returns the pool of intermediates a client sent, to
// verify its certificate through, or an error when they are more than
// maxIntermediates, two of them have one subject, or one has an RSA key
// over keyfile.MaxRSABits bits: crypto/tls refuses those in the handshake,
// but a proxy's header is read here, and its intermediates verify the
// client's certificate with keys the client chose. x509 tries every
// certificate of the pool whose subject is a certificate's issuer, up to
// 100 signature checks, each with a key the client chose (from TLS an RSA
// key of up to 8192 bits, whose exponent may be near 2^31): a hundred
// intermediates of one subject, or a few of one subject and key that sign
// one another, cost some 200 ms a request. Of distinct subjects, each
// certificate has at most one candidate issuer in the pool, and the path
// is one, at most maxIntermediates long.
func intermediatePool(intermediates []*x509.Certificate) (*x509.CertPool, error) {
	// The same certificate sent twice (a chain file that repeats one) adds
	// nothing to the pool, nor to the paths tried.
	seen := make(map[string]bool, len(intermediates))
	distinct := make([]*x509.Certificate, 0, len(intermediates))
	for _, c := range intermediates {
		if !seen[string(c.Raw)] {
			seen[string(c.Raw)] = true
			distinct = append(distinct, c)
		}
	}
	intermediates = distinct
	if len(intermediates) == 0 {
		return nil, nil
	}
	if len(intermediates) > maxIntermediates {
		return nil, fmt.Errorf("the client sent %d intermediate certificates, more than %d", len(intermediates), maxIntermediates)
	}
	pool := x509.NewCertPool()
	for i, c := range intermediates {
		if err := keyfile.CheckRSASize(c.PublicKey); err != nil {
			return nil, fmt.Errorf("an intermediate certificate the client sent cannot be verified through: %w", err)
		}
		if slices.ContainsFunc(intermediates[:i], func(d *x509.Certificate) bool { return bytes.Equal(d.RawSubject, c.RawSubject) }) {
			return nil, errors.New("the client sent two intermediate certificates of one subject")
		}
		pool.AddCert(c)
	}
	return pool, nil
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
	for i := range len(a) {
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
// (nginx's $ssl_client_escaped_cert), PEM with its line breaks made spaces
// (Apache's %{SSL_CLIENT_CERT}s in a header), or base64 DER, as sent
// (HAProxy's %[ssl_c_der,base64]) or URL-encoded. PEM may hold the
// client's certificate followed by its intermediates, as a proxy that
// forwards the chain sends it; the result is never empty.
func parseForwardedCert(v string) ([]*x509.Certificate, error) {
	// Base64 as sent first, since it is full of + that URL-decoding could
	// take for spaces; no URL-encoded PEM is base64.
	if der, err := decodeBase64(strings.TrimSpace(v)); err == nil {
		return parseDER(der)
	}
	// URL-encoded, with a + a + (nginx writes a space %20) or a space (as
	// Go's url.QueryEscape writes it): the first reading that holds PEM.
	for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
		d, err := unescape(v)
		if err != nil {
			continue
		}
		if chain, found, err := parsePEMChain(d); found {
			return chain, err
		}
		if der, err := decodeBase64(strings.TrimSpace(d)); err == nil {
			return parseDER(der)
		}
	}
	return nil, errors.New("the forwarded client certificate is neither PEM nor base64 DER")
}

// parsePEMChain reads the CERTIFICATE blocks of v, at most
// maxForwardedChain; found says whether it held any.
func parsePEMChain(v string) (chain []*x509.Certificate, found bool, err error) {
	// A header holds no line breaks: put back those the markers need.
	rest := []byte(strings.NewReplacer("----- ", "-----\n", " -----", "\n-----").Replace(v))
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return chain, len(chain) > 0, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if len(chain) == maxForwardedChain {
			return nil, true, fmt.Errorf("the forwarded client certificate chain holds more than %d certificates", maxForwardedChain)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, true, err
		}
		chain = append(chain, c)
	}
}

// parseDER reads one DER certificate as a chain of its own.
func parseDER(der []byte) ([]*x509.Certificate, error) {
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
