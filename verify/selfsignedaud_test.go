package verify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// A self-signed JWT's aud names the API by its identifier, with or without
// one trailing slash and with the scheme and host in any case: Google's
// clients send "https://{host}/" for an API registered without the slash.
// Nothing else is loosened.
func TestNamesAPI(t *testing.T) {
	for _, tt := range []struct {
		id, aud string
		want    bool
	}{
		{"https://orders.internal", "https://orders.internal", true},
		{"https://orders.internal", "https://orders.internal/", true},
		{"https://orders.internal/", "https://orders.internal", true},
		{"https://orders.internal/", "https://orders.internal/", true},
		{"https://orders.internal", "HTTPS://Orders.Internal/", true},
		{"https://Orders.Internal", "https://orders.internal", true},
		{"https://orders.internal/v1", "https://orders.internal/v1/", true},
		{"https://orders.internal/v1/", "https://ORDERS.internal/v1", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/", true},
		{"http://[::1]:8080", "http://[::1]:8080/", true},
		{"orders-api", "orders-api", true},

		{"https://orders.internal", "https://orders.internal//", false},
		{"https://orders.internal/", "https://orders.internal//", false},
		{"https://orders.internal", "https://orders.internal/orders", false}, // no prefix
		{"https://orders.internal/v1", "https://orders.internal/V1", false},  // paths are case-sensitive
		{"https://orders.internal/v1", "https://orders.internal/v1/x", false},
		{"https://orders.internal", "https://orders.internal:443/", false},
		{"https://orders.internal", "https://orders.internal:8443/", false},
		{"http://127.0.0.1:8080", "http://127.0.0.1/", false},
		{"https://orders.internal", "http://orders.internal/", false},
		{"https://orders.internal", "https://orders.internal.evil/", false},
		{"https://orders.internal", "https://orders.internal/?", false},
		{"https://orders.internal", "https://orders.internal/#", false},
		{"https://orders.internal?x=1", "https://orders.internal/?x=1", false},
		{"https://orders.internal/?x=1", "https://orders.internal?x=1", false},
		{"https://orders.internal", "https://user@orders.internal/", false},
		{"https://orders.internal", "orders.internal/", false},
		{"https://orders.internal", "", false},
		{"orders-api", "orders-api/", false}, // not a URL: exactly
		{"orders-api", "ORDERS-API", false},
		{"urn:orders", "urn:orders/", false},
		{"urn:orders", "URN:orders", false},

		// Attacks: another API's identifier must not be named.
		{"https://inventory.example", "https://\u0130nventory.example/", false}, // İ is no capital I
		{"https://keys.example", "https://\u212Aeys.example/", false},           // the Kelvin sign is no K
		{"https://bücher.example", "https://xn--bcher-kva.example/", false},     // no IDNA mapping
		{"https://xn--bcher-kva.example", "https://bücher.example/", false},
		{"https://orders.internal", "HTTPS://ORDERS.internal./", false}, // a final dot is another name
		{"https://orders.internal", "https://orders.internal.", false},
		{"https://orders.internal", "https://orders.internal@evil/", false},
		{"https://evil", "https://orders.internal@evil/", false},
		{"https://orders.internal", "https://evil\\@orders.internal/", false},
		{"https://orders.internal", "https:\\\\orders.internal\\", false},
		{"https://orders.internal", "https://orders.internal\\", false},
		{"https://orders.internal/", "https://orders.internal%2F", false},
		{"https://orders.internal/v1", "https://orders.internal/v1%2F", false},
		{"https://orders.internal/v1", "https://orders.internal/v1%2f", false},
		{"https://orders.internal/a/b", "https://orders.internal/a%2Fb", false},
		{"https://orders.internal/%7Ev1", "https://orders.internal/~v1", false},
		{"https://orders.internal", "https://orders.internal:/", false},
		{"https://orders.internal:8443", "https://orders.internal:8444/", false},
		{"https://orders.internal/v1", "https://orders.internal//v1", false},
		{"https://orders.internal/v1", "https://orders.internal/v1//", false},
		{"https://orders.internal", "https:///orders.internal/", false},
		{"https://orders.internal", "https:/orders.internal/", false},
		{"https://orders.internal", "https://orders.internal/.", false},
		{"https://orders.internal/v1", "https://orders.internal/v1/.", false},
		{"https://orders.internal/v1", "https://orders.internal/v2/../v1", false},
		{"https://orders.internal", " https://orders.internal/", false},
		{"https://orders.internal", "https://orders.internal/ ", false},
	} {
		if got := verify.NamesAPI(tt.aud, tt.id); got != tt.want {
			t.Errorf("namesAPI(aud %q, identifier %q) = %t, want %t", tt.aud, tt.id, got, tt.want)
		}
	}
}

// Through Verify: an API identified as https://orders.internal accepts the
// self-signed JWTs Google's clients make for it, aud https://orders.internal/
// among them, and still refuses one for a path under it or another port.
func TestSelfSignedJWTAudienceSlash(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	ctx := context.Background()
	sign, _, _ := selfSignedKey(t, k)
	v := newVerifier(t, k, verify.WithSelfSignedJWTs())
	for _, tt := range []struct {
		aud  string
		want bool
	}{
		{"https://orders.internal", true},
		{"https://orders.internal/", true},
		{"https://ORDERS.internal/", true},
		{"https://orders.internal//", false},
		{"https://orders.internal/orders", false},
		{"https://orders.internal:8443/", false},
	} {
		t.Run(tt.aud, func(t *testing.T) {
			c, err := v.Verify(ctx, sign("job@shop.iam.test", time.Hour, tt.aud))
			if !tt.want {
				wantInvalid(t, err, "aud must be this API")
				return
			}
			if err != nil || !c.SelfSigned || len(c.Audience) != 1 || c.Audience[0] != tt.aud {
				t.Fatalf("claims = %+v, %v; want the JWT's own aud %q", c, err, tt.aud)
			}
		})
	}
	// Access tokens carry the identifier as Keyward has it registered: for
	// them aud is not loosened.
	if _, err := v.Verify(ctx, k.Sign(t, nil)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(ctx, k.Sign(t, func(c *oauth2.AccessClaims) { c.Audience = oauth2.Audience{"https://orders.internal/"} }))
	wantInvalid(t, err, "not for this API")
}

// namesAPI compares an aud the caller chose: whatever it is, the
// comparison is symmetric, and it accepts only the identifier itself or
// one differing in letter case and at most one trailing slash.
func FuzzNamesAPI(f *testing.F) {
	for _, s := range [][2]string{
		{"https://orders.internal/", "https://orders.internal"},
		{"HTTP://[::1]:80/a/", "http://[::1]:80/a"},
		{"https://u@h/", "https://u@h"},
		{"https://h/?", "https://h"},
		{"urn:x/", "urn:x"},
		{"https://\u0130.example", "https://i.example"},
		{"https://\u212A.example", "https://k.example"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, aud, id string) {
		got := verify.NamesAPI(aud, id)
		if got != verify.NamesAPI(id, aud) {
			t.Fatalf("namesAPI(%q, %q) = %t, not so the other way round", aud, id, got)
		}
		if got && aud != id && !equalFoldASCII(strings.TrimSuffix(aud, "/"), strings.TrimSuffix(id, "/")) {
			t.Fatalf("namesAPI(%q, %q) = true: they differ beyond case and a trailing slash", aud, id)
		}
		if (oauth2.APIKey(aud) == oauth2.APIKey(id)) != got {
			t.Fatalf("namesAPI(%q, %q) = %t, but their keys %q and %q (by which the admin API refuses an API another names) say otherwise", aud, id, got, oauth2.APIKey(aud), oauth2.APIKey(id))
		}
		if !verify.NamesAPI(id, id) {
			t.Fatalf("namesAPI(%q, itself) = false", id)
		}
	})
}

// equalFoldASCII reports whether a and b are equal but for the case of
// ASCII letters: no other letter of a host is case-insensitive (RFC 3986
// §6.2.2.1), as strings.EqualFold would have the Kelvin sign and k.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
