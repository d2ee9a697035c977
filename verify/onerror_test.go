package verify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// errLog is an OnError that keeps the errors it is given.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) onError(_ *http.Request, err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errLog) take() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := l.errs
	l.errs = nil
	return errs
}

// wantLogged fails unless log holds exactly one error, a *verify.Error
// with code.
func wantLogged(t *testing.T, log *errLog, code string) {
	t.Helper()
	errs := log.take()
	var ve *verify.Error
	if len(errs) != 1 || !errors.As(errs[0], &ve) || ve.Code != code {
		t.Fatalf("OnError got %v, want one %s", errs, code)
	}
}

// TestOnErrorSeesInsufficientScope: a request RequireScopes refuses (403)
// reaches Middleware's OnError too, so an API that logs its refusals there
// sees why a caller is refused for want of a scope, not only for a bad
// token.
func TestOnErrorSeesInsufficientScope(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	v := newVerifier(t, k)
	var log errLog
	h := verify.Middleware(v, verify.OnError(log.onError))(verify.RequireScopes("orders.write")(http.NotFoundHandler()))
	req := httptest.NewRequest("GET", "/v1/orders", nil)
	req.Header.Set("Authorization", "Bearer "+k.Sign(t, nil)) // orders.read only
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("status %d, want 403", rec.Code)
	}
	wantLogged(t, &log, "insufficient_scope")
}

// TestOnErrorMutationStaysPut: an OnError that changes the Error it is
// given changes it for that call alone. Shared refusals (a request without
// a token, a DPoP-bound token sent as a bearer token, several
// access_token parameters, a replayed proof, an inactive token the
// introspection cache remembers) used to be one *Error for every request:
// the next request saw the change, and concurrent ones raced (-race).
func TestOnErrorMutationStaysPut(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, apiID, apiSecret := k.Setup(t, "jwt")
	v := newVerifier(t, k, verify.WithIntrospection(apiID, apiSecret))
	bound := k.Sign(t, func(c *oauth2.AccessClaims) { c.Confirmation = &oauth2.Confirmation{JKT: "dpop-key-thumbprint"} })
	p := dpoptest.NewProver(t)
	dpopTok := dpopToken(t, k, p, id, secret, "orders.read")
	proof, err := p.Proof("GET", "http://api.test/orders", dpopTok, k.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	unknown := oauth2.OpaqueTokenPrefix + strings.Repeat("A", 43)

	tests := []struct {
		name   string
		target string
		header http.Header
	}{
		{"no token", "/orders", nil},
		{"bound token as bearer", "/orders", http.Header{"Authorization": {"Bearer " + bound}}},
		{"several access_token", "/orders?access_token=a&access_token=b", nil},
		{"replayed proof", "/orders", http.Header{"Authorization": {"DPoP " + dpopTok}, "Dpop": {proof}}},
		{"inactive opaque token", "/orders", http.Header{"Authorization": {"Bearer " + unknown}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu   sync.Mutex
				seen []string
			)
			mutate := func(_ *http.Request, err error) {
				var e *verify.Error
				if !errors.As(err, &e) {
					t.Errorf("OnError got %T %v, want a *verify.Error", err, err)
					return
				}
				mu.Lock()
				seen = append(seen, e.Code+": "+e.Description)
				mu.Unlock()
				e.Code, e.Description, e.RetryAfter = "mutated", "mutated", time.Hour
			}
			h := verify.Middleware(v, verify.AllowQueryToken(), verify.OnError(mutate))(http.NotFoundHandler())
			serve := func() *httptest.ResponseRecorder {
				req := httptest.NewRequest("GET", "http://api.test"+tt.target, nil)
				for name, vals := range tt.header {
					req.Header[name] = vals
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			serve() // the replayed proof's first use passes
			serve()
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() { defer wg.Done(); serve() }()
			}
			wg.Wait()
			serve()
			mu.Lock()
			defer mu.Unlock()
			if len(seen) < 2 {
				t.Fatalf("OnError saw %q, want at least 2 refusals", seen)
			}
			for _, s := range seen {
				if s != seen[0] || strings.Contains(s, "mutated") {
					t.Fatalf("OnError saw %q: a change by one call reached another", seen)
				}
			}
		})
	}
}

// TestVerifyErrorMutationStaysPut: the *verify.Error Verify and VerifyDPoP
// return is the caller's own; changing it changes no later answer.
func TestVerifyErrorMutationStaysPut(t *testing.T) {
	k := testkeyward.Start(t)
	_, _, apiID, apiSecret := k.Setup(t, "jwt")
	v := newVerifier(t, k, verify.WithIntrospection(apiID, apiSecret))
	ctx := context.Background()
	bound := k.Sign(t, func(c *oauth2.AccessClaims) { c.Confirmation = &oauth2.Confirmation{JKT: "dpop-key-thumbprint"} })
	unknown := oauth2.OpaqueTokenPrefix + strings.Repeat("B", 43)
	for name, call := range map[string]func() error{
		"bound token as bearer": func() error { _, err := v.Verify(ctx, bound); return err },
		"inactive opaque token": func() error { _, err := v.Verify(ctx, unknown); return err },
		"unbound token with DPoP": func() error {
			_, err := v.VerifyDPoP(ctx, k.Sign(t, nil), verify.DPoPRequest{Method: "GET", URL: "https://api.test/"})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			var want string
			for i := range 2 {
				e, ok := errors.AsType[*verify.Error](call())
				if !ok {
					t.Fatalf("call %d: want a *verify.Error", i)
				}
				if i == 0 {
					want = e.Error()
				} else if got := e.Error(); got != want {
					t.Fatalf("after the first Error was changed, the second is %q, want %q", got, want)
				}
				e.Code, e.Description = "mutated", "mutated"
			}
		})
	}
}
