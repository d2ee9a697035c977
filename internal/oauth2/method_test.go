package oauth2

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMethodNotAllowed(t *testing.T) {
	mux := http.NewServeMux()
	nop := func(http.ResponseWriter, *http.Request) {}
	mux.HandleFunc("GET /things", nop)
	mux.HandleFunc("POST /things", nop)
	mux.HandleFunc("DELETE /things/{id}", nop)
	mux.HandleFunc("/things/", nop) // a catch-all under them
	tests := []struct {
		method, path, catchAll string
		allow                  string // "": not found
	}{
		{"PUT", "/things", "/things/", "GET, HEAD, POST"},
		{"GET", "/things/7", "/things/", "DELETE"},
		{"GET", "/things/7/parts", "/things/", ""},
		{"GET", "/elsewhere", "/things/", ""},
	}
	for _, tc := range tests {
		err := MethodNotAllowed(mux, httptest.NewRequest(tc.method, tc.path, nil), tc.catchAll)
		if tc.allow == "" {
			if err != nil {
				t.Errorf("%s %s: %v, want nil (not found)", tc.method, tc.path, err)
			}
			continue
		}
		oe := AsError(err)
		if oe.HTTPStatus() != http.StatusMethodNotAllowed || oe.Code != ErrInvalidRequest || oe.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %s Allow %q, want 405 invalid_request Allow %q", tc.method, tc.path, oe.HTTPStatus(), oe.Code, oe.Header.Get("Allow"), tc.allow)
		}
	}
}

// NotFound names the path, cut short, so the answer does not grow with
// the request line.
func TestNotFound(t *testing.T) {
	long := "/" + strings.Repeat("x", 300)
	tests := []struct {
		path, desc string
	}{
		{"/nothing", "There is nothing at /nothing."},
		{long, "There is nothing at " + long[:200] + "…."},
	}
	for _, tc := range tests {
		oe := NotFound(httptest.NewRequest("GET", tc.path, nil))
		if oe.HTTPStatus() != http.StatusNotFound || oe.Code != "not_found" || oe.Description != tc.desc {
			t.Errorf("NotFound(%.20s…) = %d %s %q, want 404 not_found %q", tc.path, oe.HTTPStatus(), oe.Code, oe.Description, tc.desc)
		}
	}
}
