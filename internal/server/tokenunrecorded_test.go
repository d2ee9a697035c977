package server_test

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestTokenRefusalUnrecordedLogsOneLine: a refused token request whose
// audit event cannot be written logs one error line, naming the refusal,
// the write's error and the client, as /introspect and /revoke do. It
// logged that error, then an info "token request refused" for the 503
// with an empty cause.
func TestTokenRefusalUnrecordedLogsOneLine(t *testing.T) {
	f, logs, j := newLoggedFailingFixture(t)
	j.fail.Store(true)
	r := httptest.NewRequest("POST", "/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(f.clientID, "kw_wrong")
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	if w.Code != 503 {
		t.Fatalf("%d %s, want 503", w.Code, w.Body)
	}
	var lines []string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, `msg="token request refused`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("token refusal lines %q, want one", lines)
	}
	for _, want := range []string{"level=ERROR", `msg="token request refused, and its audit event could not be written"`,
		"error=temporarily_unavailable", `err="disk I/O error"`, "refusal=", "invalid_client", "client_id=" + f.clientID + " ", "source="} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q, want it to hold %q", lines[0], want)
		}
	}
	if strings.Contains(lines[0], "cause=") {
		t.Errorf("line %q holds an empty cause for the 503", lines[0])
	}
}
