package oauth2

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// A credential with whitespace around it, a secret read from a file with
// its line break or pasted with a space, is still one.
func TestIsCredentialWithWhitespace(t *testing.T) {
	secret := SecretPrefix + strings.Repeat("Zs9", 14) + "x"
	token := OpaqueTokenPrefix + strings.Repeat("Tk4", 14) + "y"
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMTEifQ.c2lnbmF0dXJl"
	for _, s := range []string{secret + "\n", secret + "\r\n", " " + token, jwt + "\t", "\n" + jwt + " "} {
		if !IsCredential(s) {
			t.Errorf("IsCredential(%q) = false, want true", s)
		}
	}
	for _, s := range []string{" kw_billing\n", "orders.prod.job "} {
		if IsCredential(s) {
			t.Errorf("IsCredential(%q) = true, want false", s)
		}
	}
}

func TestShownPath(t *testing.T) {
	secret := SecretPrefix + strings.Repeat("Zs9", 14) + "x"
	token := OpaqueTokenPrefix + strings.Repeat("Tk4", 14) + "y"
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMTEifQ.c2lnbmF0dXJl"
	tests := []struct {
		name, path string
		n          int
		want       string
	}{
		{"plain", "/v1/service-accounts/job@p.iam.test/secrets/0f3a9c1d2b4e5f60/disable", 1024, "/v1/service-accounts/job@p.iam.test/secrets/0f3a9c1d2b4e5f60/disable"},
		{"secret as the secret ID", "/v1/service-accounts/job@p.iam.test/secrets/" + secret + "/disable", 1024, "/v1/service-accounts/job@p.iam.test/secrets/(credential)/disable"},
		{"token at the end", "/v1/service-accounts/x/secrets/" + token, 1024, "/v1/service-accounts/x/secrets/(credential)"},
		{"JWT", "/v1/tokens/" + jwt + "/revoke", 1024, "/v1/tokens/(credential)/revoke"},
		{"cut after", "/a/" + secret, 8, "/a/(cred…"},
		{"token IDs that start like one", "/x/kw_Zq3bH0aXwLm9Pt2cRs/kwat_Zq3bH0aXwLm9Pt2cR/eyJ", 1024, "/x/kw_Zq3bH0aXwLm9Pt2cRs/kwat_Zq3bH0aXwLm9Pt2cR/eyJ"},
		{"a secret cut short", "/x/" + secret[:40], 1024, "/x/" + secret[:40]},
		{"a name", "/v1/apis/kw_billing", 1024, "/v1/apis/kw_billing"},
		{"escaped secret", "/v1/service-accounts/x/secrets/kw%5F" + secret[3:] + "/disable", 1024, "/v1/service-accounts/x/secrets/(credential)/disable"},
		{"escaped token", "/v1/tokens/%6Bwat_" + token[5:], 1024, "/v1/tokens/(credential)"},
		{"escaped name", "/v1/apis/kw%5Fbilling", 1024, "/v1/apis/kw%5Fbilling"},
		// A bad escape in one segment, which fails the whole path's
		// unescaping, does not hide an escaped credential in another.
		{"escaped secret beside a bad escape", "/%zz/kw%5F" + secret[3:], 1024, "/%zz/(credential)"},
		{"cut in an escape, after %", "/a/%2F%2F", 7, "/a/%2F…"},
		{"cut in an escape, after %2", "/a/%2F%2F", 8, "/a/%2F…"},
		{"cut after an escape", "/a/%2F%2F", 6, "/a/%2F…"},
		{"cut in the first escape", "/a/%2F", 4, "/a/…"},
		{"cut in escapes", "/v1/" + strings.Repeat("%2F", 100), 200, "/v1/" + strings.Repeat("%2F", 65) + "…"},
		{"cut in %%", "/a/%%2F", 5, "/a/…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ShownPath(tt.path, tt.n); got != tt.want {
				t.Errorf("ShownPath(%q, %d) = %q, want %q", tt.path, tt.n, got, tt.want)
			}
		})
	}
}

// ShownRequestPath shows a request's path as it came, escapes and all:
// an escaped slash stays one, and an escaped credential is still hidden.
func TestShownRequestPath(t *testing.T) {
	secret := SecretPrefix + strings.Repeat("Zs9", 14) + "x"
	for _, tt := range []struct{ target, want string }{
		{"/v1/apis/a%2Fb", "/v1/apis/a%2Fb"},
		{"/v1/service-accounts/x/secrets/kw%5F" + secret[3:] + "/disable", "/v1/service-accounts/x/secrets/(credential)/disable"},
		{"/v1/" + strings.Repeat("%2F", 100), "/v1/" + strings.Repeat("%2F", 65) + "…"},
	} {
		r := httptest.NewRequest("GET", tt.target, nil)
		if got := ShownRequestPath(r, 200); got != tt.want {
			t.Errorf("ShownRequestPath(%q, 200) = %q, want %q", tt.target, got, tt.want)
		}
	}
}

// A credential inside a longer string, or with its prefix in another
// case, is still one; names that merely start like one are not.
func TestIsCredentialInside(t *testing.T) {
	secret := SecretPrefix + strings.Repeat("Zs9", 14) + "x"
	token := OpaqueTokenPrefix + strings.Repeat("Tk4", 14) + "y"
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMTEifQ.c2lnbmF0dXJl"
	pretty := "ewogICJhbGciOiAiRVMyNTYiCn0.eyJzdWIiOiIxMTEifQ.c2lnbmF0dXJl"
	tests := []struct {
		s    string
		want bool
	}{
		{`"` + secret + `"`, true},
		{"client_secret=" + secret, true},
		{"100000000000000000001:" + secret, true},
		{"req-" + secret, true},
		{"KW_" + secret[3:], true},
		{"Kwat_" + token[5:], true},
		{"Bearer " + token, true},
		{"Bearer " + jwt, true},
		{"DPoP " + jwt + ",", true},
		{pretty, true},
		{"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE", true},
		{"kw_billing", false},
		{"req-" + secret[:40], false},
		{"100000000000000000001", false},
		{"job@shop.iam.test", false},
		{"orders.prod.job", false},
		{"keyed.every.thing", false},
		{"x" + jwt[1:], false},
		{"eyes.on.me@shop.iam.test", false},
		{"/v1/service-accounts/ewan.x.y", false},
	}
	for _, tt := range tests {
		if got := IsCredential(tt.s); got != tt.want {
			t.Errorf("IsCredential(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// BenchmarkIsCredential measures IsCredential on what it is asked about
// on every request: a client ID (21 digits), a client secret given
// where the ID goes, and a client ID as long as one can be (64 KiB)
// that holds no credential.
func BenchmarkIsCredential(b *testing.B) {
	for _, bc := range []struct {
		name string
		s    string
		want bool
	}{
		{"client_id_21", "123456789012345678901", false},
		{"secret_43", SecretPrefix + strings.Repeat("A", 43), true},
		{"long_64KiB", strings.Repeat("client-id.", 64<<10/10), false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if got := IsCredential(bc.s); got != bc.want {
				b.Fatalf("IsCredential(%.20q…) = %v, want %v", bc.s, got, bc.want)
			}
			b.SetBytes(int64(len(bc.s)))
			for i := 0; i < b.N; i++ {
				IsCredential(bc.s)
			}
		})
	}
}
