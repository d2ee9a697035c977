package verify_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestAccessTokenTyp: a JWT access token is accepted only with the typ
// RFC 9068 §4 names, at+jwt or application/at+jwt (a media type, in any
// case: RFC 7515 §4.1.9); any other typ, or none, is refused, so that
// another JWT of the issuer's keys (an ID token, a signed document) is
// never taken for an access token. Each token is otherwise good.
func TestAccessTokenTyp(t *testing.T) {
	s := newStubIssuer(t, false, nil)
	ctx, v := s.running(t)
	tests := []struct {
		name string
		typ  any // nil leaves typ out of the header
		ok   bool
	}{
		{"at+jwt", "at+jwt", true},
		{"application/at+jwt", "application/at+jwt", true},
		{"upper case", "AT+JWT", true},
		{"mixed-case media type", "Application/At+Jwt", true},
		{"no typ", nil, false},
		{"empty typ", "", false},
		{"JWT", "JWT", false},
		{"application/jwt", "application/jwt", false},
		{"another +jwt type", "secevent+jwt", false},
		{"at+jwt with a space", "at+jwt ", false},
		{"at+jwt with a parameter", "application/at+jwt; charset=utf-8", false},
		{"typ not a string", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := (&jose.SignerOptions{}).WithHeader("kid", "k1")
			if tt.typ != nil {
				opts = opts.WithHeader(jose.HeaderType, tt.typ)
			}
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.keys["k1"].Key}, opts)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			raw, err := jwt.Signed(signer).Claims(map[string]any{"iss": stubIssuerURL, "sub": "1", "client_id": "1", "aud": stubAudience,
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text()}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(ctx, raw)
			if tt.ok {
				if err != nil {
					t.Fatalf("typ %v refused: %v", tt.typ, err)
				}
				return
			}
			wantInvalid(t, err, "typ is not at+jwt")
		})
	}
}
