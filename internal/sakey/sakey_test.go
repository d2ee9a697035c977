package sakey

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/google"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeys"
)

var now = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func TestGenerateKeyFile(t *testing.T) {
	acct := storage.Account{ID: "123456789012345678901", Email: "job@proj.iam.example", Project: "proj"}
	k, kf, err := Generate(acct, Endpoints{Auth: "http://kw/authorize", Token: "http://kw/token", X509: "http://kw/service_accounts/v1/metadata/x509/"}, now, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(k.ID) != 40 || k.ID != kf.PrivateKeyID || k.Algorithm != "RS256" || k.AccountID != acct.ID || k.Origin != storage.KeyOriginGenerated {
		t.Fatalf("key = %+v", k)
	}
	if kf.Type != "service_account" || kf.ClientEmail != acct.Email || kf.ClientID != acct.ID || kf.ProjectID != "proj" ||
		kf.TokenURI != "http://kw/token" || kf.ClientX509CertURL != "http://kw/service_accounts/v1/metadata/x509/job@proj.iam.example" {
		t.Fatalf("key file = %+v", kf)
	}
	// The stored key holds no private material, and its certificate matches.
	cert, err := x509.ParseCertificate(k.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if string(spki) != string(k.PublicKey) {
		t.Fatal("certificate and stored public key differ")
	}
	// Google's own library reads the file.
	b, _ := json.Marshal(kf)
	if strings.Contains(string(b), "universe_domain") {
		t.Fatal("key file must not carry universe_domain")
	}
	cfg, err := google.JWTConfigFromJSON(b, "orders.read")
	if err != nil {
		t.Fatalf("golang.org/x/oauth2/google cannot read the key file: %v", err)
	}
	if cfg.TokenURL != kf.TokenURI || cfg.PrivateKeyID != k.ID || cfg.Email != acct.Email {
		t.Fatalf("google config = %+v", cfg)
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePublic(t *testing.T) {
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pkix := func(k any) []byte { b, _ := x509.MarshalPKIXPublicKey(k); return b }
	certDER := selfSignedCert(t, p256)
	huge := testkeys.RSAPublic(8200)
	hugeCert := issuedCert(t, huge, p256)
	tests := []struct {
		name    string
		in      []byte
		wantAlg string
		wantErr string
	}{
		{"rsa spki", pemBlock("PUBLIC KEY", pkix(&rsa2048.PublicKey)), "RS256", ""},
		{"rsa pkcs1", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa2048.PublicKey)), "RS256", ""},
		{"ec p256", pemBlock("PUBLIC KEY", pkix(&p256.PublicKey)), "ES256", ""},
		{"certificate", pemBlock("CERTIFICATE", certDER), "ES256", ""},
		{"rsa 1024", pemBlock("PUBLIC KEY", pkix(&rsa1024.PublicKey)), "", "1024 bits"},
		{"rsa 8200 spki", pemBlock("PUBLIC KEY", pkix(huge)), "", "the RSA key has 8200 bits, more than the 8192 Keyward accepts"},
		{"rsa 8200 pkcs1", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(huge)), "", "8200 bits, more than the 8192"},
		{"rsa 8200 certificate", pemBlock("CERTIFICATE", hugeCert), "", "8200 bits, more than the 8192"},
		{"rsa exponent 1", pemBlock("PUBLIC KEY", pkix(&rsa.PublicKey{N: rsa2048.N, E: 1})), "", "the RSA key's public exponent is 1"},
		// A compressed EC point is said to be one, with how to convert it.
		{"compressed ec point", pemBlock("PUBLIC KEY", compressed(t, pkix(&p256.PublicKey))), "",
			"the PUBLIC KEY is an EC key as a compressed point, which Keyward does not accept: convert it to the uncompressed form with openssl ec -pubin -in FILE -pubout -conv_form uncompressed"},
		{"certificate of a compressed ec point", pemBlock("CERTIFICATE", compressed(t, certDER)), "",
			"the CERTIFICATE's EC key is a compressed point, which Keyward does not accept"},
		{"p384", pemBlock("PUBLIC KEY", pkix(&p384.PublicKey)), "", "P-384"},
		{"ed25519", pemBlock("PUBLIC KEY", pkix(edPub)), "", "unsupported key type"},
		// Keys crypto/x509 parses but Keyward does not take are named
		// in words, not by their Go type.
		{"x25519", pemBlock("PUBLIC KEY", pkix(must(ecdh.X25519().GenerateKey(rand.Reader)).PublicKey())), "",
			"unsupported key type X25519, an ECDH key that cannot sign: Keyward accepts"},
		{"dsa", pemBlock("PUBLIC KEY", dsaSPKI()), "", "unsupported key type DSA: Keyward accepts"},
		{"certificate of an unknown key algorithm", pemBlock("CERTIFICATE", unknownKeyCert(t, certDER)), "",
			"unsupported key type, of an algorithm Keyward does not know: Keyward accepts"},
		{"private key", pemBlock("PRIVATE KEY", []byte{1}), "", "private key"},
		// A private key anywhere in the file is refused, as the CLI
		// refuses it: a certificate followed by its key, say.
		{"certificate then its key", append(pemBlock("CERTIFICATE", certDER), pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(p256)))...), "",
			"the file holds a private key: upload only the public key or certificate"},
		{"public key then an EC key", append(pemBlock("PUBLIC KEY", pkix(&p256.PublicKey)), pemBlock("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(p256)))...), "",
			"the file holds a private key"},
		{"openssh private key", pemBlock("OPENSSH PRIVATE KEY", []byte{1}), "", "the file holds a private key"},
		{"encrypted private key", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), "", "the file holds a private key"},
		{"not pem", []byte("hello"), "", "not PEM"},
		// One key a file: the second was dropped unsaid. A certificate's
		// chain after it is fine; the first, the leaf, is registered.
		{"two public keys", append(pemBlock("PUBLIC KEY", pkix(&p256.PublicKey)), pemBlock("PUBLIC KEY", pkix(&rsa2048.PublicKey))...), "",
			"the file holds 2 public keys: upload them one at a time"},
		{"public key then rsa public key", append(pemBlock("PUBLIC KEY", pkix(&p256.PublicKey)), pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa2048.PublicKey))...), "",
			"the file holds 2 public keys"},
		{"certificate then public key", append(pemBlock("CERTIFICATE", certDER), pemBlock("PUBLIC KEY", pkix(&rsa2048.PublicKey))...), "",
			"the file holds both a public key and a certificate"},
		{"public key then certificate", append(pemBlock("PUBLIC KEY", pkix(&rsa2048.PublicKey)), pemBlock("CERTIFICATE", certDER)...), "",
			"the file holds both a public key and a certificate"},
		// A BEGIN line pem.Decode cannot read a block from is named, not
		// skipped for the next block, or for "not PEM".
		{"damaged base64 then a key", append(damaged(pemBlock("PUBLIC KEY", pkix(&rsa2048.PublicKey))), pemBlock("PUBLIC KEY", pkix(&p256.PublicKey))...), "",
			`the PEM block "PUBLIC KEY" (block 1 of the file) does not decode: its base64 is damaged`},
		{"damaged base64 alone", damaged(pemBlock("PUBLIC KEY", pkix(&p256.PublicKey))), "", `the PEM block "PUBLIC KEY" (block 1 of the file) does not decode`},
		{"no END line", bytes.TrimSuffix(pemBlock("CERTIFICATE", certDER), []byte("-----END CERTIFICATE-----\n")), "", `the PEM block "CERTIFICATE" (block 1 of the file) does not decode`},
		{"damaged chain certificate", append(pemBlock("CERTIFICATE", certDER), damaged(pemBlock("CERTIFICATE", hugeCert))...), "", `the PEM block "CERTIFICATE" (block 2 of the file) does not decode`},
		{"damaged private key", damaged(pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(p256)))), "", "the file holds a private key"},
		{"text before the block", append([]byte("my key:\n"), pemBlock("PUBLIC KEY", pkix(&p256.PublicKey))...), "ES256", ""},
		{"certificate chain", append(pemBlock("CERTIFICATE", certDER), pemBlock("CERTIFICATE", hugeCert)...), "ES256", ""},
		// What does not parse is said in words, not in asn1's Go structs
		// or x509's function names.
		{"garbage der", pemBlock("PUBLIC KEY", []byte{1, 2, 3}), "", "cannot parse the PUBLIC KEY: its contents are not the DER encoding of one"},
		{"garbage pkcs1", pemBlock("RSA PUBLIC KEY", []byte{0x30, 0x03, 0x02, 0x01}), "", "cannot parse the RSA PUBLIC KEY: its contents are not the DER encoding of one"},
		{"garbage certificate", pemBlock("CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01, 0x01}), "", "cannot parse the CERTIFICATE: malformed tbs certificate"},
		{"pkcs1 labelled spki", pemBlock("PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa2048.PublicKey)), "",
			"the PUBLIC KEY block holds an RSA PUBLIC KEY (PKCS #1): label it BEGIN RSA PUBLIC KEY, or convert it with openssl rsa -RSAPublicKey_in -pubout"},
		{"spki labelled pkcs1", pemBlock("RSA PUBLIC KEY", pkix(&rsa2048.PublicKey)), "",
			"the RSA PUBLIC KEY block holds a PUBLIC KEY (SubjectPublicKeyInfo): label it BEGIN PUBLIC KEY"},
		{"other block", pemBlock("X509 CRL", []byte{1}), "", `unsupported PEM block "X509 CRL": expected PUBLIC KEY or CERTIFICATE`},
		{"long block type", pemBlock(strings.Repeat("X", 5000), []byte{1}), "",
			`unsupported PEM block "` + strings.Repeat("X", 48) + `"… (5000 bytes): expected PUBLIC KEY or CERTIFICATE`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePublic(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if msg := err.Error(); strings.Contains(msg, "asn1") || strings.Contains(msg, "x509:") || strings.Contains(msg, "Parse") ||
					strings.Contains(msg, "<nil>") || strings.Contains(msg, ".PublicKey") {
					t.Errorf("err = %q, which shows Go's internals", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Algorithm != tt.wantAlg || len(p.SPKI) == 0 {
				t.Fatalf("got %+v", p)
			}
			if (tt.name == "certificate" || tt.name == "certificate chain") && (!bytes.Equal(p.Certificate, certDER) || p.NotAfter.IsZero()) {
				t.Fatal("certificate not kept")
			}
		})
	}
}

// compressed returns der, a P-256 PUBLIC KEY or a CERTIFICATE without
// extensions, with its key as a compressed point. The certificate's
// signature no longer matches, which ParsePublic does not check.
func compressed(t *testing.T, der []byte) []byte {
	point := func(spki *subjectPublicKeyInfo) {
		x, y := elliptic.Unmarshal(elliptic.P256(), spki.Key.Bytes)
		c := elliptic.MarshalCompressed(elliptic.P256(), x, y)
		spki.Key = asn1.BitString{Bytes: c, BitLength: 8 * len(c)}
	}
	var spki subjectPublicKeyInfo
	if _, err := asn1.Unmarshal(der, &spki); err == nil && len(spki.Key.Bytes) == 65 {
		point(&spki)
		return must(asn1.Marshal(spki))
	}
	var cert struct {
		TBS       tbsCertificate
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &cert); err != nil || len(rest) > 0 {
		t.Fatalf("not a PUBLIC KEY nor a CERTIFICATE without extensions: %v", err)
	}
	point(&cert.TBS.SubjectPublicKeyInfo)
	return must(asn1.Marshal(cert))
}

// damaged returns the PEM block b with a character of its base64 that
// is not base64.
func damaged(b []byte) []byte {
	b = bytes.Clone(b)
	b[bytes.IndexByte(b, '\n')+3] = '!'
	return b
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// dsaSPKI returns the SubjectPublicKeyInfo of a DSA key, which
// crypto/x509 parses but no longer writes.
func dsaSPKI() []byte {
	params := must(asn1.Marshal(struct{ P, Q, G *big.Int }{big.NewInt(23), big.NewInt(11), big.NewInt(4)}))
	y := must(asn1.Marshal(big.NewInt(8)))
	return must(asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}{
		pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}, Parameters: asn1.RawValue{FullBytes: params}},
		asn1.BitString{Bytes: y, BitLength: 8 * len(y)},
	}))
}

// unknownKeyCert returns the EC certificate der with its key's algorithm
// changed to one crypto/x509 does not know (as an Ed448 or RSA-PSS key's
// is): it parses, with no public key. Its signature no longer matches,
// which ParsePublic does not check.
func unknownKeyCert(t *testing.T, der []byte) []byte {
	ecPublicKey := []byte{0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01} // 1.2.840.10045.2.1
	i := bytes.Index(der, ecPublicKey)
	if i < 0 {
		t.Fatal("no id-ecPublicKey in the certificate")
	}
	der = bytes.Clone(der)
	der[i+len(ecPublicKey)-1] = 0x7f // 1.2.840.10045.2.127
	return der
}

func selfSignedCert(t *testing.T, k *ecdsa.PrivateKey) []byte {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "up"}, NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// issuedCert returns a certificate for pub that k issues: pub need not
// be a key whose private half anyone holds.
func issuedCert(t *testing.T, pub any, k *ecdsa.PrivateKey) []byte {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "up"}, NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, &x509.Certificate{Subject: pkix.Name{CommonName: "ca"}}, pub, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func FuzzParsePublic(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	f.Add(pemBlock("PUBLIC KEY", der))
	f.Add(pemBlock("CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01, 0x01}))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePublic(data)
		if err != nil {
			return
		}
		if p.Algorithm != "RS256" && p.Algorithm != "ES256" {
			t.Fatalf("accepted algorithm %q", p.Algorithm)
		}
		pub, err := x509.ParsePKIXPublicKey(p.SPKI)
		if err != nil {
			t.Fatalf("accepted key does not re-parse: %v", err)
		}
		if k, ok := pub.(*rsa.PublicKey); ok && (k.E < 3 || k.E%2 == 0 || k.N.Bit(0) == 0) {
			t.Fatalf("accepted an RSA key crypto/rsa verifies nothing with: e = %d, modulus odd %v", k.E, k.N.Bit(0) == 1)
		}
	})
}
