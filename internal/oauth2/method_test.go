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

// The 404 and the 405 name the path as it was sent, escapes kept — the
// decoded /things/a%2Fb read /things/a/b, a path nobody sent — with a
// credential in it left out and cut short, as the admin API's 404 does.
func TestPathShownAsSent(t *testing.T) {
	mux := http.NewServeMux()
	nop := func(http.ResponseWriter, *http.Request) {}
	mux.HandleFunc("DELETE /things/{id}", nop)
	mux.HandleFunc("/", nop)
	secret := SecretPrefix + strings.Repeat("Zs9", 14) + "x"
	long := strings.Repeat("x", 300)
	tests := []struct {
		name, path, want string
	}{
		{"escaped slash", "/things/a%2Fb", "/things/a%2Fb"},
		{"escaped space", "/things/no%20such%3Fthing", "/things/no%20such%3Fthing"},
		{"escaped quote", "/things/%22x%22", "/things/%22x%22"},
		{"long", "/things/" + long, ("/things/" + long)[:200] + "…"},
		{"secret", "/things/" + secret, "/things/(credential)"},
		{"escaped secret", "/things/kw%5F" + secret[3:], "/things/(credential)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nf := NotFound(httptest.NewRequest("GET", tt.path, nil))
			if want := "There is nothing at " + tt.want + "."; nf.Description != want {
				t.Errorf("404: %q, want %q", nf.Description, want)
			}
			oe := AsError(MethodNotAllowed(mux, httptest.NewRequest("GET", tt.path, nil), "/"))
			if want := "The endpoint " + tt.want + " takes DELETE, not GET."; oe.HTTPStatus() != http.StatusMethodNotAllowed || oe.Description != want {
				t.Errorf("405: %d %q, want 405 %q", oe.HTTPStatus(), oe.Description, want)
			}
		})
	}
}
