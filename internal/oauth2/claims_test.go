package oauth2_test

import (
	"crypto/x509"
	"encoding/json"
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/oauth2"
)

// referenceClaims is AccessClaims with plain types only, so that
// json.Marshal of it is independent of the code under test (Audience's
// MarshalJSON writes with jsonappend too).
type referenceClaims struct {
	Issuer       string               `json:"iss"`
	Subject      string               `json:"sub"`
	Audience     any                  `json:"aud"`
	ClientID     string               `json:"client_id"`
	IssuedAt     int64                `json:"iat"`
	NotBefore    int64                `json:"nbf,omitempty"`
	Expiry       int64                `json:"exp"`
	ID           string               `json:"jti"`
	Scope        string               `json:"scope,omitempty"`
	ClientEmail  string               `json:"client_email,omitempty"`
	Actor        *oauth2.Actor        `json:"act,omitempty"`
	Confirmation *oauth2.Confirmation `json:"cnf,omitempty"`
	Credential   string               `json:"cred,omitempty"`
}

// referenceAudience is aud as RFC 7519 §4.1.3 allows it: one value as a
// string, otherwise an array.
func referenceAudience(a oauth2.Audience) any {
	if len(a) == 1 {
		return a[0]
	}
	return []string(a)
}

// claimsJSON checks AppendJSON against json.Marshal of the same claims in
// plain types.
func claimsJSON(t testing.TB, c oauth2.AccessClaims) {
	t.Helper()
	want, err := json.Marshal(referenceClaims{c.Issuer, c.Subject, referenceAudience(c.Audience), c.ClientID, c.IssuedAt, c.NotBefore,
		c.Expiry, c.ID, c.Scope, c.ClientEmail, c.Actor, c.Confirmation, c.Credential})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AppendJSON(nil); string(got) != string(want) {
		t.Fatalf("AppendJSON = %s\njson.Marshal = %s", got, want)
	}
}

func TestAccessClaimsAppendJSON(t *testing.T) {
	full := oauth2.AccessClaims{
		Issuer: "https://keyward.example", Subject: "100000000000000000001", Audience: oauth2.Audience{"https://orders.internal"},
		ClientID: "100000000000000000001", IssuedAt: 1764500000, NotBefore: 1764500000, Expiry: 1764503600, ID: "3f2a",
		Scope: "orders.read orders.write", ClientEmail: "job@shop.iam.example",
		Actor:        &oauth2.Actor{Subject: "100000000000000000002", ClientEmail: "admin@shop.iam.example"},
		Confirmation: &oauth2.Confirmation{X5TS256: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
		Credential:   "key:7c1e",
	}
	tests := map[string]func(c *oauth2.AccessClaims){
		"full":              func(c *oauth2.AccessClaims) {},
		"zero":              func(c *oauth2.AccessClaims) { *c = oauth2.AccessClaims{} },
		"several audiences": func(c *oauth2.AccessClaims) { c.Audience = oauth2.Audience{"a", "b<c>"} },
		"empty audience":    func(c *oauth2.AccessClaims) { c.Audience = oauth2.Audience{} },
		"no optional claims": func(c *oauth2.AccessClaims) {
			c.NotBefore, c.Scope, c.ClientEmail, c.Actor, c.Confirmation, c.Credential = 0, "", "", nil, nil, ""
		},
		"actor without email": func(c *oauth2.AccessClaims) {
			c.Actor = &oauth2.Actor{Subject: "1"}
		},
		"empty confirmation": func(c *oauth2.AccessClaims) { c.Confirmation = &oauth2.Confirmation{} },
		"jkt":                func(c *oauth2.AccessClaims) { c.Confirmation = &oauth2.Confirmation{JKT: "abc"} },
		"escapes":            func(c *oauth2.AccessClaims) { c.Subject, c.Scope = "a\"b\\c\n\u2028", "x&y \xff" },
		"negative times":     func(c *oauth2.AccessClaims) { c.IssuedAt, c.Expiry = -1, -9223372036854775808 },
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			c := full
			mod(&c)
			claimsJSON(t, c)
		})
	}
}

func FuzzAccessClaimsAppendJSON(f *testing.F) {
	f.Add("iss", "sub", "aud", "", "jti", "scope", "email", "act", "x5t", int64(1), int64(2), uint8(0xff))
	f.Add("", "", "", "", "", "", "", "", "", int64(0), int64(0), uint8(0))
	f.Fuzz(func(t *testing.T, iss, sub, aud1, aud2, jti, scope, email, act, x5t string, iat, exp int64, set uint8) {
		c := oauth2.AccessClaims{Issuer: iss, Subject: sub, ClientID: sub, IssuedAt: iat, Expiry: exp, ID: jti, Scope: scope, Credential: x5t}
		if set&1 != 0 {
			c.Audience = oauth2.Audience{aud1}
		}
		if set&2 != 0 {
			c.Audience = append(c.Audience, aud2)
		}
		if set&4 != 0 {
			c.NotBefore = iat
		}
		if set&8 != 0 {
			c.ClientEmail = email
		}
		if set&16 != 0 {
			c.Actor = &oauth2.Actor{Subject: act, ClientEmail: email}
		}
		if set&32 != 0 {
			c.Confirmation = &oauth2.Confirmation{X5TS256: x5t, JKT: act}
		}
		claimsJSON(t, c)
	})
}

// BenchmarkAccessClaimsJSON compares AppendJSON with json.Marshal on the
// claims of a client-credentials token.
func BenchmarkAccessClaimsJSON(b *testing.B) {
	c := oauth2.AccessClaims{
		Issuer: "https://keyward.example", Subject: "100000000000000000001", Audience: oauth2.Audience{"https://orders.internal"},
		ClientID: "100000000000000000001", IssuedAt: 1764500000, Expiry: 1764503600, ID: "b0c6d7a35c1f4e0e9a3f1d2c",
		Scope: "orders.read", ClientEmail: "job@shop.iam.example", Credential: "secret:7c1e2f",
	}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = c.AppendJSON(buf[:0])
		}
	})
}

// TestThumbprint: x5t#S256 is the unpadded base64url SHA-256 of the DER
// (RFC 8705 §3.1); here of "abc", whose SHA-256 is FIPS 180-2's example.
func TestThumbprint(t *testing.T) {
	if got, want := oauth2.Thumbprint(&x509.Certificate{Raw: []byte("abc")}), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"; got != want {
		t.Fatalf("Thumbprint = %q, want %q", got, want)
	}
}

// referenceUnmarshalAudience is what Audience.UnmarshalJSON makes of b,
// through json.Unmarshal alone.
func referenceUnmarshalAudience(b []byte) (oauth2.Audience, error) {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return oauth2.Audience{s}, nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	return l, nil
}

// checkUnmarshalAudience checks Audience.UnmarshalJSON of b against
// json.Unmarshal's reading.
func checkUnmarshalAudience(t *testing.T, b []byte) {
	t.Helper()
	var got oauth2.Audience
	err := got.UnmarshalJSON(b)
	want, wantErr := referenceUnmarshalAudience(b)
	if (err != nil) != (wantErr != nil) || !slices.Equal(got, want) {
		t.Errorf("UnmarshalJSON(%q) = %q, %v; want %q, %v", b, got, err, want, wantErr)
	}
}

var audienceJSON = []string{
	`"https://kw.example/token"`, `""`, `"a b"`, `"é€𝄞"`, `"\u00e9"`, `"a\"b"`, `"a\\b"`, `"a\/b"`, `"a\nb"`,
	"\"a\tb\"", "\"a\x00b\"", "\"\xff\"", "\"\xed\xa0\x80\"", `"`, `"a`, `a"`, `null`, `1`, `["a","b"]`, `[]`,
	` "a"`, `"a" `, `"a""b"`, `"a"b"`,
}

func TestAudienceUnmarshalJSON(t *testing.T) {
	for _, b := range audienceJSON {
		checkUnmarshalAudience(t, []byte(b))
	}
	// A plain string, as an aud mostly is, costs the string and the
	// Audience holding it.
	b := []byte(`"https://keyward.example/token"`)
	var a oauth2.Audience
	if n := testing.AllocsPerRun(100, func() { a.UnmarshalJSON(b) }); n > 2 {
		t.Errorf("UnmarshalJSON of a plain string: %v allocations, want 2", n)
	}
}

func FuzzAudienceUnmarshalJSON(f *testing.F) {
	for _, b := range audienceJSON {
		f.Add([]byte(b))
	}
	f.Fuzz(checkUnmarshalAudience)
}
