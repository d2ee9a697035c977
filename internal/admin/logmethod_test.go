package admin_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// The "admin request failed" line cuts a long method, as the request line
// and the admin API's other lines do: the catch-all under /v1/ takes any
// method, and a caller must not make the server log one of 60 KiB.
func TestFailureLogMethodCut(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	f.store.Close()
	method := strings.Repeat("M", 60000)
	before := len(f.logs.String())
	req := httptest.NewRequest(method, "/v1/nope", nil)
	req.Header.Set("Authorization", auth)
	f.srv.ServeHTTP(httptest.NewRecorder(), req)
	var line string
	for _, l := range strings.Split(f.logs.String()[before:], "\n") {
		if strings.Contains(l, `msg="admin request failed"`) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no admin request failed line in %.500q", f.logs.String()[before:])
	}
	if !strings.Contains(line, " method="+method[:16]+"… ") || len(line) > 2000 {
		t.Errorf("logged %d bytes: %.300q…, want the method cut to 16 bytes", len(line), line)
	}
}
