package verify

import (
	"net/http"
	"time"
)

// Option configures a Verifier.
type Option func(*options)

type options struct {
	client           *http.Client
	now              func() time.Time
	leeway           time.Duration
	cacheSize        int
	introspect       *introspectionCredentials
	introspectJWTs   bool
	introspectionTTL time.Duration
	selfSigned       bool
	maxSelfSignedAge time.Duration
	refreshInterval  time.Duration
	unknownKidEvery  time.Duration

	// New introspections per second and at once, and in flight.
	introspectionRate     float64
	introspectionBurst    int
	introspectionInFlight int

	dpop dpopOptions
}

func defaultOptions() options {
	return options{
		client:           &http.Client{Timeout: 10 * time.Second},
		now:              time.Now,
		leeway:           30 * time.Second,
		cacheSize:        10_000,
		introspectionTTL: 30 * time.Second,
		maxSelfSignedAge: time.Hour,
		refreshInterval:  5 * time.Minute,
		unknownKidEvery:  10 * time.Second,

		// Tokens already seen active are not held to the rate, so it only
		// has to admit tokens new to this API: a few per second once warm,
		// more after a restart (the burst).
		introspectionRate:     100,
		introspectionBurst:    500,
		introspectionInFlight: 32,
	}
}

// WithHTTPClient sets the client used to reach the issuer (by default one
// with a 10 s timeout); nil keeps the default. The Verifier uses copies of
// c, which is not changed: the GETs of the issuer's metadata and keys
// follow no redirect from HTTPS down to plain HTTP, and introspection
// requests, which carry the API's credentials and the token, follow no
// redirect at all; other redirects are left to c's CheckRedirect.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.client = c
		}
	}
}

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLeeway sets the clock difference tolerated for exp, nbf and iat
// (default 30 s).
func WithLeeway(d time.Duration) Option { return func(o *options) { o.leeway = d } }

// WithCacheSize bounds the verified-token cache (default 10,000 tokens).
func WithCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// WithIntrospection lets the Verifier introspect opaque tokens (RFC 7662),
// authenticated as the API's own service account with a client secret
// (client_secret_basic). The account must be an introspector of the API.
// Only tokens shaped like Keyward's opaque tokens (kwat_ and base64url) are
// sent; a refusal is remembered like an answer (WithIntrospectionCacheTTL),
// so one unknown token sent again and again reaches the issuer once. An
// answer active whose exp is past, or whose nbf or iat is ahead, beyond
// the leeway (WithLeeway) is refused as the same JWT would be: the issuer
// says active by its own clock. New fails if clientID or clientSecret is
// empty.
func WithIntrospection(clientID, clientSecret string) Option {
	return func(o *options) { o.introspect = &introspectionCredentials{clientID: clientID, secret: clientSecret} }
}

// WithIntrospectionKeyFile is WithIntrospection with the API account's JSON
// key file instead of a secret: each request carries a fresh private_key_jwt
// assertion (RFC 7523 §2.2), RS256 for an RSA key, ES256 for an EC P-256
// key, with the issuer as its aud (draft-ietf-oauth-rfc7523bis), which a
// server with --strict-client-assertion-audience requires. New fails if
// the key file cannot sign.
func WithIntrospectionKeyFile(keyFileJSON []byte) Option {
	return func(o *options) { o.introspect = &introspectionCredentials{keyFile: keyFileJSON} }
}

// WithRevocationCheck makes the Verifier introspect JWTs too, after the
// local checks, so a revoked token or a disabled account is refused within
// the introspection cache lifetime. It needs WithIntrospection (or
// WithIntrospectionKeyFile): New fails without. A
// self-signed JWT (WithSelfSignedJWTs) is not introspected: it is refused
// once its account's keys are gone at the issuer, within 5 minutes of the
// account being disabled or deleted (15 while the issuer cannot be
// reached).
func WithRevocationCheck() Option { return func(o *options) { o.introspectJWTs = true } }

// WithIntrospectionCacheTTL bounds how long an introspection answer, active
// or not, is reused (default 30 s), from when the issuer was asked: also
// for a request that came while the question was in flight and shared
// its answer. Never past the token's expiry, nor, for a token refused
// because its nbf is ahead, past when the leeway reaches its nbf.
func WithIntrospectionCacheTTL(d time.Duration) Option {
	return func(o *options) { o.introspectionTTL = d }
}

// WithIntrospectionRate bounds how many tokens never seen active before
// are introspected: perSecond on average, burst at once (by default 100 a
// second, 500 at once). Each question writes an audit event at the issuer,
// and anyone can send made-up kwat_ tokens, each new to the cache. Tokens
// already seen active (being introspected again after
// WithIntrospectionCacheTTL) and JWTs (WithRevocationCheck), which only the
// issuer can sign, are not held to the rate. Beyond it a token is neither
// accepted nor refused: the error matches ErrUnavailable and
// ErrIntrospectionThrottled, and Middleware answers 503 with Retry-After
// saying when the budget refills. perSecond <= 0 lifts the bound.
func WithIntrospectionRate(perSecond float64, burst int) Option {
	return func(o *options) { o.introspectionRate, o.introspectionBurst = perSecond, burst }
}

// WithIntrospectionConcurrency bounds the introspection requests in flight
// at once (default 32). More wait for one to end, for as long as their
// context allows and at most 10 seconds, and are then answered like tokens
// beyond WithIntrospectionRate. n <= 0 lifts the bound.
func WithIntrospectionConcurrency(n int) Option {
	return func(o *options) { o.introspectionInFlight = n }
}

// WithSelfSignedJWTs accepts a service account's own JWT as a bearer token
// ("authorization without OAuth"): iss = sub = the account email, aud =
// this API, exp - iat at most an hour, not before its nbf if it has one,
// signed with one of the account's keys as published at the issuer's
// /service_accounts/v1/jwk/{email}. aud is one string, the audience given
// to New: as written, or, for an http(s) URL, with one trailing slash
// added or left out and its scheme and host in any case of their ASCII
// letters, so the API https://orders.internal takes the
// "https://orders.internal/" Google's clients send; not a URL under it
// (https://orders.internal/orders), nor another port. Such tokens carry
// no scopes: authorize them by Claims.ClientEmail. An account's keys are trusted for 5 minutes
// from their fetch (up to 15 while the issuer cannot be reached): its next
// JWT after that waits for them to be fetched again (once a fetch since has
// found the issuer unreachable, the next are not waited for, but made in
// the background), and one in the last 30 s before (a new one, or one
// reused and answered from the cache) has them fetched again in the
// background (at most 4 such fetches in flight at once, across accounts;
// one left out is made by the account's next JWT), so the JWTs of an
// account in steady use seldom wait, nor does a JWT reused for its whole
// life. A verified JWT is answered from the
// cache only until the keys it was verified with are 5 minutes old; one
// verified with older keys (the issuer unreachable) is not cached, but
// checked each time as a new JWT is. The keys of accounts new to the
// Verifier are fetched at most 10 at once and one a second after that, the
// JWTs of one such account that come together sharing one fetch. A known
// account's keys are fetched again for a kid not among them at most once
// every 10 s, and, across accounts, at most 10 at once and 5 a second after
// that, so made-up kids with the emails of many real accounts cannot hammer
// the issuer; a JWT that arrives while its account's keys are being fetched
// waits for that fetch, as long as its context allows, unless its kid is
// unknown and a fetch of them since the last successful one has failed:
// then only a fetch it started is waited for. Beyond, such a JWT
// is answered like an unavailable issuer (ErrUnavailable, 503 with
// Retry-After), not as invalid, since the account or key may exist. New
// refuses this option with an audience that is the issuer or its token
// endpoint URL: the JWTs service accounts exchange for access tokens carry
// that aud, and the API would receive them.
func WithSelfSignedJWTs() Option { return func(o *options) { o.selfSigned = true } }

// WithKeyRefresh sets how often the issuer's keys are refetched when the
// response says nothing about caching (default 5 minutes), between 10 s and
// an hour: a longer one is an hour, as a longer Cache-Control max-age is,
// so that a key the issuer stops publishing is no longer trusted within the
// hour. A refresh that fails is tried again 10 s later, the keys fetched
// before kept in use meanwhile. A verified JWT is answered from the cache
// only until the keys it was verified with are due to be refetched (their
// fetch plus this interval, or their Cache-Control max-age less their Age,
// the time a CDN or proxy had already held them (RFC 9111 §4.2.3), at least
// 10 s; 10 s with max-age=0, no-store or no-cache), whatever its exp; then
// it is verified again with the keys fetched since, and refused if its key
// is gone. The background refresh starts 5 s (a tenth of the interval, if
// less) before then, so those keys are in place when the cached tokens are
// verified again. One verified with keys that could not be refetched (the
// issuer unreachable, the old keys kept in use) is not cached, but checked
// each time as a new token is.
func WithKeyRefresh(d time.Duration) Option { return func(o *options) { o.refreshInterval = d } }
