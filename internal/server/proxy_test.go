package server_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/server"
)

// Behind a trusted proxy, failures are throttled per client address as
// X-Forwarded-For gives it: one client guessing secrets does not lock out
// the others that share the proxy. From an untrusted peer the header
// counts for nothing.
func TestThrottleBehindProxy(t *testing.T) {
	f := newFixture(t, func(c *server.Config, _ *server.Deps) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	token := func(peer, forwardedFor, secret string) int {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+secret)))
		r.RemoteAddr = peer + ":443"
		if forwardedFor != "" {
			r.Header.Set("X-Forwarded-For", forwardedFor)
		}
		w := httptest.NewRecorder()
		f.handler.ServeHTTP(w, r)
		return w.Code
	}
	throttle := func(peer, forwardedFor string) {
		t.Helper()
		for range 100 {
			if token(peer, forwardedFor, "kw_wrong") == http.StatusTooManyRequests {
				return
			}
		}
		t.Fatalf("100 wrong secrets from %s (for %q) never throttled", peer, forwardedFor)
	}

	throttle("10.0.0.2", "203.0.113.66")
	if got := token("10.0.0.2", "203.0.113.66", f.secret); got != http.StatusTooManyRequests {
		t.Fatalf("the throttled client through the proxy: %d, want 429", got)
	}
	if got := token("10.0.0.2", "203.0.113.7", f.secret); got != http.StatusOK {
		t.Fatalf("another client through the same proxy: %d, want 200", got)
	}

	// An untrusted peer cannot escape its throttle by naming other addresses.
	throttle("198.51.100.9", "203.0.113.1")
	if got := token("198.51.100.9", "203.0.113.2", f.secret); got != http.StatusTooManyRequests {
		t.Fatalf("an untrusted peer with a new X-Forwarded-For: %d, want 429", got)
	}
}
