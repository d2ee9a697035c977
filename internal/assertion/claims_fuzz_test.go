package assertion

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzSignedClaims: the claims of a JWT-bearer assertion, or of a
// private_key_jwt client assertion, are written whole by whoever holds
// one of the account's keys. Whatever they are, in a JWS signed with the
// account's genuine key, Parse and Verify never panic, refuse with an
// *Error, and let one pass only if a plain reading of the claims
// (encoding/json, names as written) agrees with Claims and with the
// rules: aud names this server, exp is not past, iat and nbf are not
// ahead, and exp - iat is within the lifetime allowed.
func FuzzSignedClaims(f *testing.F) {
	k, keys := fixture(f)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		f.Fatal(err)
	}
	n := strconv.FormatInt(now.Unix(), 10)
	h := strconv.FormatInt(now.Unix()+3600, 10)
	for _, c := range []string{
		`{"iss":"a@p","aud":"https://kw/token","iat":` + n + `,"exp":` + h + `}`,
		`{"iss":"a@p","sub":"u@example.com","scope":"a b","aud":["x","https://kw/token"],"iat":` + n + `,"exp":` + h + `,"nbf":` + n + `,"jti":"j"}`,
		`{"iss":"a@p","ISS":"b@p","aud":"https://kw/token","iat":` + n + `,"exp":` + h + `}`,
		`{"iss":"a@p","iss":"b@p","aud":"https://kw/token","iat":` + n + `,"exp":` + h + `}`,
		`{"iss":"a@p","aud":"https://kw/token","iat":"` + n + `","exp":` + h + `}`,
		`{"iss":"a@p","aud":"https://kw/token","iat":` + n + `.9,"exp":` + h + `.9}`,
		`{"iss":"a@p","aud":"https://kw/token","iat":-9.3e18,"exp":` + h + `}`,
		`{"iss":"a@p","aud":"https://kw/token","iat":1e300,"exp":1e300}`,
		`{"iss":"a@p","aud":null,"iat":` + n + `,"exp":` + h + `}`,
		`{"iss":"a\u0000","aud":"https://kw/token","iat":` + n + `,"exp":` + h + `}`,
		`null`, `[]`, `{}`, ``,
	} {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		jws, err := s.Sign(payload)
		if err != nil {
			return
		}
		raw, err := jws.CompactSerialize()
		if err != nil {
			return
		}
		tok, err := Parse(raw)
		if err == nil {
			_, err = tok.Verify(keys, expect)
		}
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Description == "" {
				t.Fatalf("claims %q refused with %v, not an *Error with a description", payload, err)
			}
			return
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("claims %q passed; encoding/json: %v", payload, err)
		}
		c := tok.Claims
		str := func(name string) string { v, _ := m[name].(string); return v }
		if c.Issuer != str("iss") || c.Subject != str("sub") || c.Scope != str("scope") || c.ID != str("jti") {
			t.Fatalf("claims %q read as iss %q sub %q scope %q jti %q", payload, c.Issuer, c.Subject, c.Scope, c.ID)
		}
		var aud []string
		switch v := m["aud"].(type) {
		case string:
			aud = []string{v}
		case []any:
			for _, x := range v {
				s, _ := x.(string)
				aud = append(aud, s)
			}
		}
		if !slices.Equal(aud, c.Audience) || !slices.Contains(aud, "https://kw/token") {
			t.Fatalf("claims %q passed with aud %q", payload, c.Audience)
		}
		num := func(name string) (float64, bool) {
			x, ok := m[name].(json.Number)
			if !ok {
				return 0, false
			}
			v, err := x.Float64()
			return v, err == nil
		}
		iat, okIat := num("iat")
		exp, okExp := num("exp")
		nowS, skew := float64(now.Unix()), expect.Skew.Seconds()
		if !okIat || !okExp || exp+skew <= nowS || iat > nowS+skew || exp-iat < 0 ||
			exp-iat > (expect.MaxLifetime+LifetimeGrace).Seconds()+1 {
			t.Fatalf("claims %q passed: iat %v, exp %v", payload, m["iat"], m["exp"])
		}
		if nbf, ok := m["nbf"]; ok {
			if v, okNbf := num("nbf"); !okNbf && nbf != nil || v > nowS+skew {
				t.Fatalf("claims %q passed with nbf %v", payload, nbf)
			}
		}
		if strings.ContainsRune(c.Issuer+c.Subject+c.Scope+c.ID, 0) {
			t.Fatalf("claims %q passed with a NUL", payload)
		}
	})
}
