package admin_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// FuzzAdminAuthorization sends GET /v1/whoami with arbitrary Authorization
// headers, once or twice, and requires that the request passes exactly
// when its one header is "Bearer" (any case) and an administrator's token,
// apart from spaces and tabs around the token (RFC 6750 §2.1, RFC 7235
// §2.1), but no other white space; that every refusal is a JSON error
// below 500; and that every 401 carries a Bearer challenge whose quoted
// strings a client can read (RFC 6750 §3, RFC 9110 §11.2). In an input,
// $TOKEN stands for the administrator's access token.
func FuzzAdminAuthorization(f *testing.F) {
	for _, seed := range []struct {
		authz string
		twice bool
	}{
		{"Bearer $TOKEN", false},
		{"bearer   $TOKEN", false},
		{"BEARER $TOKEN", true},
		{"Bearer $TOKEN x", false},
		{"Bearer\t$TOKEN", false},
		{"Bearer", false},
		{"Bearer \t $TOKEN", false},
		{"Basic YWRtaW46eA==", false},
		{"DPoP $TOKEN", false},
		{"Bearer kwat_" + strings.Repeat("A", 43), false},
		{"Bearer a.b.c", false},
		{"Bearer $TOKENx", false},
		{"Bearer \u00a0$TOKEN", false},
		{"Bearer $TOKEN\u2003", false},
	} {
		f.Add(seed.authz, seed.twice)
	}
	fx := newFixture(f)
	good := fx.token(f, fx.admin, admin.AdminScope, nil)
	// Each request from an address of its own: refusals from one address
	// are throttled to 429 after a few, which would hide the rest.
	var source atomic.Uint32
	f.Fuzz(func(t *testing.T, authz string, twice bool) {
		authz = strings.Replace(authz, "$TOKEN", good, 1)
		if !headerValue(authz) {
			return // not a header net/http would deliver
		}
		r := httptest.NewRequest(http.MethodGet, "/v1/whoami", nil)
		n := source.Add(1)
		r.RemoteAddr = netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}).String() + ":1"
		if authz != "" {
			r.Header.Add("Authorization", authz)
			if twice {
				r.Header.Add("Authorization", authz)
			}
		}
		w := httptest.NewRecorder()
		fx.srv.ServeHTTP(w, r)
		scheme, tok, _ := strings.Cut(authz, " ")
		pass := !twice && strings.EqualFold(scheme, "Bearer") && strings.Trim(tok, " \t") == good
		t.Logf("%q twice=%v → %d %.160s", authz, twice, w.Code, w.Body)
		switch {
		case w.Code >= 500:
			t.Fatalf("%q (twice %v): %d %s", authz, twice, w.Code, w.Body)
		case (w.Code == http.StatusOK) != pass:
			t.Fatalf("%q (twice %v): %d %s, want it to pass: %v", authz, twice, w.Code, w.Body, pass)
		case w.Code == http.StatusOK:
		case !strings.Contains(w.Body.String(), `"error"`) || !strings.Contains(w.Body.String(), `"error_description"`):
			t.Fatalf("%q (twice %v): %d %s, not an RFC 6749 §5.2 error", authz, twice, w.Code, w.Body)
		case w.Code == http.StatusUnauthorized:
			c := w.Header().Values("WWW-Authenticate")
			if len(c) != 1 || !strings.HasPrefix(c[0], "Bearer") || !challengeReadable(c[0]) {
				t.Fatalf("%q (twice %v): 401 with challenge %q", authz, twice, c)
			}
		}
	})
}

// headerValue reports whether net/http would deliver v as a header
// value: no control characters but tab, and no leading or trailing
// whitespace, which it trims.
func headerValue(v string) bool {
	return v == strings.Trim(v, " \t") && !strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f })
}

// challengeReadable reports whether c's quotes pair up, with no quote or
// backslash escaped inside them (RFC 6750 §3 leaves error_description
// without them), and no control character anywhere.
func challengeReadable(c string) bool {
	return strings.Count(c, `"`)%2 == 0 && !strings.Contains(c, `\`) &&
		!strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
