package verify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

func TestMiddleware(t *testing.T) {
	k := testkeyward.Start(t)
	v := newVerifier(t, k)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		w.Write([]byte(c.ClientID))
	})
	read := verify.Middleware(v)(verify.RequireScopes("orders.read")(ok))
	write := verify.Middleware(v)(verify.RequireScopes("orders.read", "orders.write")(ok))
	query := verify.Middleware(v, verify.AllowQueryToken())(ok)
	good := k.Sign(t, nil)
	tests := []struct {
		name       string
		h          http.Handler
		target     string
		auth       []string
		wantStatus int
		wantHeader string // fragment of WWW-Authenticate
	}{
		{"ok", read, "/", []string{"Bearer " + good}, 200, ""},
		{"lower-case scheme", read, "/", []string{"bearer " + good}, 200, ""},
		{"no token", read, "/", nil, 401, `Bearer realm="https://orders.internal"`},
		{"basic", read, "/", []string{"Basic YTpi"}, 400, `error="invalid_request"`},
		{"two headers", read, "/", []string{"Bearer " + good, "Bearer " + good}, 400, `error="invalid_request"`},
		{"bad token", read, "/", []string{"Bearer abc"}, 401, `error="invalid_token"`},
		{"insufficient scope", write, "/", []string{"Bearer " + good}, 403, `scope="orders.read orders.write"`},
		{"query token refused by default", read, "/?access_token=" + good, nil, 401, `Bearer realm`},
		{"query token when allowed", query, "/?access_token=" + good, nil, 200, ""},
		{"header and query", query, "/?access_token=" + good, []string{"Bearer " + good}, 400, `error="invalid_request"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			for _, a := range tt.auth {
				r.Header.Add("Authorization", a)
			}
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, tt.wantHeader) {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tt.wantHeader)
			}
			if tt.name == "no token" && strings.Contains(w.Header().Get("WWW-Authenticate"), "error=") {
				t.Fatal("a request without credentials must get a challenge without an error code (RFC 6750 §3.1)")
			}
		})
	}
	t.Run("RequireScopes without Middleware", func(t *testing.T) {
		w := httptest.NewRecorder()
		verify.RequireScopes("x")(ok).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if w.Code != 401 {
			t.Fatalf("%d, want 401", w.Code)
		}
	})
}

// BenchmarkVerifyCold is signature-bound: a new token every time.
// go test ./verify -run '^$' -bench Verify -benchmem
func BenchmarkVerifyCold(b *testing.B) {
	k := testkeyward.Start(b)
	v := newVerifier(b, k)
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = k.Sign(b, func(c *oauth2.AccessClaims) { c.ID = string(rune(i)) + "-" + strings.Repeat("x", i%7) })
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.Verify(ctx, tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWarm is the hot path of a busy API: the same tokens again.
func BenchmarkVerifyWarm(b *testing.B) {
	k := testkeyward.Start(b)
	v := newVerifier(b, k)
	ctx := context.Background()
	tokens := make([]string, 64)
	for i := range tokens {
		tokens[i] = k.Sign(b, func(c *oauth2.AccessClaims) { c.ID = strings.Repeat("y", i+1) })
		v.Verify(ctx, tokens[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Verify(ctx, tokens[i&63]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
