package admin_test

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/server"
)

// scrape returns what the metrics handler of m serves.
func scrape(m *metrics.Metrics) string {
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	return w.Body.String()
}

// The admin API's requests count in keyward_admin_requests_total by
// route pattern, method and status, and their latency in
// keyward_admin_request_duration_seconds: the pattern, not the path, so
// no account ID or name the caller gave becomes a label.
func TestAdminRequestMetrics(t *testing.T) {
	m := metrics.New(func() float64 { return 0 })
	f := serveFixture(t, openSQLite(t), func(d *server.Deps) { d.Metrics = m })
	bearer := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for _, c := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/v1/service-accounts", bearer, 200},
		{"GET", "/v1/service-accounts", bearer, 200},
		{"HEAD", "/v1/service-accounts", bearer, 200},
		{"GET", "/v1/service-accounts/" + f.admin.ID, bearer, 200},
		{"GET", "/v1/service-accounts/nobody-here@iam.test", bearer, 404},
		{"GET", "/v1/apis", "", 401},
		{"GET", "/v1/no-such-endpoint", bearer, 404},
		{"PUT", "/v1/apis", bearer, 405},
	} {
		if status, _, _ := f.call(t, c.method, c.path, c.auth, nil); status != c.want {
			t.Fatalf("%s %s: status %d, want %d", c.method, c.path, status, c.want)
		}
	}
	text := scrape(m)
	for _, want := range []string{
		`keyward_admin_requests_total{code="200",method="GET",route="/v1/service-accounts"} 2`,
		`keyward_admin_requests_total{code="200",method="HEAD",route="/v1/service-accounts"} 1`,
		`keyward_admin_requests_total{code="200",method="GET",route="/v1/service-accounts/{sa}"} 1`,
		`keyward_admin_requests_total{code="404",method="GET",route="/v1/service-accounts/{sa}"} 1`,
		`keyward_admin_requests_total{code="401",method="GET",route="/v1/apis"} 1`,
		`keyward_admin_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`keyward_admin_requests_total{code="405",method="PUT",route="unmatched"} 1`,
		`keyward_admin_request_duration_seconds_count{method="GET",route="/v1/service-accounts"} 2`,
		`keyward_admin_request_duration_seconds_bucket{method="GET",route="unmatched",le="0.01"}`,
	} {
		if !strings.Contains(text, "\n"+want) {
			t.Errorf("metrics lack %s; have %q", want, grepLines(text, "keyward_admin_requests_total"))
		}
	}
	for _, leak := range []string{f.admin.ID, "nobody-here", "no-such-endpoint"} {
		if strings.Contains(text, leak) {
			t.Errorf("metrics contain the path's %q", leak)
		}
	}
}

// A flood of requests to distinct paths no route matches, with methods of
// the caller's invention too, adds to one series per method known to
// net/http and one for all others, not one per path or method.
func TestAdminMetricsUnmatchedBounded(t *testing.T) {
	m := metrics.New(func() float64 { return 0 })
	f := serveFixture(t, openSQLite(t), func(d *server.Deps) { d.Metrics = m })
	bearer := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	const n = 300
	for i := range n {
		method := "GET"
		if i%2 == 1 {
			method = "BREW" + strconv.Itoa(i)
		}
		if status, _, _ := f.call(t, method, "/v1/flood-"+strconv.Itoa(i)+"/x", bearer, nil); status != 404 {
			t.Fatalf("%s /v1/flood-%d/x: status %d, want 404", method, i, status)
		}
	}
	text := scrape(m)
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"keyward_admin_requests_total{", []string{
			`keyward_admin_requests_total{code="404",method="GET",route="unmatched"} 150`,
			`keyward_admin_requests_total{code="404",method="other",route="unmatched"} 150`,
		}},
		{"keyward_admin_request_duration_seconds_count{", []string{
			`keyward_admin_request_duration_seconds_count{method="GET",route="unmatched"} 150`,
			`keyward_admin_request_duration_seconds_count{method="other",route="unmatched"} 150`,
		}},
	} {
		got := grepLines(text, tt.prefix)
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}
