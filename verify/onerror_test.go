package verify_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

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
