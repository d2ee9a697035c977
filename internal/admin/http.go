package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/tokenstate"
)

// TokenResolver identifies a Keyward access token, JWT or opaque, and
// says whether it is still active (not expired or revoked, its account,
// key or secret still enabled).
type TokenResolver interface {
	Resolve(ctx context.Context, raw string) (tokenstate.Info, error)
}

// PeerCertificates finds the client certificate a request came with: on
// the connection, or forwarded by a trusted proxy.
type PeerCertificates interface {
	PeerCertificate(r *http.Request) (*x509.Certificate, error)
}

// SigningKeys manages the server's signing keys. When Rotate fails because
// the stored keys are sealed under another master key than the server's,
// its error (or one it wraps) has a WrongMasterKey method that reports true,
// as signer.ErrWrongMasterKey does.
type SigningKeys interface {
	Rotate(ctx context.Context, actor, source string) error
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
}

// wrongMasterKeyError is an error that says whether it means a sealed key
// could not be opened with this server's master key.
type wrongMasterKeyError interface {
	error
	WrongMasterKey() bool
}

// isWrongMasterKey reports whether err, or an error it wraps, is a
// wrongMasterKeyError that says so.
func isWrongMasterKey(err error) bool {
	var w wrongMasterKeyError
	return errors.As(err, &w) && w.WrongMasterKey()
}

// Handler serves the admin REST API under /v1/. Every request needs a
// Keyward access token for the built-in API with the keyward.admin scope.
type Handler struct {
	svc     *Service
	tokens  TokenResolver
	certs   PeerCertificates
	signing SigningKeys
	journal Journal
	issuer  string
	log     *slog.Logger
	// throttle bounds the refusals of requests that did not
	// authenticate, and so their audit events, per source address.
	throttle refusalThrottle
	// onThrottle is called for each request the throttle answers 429.
	onThrottle func()
	// observer records each request, for metrics.
	observer Observer
	// stopping is closed when the server shuts down, ending long polls.
	stopping chan struct{}
	stopOnce sync.Once
	// unreadable holds the seqs of the audit events whose unreadable data
	// or time auditViews logged: each is logged once, not on every page.
	unreadable seqsLogged
}

// Observer records admin API requests, for metrics. Its label values
// come from closed sets: route patterns, not paths.
type Observer interface {
	// ObserveAdminRequest records one request: route is the path of the
	// route pattern that served it ("/v1/service-accounts/{sa}"), or
	// UnmatchedRoute; status is the HTTP status answered.
	ObserveAdminRequest(route, method string, status int, d time.Duration)
}

// UnmatchedRoute is the route an Observer is given for the requests no
// admin route matches (the catch-all's 404 or 405), whatever their path:
// paths are the caller's to choose, and each would be a series of its
// own.
const UnmatchedRoute = "unmatched"

type nopObserver struct{}

func (nopObserver) ObserveAdminRequest(string, string, int, time.Duration) {}

// NewHandler returns the admin API handler. Its refusals are recorded
// through journal (see refused); onThrottle, if not nil, is called for
// each request answered 429 because its source was refused too often;
// observer, if not nil, records every request.
func NewHandler(svc *Service, tokens TokenResolver, certs PeerCertificates, signing SigningKeys, journal Journal, issuer string, log *slog.Logger, onThrottle func(), observer Observer) *Handler {
	if onThrottle == nil {
		onThrottle = func() {}
	}
	if observer == nil {
		observer = nopObserver{}
	}
	return &Handler{svc: svc, tokens: tokens, certs: certs, signing: signing, journal: journal, issuer: issuer, log: log,
		throttle: newRefusalThrottle(svc.cfg.Now), onThrottle: onThrottle, observer: observer, stopping: make(chan struct{})}
}

// StopWaiting ends the long polls in progress and makes later ones answer
// at once, so that a graceful shutdown need not wait for them. Register it
// with http.Server.RegisterOnShutdown.
func (h *Handler) StopWaiting() { h.stopOnce.Do(func() { close(h.stopping) }) }

// Register mounts the admin routes on mux, and a catch-all for the rest of
// /v1/ that answers 405 or 404. A new route goes in routes, where
// TestAdminAPIDocumented holds docs/ADMIN-API.md to it, not here.
func (h *Handler) Register(mux *http.ServeMux) {
	for pattern, handler := range h.routes() {
		_, route, _ := strings.Cut(pattern, " ")
		mux.Handle(pattern, h.observed(route, handler))
	}
	unmatched := h.observed(UnmatchedRoute, h.endpoint(func(r *http.Request, _ Actor) (int, any, error) {
		if r.Pattern == "/v1/" {
			if err := oauth2.MethodNotAllowed(mux, r, "/v1/"); err != nil {
				return 0, nil, err
			}
		}
		// The path as sent: decoded, /v1/x/%2F/y would read /v1/x///y.
		return 0, nil, notFound("There is no admin endpoint %s %s.", oauth2.Truncate(r.Method, 16), oauth2.ShownRequestPath(r, 200))
	}))
	mux.Handle("/v1/", unmatched)
	// /v1 itself too, which the ServeMux would redirect to /v1/ before any
	// token was asked for.
	mux.Handle("/v1", unmatched)
}

// isUnmatched reports whether r came to the catch-all: no admin route
// has its path.
func isUnmatched(r *http.Request) bool { return r.Pattern == "/v1/" || r.Pattern == "/v1" }

// observed reports each request next serves to h.observer under route,
// with the status it answered: 500 if it panicked before answering (the
// server's recoverPanics answers that).
func (h *Handler) observed(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		returned := false
		defer func() {
			status := sw.status
			if status == 0 {
				status = http.StatusOK
				if !returned {
					status = http.StatusInternalServerError
				}
			}
			h.observer.ObserveAdminRequest(route, r.Method, status, time.Since(start))
		}()
		next.ServeHTTP(sw, r)
		returned = true
	})
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath, for the
// long poll's write deadline.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routes returns the admin routes, pattern to handler: every one that
// Register mounts but the catch-all. docs/ADMIN-API.md documents each.
func (h *Handler) routes() map[string]http.Handler {
	routes := map[string]func(*http.Request, Actor) (int, any, error){
		"GET /v1/apis":                                        h.listAPIs,
		"POST /v1/apis":                                       h.createAPI,
		"GET /v1/apis/{name}":                                 h.getAPI,
		"DELETE /v1/apis/{name}":                              h.deleteAPI,
		"PATCH /v1/apis/{name}":                               h.updateAPI,
		"POST /v1/service-accounts/{sa}/revoke-tokens":        h.revokeAccountTokens,
		"POST /v1/tokens/revoke":                              h.revokeToken,
		"GET /v1/service-accounts":                            h.listAccounts,
		"POST /v1/service-accounts":                           h.createAccount,
		"GET /v1/service-accounts/{sa}":                       h.getAccount,
		"PATCH /v1/service-accounts/{sa}":                     h.updateAccount,
		"DELETE /v1/service-accounts/{sa}":                    h.deleteAccount,
		"POST /v1/service-accounts/{sa}/disable":              h.disableAccount,
		"POST /v1/service-accounts/{sa}/enable":               h.enableAccount,
		"GET /v1/service-accounts/{sa}/keys":                  h.listKeys,
		"POST /v1/service-accounts/{sa}/keys":                 h.createKey,
		"POST /v1/service-accounts/{sa}/keys/upload":          h.uploadKey,
		"GET /v1/service-accounts/{sa}/keys/{kid}":            h.getKey,
		"DELETE /v1/service-accounts/{sa}/keys/{kid}":         h.deleteKey,
		"POST /v1/service-accounts/{sa}/keys/{kid}/disable":   h.disableKey,
		"POST /v1/service-accounts/{sa}/keys/{kid}/enable":    h.enableKey,
		"GET /v1/service-accounts/{sa}/secrets":               h.listSecrets,
		"POST /v1/service-accounts/{sa}/secrets":              h.createSecret,
		"GET /v1/service-accounts/{sa}/secrets/{id}":          h.getSecret,
		"DELETE /v1/service-accounts/{sa}/secrets/{id}":       h.deleteSecret,
		"POST /v1/service-accounts/{sa}/secrets/{id}/disable": h.disableSecret,
		"POST /v1/service-accounts/{sa}/secrets/{id}/enable":  h.enableSecret,
		"GET /v1/signing-keys":                                h.listSigningKeys,
		"POST /v1/signing-keys/rotate":                        h.rotateSigningKeys,
	}
	h.registerDelegation(routes)
	out := make(map[string]http.Handler, len(routes)+2)
	for pattern, fn := range routes {
		out[pattern] = h.endpoint(fn)
	}
	out["GET /v1/audit"] = longPoll(h.endpoint(h.listAudit))
	out["GET /v1/whoami"] = h.callerEndpoint(h.whoAmI)
	return out
}

// conditional are the routes that evaluate If-Match.
var conditional = map[string]bool{
	"PATCH /v1/service-accounts/{sa}":                     true,
	"DELETE /v1/service-accounts/{sa}":                    true,
	"POST /v1/service-accounts/{sa}/disable":              true,
	"POST /v1/service-accounts/{sa}/enable":               true,
	"PATCH /v1/apis/{name}":                               true,
	"DELETE /v1/apis/{name}":                              true,
	"PATCH /v1/orgs/{domain}":                             true,
	"DELETE /v1/orgs/{domain}":                            true,
	"PUT /v1/orgs/{domain}/projects/{project}":            true,
	"DELETE /v1/orgs/{domain}/projects/{project}":         true,
	"DELETE /v1/service-accounts/{sa}/keys/{kid}":         true,
	"POST /v1/service-accounts/{sa}/keys/{kid}/disable":   true,
	"POST /v1/service-accounts/{sa}/keys/{kid}/enable":    true,
	"DELETE /v1/service-accounts/{sa}/secrets/{id}":       true,
	"POST /v1/service-accounts/{sa}/secrets/{id}/disable": true,
	"POST /v1/service-accounts/{sa}/secrets/{id}/enable":  true,
}

// untagged are the routes of the resources that have no ETag, users and
// delegations, each with the resource its refusal of If-Match names.
var untagged = map[string]string{
	"GET /v1/orgs/{domain}/users":                      "user",
	"POST /v1/orgs/{domain}/users":                     "user",
	"POST /v1/users":                                   "user",
	"POST /v1/users/{email}/suspend":                   "user",
	"POST /v1/users/{email}/unsuspend":                 "user",
	"DELETE /v1/users/{email}":                         "user",
	"GET /v1/orgs/{domain}/delegations":                "delegation",
	"PUT /v1/orgs/{domain}/delegations/{client_id}":    "delegation",
	"DELETE /v1/orgs/{domain}/delegations/{client_id}": "delegation",
}

// refuseIfMatch is the 400 of a request with If-Match to the route
// pattern, which does not evaluate it.
func refuseIfMatch(pattern string) error {
	switch untagged[pattern] {
	case "user":
		return invalid("Users have no ETag, so a request about them cannot be made conditional: If-Match is refused rather than ignored. Send the request without If-Match; it is then made whatever the users' state (GET /v1/orgs/{domain}/users shows it as it is now).")
	case "delegation":
		return invalid("Delegations have no ETag, so a request about them cannot be made conditional: If-Match is refused rather than ignored. Send the request without If-Match; a PUT then sets the delegation's scopes whatever they were, a DELETE removes it (GET /v1/orgs/{domain}/delegations shows them as they are now).")
	}
	return invalid("Only PATCH of a service account, an API or an organization; DELETE of a service account, an API, an organization, a key or a secret; disabling or enabling a service account, a key or a secret; and placing, moving or removing an organization's project take If-Match; send this request without it.")
}

// requestTimeout bounds an admin request, its authentication included,
// which no client's deadline reaches the server: a change that waits on
// a lock (a psql session holding an account's row, a replica's
// transaction stuck on a dead connection), or any request on a store
// that does not answer, is given up and answered 503 (a change rolled
// back), within the server's 30-second write timeout, instead of holding
// its locks, and the locks of the changes queued behind it, or a
// connection of the store's pool, for as long as the other holds its or
// the connection takes to fail. A long poll of the audit log (GET
// /v1/audit with wait) is bounded so until it starts to wait: the wait,
// up to the maxAuditWait it asked for, has its own deadline (see
// unbounded).
var requestTimeout = 20 * time.Second

// unboundedKey keys, in a request's bounded context, the request's own
// context, without requestTimeout.
type unboundedKey struct{}

// unbounded returns the context of r without requestTimeout, for a long
// poll's wait, which sets its own deadline. It still ends when the
// client hangs up or the server shuts down.
func unbounded(r *http.Request) context.Context {
	if ctx, ok := r.Context().Value(unboundedKey{}).(context.Context); ok {
		return ctx
	}
	return r.Context()
}

// endpoint wraps an admin operation with authentication and JSON encoding.
func (h *Handler) endpoint(fn func(*http.Request, Actor) (int, any, error)) http.Handler {
	return h.callerEndpoint(func(r *http.Request, c caller) (int, any, error) { return fn(r, c.Actor) })
}

// callerEndpoint is endpoint for an operation that needs to know more of
// its caller than the Actor changes are audited as: the account and the
// token.
func (h *Handler) callerEndpoint(fn func(*http.Request, caller) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Bounded from the start: the reads that authenticate a request
		// wait on the store as its own do.
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), unboundedKey{}, r.Context()), requestTimeout)
		defer cancel()
		fr := r.WithContext(ctx)
		// A body the client stalls sending is given up in time for its
		// refusal to be recorded within the bound.
		oauth2.BoundBodyRead(w, fr)
		c, err := h.authenticate(fr)
		if err == nil {
			err = checkText(r)
		}
		if err == nil && len(r.Header.Values("If-Match")) > 0 && !conditional[r.Pattern] && !isUnmatched(r) {
			// RFC 9110 §13.1.1: a server must evaluate If-Match or not
			// act; these routes do not, so they do not act. The
			// catch-all acts on nothing: its 404 or 405 says what is
			// wrong with the request.
			err = refuseIfMatch(r.Pattern)
		}
		if err == nil && len(r.Header.Values("If-None-Match")) > 0 && r.Method != http.MethodGet && r.Method != http.MethodHead && !isUnmatched(r) {
			// RFC 9110 §13.1.2: a change sent with If-None-Match is made
			// only if no current version matches it, or 412. No route
			// evaluates it, so none acts. (A GET or HEAD is answered in
			// full, which a condition that held would have asked for.)
			err = invalid("The admin API does not evaluate If-None-Match, so a change sent with it is refused rather than made as if the condition held. Send it without If-None-Match; to make a change conditional, send If-Match with the ETag of a GET.")
		}
		if err == nil {
			var (
				status int
				body   any
			)
			status, body, err = fn(fr, c)
			if err == nil {
				if t, ok := body.(tagged); ok {
					w.Header().Set("ETag", t.etag)
					body = t.body
				}
				if body == nil {
					// A DELETE's 204: no JSON, but no cache keeps
					// it either (RFC 9111 §4.2.2 would by heuristics).
					w.Header().Set("Cache-Control", "no-store")
					w.WriteHeader(status)
					return
				}
				oauth2.WriteJSON(w, status, body)
				return
			}
		}
		oe := oauth2.AsError(err)
		if oe.Code == oauth2.ErrServerError {
			// What the service does not name is the store failing, or a
			// bug: retryable as far as the caller can tell, as at /token.
			// A caller that hung up is no failure of the server's, and
			// is said as what it is: its cause is "context canceled".
			level, msg := slog.LevelError, "admin request failed"
			if r.Context().Err() != nil {
				level, msg = slog.LevelInfo, "admin request canceled: the client hung up before the answer"
			}
			h.log.Log(r.Context(), level, msg, "method", oauth2.Truncate(r.Method, 16), "path", oauth2.ShownRequestPath(r, maxAuditPath), "err", err)
			oe = oauth2.Unavailable("The server cannot complete the request right now; try again later.")
		}
		if st := oe.HTTPStatus(); st >= 400 && st < 500 {
			// Every refused request is recorded before it is answered,
			// within the request's bound.
			oe = h.refused(fr, c, oe)
		}
		oauth2.WriteErrorVerbatim(w, oe)
	})
}

// checkText refuses a path or query that is not UTF-8 text without NUL
// characters: names and IDs are text, and PostgreSQL cannot even compare
// what is not. It refuses a query that is not URL encoding too: the
// parameters Query would drop from it (a bad escape, a semicolon) would
// otherwise be ignored, a project or account filter with them, and a
// listing would show everything. And it refuses a parameter given twice,
// of which Get would read the first and ignore the other, as if a
// listing filtered by both.
func checkText(r *http.Request) error {
	if !oauth2.IsText(r.URL.Path) {
		return invalid("The request path is not UTF-8 text without NUL characters.")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return invalid("The query is not valid URL encoding (a %% not followed by two hex digits, or a semicolon): write %% as %%25 and ; as %%3B.")
	}
	for k, vs := range q {
		for _, v := range vs {
			if !oauth2.IsText(k) || !oauth2.IsText(v) {
				return invalid("The query parameter %s is not UTF-8 text without NUL characters.", quoteClip(strings.ToValidUTF8(k, "?")))
			}
		}
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return invalid("The query parameter %s is given more than once; give it once.", quoteClip(k))
		}
	}
	return nil
}

// caller is who sent an admin request: the administrator's account and
// the access token it came with.
type caller struct {
	Actor
	account storage.Account
	token   tokenstate.Info
}

// authenticate checks the bearer token (RFC 6750 §2.1): an active Keyward
// access token, JWT or opaque, for the built-in API, carrying the admin
// scope, of an account that is still an administrator.
func (h *Handler) authenticate(r *http.Request) (caller, error) {
	// A refusal carries why, for its audit event (see refused).
	var failed authFailure
	fail := func(reason string, e *oauth2.Error) (caller, error) {
		failed.reason = reason
		return caller{}, e.WithCause(&failed)
	}
	challenge := func(code, desc string) *oauth2.Error {
		status := http.StatusUnauthorized
		if code == oauth2.ErrInvalidRequest {
			status = http.StatusBadRequest // RFC 6750 §3.1
		}
		return &oauth2.Error{Code: code, Description: desc, Status: status, Header: http.Header{
			"Www-Authenticate": {`Bearer realm="keyward", error="` + code + `", error_description="` + desc + `"`}}}
	}
	if len(r.Header.Values("Authorization")) > 1 {
		// Which one counts would be a guess, and a proxy before this
		// server may have guessed otherwise: refused, as at /token.
		return fail(reasonMalformed, challenge(oauth2.ErrInvalidRequest, "The request has more than one Authorization header; send one."))
	}
	auth := r.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(auth, " ")
	if auth == "" || !strings.EqualFold(scheme, "Bearer") {
		// RFC 6750 §3.1: a request without a bearer token (none, or
		// credentials of another scheme) gets a bare challenge.
		return fail(reasonNoToken, &oauth2.Error{Code: oauth2.ErrInvalidToken, Status: http.StatusUnauthorized,
			Description: "The admin API needs an access token with the keyward.admin scope: Authorization: Bearer <token>.",
			Header:      http.Header{"Www-Authenticate": {`Bearer realm="keyward"`}}})
	}
	raw, ok := oauth2.AuthToken(raw)
	if !ok {
		return fail(reasonMalformed, challenge(oauth2.ErrInvalidRequest, "The Authorization header must be: Bearer <token>."))
	}
	// Revoking the token, the account's tokens, or the key or secret it
	// was obtained with takes effect at once, as at introspection.
	info, err := h.tokens.Resolve(r.Context(), raw)
	if errors.Is(err, tokenstate.ErrUnknown) {
		return fail(reasonUnknown, challenge(oauth2.ErrInvalidToken, "The access token is not valid."))
	}
	if err != nil {
		return caller{}, err
	}
	failed.clientID = oauth2.Truncate(info.Claims.ClientID, 128)
	if !info.Active {
		return fail(reasonInactive, challenge(oauth2.ErrInvalidToken, "The access token is no longer active ("+info.Reason+")."))
	}
	c := info.Claims
	if c.Confirmation != nil && c.Confirmation.JKT != "" {
		// A DPoP-bound token (RFC 9449 §7.2) counts only with a proof of its
		// key, which the admin API does not check: whoever holds only the
		// token may not use it.
		return fail(reasonDPoP, challenge(oauth2.ErrInvalidToken, "The access token is bound to a DPoP key, which the admin API does not accept: request a token without a DPoP proof."))
	}
	if c.Actor != nil {
		// A token of domain-wide delegation acts for a user: the audit log
		// would name the account for what the user's token did.
		return fail(reasonDelegated, challenge(oauth2.ErrInvalidToken, "The access token acts for a user (domain-wide delegation); the admin API takes an administrator's own token."))
	}
	if c.Confirmation != nil && c.Confirmation.X5TS256 != "" {
		// A certificate-bound token (RFC 8705 §3) counts only with its
		// certificate.
		cert, err := h.certs.PeerCertificate(r)
		if err != nil {
			// The one a trusted proxy forwarded does not parse: the
			// proxy's doing, which the log already tells of.
			return fail(reasonCertificate, challenge(oauth2.ErrInvalidToken, "The access token is bound to a client certificate, and the certificate the proxy in front of this server forwarded could not be read; the server's log says why."))
		}
		if cert == nil || oauth2.Thumbprint(cert) != c.Confirmation.X5TS256 {
			return fail(reasonCertificate, challenge(oauth2.ErrInvalidToken, "The access token is bound to a client certificate; present that certificate (RFC 8705)."))
		}
	}
	if !c.Audience.Contains(BuiltinAPIIdentifier) || !slices.Contains(strings.Fields(c.Scope), AdminScope) {
		return fail(reasonScope, &oauth2.Error{
			Code: oauth2.ErrInsufficientScope, Description: "The access token lacks the keyward.admin scope.", Status: http.StatusForbidden,
			Header: http.Header{"Www-Authenticate": {`Bearer realm="keyward", error="insufficient_scope", scope="` + AdminScope + `"`}},
		})
	}
	if len(c.Audience) > 1 {
		// A token got with keyward.admin and another API's scopes goes to
		// that API too, which could replay it here as the administrator.
		return fail(reasonAudiences, otherAudiences(c.Audience))
	}
	// Disabling or deleting an administrator takes effect at once.
	a, err := h.svc.store.GetAccount(r.Context(), c.ClientID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (a.Disabled || !slices.Contains(a.Scopes, AdminScope))) {
		return fail(reasonNotAdmin, challenge(oauth2.ErrInvalidToken, "The account of the access token is disabled, deleted or no longer an administrator."))
	}
	if err != nil {
		return caller{}, err
	}
	return caller{Actor: Actor{ID: a.ID, Source: oauth2.RemoteIP(r)}, account: a, token: info}, nil
}

// otherAudiences is the 401 of an admin token also meant for other APIs
// than the admin API, aud. The description names up to three of them;
// the challenge's, in a header where an identifier's quotes would end the
// parameter (RFC 6750 §3), names none.
func otherAudiences(aud oauth2.Audience) *oauth2.Error {
	const fix = "request an admin token with keyward.admin alone, or with resource=" + BuiltinAPIIdentifier + " (RFC 8707)."
	var others []string
	for _, a := range aud {
		if a != BuiltinAPIIdentifier {
			others = append(others, a)
		}
	}
	named := make([]string, 0, 4)
	for _, a := range others[:min(len(others), 3)] {
		named = append(named, oauth2.QuoteShort(a))
	}
	if n := len(others) - len(named); n > 0 {
		named = append(named, fmt.Sprintf("and %d more", n))
	}
	return &oauth2.Error{Code: oauth2.ErrInvalidToken, Status: http.StatusUnauthorized,
		Description: "The access token is also meant for other APIs (" + strings.Join(named, ", ") + "), which could replay it here; " + fix,
		Header:      http.Header{"Www-Authenticate": {`Bearer realm="keyward", error="invalid_token", error_description="The access token is also meant for other APIs, which could replay it here; ` + fix + `"`}}}
}

// MaxBodyBytes bounds an admin request body.
const MaxBodyBytes = 1 << 20

// decode reads a JSON request body into v: one JSON value and nothing after
// it but white space, without unknown fields, of at most MaxBodyBytes.
func decode(r *http.Request, v any) error {
	return decodeBody(r, v, false)
}

// decodeOptional is decode for an endpoint whose body may be left out: an
// empty body, or one of JSON's white space alone (space, tab, CR, LF),
// leaves v as it is, whether it came with Content-Length: 0 or chunked.
func decodeOptional(r *http.Request, v any) error {
	return decodeBody(r, v, true)
}

// jsonSpace is the white space JSON allows around a value (RFC 8259 §2):
// not bytes.TrimSpace's, which takes a form feed or a no-break space too.
const jsonSpace = " \t\r\n"

func decodeBody(r *http.Request, v any, optional bool) error {
	// A compressed body would be read as JSON and refused for what it
	// looks like then (a NUL character, say): say what is wrong instead,
	// as the token endpoint does (RFC 9110 §15.5.16).
	if ce := oauth2.Compression(r.Header); ce != "" {
		return &oauth2.Error{Code: oauth2.ErrInvalidRequest, Status: http.StatusUnsupportedMediaType,
			Description: fmt.Sprintf("The request body must not be compressed (Content-Encoding %s): send the JSON uncompressed.", quoteClip(ce))}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		// The read's error (a stalled body's i/o timeout, say) is for the
		// log, as the token endpoint's: the client is told only this.
		return oauth2.Errorf(oauth2.ErrInvalidRequest, "The request body could not be read.").WithCause(err)
	}
	if len(body) > MaxBodyBytes {
		return &oauth2.Error{Code: oauth2.ErrInvalidRequest, Status: http.StatusRequestEntityTooLarge,
			Description: fmt.Sprintf("The request body is larger than %d bytes (1 MiB), the most the admin API reads in one request; send a smaller body (a long list of users in several requests).", MaxBodyBytes)}
	}
	if hasNUL(body) {
		if field := nulField(body); field != "" {
			return invalid("The field %s of the request body contains a NUL character, which Keyward does not store; remove it.", quoteClip(field))
		}
		return invalid("The request body contains a NUL character.")
	}
	if len(bytes.Trim(body, jsonSpace)) == 0 {
		if optional {
			return nil
		}
		return invalid("The request body is empty; send a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("%s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("The request body has more after the JSON value; send exactly one JSON object.")
	}
	if p := memberProblem(body, v); p != "" {
		return invalid("%s", p)
	}
	return nil
}

// memberProblem describes a member of the JSON body, which decoded into
// v, that encoding/json took though the API does not: a field's name in
// another case (it matches names case-insensitively), or a field given
// twice in one object (it keeps the last). Either way a proxy or policy
// in front of the server that read the body as written would have
// checked something else than is applied. It returns "" if there is none.
func memberProblem(body []byte, v any) string {
	names := map[string]bool{}
	jsonFieldNames(reflect.TypeOf(v), names, map[reflect.Type]bool{})
	var seen []map[string]bool // by depth: the names of the object open there
	var problem string
	walkJSON(body, func(depth int, first bool, name string) bool {
		for len(seen) <= depth {
			seen = append(seen, nil)
		}
		if first {
			seen[depth] = map[string]bool{}
		}
		if !names[name] {
			for known := range names {
				if strings.EqualFold(known, name) {
					problem = fmt.Sprintf("The request body has a field this endpoint does not take: %s (field names are case-sensitive: %q).", quoteClip(name), known)
					return true
				}
			}
		} else if seen[depth][name] {
			problem = fmt.Sprintf("The request body has the field %q more than once in one object; give it once.", name)
			return true
		}
		seen[depth][name] = true
		return false
	}, nil)
	return problem
}

// walkJSON reads the JSON document body token by token, to its end or
// to the first token it cannot read, and stops early when a call
// returns true. It calls member, if not nil, with each name of an
// object's member, the object's depth (how many arrays and objects
// enclose it) and whether the name is the object's first; and value,
// if not nil, with each other token that is not a delimiter, and the
// name of the member of the innermost object it is in (an array's
// elements being its member's), "" when none.
func walkJSON(body []byte, member func(depth int, first bool, name string) (stop bool), value func(tok json.Token, name string) (stop bool)) {
	type frame struct {
		object, wantName, named bool
		name                    string // the innermost object's member being read
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		n := len(stack)
		switch tok {
		case json.Delim('{'), json.Delim('['):
			f := frame{object: tok == json.Delim('{'), wantName: tok == json.Delim('{')}
			if !f.object && n > 0 {
				f.name = stack[n-1].name
			}
			stack = append(stack, f)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:n-1]
		default:
			if n > 0 && stack[n-1].object && stack[n-1].wantName {
				f := &stack[n-1]
				name, _ := tok.(string)
				if member != nil && member(n-1, !f.named, name) {
					return
				}
				f.name, f.named, f.wantName = name, true, false
				continue
			}
			name := ""
			if n > 0 {
				name = stack[n-1].name
			}
			if value != nil && value(tok, name) {
				return
			}
		}
		// A value ended: the object it is in wants its next member's name.
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantName = true
		}
	}
}

// jsonFieldNames adds to names the JSON names of the struct fields that
// values of t, and of the types in it, decode from.
func jsonFieldNames(t reflect.Type, names map[string]bool, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) ||
		reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return
	}
	seen[t] = true
	for _, sf := range reflect.VisibleFields(t) {
		if !sf.IsExported() || sf.Anonymous && sf.Tag.Get("json") == "" {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		names[name] = true
		jsonFieldNames(sf.Type, names, seen)
	}
}

// jsonProblem describes err, from decoding a request body, by the JSON
// the client sent and the JSON wanted, not by the Go types it was to be
// decoded into.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("The request body is not valid JSON: %s (at byte %d).", syntax.Error(), syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "The request body is not valid JSON: it ends in the middle of a value."
	case errors.As(err, &typ):
		want, got := jsonTypeMismatch(typ)
		if typ.Field == "" {
			return fmt.Sprintf("The request body must be %s, not %s.", want, got)
		}
		return fmt.Sprintf("The field %q of the request body must be %s, not %s.", typ.Field, want, got)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if u, err := strconv.Unquote(name); err == nil {
			name = quoteClip(u) // a name of 1 MiB is not echoed back whole
		}
		return fmt.Sprintf("The request body has a field this endpoint does not take: %s.", name)
	}
	return fmt.Sprintf("The request body is not valid JSON for this endpoint: %s.", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonTypeMismatch names the JSON values that typ wanted and the one it
// got.
func jsonTypeMismatch(typ *json.UnmarshalTypeError) (want, got string) {
	got = typ.Value
	switch {
	case strings.HasPrefix(got, "number "):
		got = strings.TrimPrefix(got, "number ")
	case got == "array" || got == "object":
		got = "an " + got
	case got == "bool":
		got = "true or false"
	default:
		got = "a " + got
	}
	want = jsonKind(typ.Type)
	if strings.HasPrefix(want, "a whole number") && strings.ContainsAny(got, ".eE") {
		// Its range is not what is wrong with 1.5, and 1.0 or 1e3 is a
		// whole number, only not written as one that decodes.
		want = "a whole number, in digits without a point or an exponent"
	}
	// A number, as sent: one of 1 MiB is not echoed back whole.
	return want, clip(got, func(s string) string { return s })
}

// jsonKind names the JSON values that decode into t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return "a string" // time.Time, for one
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		most := int64(math.MaxInt64) >> (64 - t.Bits())
		return fmt.Sprintf("a whole number from %d to %d", -most-1, most)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "a JSON object"
	}
	return "another kind of JSON value"
}

// hasNUL reports whether JSON data holds a NUL character, raw or as
// a JSON \u0000 escape: nothing Keyward stores has a use for one, and
// PostgreSQL cannot store it.
func hasNUL(data []byte) bool {
	if bytes.IndexByte(data, 0) >= 0 {
		return true
	}
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(`u0000`))
		if j < 0 {
			return false
		}
		i += j
		slashes := 0
		for k := i - 1; k >= 0 && data[k] == '\\'; k-- {
			slashes++
		}
		if slashes%2 == 1 { // an escape, not an escaped backslash and "u0000"
			return true
		}
		i++
	}
}

// nulField names the field of the JSON object body whose string value
// holds a NUL character (a \u0000 escape): the innermost member's name,
// an array's elements being its member's. It returns "" when it cannot
// name one: a raw NUL, which is no JSON, a NUL in a member's name, or
// body not JSON. json.Valid looks first, as it takes no body nested
// deeper than JSON decoding does (10000 levels), of which the frames
// below took some 170 MB for a 1 MiB body of '['.
func nulField(body []byte) string {
	if !json.Valid(body) {
		return ""
	}
	var field string
	walkJSON(body, func(_ int, _ bool, name string) bool {
		return strings.IndexByte(name, 0) >= 0
	}, func(tok json.Token, name string) bool {
		if s, _ := tok.(string); strings.IndexByte(s, 0) >= 0 {
			field = name
			return true
		}
		return false
	})
	return field
}

// clientIDRE matches a client ID, as a page token of the account listing.
var clientIDRE = regexp.MustCompile(`^[0-9]{1,64}$`)

// --- JSON views ---

// APIView is an API as the admin API shows it.
type APIView struct {
	Name          string    `json:"name"`
	Identifier    string    `json:"identifier"`
	Description   string    `json:"description"`
	Scopes        []string  `json:"scopes"`
	TokenFormat   string    `json:"token_format"`
	Introspectors []string  `json:"introspectors"`
	CreatedAt     time.Time `json:"created_at"`
}

func apiView(a storage.API) APIView {
	if a.Introspectors == nil {
		a.Introspectors = []string{}
	}
	return APIView{a.Name, a.Identifier, a.Description, a.Scopes, a.TokenFormat, a.Introspectors, a.CreatedAt}
}

// AccountView is a service account as the admin API shows it.
type AccountView struct {
	ClientID             string   `json:"client_id"`
	Email                string   `json:"email"`
	Name                 string   `json:"name"`
	Project              string   `json:"project"`
	DisplayName          string   `json:"display_name"`
	Description          string   `json:"description"`
	Scopes               []string `json:"scopes"`
	TokenLifetimeSeconds int64    `json:"token_lifetime_seconds"`
	AuthMethods          []string `json:"auth_methods"`
	// TLS is the certificate subject tls_client_auth accepts, if any.
	TLS *storage.TLSBinding `json:"tls_binding,omitempty"`
	// TokenFormat overrides the APIs' token format when set.
	TokenFormat string `json:"token_format,omitempty"`
	// TokensRevokedBefore: every token issued before it is revoked.
	TokensRevokedBefore *time.Time `json:"tokens_revoked_before,omitempty"`
	// CertTokensRevokedBefore: every token issued before it to a client
	// that authenticated with a CA-issued certificate (tls_client_auth) is
	// revoked; a change of the certificate binding sets it.
	CertTokensRevokedBefore *time.Time `json:"cert_tokens_revoked_before,omitempty"`
	Disabled                bool       `json:"disabled"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

func accountView(a storage.Account) AccountView {
	v := AccountView{
		ClientID: a.ID, Email: a.Email, Name: a.Name, Project: a.Project, DisplayName: a.DisplayName, Description: a.Description,
		Scopes: a.Scopes, TokenLifetimeSeconds: int64(a.TokenLifetime / time.Second), AuthMethods: a.AuthMethods,
		TokenFormat: a.TokenFormat, TokensRevokedBefore: timePtr(a.TokensRevokedBefore),
		CertTokensRevokedBefore: timePtr(a.CertTokensRevokedBefore), Disabled: a.Disabled,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
	if !a.TLS.IsZero() {
		v.TLS = &a.TLS
	}
	return v
}

// SecretView is a client secret's metadata; the value is shown only once,
// in the response that creates it.
type SecretView struct {
	SecretID   string     `json:"secret_id"`
	Hint       string     `json:"hint"`
	Disabled   bool       `json:"disabled"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// Secret is the value, only in the response that creates it.
	Secret string `json:"client_secret,omitempty"`
	// ClientID is the account's client ID, next to the new secret.
	ClientID string `json:"client_id,omitempty"`
	// ETag is the secret's entity tag (the ETag header of its GET), only
	// in the list, where there is no header for each: a client that shows
	// the list sends it as If-Match of a change of the secret.
	ETag string `json:"etag,omitempty"`
}

func secretView(s storage.Secret) SecretView {
	return SecretView{SecretID: s.ID, Hint: s.Hint, Disabled: s.Disabled, ExpiresAt: timePtr(s.ExpiresAt), CreatedAt: s.CreatedAt, LastUsedAt: timePtr(s.LastUsedAt)}
}

// KeyView is a key as the admin API shows it: never any private material.
type KeyView struct {
	KeyID     string     `json:"key_id"`
	Algorithm string     `json:"algorithm"`
	Origin    string     `json:"origin"`
	Disabled  bool       `json:"disabled"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	// Fingerprint is the base64url SHA-256 of the public key (SPKI).
	Fingerprint string `json:"fingerprint"`
	// ETag is the key's entity tag (the ETag header of its GET), only in
	// the list, as SecretView's.
	ETag string `json:"etag,omitempty"`
}

func keyView(k storage.Key) KeyView {
	sum := sha256.Sum256(k.PublicKey)
	v := KeyView{KeyID: k.ID, Algorithm: k.Algorithm, Origin: k.Origin, Disabled: k.Disabled, CreatedAt: k.CreatedAt,
		Fingerprint: base64.RawURLEncoding.EncodeToString(sum[:])}
	if !k.ExpiresAt.IsZero() {
		v.ExpiresAt = &k.ExpiresAt
	}
	return v
}

// SigningKeyView is a server signing key's public state.
type SigningKeyView struct {
	KeyID       string     `json:"key_id"`
	Algorithm   string     `json:"algorithm"`
	State       string     `json:"state"` // next, current or retired
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// --- handlers ---

func (h *Handler) listAPIs(r *http.Request, _ Actor) (int, any, error) {
	apis, err := h.svc.ListAPIs(r.Context())
	out := []APIView{}
	for _, a := range apis {
		out = append(out, apiView(a))
	}
	return 200, map[string]any{"apis": out}, err
}

func (h *Handler) createAPI(r *http.Request, actor Actor) (int, any, error) {
	var in APIInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	a, err := h.svc.CreateAPI(r.Context(), actor, in)
	return 201, apiBody(a), err
}

// apiBody is an API's view with its ETag.
func apiBody(a storage.API) tagged { return tagged{apiETag(a), apiView(a)} }

func (h *Handler) getAPI(r *http.Request, _ Actor) (int, any, error) {
	a, err := h.svc.GetAPI(r.Context(), r.PathValue("name"))
	return 200, apiBody(a), err
}

func (h *Handler) deleteAPI(r *http.Request, actor Actor) (int, any, error) {
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	return 204, nil, h.svc.DeleteAPIIf(r.Context(), actor, r.PathValue("name"), match)
}

func (h *Handler) updateAPI(r *http.Request, actor Actor) (int, any, error) {
	var up APIUpdate
	if err := decode(r, &up); err != nil {
		return 0, nil, err
	}
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	a, err := h.svc.UpdateAPIIf(r.Context(), actor, r.PathValue("name"), up, match)
	return 200, apiBody(a), err
}

func (h *Handler) revokeAccountTokens(r *http.Request, actor Actor) (int, any, error) {
	a, err := h.svc.RevokeAccountTokens(r.Context(), actor, r.PathValue("sa"))
	return 200, accountBody(a), err
}

// RevokeRequest names a token to revoke by its ID.
type RevokeRequest struct {
	JTI string `json:"jti"`
}

func (h *Handler) revokeToken(r *http.Request, actor Actor) (int, any, error) {
	var in RevokeRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	res, err := h.svc.RevokeTokenID(r.Context(), actor, in.JTI)
	if err != nil {
		return 0, nil, err
	}
	out := RevokeResponse{Revoked: in.JTI, OnRecord: res.OnRecord, AlreadyRevoked: res.Already}
	switch {
	case res.Already:
		out.Note = "This token ID was already on the revocation list."
	case res.OnRecord:
		out.Note = "The opaque token with this ID is revoked."
	default:
		out.Note = "No token with this ID is on record (JWT access tokens are not stored, so a JWT's never is); it is on the revocation list anyway, and introspection reports a token with it inactive."
	}
	return 200, out, nil
}

// RevokeResponse says what revoking a token ID did.
type RevokeResponse struct {
	Revoked string `json:"revoked"`
	// OnRecord: Keyward stored a token with this ID (an opaque token).
	OnRecord bool `json:"on_record"`
	// AlreadyRevoked: the ID was revoked before.
	AlreadyRevoked bool   `json:"already_revoked"`
	Note           string `json:"note"`
}

func (h *Handler) listAccounts(r *http.Request, _ Actor) (int, any, error) {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return 0, nil, err
	}
	after := q.Get("page_token")
	if after != "" && !clientIDRE.MatchString(after) {
		// A client ID that is not digits, which the admin API never
		// makes but an import keeps, still ends a page: the list goes
		// on from it, and from an account deleted since the page was
		// listed, as from a deleted client ID of digits: its deletion
		// is in the audit log.
		known, err := h.accountWas(r.Context(), after)
		if err != nil {
			return 0, nil, err
		}
		if !known {
			return 0, nil, invalid("page_token must be the next_page_token of the previous page (a client ID).")
		}
	}
	opts := storage.ListOptions{After: after, Limit: limit, Project: q.Get("project")}
	accts, err := h.svc.ListAccounts(r.Context(), opts)
	out := []AccountView{}
	for _, a := range accts {
		out = append(out, accountView(a))
	}
	resp := map[string]any{"service_accounts": out}
	if len(accts) == opts.PageLimit() {
		resp["next_page_token"] = accts[len(accts)-1].ID
	}
	return 200, resp, err
}

// accountWas reports whether id is a service account's client ID, or was
// one: the audit log has its deletion.
func (h *Handler) accountWas(ctx context.Context, id string) (bool, error) {
	_, err := h.svc.store.GetAccount(ctx, id)
	if !errors.Is(err, storage.ErrNotFound) {
		return err == nil, err
	}
	// The latest deletion, newest first: the one a prune of the oldest
	// events keeps longest.
	evs, err := h.svc.store.ListAuditEvents(ctx, storage.AuditFilter{AccountID: id, Action: "account.delete", Newest: true, Limit: 1})
	return len(evs) > 0, err
}

func (h *Handler) createAccount(r *http.Request, actor Actor) (int, any, error) {
	var in AccountInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	a, err := h.svc.CreateAccount(r.Context(), actor, in)
	return 201, accountBody(a), err
}

// accountBody is an account's view with its ETag.
func accountBody(a storage.Account) tagged { return tagged{accountETag(a), accountView(a)} }

func (h *Handler) getAccount(r *http.Request, _ Actor) (int, any, error) {
	a, err := h.svc.GetAccount(r.Context(), r.PathValue("sa"))
	return 200, accountBody(a), err
}

func (h *Handler) updateAccount(r *http.Request, actor Actor) (int, any, error) {
	var up AccountUpdate
	if err := decode(r, &up); err != nil {
		return 0, nil, err
	}
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	a, err := h.svc.UpdateAccountIf(r.Context(), actor, r.PathValue("sa"), up, match)
	return 200, accountBody(a), err
}

func (h *Handler) deleteAccount(r *http.Request, actor Actor) (int, any, error) {
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	return 204, nil, h.svc.DeleteAccountIf(r.Context(), actor, r.PathValue("sa"), match)
}

func (h *Handler) disableAccount(r *http.Request, actor Actor) (int, any, error) {
	return h.setAccountDisabled(r, actor, true)
}

func (h *Handler) enableAccount(r *http.Request, actor Actor) (int, any, error) {
	return h.setAccountDisabled(r, actor, false)
}

// setAccountDisabled disables or enables the account, if it meets the
// request's If-Match, and answers with its new state and ETag.
func (h *Handler) setAccountDisabled(r *http.Request, actor Actor, disabled bool) (int, any, error) {
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	a, err := h.svc.SetAccountDisabledIf(r.Context(), actor, r.PathValue("sa"), disabled, match)
	return 200, accountBody(a), err
}

func (h *Handler) listKeys(r *http.Request, _ Actor) (int, any, error) {
	keys, err := h.svc.ListKeys(r.Context(), r.PathValue("sa"))
	out := []KeyView{}
	for _, k := range keys {
		v := keyView(k)
		v.ETag = keyETag(k)
		out = append(out, v)
	}
	return 200, map[string]any{"keys": out}, err
}

// KeyRequest is the body of key creation and upload.
type KeyRequest struct {
	ExpiresInSeconds int64  `json:"expires_in_seconds"`
	PublicKeyPEM     string `json:"public_key_pem,omitempty"`
}

func (h *Handler) createKey(r *http.Request, actor Actor) (int, any, error) {
	var in KeyRequest
	if err := decodeOptional(r, &in); err != nil {
		return 0, nil, err
	}
	if in.PublicKeyPEM != "" {
		// Not a new key pair for a caller who meant to register its own.
		return 0, nil, invalid("This endpoint generates a new key pair and takes no public key; register a public key you hold with POST /v1/service-accounts/%s/keys/upload.", showName(r.PathValue("sa")))
	}
	k, kf, err := h.svc.createKey(r.Context(), actor, r.PathValue("sa"), in.ExpiresInSeconds)
	return 201, tagged{keyETag(k), kf}, err
}

func (h *Handler) uploadKey(r *http.Request, actor Actor) (int, any, error) {
	var in KeyRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	k, err := h.svc.UploadKey(r.Context(), actor, r.PathValue("sa"), []byte(in.PublicKeyPEM), in.ExpiresInSeconds)
	return 201, keyBody(k), err
}

// keyBody is a key's view with its ETag.
func keyBody(k storage.Key) tagged { return tagged{keyETag(k), keyView(k)} }

func (h *Handler) getKey(r *http.Request, _ Actor) (int, any, error) {
	k, err := h.svc.GetKey(r.Context(), r.PathValue("sa"), r.PathValue("kid"))
	return 200, keyBody(k), err
}

func (h *Handler) deleteKey(r *http.Request, actor Actor) (int, any, error) {
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	return 204, nil, h.svc.DeleteKeyIf(r.Context(), actor, r.PathValue("sa"), r.PathValue("kid"), match)
}

func (h *Handler) disableKey(r *http.Request, actor Actor) (int, any, error) {
	return h.setKeyDisabled(r, actor, true)
}

func (h *Handler) enableKey(r *http.Request, actor Actor) (int, any, error) {
	return h.setKeyDisabled(r, actor, false)
}

// setKeyDisabled disables or enables the key, if it meets the request's
// If-Match, and answers with its new state and ETag.
func (h *Handler) setKeyDisabled(r *http.Request, actor Actor, disabled bool) (int, any, error) {
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	k, err := h.svc.SetKeyDisabledIf(r.Context(), actor, r.PathValue("sa"), r.PathValue("kid"), disabled, match)
	return 200, keyBody(k), err
}

func (h *Handler) listSecrets(r *http.Request, _ Actor) (int, any, error) {
	secs, err := h.svc.ListSecrets(r.Context(), r.PathValue("sa"))
	out := []SecretView{}
	for _, s := range secs {
		v := secretView(s)
		v.ETag = secretETag(s)
		out = append(out, v)
	}
	return 200, map[string]any{"secrets": out}, err
}

func (h *Handler) createSecret(r *http.Request, actor Actor) (int, any, error) {
	var in KeyRequest
	if err := decodeOptional(r, &in); err != nil {
		return 0, nil, err
	}
	if in.PublicKeyPEM != "" {
		return 0, nil, invalid("A client secret takes no public key: the body has only expires_in_seconds. To register a public key, POST it to /v1/service-accounts/%s/keys/upload.", showName(r.PathValue("sa")))
	}
	cs, err := h.svc.CreateSecret(r.Context(), actor, r.PathValue("sa"), in.ExpiresInSeconds)
	v := secretView(cs.Secret)
	v.Secret, v.ClientID = cs.Value, cs.AccountID
	return 201, tagged{secretETag(cs.Secret), v}, err
}

// secretBody is a secret's view with its ETag.
func secretBody(sec storage.Secret) tagged { return tagged{secretETag(sec), secretView(sec)} }

func (h *Handler) getSecret(r *http.Request, _ Actor) (int, any, error) {
	s, err := h.svc.GetSecret(r.Context(), r.PathValue("sa"), r.PathValue("id"))
	return 200, secretBody(s), err
}

func (h *Handler) deleteSecret(r *http.Request, actor Actor) (int, any, error) {
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	return 204, nil, h.svc.DeleteSecretIf(r.Context(), actor, r.PathValue("sa"), r.PathValue("id"), match)
}

func (h *Handler) disableSecret(r *http.Request, actor Actor) (int, any, error) {
	return h.setSecretDisabled(r, actor, true)
}

func (h *Handler) enableSecret(r *http.Request, actor Actor) (int, any, error) {
	return h.setSecretDisabled(r, actor, false)
}

// setSecretDisabled disables or enables the secret, if it meets the
// request's If-Match, and answers with its new state and ETag.
func (h *Handler) setSecretDisabled(r *http.Request, actor Actor, disabled bool) (int, any, error) {
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	s, err := h.svc.SetSecretDisabledIf(r.Context(), actor, r.PathValue("sa"), r.PathValue("id"), disabled, match)
	return 200, secretBody(s), err
}

func (h *Handler) listSigningKeys(r *http.Request, _ Actor) (int, any, error) {
	keys, err := h.signing.ListSigningKeys(r.Context())
	out := []SigningKeyView{}
	for _, k := range keys {
		state := "next"
		switch {
		case !k.RetiredAt.IsZero():
			state = "retired"
		case !k.ActivatedAt.IsZero():
			state = "current"
		}
		out = append(out, SigningKeyView{k.ID, k.Algorithm, state, k.CreatedAt, timePtr(k.ActivatedAt), timePtr(k.RetiredAt)})
	}
	return 200, map[string]any{"signing_keys": out}, err
}

func (h *Handler) rotateSigningKeys(r *http.Request, a Actor) (int, any, error) {
	if err := h.signing.Rotate(r.Context(), a.ID, a.Source); isWrongMasterKey(err) {
		// The master key was rotated while this server kept running with
		// the old one (see DEPLOYMENT.md, The master key): no retry
		// mends that, only a restart with the new key.
		h.log.ErrorContext(r.Context(), "signing-key rotation refused: the stored signing keys are sealed under another master key than this server's; restart it with the store's master key", "err", err)
		return 0, nil, conflict("The signing keys in the store are sealed under another master key than this server's: the master key was rotated (keyward master-key rotate) while this server kept running with the old one, or the stored keys were altered. Nothing was changed. Restart this server, and every other replica, with the new master key, then rotate the signing keys again.")
	} else if err != nil {
		return 0, nil, err
	}
	return h.listSigningKeys(r, Actor{})
}

// parseLimit reads a page size from 1 to 1000; "" gives 0, the default.
func parseLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, invalid("limit must be a number from 1 to 1000.")
	}
	return n, nil
}
