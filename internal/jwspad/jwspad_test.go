package jwspad

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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

// A padded JWS may have only alg, typ and kid in its header: the padded
// path verifies the signature itself and must not ignore a member that
// changes what go-jose would verify (b64 false: the payload is signed
// unencoded, RFC 7797), nor any other it does not understand.
func TestUnpadRefusesHeaderMembers(t *testing.T) {
	enc := base64.URLEncoding.EncodeToString
	padded := func(header string) string {
		for _, payload := range []string{`{"iss": "a@b"}`, `{"iss": "a@bc"}`, `{"iss": "a@bcd"}`} {
			if raw := enc([]byte(header)) + "." + enc([]byte(payload)) + ".c2ln"; strings.Contains(raw, "=") {
				return raw
			}
		}
		t.Fatalf("no padding for %s", header)
		return ""
	}
	for _, tt := range []struct {
		header string
		want   error
	}{
		{`{"alg": "ES256", "typ": "JWT", "kid": "k1"}`, nil},
		{`{"alg": "RS256"}`, nil},
		{`{"alg": "ES256", "b64": false}`, ErrHeader},
		{`{"alg": "ES256", "b64": true}`, ErrHeader},
		{`{"alg": "ES256", "b64": false, "crit": ["b64"]}`, ErrCritical},
		{`{"alg": "ES256", "jwk": {"kty": "EC"}}`, ErrHeader},
		{`{"alg": "ES256", "x5c": ["MIIB"]}`, ErrHeader},
		{`{"alg": "ES256", "cty": "JWT"}`, ErrHeader},
		{`{"alg": "ES256", "urn:x": 1}`, ErrHeader},
	} {
		t.Run(tt.header, func(t *testing.T) {
			_, s, err := Unpad(padded(tt.header))
			if !errors.Is(err, tt.want) || (err == nil) != (s != nil) {
				t.Fatalf("Unpad = %v, %v; want error %v", s, err, tt.want)
			}
		})
	}
}

// Verify refuses, without panicking, what is not a usable key.
func TestVerifyRefusesNoKey(t *testing.T) {
	enc := base64.URLEncoding.EncodeToString
	_, s, err := Unpad(enc([]byte(`{"alg": "ES256"}`)) + "." + enc([]byte(`{"iss": "a@b"}`)) + "." + enc(make([]byte, 64)))
	if err != nil || s == nil {
		t.Fatalf("Unpad = %v, %v", s, err)
	}
	for _, tt := range []struct {
		name string
		s    *Signed
		pub  crypto.PublicKey
		alg  jose.SignatureAlgorithm
	}{
		{"nil key", s, nil, jose.ES256},
		{"nil RSA key", s, (*rsa.PublicKey)(nil), jose.RS256},
		{"empty RSA key", s, &rsa.PublicKey{}, jose.RS256},
		{"nil ECDSA key", s, (*ecdsa.PublicKey)(nil), jose.ES256},
		{"ECDSA key without a point", s, &ecdsa.PublicKey{Curve: elliptic.P256()}, jose.ES256},
		{"ECDSA key without a curve", s, &ecdsa.PublicKey{}, jose.ES256},
		{"nil Signed", nil, &rsa.PublicKey{}, jose.RS256},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Verify(tt.pub, tt.alg); err == nil {
				t.Fatal("Verify succeeded")
			}
		})
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
	f.Add("eyJhbGciOiAiRVMyNTYiLCAiYjY0IjogZmFsc2V9.eyJpc3MiOiAiYUBiIn0=.c2ln") // b64 false
	f.Add("eyJhbGciOiAiRVMyNTYiLCAidHlwIjogIkpXVCIsICJraWQiOiAiazEifQ==.e30=.c2ln")
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
		// The header has only what the padded path understands.
		hb, err := base64.URLEncoding.DecodeString(raw[:strings.IndexByte(raw, '.')])
		if err != nil {
			t.Fatalf("Unpad(%q) accepted a header that is not padded base64url", raw)
		}
		var header map[string]json.RawMessage
		if err := json.Unmarshal(hb, &header); err != nil {
			t.Fatalf("Unpad(%q) accepted a header that is not an object", raw)
		}
		for k := range header {
			if k != "alg" && k != "typ" && k != "kid" {
				t.Fatalf("Unpad(%q) accepted header member %q", raw, k)
			}
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if s.Verify(&key.PublicKey, jose.ES256) == nil {
			t.Fatalf("a fresh key verifies %q", raw)
		}
		for _, pub := range []crypto.PublicKey{nil, (*rsa.PublicKey)(nil), &rsa.PublicKey{}, (*ecdsa.PublicKey)(nil), &ecdsa.PublicKey{}} {
			for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
				if s.Verify(pub, alg) == nil {
					t.Fatalf("%T verifies %q", pub, raw)
				}
			}
		}
	})
}
