package oauth2

import "testing"

func TestIsAssertionAudience(t *testing.T) {
	const issuer = "https://keyward.example.com"
	for _, tt := range []struct {
		aud  string
		want bool
	}{
		{"https://keyward.example.com", true},
		{"https://keyward.example.com/", true},
		{"https://keyward.example.com/token", true},
		{"https://keyward.example.com/token/", true},
		{"HTTPS://Keyward.Example.COM/token", true},
		{"https://keyward.example.com:443/token", true},
		{"https://keyward.example.com//", true},
		{"https://keyward.example.com/Token", false}, // paths are case-sensitive
		{"https://keyward.example.com:8443/token", false},
		{"http://keyward.example.com/token", false},
		{"https://keyward.example.com/token?x=1", false},
		{"https://keyward.example.com/introspect", false},
		{"https://keyward.example.com/orders", false},
		{"https://orders.internal", false},
		{"https://user@keyward.example.com/token", false},
		{"urn:keyward:admin", false},
		{"keyward.example.com/token", false},
		{"", false},
	} {
		if got := IsAssertionAudience(tt.aud, issuer); got != tt.want {
			t.Errorf("IsAssertionAudience(%q, %q) = %v, want %v", tt.aud, issuer, got, tt.want)
		}
	}
	// An issuer with a path, a port, or given with a trailing slash.
	for _, tt := range []struct{ aud, issuer string }{
		{"https://example.com/keyward/token", "https://example.com/keyward"},
		{"http://127.0.0.1:8080/token", "http://127.0.0.1:8080"},
		{"http://[::1]:8080/token/", "http://[::1]:8080"},
		{"https://keyward.example.com/token", "https://keyward.example.com/"},
	} {
		if !IsAssertionAudience(tt.aud, tt.issuer) {
			t.Errorf("IsAssertionAudience(%q, %q) = false, want true", tt.aud, tt.issuer)
		}
	}
	if IsAssertionAudience("https://example.com/token", "") {
		t.Error("an empty issuer names no server")
	}
}
