package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
)

type ctxKey struct{}

// verified is what Middleware puts in the request's context: the token's
// claims, and the realm and scheme (DPoP or Bearer) of its challenges, for
// RequireScopes.
type verified struct {
	claims  *Claims
	realm   string
	dpop    bool
	onError func(r *http.Request, err error) // Middleware's OnError, or nil
}

// ClaimsFromContext returns the claims Middleware put in the request's
// context. They are shared with the Verifier's cache, and so with every
// request that carries the same token: do not modify them.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	v, ok := ctx.Value(ctxKey{}).(*verified)
	if !ok {
		return nil, false
	}
	return v.claims, true
}

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*mwOptions)

type mwOptions struct {
	realm      string
	queryToken bool
	onError    func(r *http.Request, err error)
	publicURL  string
}

// AllowQueryToken also accepts the token in an access_token form or query
// parameter (RFC 6750 §2.2, §2.3), given once: several are refused (400
// invalid_request), as several Authorization headers are, and so is a
// token sent in more than one way (header, query, form body: §2); an
// empty one is no token, with a Bearer or a DPoP header alike. Off by
// default: query strings end up in logs. The form body of a POST without an
// Authorization header (application/x-www-form-urlencoded, in any case and
// with any parameters, as ParseForm reads it) is read for it, up to 64
// KiB: a larger one is refused (400 invalid_request) before the token is
// checked, so that no caller without a token can make the API read more.
// The wrapped handler finds the form parsed (r.PostForm) and the body to
// read again. A request with a token in its Authorization header keeps its
// body unread, whatever its size. The response to a request with the token
// in its query gets Cache-Control: private (RFC 6750 §2.3), which the
// handler may replace or add to.
func AllowQueryToken() MiddlewareOption { return func(o *mwOptions) { o.queryToken = true } }

// WithRealm sets the realm of the WWW-Authenticate challenge (by default
// the Verifier's audience); an empty realm is left out.
func WithRealm(realm string) MiddlewareOption { return func(o *mwOptions) { o.realm = realm } }

// OnError is called with each refused request's error, for logging: those
// Middleware refuses, and those RequireScopes refuses (insufficient_scope)
// behind it. Each call gets a *Error of its own, shared with no other
// request.
func OnError(f func(r *http.Request, err error)) MiddlewareOption {
	return func(o *mwOptions) { o.onError = f }
}

// Middleware verifies the bearer token of every request (RFC 6750) and puts
// its claims in the request context. Refused requests get 401 (or 400 for
// a malformed request) with a WWW-Authenticate challenge; a request without
// a bearer token (none, or credentials of another scheme such as Basic)
// gets a bare challenge with no error code (RFC 6750 §3.1), and a DPoP
// one beside it naming the algorithms of proofs (RFC 9449 §7.1). Descriptions
// never repeat what the token says before it is verified. When the token
// cannot be checked because the issuer cannot be reached, or its kid is
// unknown while the keys may not be fetched again yet (ErrUnavailable),
// the request gets 503 with Retry-After instead, so the caller retries
// rather than discarding a token that may be valid: Error.RetryAfter in
// whole seconds (the Retry-After of the issuer's introspection answer,
// or when the introspection budget refills or the keys may be fetched
// again), else 10. The same goes for ErrIntrospectionUnauthorized
// and ErrIntrospectionThrottled: the caller's token is not at fault; tell
// them apart in OnError.
//
// The client certificate a certificate-bound token (cnf x5t#S256, RFC
// 8705 §3) must come with is read from the connection, r.TLS, alone.
// Behind a proxy that terminates TLS there is none (or, if the proxy
// connects over mTLS, the proxy's own, which a client's token is not bound
// to), and every certificate-bound token is refused (invalid_token):
// Middleware fails closed, and trusts no header a client could send. An
// API there reads the certificate its proxy forwards, from that proxy
// alone, and calls Verifier.VerifyWithCertificate itself.
func Middleware(v *Verifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	o := mwOptions{realm: v.audience}
	for _, opt := range opts {
		opt(&o)
	}
	if o.publicURL != "" {
		if err := checkPublicURL(o.publicURL); err != nil {
			// A mistake in the program, not in a request, as a bad
			// ServeMux pattern is: every DPoP proof would be checked
			// against the wrong URL, so no handler is made.
			panic("verify.WithPublicURL: " + err.Error())
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if usesDPoP(r) {
				o.serveDPoP(v, next, w, r)
				return
			}
			raw, inURI, err := bearerToken(w, r, o.queryToken)
			if err != nil {
				o.refuse(w, r, err)
				return
			}
			var c *Claims
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				c, err = v.VerifyWithCertificate(r.Context(), raw, r.TLS.PeerCertificates[0])
			} else {
				c, err = v.Verify(r.Context(), raw)
			}
			if err != nil {
				o.refuse(w, r, err)
				return
			}
			if inURI {
				// RFC 6750 §2.3: a response to a request with the token in
				// its URI is private, so no shared cache keeps it for
				// anyone else who asks for that URI. The handler may set
				// its own, or add max-age.
				w.Header().Set("Cache-Control", "private")
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &verified{claims: c, realm: o.realm, onError: o.onError})))
		})
	}
}

// errNoToken is a request without a bearer token, or with credentials of
// another scheme: neither the challenge nor the body carries an error code
// (RFC 6750 §3.1). Shared: refuse hands out a copy (own).
var errNoToken = &Error{Code: "", Description: "an access token is required"}

// maxFormBytes bounds the form body bearerToken reads for an access_token
// (RFC 6750 §2.2): net/http's own bound, 10 MB, is a lot to read for a
// caller that has shown no token.
const maxFormBytes = 64 << 10

// bearerToken extracts the token, from the Authorization header, or from
// the access_token parameter of the query or the form body when allowed
// (inURI: the query's); using more than one of them is an error. An
// Authorization header of another scheme (Basic …) is no token. The form
// body is read only for a POST without a bearer token in the header: with
// one, the body is left to the handler, and only the query is checked for
// a second token, as for DPoP.
func bearerToken(w http.ResponseWriter, r *http.Request, allowQuery bool) (token string, inURI bool, err error) {
	h := r.Header.Values("Authorization")
	var fromHeader string
	switch len(h) {
	case 0:
	case 1:
		scheme, tok, _ := strings.Cut(h[0], " ")
		if !strings.EqualFold(scheme, "Bearer") {
			break
		}
		tok, ok := oauth2.AuthToken(tok)
		if !ok {
			return "", false, &Error{Code: "invalid_request", Description: "the Authorization header must be: Bearer <token>"}
		}
		fromHeader = tok
	default:
		return "", false, &Error{Code: "invalid_request", Description: "more than one Authorization header"}
	}
	var fromQuery, fromForm string
	if allowQuery {
		var several bool
		if fromQuery, several = oneToken(r.URL.Query()); several {
			return "", false, errSeveralTokens
		}
		if fromHeader == "" && r.Method == http.MethodPost && isForm(r.Header.Get("Content-Type")) {
			form, err := readForm(w, r)
			if err != nil {
				return "", false, err
			}
			if fromForm, several = oneToken(form); several {
				return "", false, errSeveralTokens
			}
		}
	}
	switch {
	case fromHeader != "" && fromQuery != "", fromQuery != "" && fromForm != "":
		// RFC 6750 §2: clients must not use more than one method.
		return "", false, &Error{Code: "invalid_request", Description: "the token was sent in more than one way (RFC 6750 §2)"}
	case fromHeader != "":
		return fromHeader, false, nil
	case fromQuery != "":
		return fromQuery, true, nil
	case fromForm != "":
		return fromForm, false, nil
	}
	return "", false, errNoToken
}

// oneToken returns the access_token parameter of params, "" if there is
// none, and several true if there are several: such a request is
// malformed (RFC 6750 §3.1), as one with several Authorization headers
// is, and refused with errSeveralTokens.
func oneToken(params url.Values) (tok string, several bool) {
	switch v := params["access_token"]; len(v) {
	case 0:
		return "", false
	case 1:
		return v[0], false
	}
	return "", true
}

// errSeveralTokens refuses a request with several access_token
// parameters (oneToken). Shared: refuse hands out a copy (own).
var errSeveralTokens = &Error{Code: "invalid_request", Description: "more than one access_token parameter"}

// isForm reports whether the media type of ct is
// application/x-www-form-urlencoded, in any case and with any parameters,
// as net/http's ParseForm reads it: a malformed parameter
// (mime.ErrInvalidMediaParameter) still leaves the media type, which
// ParseForm reads the body by.
func isForm(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return (err == nil || errors.Is(err, mime.ErrInvalidMediaParameter)) && mt == "application/x-www-form-urlencoded"
}

// readForm reads r's form body (RFC 6750 §2.2), at most maxFormBytes of
// it, and leaves it to the handler as ParseForm would have: parsed in
// r.PostForm, and in r.Body to read again.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.PostForm != nil {
		return r.PostForm, nil
	}
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &Error{Code: "invalid_request", Description: "the form body is larger than " + strconv.Itoa(maxFormBytes>>10) + " KiB: send the access token in the Authorization header", Err: err}
		} else if err != nil {
			return nil, &Error{Code: "invalid_request", Description: "the form body could not be read", Err: err}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &Error{Code: "invalid_request", Description: "the form body is not application/x-www-form-urlencoded", Err: err}
	}
	r.PostForm = form
	return form, nil
}

func (o mwOptions) refuse(w http.ResponseWriter, r *http.Request, err error) {
	err = own(err) // errNoToken and errSeveralTokens are shared
	if o.onError != nil {
		o.onError(r, err)
	}
	var e *Error
	if !errors.As(err, &e) {
		e = invalid("the token could not be verified", err)
	}
	status := http.StatusUnauthorized
	switch e.Code {
	case codeUnavailable:
		w.Header().Set("Retry-After", retryAfterSeconds(e.RetryAfter))
		writeError(w, http.StatusServiceUnavailable, e)
		return
	case "invalid_request":
		status = http.StatusBadRequest
	case "insufficient_scope":
		status = http.StatusForbidden
	}
	challenge(w, o.realm, e, "")
	dpopChallenge(w, o.realm, e, "")
	writeError(w, status, e)
}

// retryAfter is the Retry-After of a 503 answer when the Error does not
// say: the default pause between two fetches of the issuer's keys for an
// unknown kid.
const retryAfter = 10 * time.Second

// retryAfterSeconds is the Retry-After header value for d: whole seconds,
// rounded up, within [minRetryAfter, maxRetryAfter]; retryAfter for 0.
func retryAfterSeconds(d time.Duration) string {
	if d <= 0 {
		d = retryAfter
	}
	return strconv.Itoa(int((boundRetryAfter(d) + time.Second - 1) / time.Second))
}

// challenge sets the RFC 6750 §3 WWW-Authenticate header; the realm is
// left out when empty.
func challenge(w http.ResponseWriter, realm string, e *Error, scope string) {
	params := challengeParams(realm, e, scope)
	v := "Bearer"
	if len(params) > 0 {
		v += " " + strings.Join(params, ", ")
	}
	w.Header().Set("WWW-Authenticate", v)
}

// challengeParams are the auth-params of a challenge (RFC 6750 §3, RFC
// 9449 §7.1): realm, error and error_description if e has a code, and
// scope, each left out when empty.
func challengeParams(realm string, e *Error, scope string) []string {
	var params []string
	if realm != "" {
		params = append(params, `realm="`+quote(realm)+`"`)
	}
	if e != nil && e.Code != "" {
		params = append(params, `error="`+e.Code+`"`, `error_description="`+oauth2.DescriptionText(e.Description)+`"`)
	}
	if scope != "" {
		params = append(params, `scope="`+quote(scope)+`"`)
	}
	return params
}

// quoter escapes a quoted-string's backslashes and quotes (RFC 9110
// §5.6.4): built once, as a Replacer builds its tables on first use, and
// safe for concurrent use.
var quoter = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

func quote(s string) string { return quoter.Replace(s) }

// writeError writes the JSON body of a refusal: the same error code as the
// challenge, and its description as the challenge's, kept to the
// characters RFC 6749 §5.2 allows (oauth2.DescriptionText). A request
// without a token gets {}: as its challenge, no error code or other
// error information (RFC 6750 §3.1); the description is for OnError.
func writeError(w http.ResponseWriter, status int, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body := map[string]string{}
	if e.Code != "" {
		body["error"], body["error_description"] = e.Code, oauth2.DescriptionText(e.Description)
	}
	json.NewEncoder(w).Encode(body)
}

// RequireScopes lets a request through only if its token (verified by
// Middleware) carries every one of scopes; otherwise 403 insufficient_scope
// naming them (RFC 6750 §3.1), in a challenge with Middleware's realm.
// Of an opaque token for several APIs, only this API's scopes are known
// (see Claims): require this API's own.
func RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	need := strings.Join(scopes, " ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, ok := r.Context().Value(ctxKey{}).(*verified)
			if !ok {
				e := &Error{Code: "invalid_token", Description: "no verified token: put verify.Middleware first"}
				challenge(w, "", e, need)
				writeError(w, http.StatusUnauthorized, e)
				return
			}
			for _, s := range scopes {
				if !v.claims.HasScope(s) {
					v.insufficientScope(w, r, "the token lacks the scope "+s, need)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// insufficientScope answers 403 insufficient_scope naming scope (RFC 6750
// §3.1), in a challenge of the scheme the token came with: DPoP for a
// DPoP-bound token (RFC 9449 §7.1), else Bearer.
func (v *verified) insufficientScope(w http.ResponseWriter, r *http.Request, desc, scope string) {
	e := &Error{Code: "insufficient_scope", Description: desc}
	if v.onError != nil {
		v.onError(r, e)
	}
	if v.dpop {
		// dpopChallenge knows a refusal that concerns DPoP by its mark;
		// e, unmarked, stays on the stack for the Bearer answer.
		dpopChallenge(w, v.realm, dpopError(e.Code, e.Description, nil), scope)
	} else {
		challenge(w, v.realm, e, scope)
	}
	writeError(w, http.StatusForbidden, e)
}
