package jwspad

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// padSign makes a compact JWS the way google-auth for Python before 1.6.3
// does: every segment base64url with its padding, the signature over the
// padded segments.
func padSign(t testing.TB, key crypto.Signer, alg string, header, payload string) string {
	t.Helper()
	enc := base64.URLEncoding.EncodeToString
	input := enc([]byte(header)) + "." + enc([]byte(payload))
	h := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = s
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	}
	return input + "." + enc(sig)
}

func TestUnpadAndVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	// Header and payload lengths chosen so that both segments need padding.
	rsHeader, esHeader := `{"typ": "JWT", "alg": "RS256"}`, `{"typ": "JWT", "alg": "ES256"}`
	payload := `{"iss": "job@p.iam", "scope": "a"}`
	rs := padSign(t, rsaKey, "RS256", rsHeader, payload)
	es := padSign(t, ecKey, "ES256", esHeader, payload)
	if strings.Count(rs, "=") == 0 || strings.Count(es, "=") == 0 {
		t.Fatalf("fixtures without padding: %s %s", rs, es)
	}
	tests := []struct {
		name    string
		raw     string
		pub     crypto.PublicKey
		alg     jose.SignatureAlgorithm
		wantErr bool
	}{
		{"RS256", rs, &rsaKey.PublicKey, jose.RS256, false},
		{"ES256", es, &ecKey.PublicKey, jose.ES256, false},
		{"RS256 with another key", rs, &otherEC.PublicKey, jose.RS256, true},
		{"ES256 with another key", es, &otherEC.PublicKey, jose.ES256, true},
		{"an RSA key for ES256", rs, &rsaKey.PublicKey, jose.ES256, true},
		{"a P-256 key for RS256", es, &ecKey.PublicKey, jose.RS256, true},
		{"a P-384 key for ES256", es, &p384.PublicKey, jose.ES256, true},
		{"padding added to a JWS signed without", strings.Replace(unpadded(t, es), ".", "=.", 1), &ecKey.PublicKey, jose.ES256, true},
		{"payload changed", strings.Replace(rs, ".", ".eyJ", 1), &rsaKey.PublicKey, jose.RS256, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compact, s, err := Unpad(tt.raw)
			if err != nil {
				if tt.wantErr {
					return
				}
				t.Fatal(err)
			}
			if s == nil {
				t.Fatal("a padded JWS gave no Signed")
			}
			if strings.Contains(compact, "=") {
				t.Fatalf("Unpad left padding: %s", compact)
			}
			// go-jose parses what Unpad returns, and reads the same header.
			jws, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
			if err != nil {
				t.Fatalf("go-jose refuses the unpadded form: %v", err)
			}
			if got := jws.UnsafePayloadWithoutVerification(); !tt.wantErr && string(got) != payload {
				t.Fatalf("payload = %s", got)
			}
			err = s.Verify(tt.pub, tt.alg)
			if tt.wantErr != (err != nil) {
				t.Fatalf("Verify = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// unpadded strips the padding of a JWS (its signature then no longer
// matches: it covered the padded segments).
func unpadded(t *testing.T, raw string) string {
	t.Helper()
	compact, _, err := Unpad(raw)
	if err != nil {
		t.Fatal(err)
	}
	return compact
}

func TestUnpadPassesThrough(t *testing.T) {
	for _, raw := range []string{"", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "a=.b", "a.b.c.d=", "a=.b=.c=.d="} {
		got, s, err := Unpad(raw)
		if got != raw || s != nil || err != nil {
			t.Errorf("Unpad(%q) = %q, %v, %v; want it unchanged", raw, got, s, err)
		}
	}
}

func TestUnpadRefusesWrongPadding(t *testing.T) {
	for _, raw := range []string{
		"YWJj=.e30=.c2ln",   // a 4-character segment has none
		"YQ=.e30=.c2ln",     // a 2-character one has two
		"Y===.e30=.c2ln",    // three is never padding
		"e30.e30.c2ln=====", // nor five, on the signature alone
		"e30=.e30=.!!!=",    // the signature is not base64url
		"=0..",              // '=' not at the end
		"e=30.e30.c2ln=",    // nor here
		"e30=.e30.c2ln",     // padding on one segment, not on another that needs it
		"e31=.e30=.c2ln",    // non-zero trailing bits
		"e3\n0=.e30=.c2ln",  // a line break
		"W10=.e30=.c2ln",    // a header that is not an object ([])
	} {
		if got, _, err := Unpad(raw); err == nil {
			t.Errorf("Unpad(%q) = %q, want an error", raw, got)
		}
	}
}

// A padded JWS whose header marks an extension critical is refused: only
// go-jose knows which extensions it supports.
func TestUnpadRefusesCrit(t *testing.T) {
	enc := base64.URLEncoding.EncodeToString
	raw := enc([]byte(`{"alg": "ES256", "crit": ["urn:x"], "urn:x": 1}`)) + "." + enc([]byte(`{"iss": "a@b"}`)) + ".c2ln"
	if !strings.Contains(raw, "=") {
		t.Fatalf("no padding in %s", raw)
	}
	if _, _, err := Unpad(raw); !errors.Is(err, ErrCritical) {
		t.Fatalf("err = %v, want ErrCritical", err)
	}
}

// Padding on the signature alone leaves the signing input as go-jose
// rebuilds it: Unpad hands the JWS to go-jose, which keeps checking what
// it checks, crit included.
func TestSignaturePaddingGoesToGoJose(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithCritical("urn:x").WithHeader("urn:x", 1))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"iss": "a@b"}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jws.CompactSerialize()
	compact, s, err := Unpad(raw + "==") // an ES256 signature is 86 characters
	if err != nil || s != nil || compact != raw {
		t.Fatalf("Unpad = %q, %v, %v; want the JWS without padding, for go-jose", compact, s, err)
	}
	parsed, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Verify(&key.PublicKey); err == nil {
		t.Fatal("go-jose verified a JWS with an unsupported critical extension")
	}
}

func FuzzUnpad(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.e30=.c2ln")
	f.Add("a.b.c")
	f.Add("YQ==.YWI=.YWJj")
	f.Fuzz(func(t *testing.T, raw string) {
		compact, s, err := Unpad(raw)
		if err != nil {
			return
		}
		if s == nil {
			// Only the signature's padding may go.
			if compact != raw && compact != strings.TrimRight(raw, "=") {
				t.Fatalf("Unpad(%q) changed it to %q without a Signed", raw, compact)
			}
			return
		}
		if strings.Count(compact, ".") != 2 || strings.Contains(compact, "=") {
			t.Fatalf("Unpad(%q) = %q", raw, compact)
		}
		if !strings.HasPrefix(raw, s.input+".") {
			t.Fatalf("signing input %q is not the start of %q", s.input, raw)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if s.Verify(&key.PublicKey, jose.ES256) == nil {
			t.Fatalf("a fresh key verifies %q", raw)
		}
	})
}
