package signer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testSigner returns a compact signer for alg, with a new key, and the key.
func testSigner(tb testing.TB, alg string) (*compactSigner, crypto.Signer) {
	tb.Helper()
	key, err := generate(alg)
	if err != nil {
		tb.Fatal(err)
	}
	cs, err := newCompactSigner(alg, "kid-1", "at+jwt", key)
	if err != nil {
		tb.Fatal(err)
	}
	return cs, key
}

// Every token the compact signer writes must be one go-jose (and so any
// RFC 7515 implementation) parses and verifies, with the header it names.
func TestCompactSignerInteroperates(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			cs, key := testSigner(t, alg)
			raw, err := cs.serialize([]byte(`{"sub":"sa-1","scope":"a b"}`))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("go-jose cannot parse %s: %v", raw, err)
			}
			h := tok.Headers[0]
			if h.Algorithm != alg || h.KeyID != "kid-1" || h.ExtraHeaders[jose.HeaderType] != "at+jwt" {
				t.Errorf("header = %+v", h)
			}
			var got claims
			if err := tok.Claims(key.Public(), &got); err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
			if got.Subject != "sa-1" || got.Scope != "a b" {
				t.Errorf("claims = %+v", got)
			}
			// Another key of the same kind must not verify it.
			other, _ := generate(alg)
			if err := tok.Claims(other.Public(), &got); err == nil {
				t.Error("verified with the wrong key")
			}
		})
	}
}

// Signatures depend on the key and the message only: no random source can
// weaken the ES256 nonce (RFC 6979), as none takes part in Ed25519 or
// RS256. (Tokens still differ: each carries its own jti.)
func TestCompactSignerIsDeterministic(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			cs, _ := testSigner(t, alg)
			first, _ := cs.serialize([]byte(`{"jti":"a"}`))
			again, _ := cs.serialize([]byte(`{"jti":"a"}`))
			other, _ := cs.serialize([]byte(`{"jti":"b"}`))
			if first != again {
				t.Errorf("one message, two signatures:\n%s\n%s", first, again)
			}
			if sig := func(s string) string { return s[strings.LastIndexByte(s, '.'):] }; sig(first) == sig(other) {
				t.Error("two messages, one signature")
			}
		})
	}
}

func TestCompactSignerRejectsMismatchedKeys(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		alg string
		key crypto.Signer
	}{
		{"ES256", p384},
		{"ES256", rsaKey},
		{"RS256", p256},
		{"EdDSA", p256},
		{"ES256", edKey},
	} {
		if _, err := newCompactSigner(tc.alg, "k", "at+jwt", tc.key); err == nil {
			t.Errorf("%s with %T: no error", tc.alg, tc.key)
		}
	}
}

// BenchmarkCompactSigner measures signing one access token's worth of
// claims with each algorithm.
func BenchmarkCompactSigner(b *testing.B) {
	payload := []byte(`{"iss":"https://keyward.internal","sub":"919825402279580407165","aud":"https://orders.internal","exp":1764892800,"iat":1764889200,"jti":"q8Jx0cS3kE2m1rJ7fTQvHw","client_id":"919825402279580407165","scope":"orders.read"}`)
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			cs, _ := testSigner(b, alg)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cs.serialize(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestES256FromDER(t *testing.T) {
	seq := func(elems ...any) []byte {
		var body []byte
		for _, e := range elems {
			b, err := asn1.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			body = append(body, b...)
		}
		der, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
		return der
	}
	one, big256 := big.NewInt(1), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	tests := []struct {
		name string
		der  []byte
		want []byte // nil: refused
	}{
		{"short values padded", seq(one, big.NewInt(258)), append(append(make([]byte, 31), 1), append(make([]byte, 30), 1, 2)...)},
		{"256-bit values", seq(big256, big256), bytes.Repeat([]byte{0xff}, 64)},
		{"negative r", seq(big.NewInt(-1), one), nil},
		{"zero s", seq(one, big.NewInt(0)), nil},
		{"257-bit r", seq(new(big.Int).Lsh(one, 256), one), nil},
		{"a third integer", seq(one, one, one), nil},
		{"one integer", seq(one), nil},
		{"trailing bytes", append(seq(one, one), 0), nil},
		{"not DER", []byte("r and s"), nil},
		{"r with a needless leading zero", []byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}, nil},
		{"r with a needless leading 0xff", []byte{0x30, 0x07, 0x02, 0x02, 0xff, 0x80, 0x02, 0x01, 0x01}, nil},
		{"empty r", []byte{0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01}, nil},
		{"a long-form length", []byte{0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, nil},
		{"a sequence length too long", []byte{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, nil},
		{"an integer length too long", []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x02, 0x01}, nil},
		{"s tagged as an octet string", []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x04, 0x01, 0x01}, nil},
		{"a set, not a sequence", []byte{0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		got, err := es256FromDER(tt.der)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%s: accepted, gave %x", tt.name, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got[:], tt.want) {
			t.Errorf("%s: got %x, %v; want %x", tt.name, got, err, tt.want)
		}
	}
}

// es256FromDERByASN1 is es256FromDER as it was written with encoding/asn1,
// the reference FuzzES256FromDER holds the hand-written reader to.
func es256FromDERByASN1(der []byte) ([]byte, bool) {
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 ||
		rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
		return nil, false
	}
	if len(der) != 2+(2+rs.R.BitLen()/8+1)+(2+rs.S.BitLen()/8+1) {
		return nil, false
	}
	sig := make([]byte, 64)
	rs.R.FillBytes(sig[:32])
	rs.S.FillBytes(sig[32:])
	return sig, true
}

// FuzzES256FromDER checks that es256FromDER accepts exactly what
// encoding/asn1 reads as a pair of positive integers of at most 256 bits
// with nothing after it, and converts it the same way.
func FuzzES256FromDER(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for range 4 {
		der, err := ecdsa.SignASN1(rand.Reader, key, make([]byte, 32))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, der []byte) {
		got, err := es256FromDER(der)
		want, ok := es256FromDERByASN1(der)
		if (err == nil) != ok || ok && !bytes.Equal(got[:], want) {
			t.Fatalf("es256FromDER(%x) = %x, %v; encoding/asn1 gives %x, %v", der, got, err, want, ok)
		}
	})
}

// An ES256 token's signature allocates nothing beyond what the ECDSA
// signature does: the JWS form of it is read from the DER onto the stack
// and encoded into the token. Every ES256 token the server signs is.
func TestES256SignAllocs(t *testing.T) {
	cs, key := testSigner(t, "ES256")
	input := []byte("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2tleXdhcmQuaW50ZXJuYWwifQ")
	d := sha256.Sum256(input)
	ecdsaAlone := testing.AllocsPerRun(100, func() {
		if _, err := key.Sign(nil, d[:], crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	})
	out := make([]byte, 0, 128)
	signing := testing.AllocsPerRun(100, func() {
		if _, err := cs.sign(out, input); err != nil {
			t.Fatal(err)
		}
	})
	if n := signing - ecdsaAlone; n != 0 {
		t.Errorf("ES256 signing: %v allocations beyond the ECDSA signature's %v, want 0", n, ecdsaAlone)
	}
}

// TestES256FromDERAllocs pins es256FromDER to no allocation: the
// signature it returns is an array. It runs for every ES256 token the
// server signs.
func TestES256FromDERAllocs(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ecdsa.SignASN1(rand.Reader, key, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := es256FromDER(der); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("es256FromDER: %v allocations, want 0", n)
	}
}

// Serializing an EdDSA token, whose signature allocates only itself,
// allocates the token's bytes and the signature: the token is a string of
// its bytes, not a copy. Every token the server signs is serialized so.
func TestSerializeAllocs(t *testing.T) {
	cs, _ := testSigner(t, "EdDSA")
	payload := []byte(`{"iss":"https://keyward.internal","sub":"919825402279580407165","scope":"orders.read"}`)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := cs.serialize(payload); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("serialize: %v allocations, want 2", n)
	}
}
