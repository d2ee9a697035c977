package verify

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/oauth2"
)

// DPoP (RFC 9449): a token whose cnf.jkt binds it to a client's key is
// accepted only as "Authorization: DPoP <token>" with a DPoP header that
// holds a fresh proof, signed with that key, for this very request (method,
// URL, token) and never seen before. Middleware does it all; VerifyDPoP is
// the same check for other frameworks.

type dpopOptions struct {
	maxAge          time.Duration
	replayCacheSize int
	replayCache     ReplayCache
	nonceKey        []byte
}

// WithDPoPProofMaxAge sets how old a DPoP proof may be, by its iat
// (default 60 s), beside the leeway (WithLeeway; 10 s for proofs if it is
// 0) for clocks that differ.
func WithDPoPProofMaxAge(d time.Duration) Option {
	return func(o *options) { o.dpop.maxAge = d }
}

// WithDPoPReplayCacheSize bounds how many recent DPoP proofs the
// default, in-memory replay cache remembers to refuse replays (default
// 100,000, about 15 MB when full; a proof is remembered for its max age
// plus twice the leeway and a second, about 2 minutes by default, so the
// default holds about 800 proofs a second). When that many are
// remembered, further proofs are answered 503 rather than forgetting any
// early; one client (the token's client_id) may hold at most a quarter of
// them, so it cannot fill the cache for the others.
// It does nothing with WithDPoPReplayCache.
func WithDPoPReplayCacheSize(n int) Option {
	return func(o *options) { o.dpop.replayCacheSize = n }
}

// ReplayCache remembers the DPoP proofs a Verifier accepted, so that each
// is accepted once (RFC 9449 §11.1). The default one is in memory, in one
// process: an API run as several processes (replicas) gives each of them
// one shared store with WithDPoPReplayCache, or a proof accepted by one
// could be replayed to another within its lifetime, about two minutes.
//
// Implementations must be safe for concurrent use.
type ReplayCache interface {
	// Seen records key until the time until and reports whether it was
	// recorded already and not yet forgotten: true is a replay, and the
	// proof is refused (invalid_dpop_proof, 401).
	//
	// Checking and recording are one atomic step across every process
	// that shares the store (Redis: SET key 1 NX PXAT until; SQL: an
	// INSERT into a table whose primary key is key), and a key must not
	// be forgotten before until: a store that evicts unexpired keys to
	// make room (Redis maxmemory-policy allkeys-* or volatile-*) lets
	// replays through. until is at most a few minutes ahead
	// (WithDPoPProofMaxAge plus twice the leeway and a second: a second
	// past the last instant the proof could be accepted, so a store that
	// forgets key at until, or rounds until to milliseconds, is safe).
	//
	// key is 43 characters of base64url, a SHA-256 of the proof's key
	// thumbprint and jti: its size does not depend on what the client
	// sent, and it is safe as (a suffix of) a key in any store. Prefix it
	// if the store serves other purposes too. APIs may share one prefix:
	// a proof is checked against this API's URL before it is recorded, so
	// only a proof made for this API takes a key here.
	//
	// ctx is the request's: Seen should return when it ends. An error neither
	// accepts nor refuses the proof: the store cannot tell whether it is
	// a replay, so VerifyDPoP returns an Error that matches ErrUnavailable
	// and ErrReplayCacheUnavailable (and wraps the error), and Middleware
	// answers 503 with Retry-After. A full store should return an error
	// too, rather than forget keys early. The proof is then not
	// remembered, so the client may try again with the same token.
	Seen(ctx context.Context, key string, until time.Time) (bool, error)
}

// ErrReplayCacheUnavailable matches (errors.Is) the Error of a DPoP proof
// that was neither accepted nor refused because the ReplayCache failed
// or, the default in-memory one, was full. It matches ErrUnavailable too
// (503 from Middleware): the client is not at fault, but the Verifier
// will not accept a proof it cannot tell from a replay.
var ErrReplayCacheUnavailable = errors.New("verify: the DPoP replay cache cannot check proofs just now")

// WithDPoPReplayCache remembers DPoP proofs in c rather than in the
// Verifier's memory: a store shared by every process of the API, so that
// a proof is accepted once by all of them together. c bounds its own size
// (WithDPoPReplayCacheSize and the per-client share apply to the default
// cache only). nil keeps the default.
func WithDPoPReplayCache(c ReplayCache) Option {
	return func(o *options) { o.dpop.replayCache = c }
}

// WithDPoPNonce makes DPoP proofs carry a nonce this API provided (RFC
// 9449 §9), so that a proof made in advance, by someone who held the key
// for a while, stops working within two minutes whatever its iat says. A
// proof without a current nonce is refused with use_dpop_nonce, and
// Middleware answers it 401 with the nonce in a DPoP-Nonce header, as it
// does every DPoP request (Verifier.DPoPNonce): a client that follows
// nonces, as client.NewDPoP does, sends the request once more. Nonces are
// an HMAC of the minute under key, so nothing is stored and every
// replica given the same key accepts the others' nonces — and so does
// any other server holding it: give each API a key of its own, not
// another API's nor Keyward's pepper. key must be at least 32 bytes,
// random, and secret (New fails otherwise). Off by default.
func WithDPoPNonce(key []byte) Option {
	return func(o *options) { o.dpop.nonceKey = append([]byte{}, key...) }
}

// minNonceKey is the length in bytes of the shortest WithDPoPNonce key.
const minNonceKey = 32

type dpopState struct {
	checker dpop.Checker
	// nonces makes and checks this API's nonces; nil when not required.
	nonces *dpop.Nonces
	// seen is the default, in-memory replay cache; shared the one
	// configured instead, nil for none.
	seen   *dpop.ReplayCache
	shared ReplayCache
}

func newDPoPState(o options) *dpopState {
	s := &dpopState{checker: dpop.Checker{Now: o.now, MaxAge: o.dpop.maxAge, Skew: o.leeway}, shared: o.dpop.replayCache}
	if s.shared == nil {
		s.seen = dpop.NewReplayCache(s.checker.Retention(), o.dpop.replayCacheSize)
	}
	if o.dpop.nonceKey != nil {
		s.nonces = dpop.NewNonces(o.dpop.nonceKey)
	}
	return s
}

// DPoPNonce returns the nonce DPoP proofs are to carry now, for the
// DPoP-Nonce header (RFC 9449 §9), or "" without WithDPoPNonce. Middleware
// sets it on every answer to a DPoP request; other frameworks set it on
// their answers to VerifyDPoP's use_dpop_nonce (401, with the DPoP
// challenge), and best on every answer to a DPoP request, so that clients
// move to the next nonce before theirs expires rather than be refused.
func (v *Verifier) DPoPNonce() string {
	if v.dpop.nonces == nil {
		return ""
	}
	return v.dpop.nonces.Current(v.o.now())
}

// errUseNonce refuses a proof without a current nonce of this API (RFC
// 9449 §9).
var errUseNonce = dpopError(oauth2.ErrUseDPoPNonce, "the DPoP proof must carry the nonce of this API's DPoP-Nonce header", nil)

// use records a proof accepted for a token of client owner, in the
// shared cache if there is one, else in memory (no allocation, no
// interface call: the fast path). It returns an Error for a replay or a
// cache that cannot tell.
func (s *dpopState) use(ctx context.Context, owner string, p *dpop.Proof, now time.Time) error {
	if s.shared != nil {
		k := dpop.ReplayKey(p.JKT, p.JTI)
		replayed, err := s.shared.Seen(ctx, base64.RawURLEncoding.EncodeToString(k[:]), now.Add(s.checker.Retention()))
		switch {
		case err != nil:
			return replayCacheDown("the DPoP replay cache cannot be reached", err)
		case replayed:
			return errReplayed
		}
		return nil
	}
	// The owner is the client the token was issued to: one client cannot
	// fill the cache for the others, whatever keys it binds its tokens to.
	switch err := s.seen.Use(owner, p.JKT, p.JTI, now); {
	case errors.Is(err, dpop.ErrReplayed):
		return errReplayed
	case errors.Is(err, dpop.ErrOwnerShareFull):
		return replayCacheDown("this client has too many recent DPoP proofs to check for replays", err)
	case err != nil:
		return replayCacheDown("too many recent DPoP proofs to check for replays", err)
	}
	return nil
}

var errReplayed = dpopError("invalid_dpop_proof", "the DPoP proof was used before: make a new proof for every request", dpop.ErrReplayed)

// replayCacheDown is the Error of a proof the replay cache cannot check:
// it matches ErrUnavailable and ErrReplayCacheUnavailable, and wraps
// cause.
func replayCacheDown(desc string, cause error) *Error {
	return unavailable(desc, replayCacheError{cause})
}

// replayCacheError marks a cause as the replay cache's.
type replayCacheError struct{ err error }

func (e replayCacheError) Error() string { return e.err.Error() }

func (e replayCacheError) Unwrap() error { return e.err }

func (e replayCacheError) Is(target error) bool { return target == ErrReplayCacheUnavailable }

// DPoPRequest is the request a DPoP-bound token came with.
type DPoPRequest struct {
	// Method is the request's HTTP method.
	Method string
	// URL is the request's URL as the client addressed it: scheme, host
	// and path (query and fragment are ignored). Build the scheme and host
	// from the API's configuration, and say so with URLFromConfig, to
	// accept tokens that name several audiences.
	URL string
	// URLFromConfig says that URL's scheme and host (and any path prefix)
	// come from the API's configuration: its public URL, as
	// WithPublicURL gives Middleware. Leave it false when they come from
	// the request (its Host header, or a proxy's X-Forwarded-Host): the
	// sender picks those, so another API a token is for could replay,
	// with its own Host header, a proof it received from the client, and
	// VerifyDPoP then refuses DPoP-bound tokens that name several
	// audiences (invalid_token). A token for this API alone cannot be used
	// at another API, so its proofs cannot be replayed here from one.
	URLFromConfig bool
	// Proofs are the values of the request's DPoP headers; there must be
	// exactly one.
	Proofs []string
	// Certificate is the TLS client certificate of the connection, or nil.
	Certificate *x509.Certificate
}

// VerifyDPoP checks a token presented as "Authorization: DPoP <token>"
// with a DPoP proof (RFC 9449 §7.1): the token must be valid and bound to
// a DPoP key (cnf.jkt), and the proof signed with that key, for this
// request and this token (htm, htu, ath), recent and not used before.
// A refused proof is an Error with Code "invalid_dpop_proof", or
// "use_dpop_nonce" for one without a current nonce (WithDPoPNonce). Unless
// req.URLFromConfig, a token that names several audiences is refused, as
// Middleware does without WithPublicURL.
//
// The returned Claims are shared with the cache: do not modify them.
func (v *Verifier) VerifyDPoP(ctx context.Context, raw string, req DPoPRequest) (*Claims, error) {
	c, err := v.verifyDPoP(ctx, raw, req)
	if err != nil {
		return nil, own(err)
	}
	return c, nil
}

func (v *Verifier) verifyDPoP(ctx context.Context, raw string, req DPoPRequest) (*Claims, error) {
	c, err := v.verifyBound(ctx, raw, req.Certificate)
	if err != nil {
		// "" too: verifyBound's invalid_request, with the DPoP challenge.
		var e *Error
		if errors.As(err, &e) && e.Code != codeUnavailable {
			return nil, dpopError(e.Code, e.Description, e.Err)
		}
		return nil, err
	}
	if c.KeyThumbprint == "" {
		return nil, dpopError("invalid_token", "the token is not bound to a DPoP key: present it with the Bearer scheme", nil)
	}
	if !req.URLFromConfig && len(c.Audience) > 1 {
		return nil, errDPoPAudiences
	}
	p, err := v.dpop.checker.Check(req.Proofs, dpop.Request{Method: req.Method, URL: req.URL, AccessToken: raw})
	if err != nil {
		desc := "the DPoP proof is invalid"
		var de *dpop.Error
		if errors.As(err, &de) {
			desc = de.Description
		}
		return nil, dpopError("invalid_dpop_proof", desc, err)
	}
	if !dpop.MatchJKT(p.JKT, c.KeyThumbprint) {
		return nil, dpopError("invalid_dpop_proof", "the DPoP proof is signed with another key than the token is bound to", nil)
	}
	now := v.o.now()
	if n := v.dpop.nonces; n != nil && !n.Valid(p.Nonce, now) {
		return nil, errUseNonce
	}
	if err := v.dpop.use(ctx, c.ClientID, p, now); err != nil {
		return nil, err
	}
	return c, nil
}

// errBearerDPoP refuses a DPoP-bound token presented as a bearer token
// (RFC 9449 §7.2): whoever holds only the token may not use it. Shared,
// as errUseNonce, errReplayed and errDPoPAudiences are: VerifyWithCertificate
// and VerifyDPoP hand out a copy (own).
var errBearerDPoP = dpopError("invalid_token", "the token is bound to a DPoP key: present it as Authorization: DPoP <token>, with a DPoP proof", nil)

// dpopScheme marks the cause of an Error answered with a DPoP challenge.
type dpopScheme struct{ err error }

func (d dpopScheme) Error() string {
	if d.err == nil {
		return "DPoP"
	}
	return d.err.Error()
}

func (d dpopScheme) Unwrap() error { return d.err }

func dpopError(code, desc string, cause error) *Error {
	return &Error{Code: code, Description: desc, Err: dpopScheme{cause}}
}

// isDPoPError reports whether err is answered with a DPoP challenge.
func isDPoPError(err error) bool {
	var d dpopScheme
	return errors.As(err, &d)
}

// WithPublicURL sets the scheme and host (and any path prefix) clients
// address this API with, for checking DPoP proofs' htu: the proof must be
// for base followed by the request's path. Without it, the URL is made of
// the request's Host header and https when the connection is TLS, http
// otherwise, and since the sender chooses that header, DPoP-bound tokens
// that name several audiences are refused (another API the token is for
// could replay the proofs it receives here). Set it behind a proxy that
// terminates TLS or rewrites paths, and to accept DPoP-bound tokens for
// several APIs.
//
// base must be an absolute http or https URL with a host, and without a
// user, a query or a fragment (a "?" or "#", even empty): the request's
// path is appended to it, and anything after a "?" or "#" would drop that
// path, so a proof would pass at every path. Middleware panics on any
// other base.
func WithPublicURL(base string) MiddlewareOption {
	return func(o *mwOptions) { o.publicURL = strings.TrimSuffix(base, "/") }
}

// checkPublicURL tells what is wrong with WithPublicURL's base, if
// anything.
func checkPublicURL(base string) error {
	shown := oauth2.RedactURL(base) // a user's password is not repeated
	u, err := url.Parse(base)
	switch {
	case err != nil:
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // without the URL, which may hold a password
		}
		return fmt.Errorf("base %q is not a URL: %w", shown, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("base %q is not an absolute http or https URL with a host", shown)
	case u.User != nil, strings.ContainsAny(base, "?#"):
		return fmt.Errorf("base %q has a user, a query or a fragment: the request's path is appended to it", shown)
	}
	return nil
}

// errDPoPAudiences refuses, when the API's public URL is not configured
// (DPoPRequest.URLFromConfig), a DPoP-bound token that names several
// audiences. The URL its proof is checked against is then built from the
// request's Host header, which the sender chooses: another API the token
// is for could replay a proof it received, with its own Host header,
// here. A token for this API alone cannot be used at another API, so its
// proofs cannot be replayed here from one.
var errDPoPAudiences = dpopError("invalid_token",
	"this API accepts DPoP-bound tokens issued for it alone: request a token with only this API's scopes",
	errors.New("a DPoP-bound token for several audiences, and no public URL to check its proof against: configure verify.WithPublicURL (Middleware) or build DPoPRequest.URL from configuration and set URLFromConfig (VerifyDPoP) to accept such tokens"))

// usesDPoP reports whether the request presents its token with the DPoP
// scheme.
func usesDPoP(r *http.Request) bool {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return false // bearerToken refuses several
	}
	scheme, _, _ := strings.Cut(h[0], " ")
	return strings.EqualFold(scheme, dpop.Scheme)
}

// serveDPoP is Middleware for a request that uses the DPoP scheme.
func (o mwOptions) serveDPoP(v *Verifier, next http.Handler, w http.ResponseWriter, r *http.Request) {
	_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok, ok := oauth2.AuthToken(tok)
	if !ok {
		o.refuse(w, r, dpopError("invalid_request", "the Authorization header must be: DPoP <token>", nil))
		return
	}
	if o.queryToken {
		// As bearerToken reads the query: several access_token
		// parameters are malformed, and an empty one is no token.
		q, several := oneToken(r.URL.Query())
		if several {
			o.refuse(w, r, dpopError(errSeveralTokens.Code, errSeveralTokens.Description, nil))
			return
		}
		if q != "" {
			o.refuse(w, r, dpopError("invalid_request", "the token was sent in more than one way (RFC 6750 §2)", nil))
			return
		}
	}
	var cert *x509.Certificate
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cert = r.TLS.PeerCertificates[0]
	}
	// The nonce for the next proof, on every answer (RFC 9449 §9): the
	// use_dpop_nonce refusal needs it, and the others spare the client
	// one when the nonce changes.
	if nonce := v.DPoPNonce(); nonce != "" {
		w.Header().Set(dpop.NonceHeader, nonce)
	}
	c, err := v.VerifyDPoP(r.Context(), tok, DPoPRequest{
		Method: r.Method, URL: o.requestURL(r), URLFromConfig: o.publicURL != "",
		Proofs: dpop.HeaderValues(r.Header), Certificate: cert,
	})
	if err != nil {
		o.refuse(w, r, err)
		return
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &verified{claims: c, realm: o.realm, dpop: true, onError: o.onError})))
}

// requestURL is the URL a DPoP proof of r must be for, with the path as
// the request wrote it (dpop.WrittenPath): EscapedPath would decode a
// %2F in a path that holds a '{', say, and take a proof for /a/b{ for
// one for /a%2Fb{.
func (o mwOptions) requestURL(r *http.Request) string {
	if o.publicURL != "" {
		return o.publicURL + dpop.WrittenPath(r.URL)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + dpop.WrittenPath(r.URL)
}

// dpopChallenge sets the DPoP challenge (RFC 9449 §7.1) of a refusal that
// concerns DPoP, in place of the Bearer one; a request with no token at
// all gets it beside the Bearer one, so clients learn the scheme and its
// algorithms. scope, if any, is the scope the request needs.
func dpopChallenge(w http.ResponseWriter, realm string, e *Error, scope string) {
	marked := isDPoPError(e)
	if !marked && e.Code != "" {
		return
	}
	var coded *Error // only a refusal that concerns DPoP names its error here
	if marked {
		coded = e
	}
	params := append(challengeParams(realm, coded, scope), `algs="`+strings.Join(dpop.AlgorithmNames(), " ")+`"`)
	v := "DPoP " + strings.Join(params, ", ")
	if marked {
		w.Header().Set("WWW-Authenticate", v)
	} else {
		w.Header().Add("WWW-Authenticate", v)
	}
}
