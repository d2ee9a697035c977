package server_test

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"

	"github.com/keyward/keyward/internal/server"
)

// TestSecurityHeaders: every answer of the server, the plain text ones
// (/healthz, /readyz) among them, says X-Content-Type-Options: nosniff,
// so that no browser takes it for another kind of content.
func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, func(c *server.Config, _ *server.Deps) { c.Console = true })
	tests := []struct {
		name, method, target string
		status               int
	}{
		{"healthz", "GET", "/healthz", 200},
		{"readyz", "GET", "/readyz", 200},
		{"JWKS", "GET", "/.well-known/jwks.json", 200},
		{"metadata", "GET", "/.well-known/oauth-authorization-server", 200},
		{"unknown path", "GET", "/nothing", 404},
		{"wrong method", "DELETE", "/healthz", 405},
		{"dot segment", "GET", "/v1/../healthz", 400},
		{"console", "GET", "/console/", 200},
		{"console redirect", "GET", "/console", 301},
		{"token error", "POST", "/token", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, httptest.NewRequest(tc.method, tc.target, nil))
			if w.Code != tc.status {
				t.Fatalf("%s %s: status %d, want %d; body %q", tc.method, tc.target, w.Code, tc.status, w.Body)
			}
			if got := w.Header().Values("X-Content-Type-Options"); len(got) != 1 || got[0] != "nosniff" {
				t.Errorf("%s %s: X-Content-Type-Options %q, want [nosniff]", tc.method, tc.target, got)
			}
		})
	}
}

// TestStrictTransportSecurity: an answer over TLS says
// Strict-Transport-Security as configured (RFC 6797 §7.1), on every path,
// errors too; one over plain HTTP never does (§7.2), and a server
// configured with none sends none.
func TestStrictTransportSecurity(t *testing.T) {
	const sts = "max-age=31536000"
	with := newFixture(t, func(c *server.Config, _ *server.Deps) { c.Console = true; c.StrictTransportSecurity = sts })
	without := newFixture(t, func(c *server.Config, _ *server.Deps) { c.Console = true })
	tests := []struct {
		name string
		f    *fixture
		tls  bool
		want string
	}{
		{"TLS", with, true, sts},
		{"plain HTTP", with, false, ""},
		{"TLS, none configured", without, true, ""},
	}
	for _, tc := range tests {
		for _, target := range []string{"/healthz", "/console/", "/nothing", "/.well-known/jwks.json"} {
			t.Run(tc.name+target, func(t *testing.T) {
				r := httptest.NewRequest("GET", target, nil)
				if tc.tls {
					r.TLS = &tls.ConnectionState{HandshakeComplete: true}
				} else {
					r.TLS = nil
				}
				w := httptest.NewRecorder()
				tc.f.handler.ServeHTTP(w, r)
				got := w.Header().Values("Strict-Transport-Security")
				if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
					t.Errorf("GET %s: Strict-Transport-Security %q, want %q", target, got, tc.want)
				}
			})
		}
	}
}
