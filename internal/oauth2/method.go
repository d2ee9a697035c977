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
		// Cut short, as a 404 names the path: the description does not
		// grow with the request line.
		Description: "The endpoint " + Truncate(r.URL.Path, 200) + " takes " + methods + ", not " + Truncate(r.Method, 16) + ".",
		Header:      http.Header{"Allow": {methods}},
	}
}

// NotFound is the 404 answer to a request for a path nothing serves. Its
// description names the path, cut short as MethodNotAllowed's is.
func NotFound(r *http.Request) *Error {
	return &Error{Code: "not_found", Description: "There is nothing at " + Truncate(r.URL.Path, 200) + ".", Status: http.StatusNotFound}
}
