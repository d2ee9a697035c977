package clientauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// certFor makes a certificate whose subject is rdns, root first, as it
// is encoded in the certificate.
func certFor(t testing.TB, rdns pkix.RDNSequence) *x509.Certificate {
	t.Helper()
	raw, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	return certWithSubject(t, raw)
}

// certWithSubject makes a certificate with the DER subject raw.
func certWithSubject(t testing.TB, raw []byte) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
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

// rdn is a single-valued RDN.
func rdn(oid asn1.ObjectIdentifier, v any) pkix.RelativeDistinguishedNameSET {
	return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}}
}

// What NormalizeBinding accepts is what matchesBinding matches: a subject
// DN written the RFC 4514 way matches a certificate with that subject,
// whatever the spelling, and not one with another subject. DNs compare as
// RFC 4517 distinguishedNameMatch does: RDN by RDN in order, each RDN a
// set, values without regard to ASCII case or insignificant spaces.
func TestNormalizedDNMatchesCertificates(t *testing.T) {
	email := pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "job@example.com"}
	cn, o, ou, c := dnTypes["CN"], dnTypes["O"], dnTypes["OU"], dnTypes["C"]
	job := certFor(t, pkix.RDNSequence{rdn(c, "US"), rdn(o, "Example"), rdn(cn, "job")})
	reversed := certFor(t, pkix.RDNSequence{rdn(cn, "job"), rdn(o, "Example"), rdn(c, "US")})
	comma := certFor(t, pkix.RDNSequence{rdn(o, "A+B"), rdn(cn, "Smith, J.")})
	multi := certFor(t, pkix.RDNSequence{rdn(o, "Example"), {{Type: cn, Value: "job"}, {Type: ou, Value: "ops"}}})
	split := certFor(t, pkix.RDNSequence{rdn(o, "Example"), rdn(ou, "ops"), rdn(cn, "job")})
	mail := certFor(t, pkix.RDNSequence{rdn(cn, "job"), {email}})
	twoCN := certFor(t, pkix.RDNSequence{rdn(o, "Example"), rdn(cn, "admin"), rdn(cn, "job")})
	twoCNMulti := certFor(t, pkix.RDNSequence{rdn(o, "Example"), {{Type: cn, Value: "admin"}, {Type: cn, Value: "job"}}})
	kelvin := certFor(t, pkix.RDNSequence{rdn(cn, "\u212aob")}) // KELVIN SIGN, which Unicode folds to k
	spaces := certFor(t, pkix.RDNSequence{rdn(cn, " job  runner ")})
	special := certFor(t, pkix.RDNSequence{rdn(cn, "#1 ")})
	// A T61String is Latin-1 to crypto/x509: 0xe9 is é.
	t61 := certWithSubject(t, []byte{0x30, 0x10, 0x31, 0x0e, 0x30, 0x0c, 0x06, 0x03, 0x55, 0x04, 0x03, 0x14, 0x05, 'c', 'a', 'f', 0xe9, 's'})
	for _, tt := range []struct {
		dn    string
		cert  *x509.Certificate
		match bool
	}{
		{"CN=job,O=Example,C=US", job, true},
		{"cn=JOB, o=example, c=us", job, true},
		{"CN=#0c036a6f62,O=Example,C=US", job, true}, // UTF8String job; the certificate has a PrintableString
		{"CN=#13034a4f42,O=Example,C=US", job, true}, // PrintableString JOB
		{"2.5.4.3=job,2.5.4.10=Example,2.5.4.6=US", job, true},
		{"CN=job,O=Example", job, false},
		{"CN=other,O=Example,C=US", job, false},
		{"C=US,O=Example,CN=job", job, false},
		{"C=US,O=Example,CN=job", reversed, true},
		{"CN=job,O=Example,C=US", reversed, false},
		{`CN=Smith\, J.,O=A\+B`, comma, true},
		{`CN=Smith\2C J.,O=A\2BB`, comma, true},
		{`CN=Smith\2c j.,O=a\2bb`, comma, true},
		{"CN=job+OU=ops,O=Example", multi, true},
		{"OU=ops+CN=job,O=Example", multi, true},
		{"CN=job,OU=ops,O=Example", multi, false},
		{"CN=job+OU=ops,O=Example", split, false},
		{"CN=job,OU=ops,O=Example", split, true},
		{"emailAddress=job@example.com,CN=job", mail, true},
		{"E=JOB@example.com,CN=job", mail, true},
		{"CN=job+E=job@example.com", mail, false},
		{"CN=job", mail, false},
		{"CN=job,O=Example", twoCN, false},
		{"CN=admin,O=Example", twoCN, false},
		{"CN=job,CN=admin,O=Example", twoCN, true},
		{"CN=admin,CN=job,O=Example", twoCN, false},
		{"CN=job+CN=admin,O=Example", twoCN, false},
		{"CN=job,O=Example", twoCNMulti, false},
		{"CN=admin+CN=job,O=Example", twoCNMulti, true},
		{"CN=job+CN=admin,O=Example", twoCNMulti, true},
		{"CN=job+CN=job,O=Example", twoCNMulti, false},
		{"CN=job,CN=admin,O=Example", twoCNMulti, false},
		{"CN=kob", kelvin, false},
		{"CN=Kob", kelvin, false},
		{"CN=\u212aob", kelvin, true},
		{"CN=job runner", spaces, true},
		{`CN=\ job runner\ `, spaces, true},
		{"CN=job  RUNNER", spaces, true},
		{"CN=jobrunner", spaces, false},
		{`CN=\#1`, special, true},
		{`CN=\#1\ `, special, true},
		{"CN=#1", special, false}, // not hex: refused
		{"CN=cafés", t61, true},
		{"CN=CAFéS", t61, true},
		{"CN=CAFÉS", t61, false}, // only ASCII letters fold
		{"CN=#1405636166e973", t61, true},
	} {
		b, err := NormalizeBinding(storage.TLSBinding{SubjectDN: tt.dn})
		if err != nil {
			if tt.match {
				t.Errorf("%s: %v", tt.dn, err)
			}
			continue
		}
		if got := matchesBinding(tt.cert, b); got != tt.match {
			t.Errorf("%s (stored as %s) matches %s: %v, want %v", tt.dn, b.SubjectDN, tt.cert.Subject, got, tt.match)
		}
	}
}

// A subject matchesDN cannot read, or that holds a value of a type no
// binding can name, matches nothing.
func TestMatchesDNOddSubjects(t *testing.T) {
	good, err := asn1.Marshal(pkix.RDNSequence{rdn(dnTypes["CN"], "5")})
	if err != nil {
		t.Fatal(err)
	}
	integer, err := asn1.Marshal(pkix.RDNSequence{rdn(dnTypes["CN"], 5)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		raw   []byte
		match bool
	}{
		{"the subject", good, true},
		{"trailing bytes", append(good[:len(good):len(good)], 0), false},
		{"truncated", good[:len(good)-1], false},
		{"empty", nil, false},
		{"an INTEGER value", integer, false},
	} {
		if got := matchesDN(tt.raw, "CN=5"); got != tt.match {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.match)
		}
	}
}

// NormalizeDN keeps the RDNs in the order written and the grouping of
// multi-valued ones, and writes what it must escape so that it reads back.
func TestNormalizeDN(t *testing.T) {
	for _, tt := range []struct{ dn, want string }{
		{"CN=job,O=Example", "CN=job,O=Example"},
		{"cn=job, o=Example, c=US", "CN=job,O=Example,C=US"},
		{"O=Example,CN=job", "O=Example,CN=job"},
		{"CN=job + OU=ops , O=Example", "CN=job+OU=ops,O=Example"},
		{"OU=ops+CN=job,O=Example", "OU=ops+CN=job,O=Example"},
		{"CN=admin,CN=job,O=Example", "CN=admin,CN=job,O=Example"},
		{"SERIALNUMBER=1,SERIALNUMBER=2,CN=job", "SERIALNUMBER=1,SERIALNUMBER=2,CN=job"},
		{`CN=Smith\2c J.,O=A\2bB`, `CN=Smith\, J.,O=A\+B`},
		{`CN=\ a b\ `, `CN=\ a b\ `},
		{`CN=\  x \ `, `CN=\  x \ `},
		{`CN=\#1#`, `CN=\#1#`},
		{`CN=a\"\;\<\>\\\=`, `CN=a\"\;\<\>\\=`},
		{`CN=a\0Ab\00`, `CN=a\0Ab\00`},
		{"2.5.4.3=job,1.2.3=x", "CN=job,1.2.3=x"},
		{"CN=#0c036a6f62", "CN=job"},
		{"CN=#1405636166e973", "CN=cafés"},
		{"CN=#1e0400630061", "CN=ca"}, // BMPString
		{"E=job@example.com,DC=example,UID=j", "EMAILADDRESS=job@example.com,DC=example,UID=j"},
		{"CN=ünïcødé", "CN=ünïcødé"},
		// As pkix.Name.String stored bindings before.
		{"CN=job,1.2.840.113549.1.9.1=#0c0f6a6f62406578616d706c652e636f6d", "CN=job,EMAILADDRESS=job@example.com"},
	} {
		got, err := NormalizeDN(tt.dn)
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.dn, got, err, tt.want)
			continue
		}
		// What formatDN writes, parseDN reads back as it was.
		want, _ := parseDN(tt.dn)
		if back, err := parseDN(got); err != nil || !reflect.DeepEqual(back, want) {
			t.Errorf("%s: %s reads back as %v, %v; want %v", tt.dn, got, back, err, want)
		}
	}
	for _, dn := range []string{"CN=#0c00", "ſt=x", "K=x", `CN=\ `, `CN=\  \ `, `CN=\20\20`, "CN=#0c0120", "CN=#0c02c328", "CN=#1e01ff", "CN=#020105", "CN=#1e02d800"} {
		if got, err := NormalizeDN(dn); err == nil {
			t.Errorf("%s: accepted as %s", dn, got)
		}
	}
}

func FuzzNormalizeDN(f *testing.F) {
	for _, s := range []string{"CN=job,O=Example", `CN=a\,b+OU=x`, "CN=#0c036a6f62", "2.5.4.3=x", "garbage==", "E=a@b", `CN=\ a\ `, `CN=\#a\00`, "CN=#1403e9e9e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		n, err := NormalizeDN(dn)
		if err != nil {
			return
		}
		// The normal form is a DN that normalizes to itself, and reads
		// as the DN it came from.
		if again, err := NormalizeDN(n); err != nil || again != n {
			t.Fatalf("%q normalizes to %q, which normalizes to %q, %v", dn, n, again, err)
		}
		want, _ := parseDN(dn)
		if got, err := parseDN(n); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q normalizes to %q, which reads as %v, %v; want %v", dn, n, got, err, want)
		}
	})
}

// matchesDN reads a subject a client's CA encoded, whatever its bytes,
// without a panic; and a binding matches the subjects its stored normal
// form matches, no more and no fewer.
func FuzzMatchesDN(f *testing.F) {
	for _, tt := range []struct {
		rdns pkix.RDNSequence
		dn   string
	}{
		{pkix.RDNSequence{rdn(dnTypes["O"], "Example"), rdn(dnTypes["CN"], "job")}, "CN=job,O=Example"},
		{pkix.RDNSequence{rdn(dnTypes["C"], "US"), {{Type: dnTypes["OU"], Value: "ops"}, {Type: dnTypes["CN"], Value: "job"}}}, "cn=JOB+ou=ops, c=us"},
		{pkix.RDNSequence{rdn(dnTypes["CN"], "a,b")}, `CN=a\,b`},
		{pkix.RDNSequence{rdn(dnTypes["CN"], "  x  y ")}, "CN=x y"},
	} {
		raw, err := asn1.Marshal(tt.rdns)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, tt.dn)
	}
	f.Fuzz(func(t *testing.T, raw []byte, dn string) {
		got := matchesDN(raw, dn)
		n, err := NormalizeDN(dn)
		if err != nil {
			if got {
				t.Fatalf("%q matches %x but does not normalize: %v", dn, raw, err)
			}
			return
		}
		if again := matchesDN(raw, n); again != got {
			t.Fatalf("%q matches %x: %v; its normal form %q: %v", dn, raw, got, n, again)
		}
	})
}

// BenchmarkMatchesBinding: matchesBinding runs for every tls_client_auth
// request.
func BenchmarkMatchesBinding(b *testing.B) {
	cert := certFor(b, pkix.RDNSequence{rdn(dnTypes["C"], "US"), rdn(dnTypes["O"], "Example"),
		{{Type: dnTypes["OU"], Value: "ops"}, {Type: dnTypes["CN"], Value: "job"}}})
	binding := storage.TLSBinding{SubjectDN: "CN=job+OU=ops,O=Example,C=US"}
	b.ReportAllocs()
	for b.Loop() {
		if !matchesBinding(cert, binding) {
			b.Fatal("no match")
		}
	}
}
