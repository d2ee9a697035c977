package server_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/server"
)

// No metric label takes its value from the request: requests that vary
// every field a caller controls (grant type, client ID, assertion type,
// authentication scheme, token hint, path, method, user agent) each in
// its own way add no series that carries what they sent, and only a
// bounded number of series at all.
func TestMetricLabelsBounded(t *testing.T) {
	m := metrics.New(func() float64 { return 0 })
	f := newFixture(t, func(_ *server.Config, d *server.Deps) { d.Metrics = m })
	const n = 40
	for i := range n {
		h := fmt.Sprintf("hostile-%d", i)
		for j, tt := range []struct{ method, path, body, auth string }{
			{"POST", "/token", "grant_type=" + h, ""},
			{"POST", "/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {h}, "client_secret": {h}}.Encode(), ""},
			{"POST", "/token", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {h}, "client_assertion": {h}}.Encode(), ""},
			{"POST", "/token", "grant_type=client_credentials", h + " " + h},
			{"POST", "/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {h}}.Encode(), ""},
			{"POST", "/introspect", url.Values{"token": {h}, "client_id": {h}, "client_secret": {h}}.Encode(), ""},
			{"POST", "/revoke", url.Values{"token": {h}, "token_type_hint": {h}}.Encode(), "Basic " + basic(h, h)},
			{"GET", "/v1/" + h, "", "Bearer " + h},
			{strings.ToUpper(h), "/v1/service-accounts", "", ""},
		} {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			r.RemoteAddr = fmt.Sprintf("10.%d.%d.1:4711", i, j) // no throttle budget runs out
			r.Header.Set("User-Agent", h)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.body != "" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			f.handler.ServeHTTP(httptest.NewRecorder(), r)
		}
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	series := map[string]int{}
	for l := range strings.Lines(w.Body.String()) {
		if !strings.HasPrefix(l, "keyward_") {
			continue
		}
		if strings.Contains(strings.ToLower(l), "hostile") {
			t.Errorf("a label holds what a request sent: %s", strings.TrimSpace(l))
		}
		name, _, _ := strings.Cut(l, "{")
		series[name]++
	}
	for _, name := range []string{"keyward_requests_total", "keyward_admin_requests_total"} {
		if series[name] == 0 || series[name] > 20 {
			t.Errorf("%d series of %s after %d varied requests; want between 1 and 20", series[name], name, n)
		}
	}
}
