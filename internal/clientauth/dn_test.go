package clientauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// What NormalizeBinding accepts is what matchesBinding matches: a subject
// DN written the RFC 4514 way matches a certificate with that subject,
// whatever the spelling, and not one with another subject.
func TestNormalizedDNMatchesCertificates(t *testing.T) {
	email := pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "job@example.com"}
	certFor := func(rdns pkix.RDNSequence) *x509.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		raw, err := asn1.Marshal(rdns)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: raw, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	atv := func(oid asn1.ObjectIdentifier, v string) pkix.RelativeDistinguishedNameSET {
		return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}}
	}
	cn, o, ou, c := asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}, asn1.ObjectIdentifier{2, 5, 4, 11}, asn1.ObjectIdentifier{2, 5, 4, 6}
	job := certFor(pkix.RDNSequence{atv(c, "US"), atv(o, "Example"), atv(cn, "job")})
	comma := certFor(pkix.RDNSequence{atv(o, "A+B"), atv(cn, "Smith, J.")})
	multi := certFor(pkix.RDNSequence{atv(o, "Example"), {{Type: cn, Value: "job"}, {Type: ou, Value: "ops"}}})
	mail := certFor(pkix.RDNSequence{atv(cn, "job"), {email}})
	// crypto/x509 renders only the last CN of a subject naming two.
	twoCN := certFor(pkix.RDNSequence{atv(o, "Example"), atv(cn, "admin"), atv(cn, "job")})
	twoCNMulti := certFor(pkix.RDNSequence{atv(o, "Example"), {{Type: cn, Value: "admin"}, {Type: cn, Value: "job"}}})
	for _, tt := range []struct {
		dn    string
		cert  *x509.Certificate
		match bool
	}{
		{"CN=job,O=Example,C=US", job, true},
		{"cn=job, o=example, c=us", job, true},
		{"C=US,O=Example,CN=job", job, true},
		{"CN=#0c036a6f62,O=Example,C=US", job, true},
		{"2.5.4.3=job,2.5.4.10=Example,2.5.4.6=US", job, true},
		{"CN=job,O=Example", job, false},
		{"CN=other,O=Example,C=US", job, false},
		{`CN=Smith\, J.,O=A\+B`, comma, true},
		{`CN=Smith\2C J.,O=A\2BB`, comma, true},
		{"CN=job+OU=ops,O=Example", multi, true},
		{"OU=ops+CN=job,O=Example", multi, true},
		{"emailAddress=job@example.com,CN=job", mail, true},
		{"E=job@example.com,CN=job", mail, true},
		{"CN=job", mail, false},
		{"CN=job,O=Example", twoCN, false},
		{"CN=job,O=Example", twoCNMulti, false},
		{"CN=admin,O=Example", twoCN, false},
	} {
		b, err := NormalizeBinding(storage.TLSBinding{SubjectDN: tt.dn})
		if err != nil {
			t.Errorf("%s: %v", tt.dn, err)
			continue
		}
		if got := matchesBinding(tt.cert, b); got != tt.match {
			t.Errorf("%s (stored as %s) matches %s: %v, want %v", tt.dn, b.SubjectDN, tt.cert.Subject, got, tt.match)
		}
	}
}

func FuzzNormalizeDN(f *testing.F) {
	for _, s := range []string{"CN=job,O=Example", `CN=a\,b+OU=x`, "CN=#0c036a6f62", "2.5.4.3=x", "garbage==", "E=a@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		n, err := NormalizeDN(dn)
		if err != nil {
			return
		}
		// The normal form is a DN that normalizes to itself.
		if again, err := NormalizeDN(n); err != nil || again != n {
			t.Fatalf("%q normalizes to %q, which normalizes to %q, %v", dn, n, again, err)
		}
	})
}

// A DN naming CN or SERIALNUMBER twice used to be stored with only one of
// them (pkix.Name keeps the last), so the binding matched a certificate
// with just that CN: broader than the DN the operator gave.
func TestNormalizeDNRefusesRepeatedSingleValuedAttributes(t *testing.T) {
	for _, dn := range []string{
		"CN=admin,CN=job,O=Example",
		"CN=a+CN=b,O=Example",
		"SERIALNUMBER=1,SERIALNUMBER=2,CN=job",
		"CN=job,2.5.4.3=admin",
	} {
		if n, err := NormalizeDN(dn); err == nil {
			t.Errorf("%s: accepted as %s", dn, n)
		}
	}
	for _, dn := range []string{"CN=job,SERIALNUMBER=1,O=Example", "OU=a,OU=b,O=Example"} {
		if _, err := NormalizeDN(dn); err != nil {
			t.Errorf("%s: %v", dn, err)
		}
	}
}

// TestCheckSingleValuedAllocs: matchesBinding runs checkSingleValued on
// the certificate's subject for every tls_client_auth request.
func TestCheckSingleValuedAllocs(t *testing.T) {
	subject := []pkix.RelativeDistinguishedNameSET{{
		{Type: dnTypes["O"], Value: "Example"},
		{Type: dnTypes["SERIALNUMBER"], Value: "1"},
		{Type: dnTypes["CN"], Value: "job"},
	}}
	if err := checkSingleValued(subject); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = checkSingleValued(subject) }); n != 0 {
		t.Errorf("checkSingleValued allocates %v times, want 0", n)
	}
}
