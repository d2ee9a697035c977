package oauth2

import (
	"strings"
	"testing"
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
		if got := NamesAPI(tt.aud, tt.id); got != tt.want {
			t.Errorf("NamesAPI(aud %q, identifier %q) = %t, want %t", tt.aud, tt.id, got, tt.want)
		}
	}
}

// NamesAPI compares an aud the caller chose: whatever it is, the
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
		got := NamesAPI(aud, id)
		if got != NamesAPI(id, aud) {
			t.Fatalf("NamesAPI(%q, %q) = %t, not so the other way round", aud, id, got)
		}
		if got && aud != id && !equalFoldASCII(strings.TrimSuffix(aud, "/"), strings.TrimSuffix(id, "/")) {
			t.Fatalf("NamesAPI(%q, %q) = true: they differ beyond case and a trailing slash", aud, id)
		}
		if (APIKey(aud) == APIKey(id)) != got {
			t.Fatalf("NamesAPI(%q, %q) = %t, but their keys %q and %q (by which the admin API refuses an API another names) say otherwise", aud, id, got, APIKey(aud), APIKey(id))
		}
		if !NamesAPI(id, id) {
			t.Fatalf("NamesAPI(%q, itself) = false", id)
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
