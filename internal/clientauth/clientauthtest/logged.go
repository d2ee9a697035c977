package clientauthtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// PostForm serves h a POST of the form body to path, with the fields of
// header (nil for none), and returns the answer.
func PostForm(h http.Handler, path, body string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// CheckLoggedOnce checks that log, an endpoint's log of one request, is
// one line, and that the line holds each of want.
func CheckLoggedOnce(t *testing.T, log string, want ...string) {
	t.Helper()
	if n := strings.Count(log, "\n"); n != 1 {
		t.Fatalf("logged %d lines, want 1:\n%s", n, log)
	}
	for _, s := range want {
		if !strings.Contains(log, s) {
			t.Errorf("logged %q, want it to have %q", log, s)
		}
	}
}
