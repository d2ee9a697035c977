package clientauth

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeys"
)

// SAN DNS names compare without regard to ASCII case, email addresses
// with their local part exactly and their domain without regard to ASCII
// case (RFC 5280 §7.5), URIs with their scheme and host without regard to
// ASCII case and the rest exactly (§7.4); no Unicode look-alike folds to a
// letter.
func TestMatchesBindingSANs(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cert    x509.Certificate
		binding storage.TLSBinding
		match   bool
	}{
		{"DNS", x509.Certificate{DNSNames: []string{"job.example"}}, storage.TLSBinding{SANDNS: "job.example"}, true},
		{"DNS in another case", x509.Certificate{DNSNames: []string{"JOB.Example"}}, storage.TLSBinding{SANDNS: "job.example"}, true},
		{"DNS, the second name", x509.Certificate{DNSNames: []string{"a.example", "job.example"}}, storage.TLSBinding{SANDNS: "job.example"}, true},
		{"DNS with the Kelvin sign", x509.Certificate{DNSNames: []string{"\u212aob.example"}}, storage.TLSBinding{SANDNS: "kob.example"}, false},
		{"DNS, another name", x509.Certificate{DNSNames: []string{"jobs.example"}}, storage.TLSBinding{SANDNS: "job.example"}, false},
		{"email", x509.Certificate{EmailAddresses: []string{"job@example.com"}}, storage.TLSBinding{SANEmail: "job@example.com"}, true},
		{"email, domain in another case", x509.Certificate{EmailAddresses: []string{"job@EXAMPLE.com"}}, storage.TLSBinding{SANEmail: "job@example.com"}, true},
		{"email, local part in another case", x509.Certificate{EmailAddresses: []string{"Job@example.com"}}, storage.TLSBinding{SANEmail: "job@example.com"}, false},
		{"email, quoted local part with @", x509.Certificate{EmailAddresses: []string{`"a@b"@Example.com`}}, storage.TLSBinding{SANEmail: `"a@b"@example.com`}, true},
		{"email with the Kelvin sign", x509.Certificate{EmailAddresses: []string{"job@\u212aob.example"}}, storage.TLSBinding{SANEmail: "job@kob.example"}, false},
		{"URI", x509.Certificate{URIs: []*url.URL{mustURL(t, "spiffe://example.org/job")}}, storage.TLSBinding{SANURI: "spiffe://example.org/job"}, true},
		{"URI, scheme and host in another case", x509.Certificate{URIs: []*url.URL{mustURL(t, "SPIFFE://Example.ORG/job")}}, storage.TLSBinding{SANURI: "spiffe://example.org/job"}, true},
		{"URI, path in another case", x509.Certificate{URIs: []*url.URL{mustURL(t, "spiffe://example.org/Job")}}, storage.TLSBinding{SANURI: "spiffe://example.org/job"}, false},
		{"URI, host with the Kelvin sign", x509.Certificate{URIs: []*url.URL{{Scheme: "spiffe", Host: "\u212aob.example", Path: "/job"}}}, storage.TLSBinding{SANURI: "spiffe://kob.example/job"}, false},
		{"URI, another host", x509.Certificate{URIs: []*url.URL{mustURL(t, "spiffe://example.com/job")}}, storage.TLSBinding{SANURI: "spiffe://example.org/job"}, false},
		{"URI with a port", x509.Certificate{URIs: []*url.URL{mustURL(t, "https://Example.org:8443/job")}}, storage.TLSBinding{SANURI: "https://example.org:8443/job"}, true},
		{"URI, another port", x509.Certificate{URIs: []*url.URL{mustURL(t, "https://example.org:8444/job")}}, storage.TLSBinding{SANURI: "https://example.org:8443/job"}, false},
		{"email without @", x509.Certificate{EmailAddresses: []string{"job"}}, storage.TLSBinding{SANEmail: "job@example.com"}, false},
	} {
		if got := matchesBinding(&tt.cert, tt.binding); got != tt.match {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.match)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestIntermediatePoolRSASize: an intermediate with an RSA key over 8192
// bits, which crypto/tls refuses in the handshake but a proxy's header may
// carry, is not verified through: the leaf's signature would be checked
// with a key the client chose, of any size. (The moduli are random odd
// numbers: only their size matters.)
func TestIntermediatePoolRSASize(t *testing.T) {
	w := newWorld(t)
	inter := func(bits int) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(bits)), Subject: pkix.Name{CommonName: fmt.Sprintf("Intermediate of %d bits", bits)},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, w.caCert, testkeys.RSAPublic(bits), w.caKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name    string
		chain   []*x509.Certificate
		wantErr string // "" for a pool
	}{
		{"8192 bits", []*x509.Certificate{inter(8192)}, ""},
		{"8200 bits", []*x509.Certificate{inter(8200)}, "an intermediate certificate the client sent cannot be verified through: the RSA key has 8200 bits, more than the 8192 Keyward accepts"},
		{"8200 bits beside a good one", []*x509.Certificate{w.inter, inter(8200)}, "8200 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := intermediatePool(tt.chain)
			if tt.wantErr == "" && (err != nil || pool == nil) {
				t.Fatalf("intermediatePool = %v, %v; want a pool", pool, err)
			}
			if tt.wantErr != "" && (err == nil || pool != nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("intermediatePool = %v, %v; want no pool and an error with %q", pool, err, tt.wantErr)
			}
		})
	}
}

// TestCertificateRefusalCause: the cause of a refused client certificate,
// which the log gets (the client is told only "Client authentication
// failed."), says why tls_client_auth refused it: an expired certificate,
// or one of an untrusted CA, is not one that matches no binding.
func TestCertificateRefusalCause(t *testing.T) {
	w := newWorld(t)
	issue := func(tmpl *x509.Certificate) *x509.Certificate {
		t.Helper()
		tmpl.SerialNumber = big.NewInt(99)
		if tmpl.NotAfter.IsZero() {
			tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, w.caCert, w.jobKey.Public(), w.caKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	job := pkix.Name{CommonName: "job", Organization: []string{"Example"}}
	var strays []*x509.Certificate
	for i := range 8 {
		ca, _ := issueVia(t, nil, nil, int64(40+i))
		strays = append(strays, ca)
	}
	for _, tt := range []struct {
		name      string
		clientID  string
		cert      *x509.Certificate
		chain     []*x509.Certificate
		wantCause string
	}{
		{"expired", "111", issue(&x509.Certificate{Subject: job, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}), nil, "does not verify against --tls-client-ca: x509: certificate has expired"},
		{"not yet valid", "111", issue(&x509.Certificate{Subject: job, NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)}), nil, "does not verify against --tls-client-ca: x509: certificate has expired or is not yet valid"},
		{"for servers only", "111", issue(&x509.Certificate{Subject: job, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), nil, "does not verify against --tls-client-ca: x509: certificate specifies an incompatible key usage"},
		{"of an untrusted CA", "111", w.forged.Leaf, []*x509.Certificate{w.rogue}, "does not verify against --tls-client-ca: x509: certificate signed by unknown authority"},
		{"too many intermediates", "111", w.chained.Leaf, append([]*x509.Certificate{w.inter}, strays...), "does not verify against --tls-client-ca (x509: certificate signed by unknown authority), and the client sent 9 intermediate certificates, more than 7"},
		{"another subject", "111", issue(&x509.Certificate{Subject: pkix.Name{CommonName: "other"}}), nil, "does not match the account's TLS binding"},
		{"an account without a binding", "222", w.issued.Leaf, nil, "cannot use tls_client_auth"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (request{form: url.Values{"client_id": {tt.clientID}}, cert: tt.cert, chain: tt.chain}).run(w.authenticator())
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Code != oauth2.ErrInvalidClient || oe.Description != "Client authentication failed." {
				t.Fatalf("err = %v, want invalid_client, Client authentication failed.", err)
			}
			if oe.Err == nil || !strings.Contains(oe.Err.Error(), tt.wantCause) {
				t.Fatalf("cause %q, want %q in it", oe.Err, tt.wantCause)
			}
		})
	}
}

// TestCertificateRefusalVerifiesChain: a client certificate sent with a
// client_id that names no account is refused as one an account refuses,
// and must not be refused sooner, or a guesser could tell which client IDs
// are accounts by timing it: with --tls-client-ca, every such request
// verifies the certificate's chain once, whether client_id names an
// account, one with a TLS binding, or none. (Counted, not timed.)
func TestCertificateRefusalVerifiesChain(t *testing.T) {
	w := newWorld(t)
	a := w.authenticator()
	tests := []struct {
		name     string
		clientID string
	}{
		{"account with a TLS binding", "111"},
		{"account without a TLS binding", "222"},
		{"unknown ID", "999"},
		{"unknown email", "ghost@p.iam.test"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := chainChecks.Load()
			_, err := request{form: url.Values{"client_id": {tt.clientID}}, cert: w.forged.Leaf, chain: []*x509.Certificate{w.rogue}, remote: fmt.Sprintf("192.0.2.%d", 60+i)}.run(a)
			checks := chainChecks.Load() - before
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Code != oauth2.ErrInvalidClient {
				t.Fatalf("Authenticate: %v, want invalid_client", err)
			}
			if checks != 1 {
				t.Fatalf("%d chain verifications, want 1: a refusal that verifies none answers sooner", checks)
			}
		})
	}
}
