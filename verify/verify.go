// Package verify checks Keyward access tokens in the APIs that receive
// them: JWT access tokens (RFC 9068) locally against Keyward's published
// keys, opaque tokens through introspection (RFC 7662), and — when turned
// on — a service account's self-signed JWT used directly as a bearer token
// (WithSelfSignedJWTs). An access token's aud must hold the API's
// identifier exactly as Keyward has it registered, which is what Keyward
// writes; a self-signed JWT's aud is its signer's, so it may also carry
// the identifier with one trailing slash added or left out
// ("https://orders.internal/" for https://orders.internal, as Google's
// clients send it), but not a path under it.
//
// It depends on neither Keyward's server nor its storage:
//
//	// Keyward's --issuer, and this API's identifier (keyward api create --identifier).
//	v, err := verify.New(ctx, "https://keyward.internal", "https://orders.internal")
//	if err != nil {
//		log.Fatal(err) // the issuer's metadata or keys could not be fetched
//	}
//	auth := verify.Middleware(v) // 401 without a valid token for this API
//	mux := http.NewServeMux()
//	mux.Handle("GET /orders", auth(verify.RequireScopes("orders.read")(http.HandlerFunc(
//		func(w http.ResponseWriter, r *http.Request) {
//			c, _ := verify.ClaimsFromContext(r.Context())
//			fmt.Fprintln(w, "orders for", c.ClientEmail)
//		}))))
//
// ctx keeps the keys fresh (see New): the server's, not a request's. Give
// Middleware an OnError that logs, to see why requests are refused: the
// error says more than the description the caller gets.
//
// A token bound to a client certificate (RFC 8705 §3) must come with it.
// Middleware takes the certificate from the request's own TLS connection
// only: behind a proxy that terminates TLS it has none and refuses such
// tokens. There, take the certificate the proxy forwards (from the
// proxy's address alone) and call VerifyWithCertificate.
//
// Verified tokens are cached until they expire, the keys that verified
// them are due to be fetched again, or, for a token introspected, the
// introspection answer is to be asked again (WithIntrospectionCacheTTL),
// whichever is first, so the hot path of a busy API is a map lookup.
//
// The issuer's keys are fetched again in the background while the
// context given to New lasts, and on demand once it has ended (see New).
package verify

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/oauth2"
)

// Claims are what a verified token says.
type Claims struct {
	Issuer string
	// Subject is the service account's numeric ID, or the user a delegated
	// token acts for.
	Subject string
	// ClientID is the service account's numeric client ID.
	ClientID string
	// ClientEmail is the service account's email.
	ClientEmail string
	// Audience and Scopes are a JWT's own, all of them (WithRevocationCheck
	// does not change them). An opaque token's are what introspection
	// answered, and Keyward answers an API's introspector (the account of
	// WithIntrospection, unless it holds keyward.introspect) of a token
	// also meant for other APIs only its own part (RFC 7662 §4): the APIs
	// that account introspects for, and of the token's scopes those that
	// belong to one of them now. So RequireScopes("billing.read") on the
	// orders API lets through a JWT for orders and billing that has it,
	// and refuses the same token opaque: an API should require only its
	// own scopes. A token all of whose APIs the account introspects for
	// (one API's, most often) is answered whole, with a scope since taken
	// off its API too.
	Audience  []string
	Scopes    []string
	IssuedAt  time.Time
	Expiry    time.Time
	NotBefore time.Time
	ID        string
	// Actor is the service account acting for Subject in a delegated token.
	Actor *Actor
	// CertificateThumbprint is the x5t#S256 of the client certificate the
	// token is bound to (RFC 8705), if any.
	CertificateThumbprint string
	// KeyThumbprint is the JWK SHA-256 thumbprint (cnf.jkt) of the DPoP key
	// the token is bound to (RFC 9449 §6), if any: see VerifyDPoP.
	KeyThumbprint string
	// SelfSigned says the token is a service account's own JWT, not an
	// access token from Keyward: it carries no scopes.
	SelfSigned bool
}

// Actor names who acts for the subject (RFC 8693 §4.1).
type Actor struct {
	Subject     string
	ClientEmail string
}

// HasScope reports whether the token carries scope.
func (c *Claims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Error is a refused token, with the RFC 6750 error code; or, with Code
// "temporarily_unavailable", a token that was neither accepted nor refused
// because the issuer could not be reached (see ErrUnavailable).
type Error struct {
	// Code is invalid_token, invalid_request, insufficient_scope,
	// invalid_dpop_proof, use_dpop_nonce or temporarily_unavailable; empty
	// for a request without a token (RFC 6750 §3.1).
	Code string
	// Description says what is wrong, for the caller: Middleware sends it
	// as error_description. It never repeats what the token says before
	// it is verified.
	Description string
	// Err is the cause, for logs (Error includes it): never sent to the
	// caller.
	Err error
	// RetryAfter is, for temporarily_unavailable, how long to wait before
	// trying again when that is known: the issuer's own Retry-After on
	// an introspection answered 429 or 503 (not on a failed fetch of its
	// keys), when this Verifier's introspection budget refills, or when
	// the keys may be fetched again for an unknown kid; at most a minute.
	// Zero when unknown (Middleware then answers Retry-After: 10).
	RetryAfter time.Duration
}

// codeUnavailable is the Code of an Error that matches ErrUnavailable.
const codeUnavailable = "temporarily_unavailable"

// ErrUnavailable matches (errors.Is) the Error of a token that could not
// be checked because the issuer could not be reached: a network error or a
// failed answer from its introspection endpoint, or keys that could not be
// fetched (an unknown kid, a service account's keys too old to trust). So
// does a token whose kid is unknown while the keys may not be fetched again
// yet (the issuer's at most once every 10 s for unknown kids, a service
// account's at most once every 10 s), or, once a fetch of them has
// failed, while one it did not start is in flight (not waited for): its
// key may be new, and Error.RetryAfter says when they may be fetched
// again, when known. The token may well be valid: try again later.
// Middleware answers 503 with Retry-After. A JWT that would be refused
// whatever its key (expired, another issuer's, for another API) is
// invalid_token at once instead, whether its key is unknown or the keys
// could not be fetched.
//
// Two causes are worth telling apart in logs; both match ErrUnavailable
// too, and are answered 503 like it, since the caller's token is not at
// fault: ErrIntrospectionUnauthorized and ErrIntrospectionThrottled.
var ErrUnavailable = errors.New("verify: the issuer is unavailable")

// ErrIntrospectionUnauthorized matches (errors.Is) the Error of a token
// that could not be checked because the issuer refused this API's own
// introspection credentials (401 or 403 from its introspection endpoint,
// or a 400 invalid_client, unauthorized_client or disabled_client): a
// wrong client ID, secret or key file, or an account that is disabled or
// not an introspector of this API. The operator must act; the Verifier
// then asks the issuer again at most every 10 seconds, so the refusals
// do not fill the issuer's audit log.
var ErrIntrospectionUnauthorized = errors.New("verify: the issuer refused this API's introspection credentials")

// ErrIntrospectionThrottled matches (errors.Is) the Error of a token that
// was not introspected because this Verifier's introspection budget
// (WithIntrospectionRate, WithIntrospectionConcurrency) was spent: many
// tokens never seen before arrived at once, such as made-up ones. Tokens
// already seen active, and JWTs (WithRevocationCheck), are not held to
// the rate.
var ErrIntrospectionThrottled = errors.New("verify: too many tokens to introspect just now")

// Is reports whether e is an ErrUnavailable.
func (e *Error) Is(target error) bool { return target == ErrUnavailable && e.Code == codeUnavailable }

// Error returns the code, the description and, in parentheses, the cause.
func (e *Error) Error() string {
	s := e.Description
	if e.Code != "" { // a request without a token has none (RFC 6750 §3.1)
		s = e.Code + ": " + s
	}
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

// Unwrap returns the cause, Err.
func (e *Error) Unwrap() error { return e.Err }

func invalid(desc string, cause error) *Error {
	return &Error{Code: "invalid_token", Description: desc, Err: cause}
}

func unavailable(desc string, cause error) *Error {
	return &Error{Code: codeUnavailable, Description: desc, Err: cause}
}

// Bounds of Error.RetryAfter.
const (
	minRetryAfter = time.Second
	maxRetryAfter = time.Minute
)

// boundRetryAfter keeps d within [minRetryAfter, maxRetryAfter].
func boundRetryAfter(d time.Duration) time.Duration {
	return min(max(d, minRetryAfter), maxRetryAfter)
}

// Verifier verifies tokens for one API (audience) of one Keyward issuer.
// It is safe for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	o        options
	keys     *keySet
	intro    *introspector
	accounts *accountKeys
	cache    *tokenCache[*Claims]
	dpop     *dpopState
}

// New discovers the issuer's metadata (RFC 8414) and keys, and keeps the
// keys fresh in the background until ctx ends. After that they are
// fetched on demand, within the same bounds: by the first token that
// comes once they are due to be fetched again, which waits for them if
// they are no longer trusted (verified with the stale keys only while
// the issuer cannot be reached), so a key the issuer dropped still stops
// verifying tokens, and tokens are still cached. A New that fails leaves
// nothing running. Each of its fetches gives up after 10 s, whatever the
// HTTP client. It fails when the issuer's keys cannot be fetched or
// parsed, or when none of them can be used and some were left out (an
// RSA key over 8192 bits, a key go-jose does not parse, one without alg
// or with use enc), since every token would then be refused; an empty
// set is accepted. It fails when the metadata's issuer is not issuerURL
// exactly (RFC 8414 §3.3), and, for an https issuer, when the metadata's
// jwks_uri, or with introspection its introspection_endpoint, is not an
// https URL: the keys, or the API's credentials and its tokens, would
// travel over plain HTTP. With WithSelfSignedJWTs it fails for an
// audience that is the issuer or its token endpoint URL (compared as
// URLs: scheme and host in any case, trailing slashes): Keyward refuses
// such API identifiers, since it accepts JWTs with that aud at its token
// endpoint.
// issuerURL is Keyward's --issuer, an http or https URL (a trailing slash
// is ignored); New fails at once for one without a scheme or host, or
// with a user, query or fragment.
func New(ctx context.Context, issuerURL, audience string, opts ...Option) (*Verifier, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	o.client = fetchClient(o.client)
	issuerURL = strings.TrimSuffix(issuerURL, "/")
	if err := checkIssuerURL(issuerURL); err != nil {
		return nil, err
	}
	if audience == "" {
		return nil, errors.New("verify: the audience (the API's identifier) is required")
	}
	if o.selfSigned && oauth2.IsAssertionAudience(audience, issuerURL) {
		// Service accounts sign the JWTs they trade at the token endpoint
		// with this aud: an API accepting them could trade them too.
		return nil, fmt.Errorf("verify: with WithSelfSignedJWTs the audience must not be the issuer or its token endpoint URL (%q): service accounts' JWTs with that aud are exchanged for access tokens, and this API would receive them; use the API's own identifier", audience)
	}
	if o.introspect != nil && o.introspect.keyFile != nil {
		c, err := o.introspect.withKeyFile()
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		o.introspect = c
	}
	if o.introspect != nil && o.introspect.signer == nil && (o.introspect.clientID == "" || o.introspect.secret == "") {
		return nil, errors.New("verify: introspection needs the API account's client ID and client secret (WithIntrospection) or its key file (WithIntrospectionKeyFile)")
	}
	if o.introspectJWTs && o.introspect == nil {
		return nil, errors.New("verify: WithRevocationCheck needs introspection credentials (WithIntrospection or WithIntrospectionKeyFile)")
	}
	if o.dpop.nonceKey != nil && len(o.dpop.nonceKey) < minNonceKey {
		return nil, fmt.Errorf("verify: WithDPoPNonce needs a key of at least %d bytes", minNonceKey)
	}
	var md struct {
		Issuer                string `json:"issuer"`
		JWKSURI               string `json:"jwks_uri"`
		IntrospectionEndpoint string `json:"introspection_endpoint"`
	}
	// Each fetch is bounded whatever the HTTP client, as later ones are:
	// ctx is also how long the keys are kept fresh, so it cannot bound New.
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	err := getJSON(fctx, o.client, issuerURL+"/.well-known/oauth-authorization-server", &md, nil)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("verify: discovery: %w", err)
	}
	if md.Issuer != issuerURL {
		return nil, fmt.Errorf("verify: the metadata names issuer %q, not %q (RFC 8414 §3.3)", md.Issuer, issuerURL)
	}
	if md.JWKSURI == "" {
		return nil, errors.New("verify: the metadata has no jwks_uri")
	}
	if err := checkEndpointScheme(issuerURL, "jwks_uri", md.JWKSURI); err != nil {
		return nil, err
	}
	v := &Verifier{issuer: issuerURL, audience: audience, o: o, cache: newTokenCache[*Claims](o.cacheSize)}
	v.dpop = newDPoPState(o)
	if o.introspect != nil {
		if md.IntrospectionEndpoint == "" {
			return nil, errors.New("verify: introspection is configured but the issuer has no introspection_endpoint")
		}
		if err := checkEndpointScheme(issuerURL, "introspection_endpoint", md.IntrospectionEndpoint); err != nil {
			return nil, err
		}
		v.intro = newIntrospector(md.IntrospectionEndpoint, issuerURL, o)
	}
	if o.selfSigned {
		v.accounts = newAccountKeys(issuerURL, o)
	}
	v.keys = newKeySet(md.JWKSURI, o)
	fctx, cancel = context.WithTimeout(ctx, fetchTimeout)
	err = v.keys.refresh(fctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	// Every token would be invalid_token: fail now, as when the set did
	// not parse at all.
	if err := v.keys.noneUsable(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	// Last: a New that fails leaves nothing running.
	v.keys.stopped = ctx.Done()
	go v.keys.run(ctx)
	return v, nil
}

// checkIssuerURL refuses an issuer URL that is not one: without it, one
// like "127.0.0.1:8080" fails discovery with url.Parse's own error ("first
// path segment in URL cannot contain colon"), which names neither the
// argument nor the fix.
func checkIssuerURL(issuerURL string) error {
	u, err := url.Parse(issuerURL)
	// Any '#' is a fragment, one url.Parse keeps no sign of if empty.
	if err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil && u.RawQuery == "" && !u.ForceQuery && !strings.Contains(issuerURL, "#") {
		return nil
	}
	return fmt.Errorf("verify: the issuer URL %q is not an http or https URL with a host and no user, query or fragment, such as https://keyward.internal: pass Keyward's --issuer, as its tokens' iss has it", oauth2.RedactURL(issuerURL))
}

// checkEndpointScheme refuses an endpoint the metadata of an https issuer
// names (field is its metadata name) that is not an https URL: the keys
// fetched from it, or the API's credentials and the tokens sent to it for
// introspection, would travel over plain HTTP, where anyone on the path
// reads and changes them, though the issuer was asked for over HTTPS. An
// http issuer (local development) may name http endpoints.
func checkEndpointScheme(issuerURL, field, endpoint string) error {
	if iu, err := url.Parse(issuerURL); err != nil || iu.Scheme != "https" {
		return nil
	}
	if u, err := url.Parse(endpoint); err == nil && u.Scheme == "https" && u.Host != "" {
		return nil
	}
	return fmt.Errorf("verify: the issuer's metadata names %s %q, not an https URL, though the issuer %q is https: refusing to reach it over plain HTTP, where anyone on the path could read or change what is sent and received; the issuer must name https endpoints", field, oauth2.RedactURL(endpoint), issuerURL)
}

// Verify checks a bearer token that arrived without a client certificate.
// A certificate-bound token is refused: use VerifyWithCertificate.
//
// The returned Claims are shared with the cache: do not modify them.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	return v.VerifyWithCertificate(ctx, raw, nil)
}

// VerifyWithCertificate checks a bearer token that arrived over a TLS
// connection with the given client certificate (nil for none). A token bound
// to a certificate (RFC 8705 §3) must arrive with that certificate. Behind
// a proxy that terminates TLS, cert is the one the proxy forwards: read
// it only from a request that came from the proxy, since any client can
// send the header (Middleware, which reads r.TLS alone, refuses such
// tokens there).
//
// A token bound to a DPoP key (RFC 9449) is refused: use VerifyDPoP.
//
// The returned Claims are shared with the cache: do not modify them.
func (v *Verifier) VerifyWithCertificate(ctx context.Context, raw string, cert *x509.Certificate) (*Claims, error) {
	c, err := v.verifyBound(ctx, raw, cert)
	if err == nil && c.KeyThumbprint != "" {
		return nil, own(errBearerDPoP)
	}
	if err != nil {
		return nil, own(err)
	}
	return c, nil
}

// own returns err with an *Error of its own at its top: a copy of the
// one err is, which may be shared (a package-level refusal, one the
// introspection cache remembers, or one answered to every request that
// joined a question in flight). A caller, or an OnError, that changes
// the Error it is given changes it for no other request.
func own(err error) error {
	if e, ok := err.(*Error); ok && e != nil {
		c := *e
		return &c
	}
	return err
}

// verifyBound is VerifyWithCertificate without the refusal of DPoP-bound
// tokens.
func (v *Verifier) verifyBound(ctx context.Context, raw string, cert *x509.Certificate) (*Claims, error) {
	if raw == "" {
		return nil, &Error{Code: "invalid_request", Description: "no access token"}
	}
	now := v.o.now()
	key := tokenKey(raw)
	c, until, ok := v.cache.lookup(key, now)
	if ok && c.SelfSigned && !now.Before(until.Add(-accountKeysAhead)) {
		// A JWT reused for its whole life (google-auth's, Go's
		// JWTAccessTokenSource) is answered from the cache, its entry
		// ending with its account's keys' trust: in its last 30 s it
		// has them fetched ahead, as a JWT verified anew does, so that
		// it is verified again at once when its entry ends.
		v.accounts.ahead(ctx, c.ClientEmail, now)
	}
	if ok {
		// Once New's ctx has ended, the issuer's keys are fetched ahead
		// by the tokens answered from the cache too, as by the
		// background refresh before: only a token verified anew had
		// them fetched, so the first ones verified once they stopped
		// being trusted waited for the fetch.
		v.keys.ahead(ctx)
	}
	if !ok {
		var (
			reuse time.Time
			err   error
		)
		if c, reuse, err = v.verify(ctx, raw, now); err != nil {
			return nil, err
		}
		// reuse (see verify) bounds the entry by what vouched for the
		// token. Introspection answers are reused for a short time only,
		// so a revocation is felt quickly: the introspection cache TTL
		// from when the question was asked. A JWT is cached only while
		// the keys it was verified with are trusted: until the issuer's
		// keys are due to be fetched again (their fetch plus the refresh
		// interval, at most an hour), or a service account's are
		// accountKeysFresh old; from the fetch that brought them, not
		// from the verification, which may come just before then. Then
		// it is verified again with the keys fetched since, so a key the
		// issuer dropped (a leaked one, a disabled account's) stops
		// verifying it, whatever its exp. A JWT verified with keys
		// already stale (in use while the issuer cannot be reached) is
		// not cached: each time it comes it is verified as a new JWT
		// would be.
		until := minTime(c.Expiry, reuse)
		if now.Before(until) {
			v.cache.put(key, c, until, now)
		}
	}
	if err := checkBinding(c, cert); err != nil {
		return nil, err
	}
	return c, nil
}

// verify checks a token not in the cache, and says until when its answer
// may be reused (reuse). For a JWT, that is no later than when the keys it
// was verified with stop being trusted: the issuer's (keySet.trusted) or,
// for a service account's JWT, the account's (see accountKeys.key). For a
// token introspected (an opaque one, or any access token with
// WithRevocationCheck), it is no later than the introspection cache TTL
// after the question was asked: by the request that asked it, when this
// one joined it in flight (up to fetchTimeout later), not from now.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (c *Claims, reuse time.Time, err error) {
	if !isJWT(raw) {
		if !isOpaque(raw) {
			// Refused here, so junk never reaches the issuer's
			// introspection endpoint (where each request is audited).
			return nil, time.Time{}, invalid("the token is neither a JWT nor a Keyward opaque token", nil)
		}
		if v.intro == nil {
			return nil, time.Time{}, invalid("the token is not a JWT, and this API does not introspect opaque tokens", nil)
		}
		c, asked, err := v.intro.introspect(ctx, raw, v.audience, now, false)
		return c, asked.Add(v.o.introspectionTTL), err
	}
	if v.accounts != nil && looksSelfSigned(raw) {
		return v.verifySelfSigned(ctx, raw, now)
	}
	// Any asymmetric algorithm parses: the key the kid names, fetched anew
	// if unknown (a new key may bring a new algorithm), must then have the
	// token's.
	jws, err := parseCompact(raw, signingAlgs)
	if err != nil {
		return nil, time.Time{}, invalid("the token is not a compact JWS signed with an asymmetric algorithm", err)
	}
	h := jws.Signatures[0].Protected
	if err := checkEncoded(h); err != nil {
		return nil, time.Time{}, err
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !oauth2.TypeIs(typ, "at+jwt") {
		// The header is not verified yet: its typ is for logs only.
		return nil, time.Time{}, invalid("the token's typ is not at+jwt (RFC 9068 §4)", fmt.Errorf("typ %q", typ))
	}
	payload, keysTrusted, err := v.keys.verify(ctx, jws, h)
	if errors.Is(err, ErrUnavailable) {
		// Its key may be new (the keys may not be fetched again yet, or
		// could not be), but a token that would be refused whatever its
		// key (expired, another issuer's, for another API) is refused
		// now, as a service account's JWT is: asked to retry, its sender
		// would only be refused then.
		if _, cerr := v.accessClaims(jws.UnsafePayloadWithoutVerification(), now); cerr != nil {
			return nil, time.Time{}, cerr
		}
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	c, err = v.accessClaims(payload, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	if v.o.introspectJWTs { // New made sure v.intro is set
		_, asked, err := v.intro.introspect(ctx, raw, v.audience, now, true)
		if err != nil {
			return nil, time.Time{}, err
		}
		keysTrusted = minTime(keysTrusted, asked.Add(v.o.introspectionTTL))
	}
	return c, keysTrusted, nil
}

// accessClaims parses an access token's claims and checks its times,
// issuer and audience.
func (v *Verifier) accessClaims(payload []byte, now time.Time) (*Claims, error) {
	c, err := parseAccessClaims(payload)
	if err != nil {
		return nil, err
	}
	if err := v.checkTimes(c, now); err != nil {
		return nil, err
	}
	if c.Issuer != v.issuer {
		return nil, invalid("the token was issued by another issuer than "+v.issuer, fmt.Errorf("iss %q", c.Issuer))
	}
	if !slices.Contains(c.Audience, v.audience) {
		return nil, invalid("the token is not for this API ("+v.audience+")", fmt.Errorf("aud %q", c.Audience))
	}
	return c, nil
}

func (v *Verifier) checkTimes(c *Claims, now time.Time) error {
	return checkTimes(c, now, v.o.leeway)
}

// checkTimes refuses a token whose exp is past or missing, or whose nbf or
// iat is ahead, beyond leeway: JWTs, and introspection answers too, which
// the issuer may call active by a clock of its own.
//
// The cause, for the API's logs (OnError), says by how much and by which
// clock, so that a clock that is off (this API's or the issuer's) can be
// told from a token kept too long; the caller sees the description only.
func checkTimes(c *Claims, now time.Time, leeway time.Duration) error {
	if c.Expiry.IsZero() {
		return invalid("the token has expired", errors.New("it has no exp"))
	}
	if !now.Before(c.Expiry.Add(leeway)) {
		return invalid("the token has expired", fmt.Errorf("exp %s is %s before this API's clock, %s (leeway %s): if the token is new, a clock is off",
			stamp(c.Expiry), now.Sub(c.Expiry).Round(time.Second), stamp(now), leeway))
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return invalid("the token is not valid yet (nbf)", fmt.Errorf("nbf %s is %s after this API's clock, %s (leeway %s)",
			stamp(c.NotBefore), c.NotBefore.Sub(now).Round(time.Second), stamp(now), leeway))
	}
	if !c.IssuedAt.IsZero() && now.Add(leeway).Before(c.IssuedAt) {
		return invalid("the token was issued in the future (iat); check the clocks", fmt.Errorf("iat %s is %s after this API's clock, %s (leeway %s): this API's clock or the issuer's is off",
			stamp(c.IssuedAt), c.IssuedAt.Sub(now).Round(time.Second), stamp(now), leeway))
	}
	return nil
}

// stamp is t as logs show it: UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// wireClaims are the claims of a Keyward access token on the wire, as a
// JWT carries them and an introspection answer repeats them.
type wireClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	ClientID string          `json:"client_id"`
	Email    string          `json:"client_email"`
	Iat      json.Number     `json:"iat"`
	Nbf      json.Number     `json:"nbf"`
	Exp      json.Number     `json:"exp"`
	Jti      string          `json:"jti"`
	Scope    string          `json:"scope"`
	Act      *struct {
		Sub   string `json:"sub"`
		Email string `json:"client_email"`
	} `json:"act"`
	Cnf *struct {
		X5T string `json:"x5t#S256"`
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

func parseAccessClaims(payload []byte) (*Claims, error) {
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, invalid("the token's claims are malformed", err)
	}
	// RFC 9068 §2.2: these are required; Keyward always sends them.
	var missing []string
	for _, f := range []struct {
		name    string
		present bool
	}{
		{"iss", w.Iss != ""}, {"exp", w.Exp != ""}, {"aud", len(w.Aud) > 0 && string(w.Aud) != "null"},
		{"sub", w.Sub != ""}, {"client_id", w.ClientID != ""}, {"iat", w.Iat != ""}, {"jti", w.Jti != ""},
	} {
		if !f.present {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, invalid("the token lacks "+strings.Join(missing, ", ")+", required in an access token (RFC 9068 §2.2)", nil)
	}
	aud, err := parseAudience(w.Aud)
	if err != nil {
		return nil, invalid("the token's aud is malformed", err)
	}
	c, err := w.claims(aud)
	if err != nil {
		return nil, invalid("the token's times are malformed", err)
	}
	return c, nil
}

// claims is w as Claims, of audience aud (which each caller parses and
// reports on itself); the error is that of a malformed time.
func (w *wireClaims) claims(aud []string) (*Claims, error) {
	c := &Claims{
		Issuer: w.Iss, Subject: w.Sub, ClientID: w.ClientID, ClientEmail: w.Email, Audience: aud,
		Scopes: strings.Fields(w.Scope), ID: w.Jti,
	}
	var err error
	if c.IssuedAt, err = numericDate(w.Iat); err == nil {
		if c.NotBefore, err = numericDate(w.Nbf); err == nil {
			c.Expiry, err = numericDate(w.Exp)
		}
	}
	if err != nil {
		return nil, err
	}
	if w.Act != nil {
		c.Actor = &Actor{Subject: w.Act.Sub, ClientEmail: w.Act.Email}
	}
	if w.Cnf != nil {
		c.CertificateThumbprint, c.KeyThumbprint = w.Cnf.X5T, w.Cnf.JKT
	}
	return c, nil
}

func parseAudience(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, err
	}
	return many, nil
}

func numericDate(n json.Number) (time.Time, error) {
	if n == "" {
		return time.Time{}, nil
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, err
	}
	// Converting a float beyond int64 to one is implementation-defined in
	// Go (on amd64 it gives the far past, which would pass an nbf check).
	if f < minNumericDate || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("numeric date %s is out of range", n)
	}
	return time.Unix(int64(f), 0), nil
}

// minNumericDate and maxNumericDate bound the NumericDates accepted:
// years 0 to 9999, far wider than any token's.
const minNumericDate, maxNumericDate = -62167219200, 253402300799

// checkBinding enforces certificate binding (RFC 8705 §3).
func checkBinding(c *Claims, cert *x509.Certificate) error {
	if c.CertificateThumbprint == "" {
		return nil
	}
	if cert == nil {
		return invalid("the token is bound to a client certificate, and the request presented none", nil)
	}
	if oauth2.Thumbprint(cert) != c.CertificateThumbprint {
		return invalid("the token is bound to another client certificate", nil)
	}
	return nil
}

// tokenKey is the cache key of a token: its SHA-256, computed without
// copying the token (Sum256 does not keep the slice).
func tokenKey(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

func isJWT(raw string) bool { return strings.Count(raw, ".") == 2 }

// parseCompact parses raw as a compact JWS signed with one of algs. Go's
// base64 skips CR and LF, which a compact JWS never holds: they are
// refused (oauth2.IsCompactJWS), and so are unused bits set
// (canonicalSegments), so one token has one form (and one cache entry).
func parseCompact(raw string, algs []jose.SignatureAlgorithm) (*jose.JSONWebSignature, error) {
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, err
	}
	if !oauth2.IsCompactJWS(raw) {
		return nil, errors.New("a character outside base64url")
	}
	if !canonicalSegments(raw) {
		return nil, errors.New("a segment's last character sets bits that encode nothing: not the base64url encoding of its bytes (RFC 4648 §3.5)")
	}
	return jws, nil
}

// canonicalSegments reports whether the unused low bits of the last
// character of each of raw's segments are zero, as base64url encoding
// leaves them (RFC 4648 §3.5): Go's decoder ignores them, so up to 16
// strings decoded to one segment's bytes.
func canonicalSegments(raw string) bool {
	strict := base64.RawURLEncoding.Strict()
	for seg := range strings.SplitSeq(raw, ".") {
		if tail := seg[len(seg)-len(seg)%4:]; tail != "" {
			var b [3]byte
			if _, err := strict.Decode(b[:], []byte(tail)); err != nil {
				return false
			}
		}
	}
	return true
}

// checkEncoded refuses a JWT whose b64 header (RFC 7797) is anything but
// absent or true (oauth2.Unencoded).
func checkEncoded(h jose.Header) error {
	if oauth2.Unencoded(h) {
		return invalid("the token's b64 header must be true or absent: a JWT's claims are base64url-encoded, never an unencoded payload (RFC 7797)", nil)
	}
	return nil
}

// isOpaque reports whether raw can be a Keyward opaque token: the prefix,
// then at least 256 random bits in unpadded base64url (43 characters).
func isOpaque(raw string) bool {
	rest, ok := strings.CutPrefix(raw, oauth2.OpaqueTokenPrefix)
	return ok && len(rest) >= 43 && len(rest) <= 256 && oauth2.IsBase64URL(rest)
}

// looksSelfSigned reports whether a JWT's (unverified) issuer is an email:
// a service account's own JWT rather than an access token.
func looksSelfSigned(raw string) bool {
	_, rest, _ := strings.Cut(raw, ".")
	payload, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	return json.Unmarshal(b, &c) == nil && strings.Contains(c.Iss, "@")
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// getJSON fetches url into v, bounded in size; it returns the response
// headers for cache control.
func getJSON(ctx context.Context, client *http.Client, url string, v any, hdr *http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{url: url, code: resp.StatusCode, status: resp.Status}
	}
	if hdr != nil {
		*hdr = resp.Header
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// statusError is a non-200 answer from the issuer.
type statusError struct {
	url, status string
	code        int
}

func (e *statusError) Error() string { return "GET " + e.url + ": " + e.status }

// tokenCache holds values (verified claims, or refusals) by the token's
// SHA-256 until they expire, bounded in entries.
type tokenCache[V any] struct {
	max    int
	shards [16]struct {
		mu sync.RWMutex
		m  map[[32]byte]cached[V]
	}
}

type cached[V any] struct {
	v     V
	until time.Time
}

func newTokenCache[V any](n int) *tokenCache[V] {
	tc := &tokenCache[V]{max: max(1, n/16)}
	for i := range tc.shards {
		tc.shards[i].m = map[[32]byte]cached[V]{}
	}
	return tc
}

func (tc *tokenCache[V]) get(k [32]byte, now time.Time) (V, bool) {
	v, _, ok := tc.lookup(k, now)
	return v, ok
}

// lookup is get, also returning when the entry ends.
func (tc *tokenCache[V]) lookup(k [32]byte, now time.Time) (V, time.Time, bool) {
	s := &tc.shards[k[0]&15]
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		var zero V
		return zero, time.Time{}, false
	}
	return e.v, e.until, true
}

func (tc *tokenCache[V]) put(k [32]byte, v V, until, now time.Time) {
	s := &tc.shards[k[0]&15]
	s.mu.Lock()
	if len(s.m) >= tc.max {
		for key, e := range s.m { // drop the expired; if none, some at random
			if !now.Before(e.until) || len(s.m) >= tc.max {
				delete(s.m, key)
			}
			if len(s.m) < tc.max*9/10 {
				break
			}
		}
	}
	s.m[k] = cached[V]{v: v, until: until}
	s.mu.Unlock()
}
