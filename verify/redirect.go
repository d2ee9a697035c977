package verify

import (
	"errors"
	"net/http"
	"slices"
)

// errDowngrade refuses a redirect of a GET to the issuer from HTTPS down
// to plain HTTP.
var errDowngrade = errors.New("refusing a redirect from HTTPS down to plain HTTP, where anyone on the path could change the issuer's metadata or keys")

// errIntrospectionRedirect refuses any redirect of an introspection
// request.
var errIntrospectionRedirect = errors.New("refusing to follow a redirect of the introspection request, which carries this API's credentials and the token: the issuer's metadata must name its introspection endpoint itself")

// fetchClient is c for the GETs of the issuer's metadata and keys: a copy,
// since the caller may use c elsewhere, that refuses a redirect from HTTPS
// down to plain HTTP at any hop. Other redirects are left to c's own
// CheckRedirect (by default, at most 10): a GET carries no credentials,
// and over HTTPS the issuer chose where it goes.
func fetchClient(c *http.Client) *http.Client {
	next := c.CheckRedirect
	cc := *c
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" && slices.ContainsFunc(via, func(r *http.Request) bool { return r.URL.Scheme == "https" }) {
			return errDowngrade
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 { // net/http's default
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

// introspectionClient is c for introspection requests (RFC 7662 §2.1): a
// copy that follows no redirect. The request carries this API's
// credentials, as Basic auth or a client assertion in its body, and the
// token in its body: net/http would resend the body on a 307 or 308 to
// any host, and the Authorization header to the same host even over plain
// HTTP.
func introspectionClient(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return errIntrospectionRedirect }
	return &cc
}
