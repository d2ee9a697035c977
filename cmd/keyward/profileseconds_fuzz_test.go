package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzProfileSeconds: whatever ?seconds= (or a form body's) a request to
// the metrics listener's profiles carries, profileSeconds passes it on
// only if every reading net/http/pprof makes of it runs for at most
// maxProfileSeconds: the CPU profile's and the delta profiles' integer
// (30 and a 400 for one it cannot read), the trace's float (1 for one it
// cannot read).
func FuzzProfileSeconds(f *testing.F) {
	for _, s := range []struct{ query, body string }{
		{"seconds=30", ""}, {"seconds=61", ""}, {"seconds=60.5", ""}, {"seconds=1e9", ""},
		{"seconds=NaN", ""}, {"seconds=+Inf", ""}, {"seconds=-5", ""}, {"seconds=0x1p10", ""},
		{"seconds=99999999999999999999", ""}, {"seconds=1&seconds=3600", ""}, {"", "seconds=3600"},
		{"seconds=%zz&seconds=3600", ""}, {"seconds=1_000", ""}, {"seconds= 3600", ""},
	} {
		f.Add(s.query, s.body)
	}
	f.Fuzz(func(t *testing.T, query, body string) {
		if _, err := url.ParseRequestURI("/debug/pprof/profile?" + query); err != nil || strings.ContainsAny(query, " #\r\n") {
			return // no request line carries it
		}
		reached := false
		h := profileSeconds(func(w http.ResponseWriter, r *http.Request) {
			reached = true
			v := r.FormValue("seconds")
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > maxProfileSeconds {
				t.Fatalf("?%s with body %q: pprof's profile runs %d s", query, body, n)
			}
			if x, err := strconv.ParseFloat(v, 64); err == nil && x > maxProfileSeconds {
				t.Fatalf("?%s with body %q: pprof's trace runs %v s", query, body, x)
			}
		})
		r := httptest.NewRequest(http.MethodPost, "/debug/pprof/profile?"+query, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h(w, r)
		if !reached && w.Code != http.StatusBadRequest {
			t.Fatalf("?%s with body %q: not passed on, and answered %d", query, body, w.Code)
		}
	})
}
