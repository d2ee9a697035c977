package verify_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/verify"
)

// FuzzSelfSignedClaims: a service account's self-signed JWT is written
// whole by whoever holds one of its keys, and Verify reads its claims
// before it checks the signature. Whatever the claims of a JWT signed
// with the account's genuine key, Verify never panics, refuses with a
// *verify.Error, and lets one pass only if a plain reading of them
// (encoding/json, names as written) agrees: iss and sub the account, aud
// this API, numeric iat and exp at most an hour apart, exp not past.
func FuzzSelfSignedClaims(f *testing.F) {
	tk := newFuzzTokens(f)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: "e1", Algorithm: string(jose.ES256), Use: "sig"}
	accountJWKS, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}})
	if err != nil {
		f.Fatal(err)
	}
	docs := map[string][]byte{
		"/.well-known/oauth-authorization-server": tk.metadata,
		"/jwks": tk.jwks,
		"/service_accounts/v1/jwk/" + fuzzAccount:      accountJWKS,
		"/service_accounts/v1/jwk/job%40shop.iam.test": accountJWKS,
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	v, err := verify.New(ctx, fuzzIssuer, fuzzAud, verify.WithHTTPClient(memoryClient(docs, 0, nil)),
		verify.WithSelfSignedJWTs(), verify.WithClock(func() time.Time { return fuzzNow }))
	if err != nil {
		f.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "e1"))
	if err != nil {
		f.Fatal(err)
	}
	now := fuzzNow.Unix()
	for _, s := range []string{
		`{"iss":"job@shop.iam.test","sub":"job@shop.iam.test","aud":"https://orders.internal","iat":NOW,"exp":HOUR}`,
		`{"iss":"job@shop.iam.test","sub":"job@shop.iam.test","aud":["https://orders.internal/"],"iat":NOW,"exp":HOUR,"nbf":NOW}`,
		`{"iss":"job@shop.iam.test","sub":"job@shop.iam.test","aud":"https://orders.internal","iat":NOW,"exp":HOUR,"ISS":"x"}`,
		`{"iss":"job@shop.iam.test","iss":"job@shop.iam.test","sub":"job@shop.iam.test","aud":"https://orders.internal","iat":NOW,"exp":HOUR}`,
		`{"iss":"job@shop.iam.test","sub":"job@shop.iam.test","aud":"https://orders.internal","iat":"NOW","exp":HOUR}`,
		`{"iss":"job@shop.iam.test","sub":"job@shop.iam.test","aud":"https://orders.internal","iat":NOW.5,"exp":HOUR.5}`,
		`{"iss":"job@shop.iam.test","sub":"job@shop.iam.test","aud":"https://orders.internal","iat":-9.3e18,"exp":-9.3e18}`,
		`{"iss":"job@shop.iam.test","sub":"job@shop.iam.test","aud":"https://orders.internal","iat":1e300,"exp":1e300}`,
		`{"iss":"job@shop.iam.test","sub":"job@shop.iam.test","aud":["https://orders.internal","x"],"iat":NOW,"exp":HOUR}`,
		`{"iss":"a@b","sub":"a@b","aud":"https://orders.internal","iat":NOW,"exp":HOUR}`,
		`null`, `[]`, `{}`, ``,
	} {
		s = string(bytes.ReplaceAll([]byte(s), []byte("NOW"), []byte(jsonNum(now))))
		s = string(bytes.ReplaceAll([]byte(s), []byte("HOUR"), []byte(jsonNum(now+3600))))
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		jws, err := signer.Sign(payload)
		if err != nil {
			return
		}
		raw, err := jws.CompactSerialize()
		if err != nil {
			return
		}
		c, err := v.Verify(ctx, raw)
		if err != nil {
			if _, ok := errors.AsType[*verify.Error](err); !ok {
				t.Fatalf("Verify's error %T (%v) is not a *verify.Error", err, err)
			}
			return
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("claims %q passed as %+v; encoding/json: %v", payload, c, err)
		}
		iss, _ := m["iss"].(string)
		sub, _ := m["sub"].(string)
		aud := m["aud"]
		if list, ok := aud.([]any); ok && len(list) == 1 {
			aud = list[0]
		}
		audOK := aud == fuzzAud || aud == fuzzAud+"/"
		iat, errIat := numberOf(m["iat"])
		exp, errExp := numberOf(m["exp"])
		if !c.SelfSigned || iss != fuzzAccount || sub != fuzzAccount || !audOK || errIat != nil || errExp != nil ||
			!(exp-iat > 0 && exp-iat <= 3600) || float64(now) >= exp+30 ||
			c.IssuedAt.Unix() != int64(iat) || c.Expiry.Unix() != int64(exp) {
			t.Fatalf("claims %q passed as %+v", payload, c)
		}
	})
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

// numberOf is a JSON number's value, and an error for anything else.
func numberOf(v any) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, errors.New("not a number")
	}
	return n.Float64()
}
