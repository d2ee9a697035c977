package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/server"
)

// keyward_auth_throttled_total tells apart the endpoints whose throttle
// answered 429: the token endpoint (client authentication and JWT-bearer
// assertions alike), introspection, revocation and the admin API. Each
// endpoint's requests come from an address of their own, so each meets
// its own budget.
func TestThrottledByEndpoint(t *testing.T) {
	m := metrics.New(func() float64 { return 0 })
	now := time.Now()
	f := newFixture(t, func(_ *server.Config, d *server.Deps) {
		d.Metrics = m
		d.Now = func() time.Time { return now } // no budget refills meanwhile
	})
	wrongSecret := "Basic " + basic(f.clientID, "kw_wrong")
	jwtBearer := "grant_type=" + url.QueryEscape("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=not-a-jwt"
	tests := []struct {
		endpoint, source         string
		method, path, body, auth string
		n                        int
	}{
		{"token", "198.51.100.1", "POST", "/token", "grant_type=client_credentials", wrongSecret, 15},
		{"token", "198.51.100.2", "POST", "/token", jwtBearer, "", 60},
		{"introspect", "198.51.100.3", "POST", "/introspect", "token=x", wrongSecret, 15},
		{"revoke", "198.51.100.4", "POST", "/revoke", "token=x", wrongSecret, 15},
		{"admin", "198.51.100.5", "GET", "/v1/apis", "", "Bearer nonsense", 25},
	}
	want := map[string]int{}
	for _, tt := range tests {
		for range tt.n {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			r.RemoteAddr = tt.source + ":4711"
			r.Header.Set("Authorization", tt.auth)
			if tt.body != "" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, r)
			if w.Code == http.StatusTooManyRequests {
				want[tt.endpoint]++
			}
		}
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, endpoint := range []string{"token", "introspect", "revoke", "admin"} {
		if want[endpoint] == 0 {
			t.Fatalf("no request to the %s endpoint was throttled", endpoint)
		}
		line := `keyward_auth_throttled_total{endpoint="` + endpoint + `"} ` + strconv.Itoa(want[endpoint])
		if !strings.Contains(w.Body.String(), "\n"+line+"\n") {
			t.Errorf("metrics lack %s; have %q", line, throttledLines(w.Body.String()))
		}
	}
}

func basic(user, password string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, password)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func throttledLines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.HasPrefix(l, "keyward_auth_throttled_total") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}
