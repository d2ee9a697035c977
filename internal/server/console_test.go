package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyward/keyward/internal/console"
	"github.com/keyward/keyward/internal/server"
)

// The console is served at /console/ only when Config.Console is set;
// otherwise the paths are the server's JSON 404, like any unknown path.
func TestConsoleMounted(t *testing.T) {
	tests := []struct {
		name      string
		on        bool
		path      string
		status    int
		csp       bool
		mediaType string
	}{
		{"on", true, "/console/", http.StatusOK, true, "text/html; charset=utf-8"},
		{"on, redirect", true, "/console", http.StatusMovedPermanently, true, ""},
		{"on, unknown", true, "/console/x", http.StatusNotFound, true, "text/plain; charset=utf-8"},
		{"on, admin API untouched", true, "/v1/apis", http.StatusUnauthorized, false, "application/json"},
		{"off", false, "/console/", http.StatusNotFound, false, "application/json"},
		{"off, no redirect", false, "/console", http.StatusNotFound, false, "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *server.Config, _ *server.Deps) { c.Console = tc.on })
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if w.Code != tc.status {
				t.Fatalf("GET %s: %d, want %d", tc.path, w.Code, tc.status)
			}
			if got := w.Header().Get("Content-Security-Policy") == console.ContentSecurityPolicy; got != tc.csp {
				t.Errorf("console CSP sent: %v, want %v", got, tc.csp)
			}
			if got := w.Header().Get("Content-Type"); got != tc.mediaType {
				t.Errorf("Content-Type %q, want %q", got, tc.mediaType)
			}
		})
	}
}
