package admin_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/testkeyward"
)

// TestStalledBodyRefusalRecorded: an administrator's client that sends
// part of a body and stalls is refused, and the refusal recorded, within
// the request's bound, and the connection closed. The read ended only at
// the server's ReadTimeout (keyward serve's 30 s, past the 20 s bound),
// and the refusal's audit event, written with the deadline passed, failed
// at once: a 503 and an ERROR for a store that was fine.
func TestStalledBodyRefusalRecorded(t *testing.T) {
	const bound = oauth2.RecordMargin + time.Second
	admin.SetRequestTimeout(t, bound)
	f := newFixture(t)
	srv := httptest.NewUnstartedServer(f.srv)
	srv.Config.ReadTimeout = bound + time.Second
	srv.Start()
	defer srv.Close()
	n := f.auditCount(t)
	header := "Content-Type: application/json\r\nAuthorization: Bearer " + f.token(t, f.admin, admin.AdminScope, nil) + "\r\n"
	resp, body, took := testkeyward.StalledBody(t, srv.Listener.Addr().String(), http.MethodPost, "/v1/apis", header, `{"name":"orders","identifier":"https://orders.internal"}`, bound+3*time.Second)
	if resp.StatusCode != 400 || !strings.Contains(body, "The request body could not be read.") {
		t.Errorf("%d %s, want 400 invalid_request: the body could not be read", resp.StatusCode, body)
	}
	if took > bound {
		t.Errorf("answered and closed after %v, past the bound %v", took, bound)
	}
	// The read's error reaches the log, as the token endpoint's refusal
	// logs it: the 400 alone does not say why.
	if !strings.Contains(f.logs.String(), `level=INFO msg="admin request refused" method=POST path=/v1/apis error=invalid_request description="The request body could not be read." cause=`) ||
		!strings.Contains(f.logs.String(), "i/o timeout") {
		t.Errorf("no admin request refused line with the read's error:\n%s", f.logs.String())
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Errorf("an error logged:\n%s", f.logs.String())
	}
	if got := f.refusalsSince(t, n); len(got) != 1 {
		t.Errorf("%d refusals recorded, want 1", len(got))
	}
}
