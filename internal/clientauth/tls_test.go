package clientauth

import (
	"crypto/x509"
	"net/url"
	"testing"

	"github.com/keyward/keyward/internal/storage"
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
