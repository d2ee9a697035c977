package server_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/testkeyward"
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

// TestGarbledForwardedCertificate: a client-certificate header from a
// trusted proxy that does not parse is the proxy's misconfiguration, not
// the client's doing. A request that would authenticate with that
// certificate (client_id and no other credentials: tls_client_auth or
// self_signed_tls_client_auth, whose tokens are certificate-bound) is
// refused saying so; every other request goes on as if it had presented
// no certificate. The log says why, and for which client (at most once
// a minute).
func TestGarbledForwardedCertificate(t *testing.T) {
	var logs testkeyward.SyncBuffer
	f := newFixture(t, func(c *server.Config, d *server.Deps) {
		c.ClientCertHeader = "X-Client-Cert"
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		d.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret))
	assertion := func() string {
		return "&client_assertion_type=" + url.QueryEscape(oauth2.ClientAssertionJWT) + "&client_assertion=" + f.clientAssertion(t, rand.Text())
	}
	const (
		cc      = "grant_type=client_credentials&scope=orders.read"
		warning = "level=WARN msg=\"a trusted proxy's client-certificate header does not parse"
	)
	for _, garbage := range []string{"not a certificate", base64.StdEncoding.EncodeToString([]byte("not DER")), "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A"} {
		// Built for each garbage: the assertions are single-use.
		tests := []struct {
			name, body, auth string
			want             int
			wantError        string
			wantDesc         string // part of error_description
		}{
			{name: "client_secret_basic", body: cc, auth: basic, want: http.StatusOK},
			{name: "client_secret_post", body: cc + "&client_id=" + f.clientID + "&client_secret=" + url.QueryEscape(f.secret), want: http.StatusOK},
			{name: "private_key_jwt", body: cc + assertion(), want: http.StatusOK},
			{name: "JWT-bearer grant without client authentication", body: "grant_type=" + url.QueryEscape(oauth2.GrantJWTBearer) + "&assertion=" + f.assertion(t, rand.Text()), want: http.StatusOK},
			{name: "client_id alone: the certificate would authenticate", body: cc + "&client_id=" + f.clientID,
				want: http.StatusUnauthorized, wantError: oauth2.ErrInvalidClient, wantDesc: "client certificate"},
			{name: "JWT-bearer grant with client_id: the certificate would authenticate", body: "grant_type=" + url.QueryEscape(oauth2.GrantJWTBearer) + "&assertion=" + f.assertion(t, rand.Text()) + "&client_id=" + f.clientID,
				want: http.StatusUnauthorized, wantError: oauth2.ErrInvalidClient, wantDesc: "client certificate"},
			// Not "needs client authentication": say what went wrong.
			{name: "no client authentication at all", body: cc,
				want: http.StatusUnauthorized, wantError: oauth2.ErrInvalidClient, wantDesc: "forwarded could not be read"},
		}
		for _, tt := range tests {
			t.Run(tt.name+"/"+garbage[:8], func(t *testing.T) {
				r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(tt.body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tt.auth != "" {
					r.Header.Set("Authorization", tt.auth)
				}
				r.Header.Set("X-Client-Cert", garbage)
				r.Header.Set("X-Forwarded-For", "203.0.113.7")
				r.RemoteAddr = "10.0.0.2:443"
				w := httptest.NewRecorder()
				f.handler.ServeHTTP(w, r)
				if w.Code != tt.want {
					t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.want)
				}
				var body map[string]string
				json.Unmarshal(w.Body.Bytes(), &body)
				if tt.wantError != "" && (body["error"] != tt.wantError || !strings.Contains(body["error_description"], tt.wantDesc)) {
					t.Fatalf("%s, want %s with %q in its description", w.Body, tt.wantError, tt.wantDesc)
				}
				if got := w.Header().Get("WWW-Authenticate"); w.Code == http.StatusUnauthorized && got != clientauth.Challenge {
					t.Fatalf("WWW-Authenticate %q on a 401, want %q", got, clientauth.Challenge)
				}
			})
		}
	}
	// Logged at most once a minute: clientauth's tests count them.
	if text := logs.String(); !strings.Contains(text, warning) {
		t.Fatalf("no warning %q logged; the log:\n%s", warning, text)
	} else if first, _, _ := strings.Cut(text[strings.Index(text, warning):], "\n"); !strings.Contains(first, "header=X-Client-Cert") || !strings.Contains(first, "err=") ||
		!strings.Contains(first, "proxy=10.0.0.2") || !strings.Contains(first, "source=203.0.113.7") || strings.Contains(first, "client=") {
		// source is the client's address, as in every other line (its
		// request line's too), and the proxy is proxy.
		t.Fatalf("the warning does not name the header, the proxy (proxy), the client it forwarded for (source) and why the header does not parse: %s", first)
	}
}
