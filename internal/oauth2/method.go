package oauth2

import (
	"net/http"
	"strings"
)

// MethodNotAllowed is the 405 answer (RFC 9110 §15.5.6) to a request that
// reached catchAll, a pattern of mux that takes every method, though mux
// has a route for its path under another method: with a catch-all in the
// way, the mux never answers 405 by itself. It returns nil when no method
// has a route for the path, which is then not found.
func MethodNotAllowed(mux *http.ServeMux, r *http.Request, catchAll string) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != catchAll && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return nil
	}
	methods := strings.Join(allow, ", ")
	return &Error{
		Code: ErrInvalidRequest, Status: http.StatusMethodNotAllowed,
		Description: "The endpoint " + shownRequestPath(r) + " takes " + methods + ", not " + Truncate(r.Method, 16) + ".",
		Header:      http.Header{"Allow": {methods}},
	}
}

// NotFound is the 404 answer to a request for a path nothing serves. Its
// description names the path as MethodNotAllowed's does.
func NotFound(r *http.Request) *Error {
	return &Error{Code: "not_found", Description: "There is nothing at " + shownRequestPath(r) + ".", Status: http.StatusNotFound}
}

// shownRequestPath is r's path as a 404 or 405 names it: as it was sent,
// escapes kept (decoded, /a%2Fb would read /a/b, a path nobody sent),
// without a credential given in it (ShownPath), and cut to 200 bytes, so
// that the description does not grow with the request line.
func shownRequestPath(r *http.Request) string {
	return ShownRequestPath(r, 200)
}
