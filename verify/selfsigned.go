package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/time/rate"

	"github.com/keyward/keyward/internal/jwspad"
	"github.com/keyward/keyward/internal/oauth2"
)

// How long a service account's keys are trusted. After accountKeysFresh
// they are refetched on the next token, which waits for them (at most
// once per accountKeysRetry per account, from when the last try began,
// or ended if it failed, counting only tries since they went stale); if
// the issuer cannot be reached they stay in use until accountKeysMaxStale,
// then the account's JWTs are refused, and once a try has failed the next
// are made in the background, not waited for.
// A token that comes within accountKeysAhead before they go stale
// refetches them in the background and is verified with them
// meanwhile, so that the JWTs of an account in steady use seldom wait:
// a key is still trusted only
// within accountKeysFresh of a fetch that brought it, and a JWT verified
// with it is cached no longer (Verifier.verifyBound). An account the
// issuer no longer serves keys for (disabled or deleted: 404) is
// forgotten at once.
const (
	accountKeysFresh    = 5 * time.Minute
	accountKeysAhead    = 30 * time.Second
	accountKeysRetry    = 10 * time.Second
	accountKeysMaxStale = 15 * time.Minute
)

// accountKeysBackground bounds the fetches of accounts' keys made in the
// background, not waited for (ahead, and retries while the issuer cannot
// be reached), in flight at once: accounts first seen together go stale
// together, and their JWTs would otherwise fetch all their keys at once.
// One not made for the cap is made by the account's next JWT.
const accountKeysBackground = 4

// Fetches for kids unknown among known accounts' keys, across accounts:
// so many a second, and so many at once.
const (
	unknownKidsPerSecond = 5
	unknownKidsBurst     = 10
)

// accountKeys caches service accounts' public keys, fetched from the
// issuer's /service_accounts/v1/jwk/{email}.
type accountKeys struct {
	issuer string
	o      options

	// mu guards sets and fetching. It is read-locked on the hot path (a
	// cached JWT in its keys' last accountKeysAhead, see ahead), and
	// write-locked only to change them.
	mu   sync.RWMutex
	sets map[string]accountSet
	// fetching are the fetches of accounts' keys in flight, by email.
	fetching map[string]*keyFetch
	// background is how many of them are made in the background (see
	// accountKeysBackground).
	background int
	// limiter bounds fetches for accounts not in the cache, so a flood of
	// made-up emails cannot hammer the issuer. Accounts already known are
	// refreshed outside it, each at most once per accountKeysRetry, so the
	// flood cannot keep their keys from being refreshed either.
	limiter *rate.Limiter
	// kids bounds, across accounts, the fetches for a kid not among a
	// known account's keys: with made-up kids and the emails of N real
	// accounts, the per-account pause alone would let N/10 fetches a
	// second through. Fetches of keys gone stale are outside it.
	kids *rate.Limiter
}

type accountSet struct {
	keys jose.JSONWebKeySet
	// unusable are the account's keys that are not verified with, by kid,
	// with why (see publishedKeys): known, so a kid naming one is not
	// fetched for again, but never tried.
	unusable map[string]error
	fetched  time.Time // the last successful fetch
	// tried is when the last attempt began, or, once it has failed, when
	// it ended: the next waits accountKeysRetry from then, so one that
	// hangs until fetchTimeout is not followed at once by the next.
	tried  time.Time
	failed bool // the last attempt failed (or is in flight)
	// failedAt is when the last attempt that failed ended (its tried):
	// one since the keys went stale says the issuer cannot be reached,
	// and the next tries are not waited for.
	failedAt time.Time
}

func newAccountKeys(issuer string, o options) *accountKeys {
	return &accountKeys{issuer: issuer, o: o, sets: map[string]accountSet{}, fetching: map[string]*keyFetch{},
		limiter: rate.NewLimiter(rate.Every(time.Second), 10), kids: rate.NewLimiter(unknownKidsPerSecond, unknownKidsBurst)}
}

// errNoAccount: the issuer serves no keys for the email (no such enabled
// account).
var errNoAccount = errors.New("no enabled service account")

// errAccountsThrottled: the email is not known here, and the issuer was not
// asked because too many unknown accounts were looked up just now (a flood
// of made-up emails, or many new accounts at once). The account may exist:
// its JWT is not called invalid.
var errAccountsThrottled = errors.New("too many service accounts new to this API looked up just now")

// refetchPaused: the token's kid is not among the account's keys known
// here, which may not be fetched again for wait: they were fetched too
// recently, or (capped) too many accounts' keys were fetched for unknown
// kids just now.
type refetchPaused struct {
	wait   time.Duration
	capped bool
	// failed: a fetch since the last successful one failed, and the fetch
	// in flight, if any, was not started for this JWT.
	failed bool
}

func (e *refetchPaused) Error() string {
	if e.failed {
		return fmt.Sprintf("kid unknown, and the last fetch of the account's keys failed; again in %s", e.wait)
	}
	if e.capped {
		return fmt.Sprintf("kid unknown, and too many accounts' keys were fetched for unknown kids just now; again in %s", e.wait)
	}
	return fmt.Sprintf("kid unknown, and the account's keys were fetched too recently; again in %s", e.wait)
}

// errKeysUnavailable: the issuer could not be reached for the account's
// keys, and the keys known here are too old to trust or lack the token's
// kid.
var errKeysUnavailable = errors.New("keys unavailable")

// key returns the account's keys with kid (any key when kid is empty)
// and algorithm alg, when the fetch that brought them was (they are
// trusted until accountKeysFresh after it, or while the issuer cannot be
// reached until accountKeysMaxStale), and why the account's keys that
// would otherwise be among them are not (nil if none is left out).
func (a *accountKeys) key(ctx context.Context, email, kid string, alg string) (keys []jose.JSONWebKey, fetched time.Time, skipped, err error) {
	now := a.o.now()
	// The keys and the fetch in flight are read at once: a fetch that
	// ends in between would leave the keys it replaced in use, not
	// waited for.
	a.mu.RLock()
	set, known := a.sets[email]
	inFlight := a.fetching[email]
	free := a.backgroundFree(email)
	a.mu.RUnlock()
	if testHookKeySnapshot != nil {
		testHookKeySnapshot()
	}
	hasKid := kid == "" || len(set.keys.Key(kid)) > 0 || set.unusable[kid] != nil
	stale := now.Sub(set.fetched) > accountKeysFresh
	// A try that failed before the keys went stale (one ahead, say) does
	// not keep them in use past accountKeysFresh: only a failure since
	// does, the issuer not being reachable once they are stale.
	retried := now.Sub(set.tried) < accountKeysRetry && (!stale || set.tried.Sub(set.fetched) > accountKeysFresh)
	// A try since they went stale ended in failure: the stale keys are in
	// use until accountKeysMaxStale, and meanwhile the next try, made in
	// the background, is not waited for, as each would be for up to
	// fetchTimeout while the issuer does not answer at all.
	down := stale && now.Sub(set.fetched) <= accountKeysMaxStale && set.failedAt.Sub(set.fetched) > accountKeysFresh
	// A fetch since the last successful one failed (fetch clears failedAt
	// on success): the issuer may not answer at all, and a JWT of an
	// unknown kid waits only for a fetch it started, not for one in
	// flight (up to fetchTimeout), as each would.
	lastFailed := !set.failedAt.IsZero()
	var (
		refresh bool
		paused  refetchPaused // why not, if the kid is unknown
		// budget is what a fetch of the account's keys is paid from,
		// nil if from nothing: one in flight is joined free.
		budget *rate.Limiter
	)
	switch {
	case !known:
		// JWTs of one account that come together join one fetch and
		// spend one fetch of the budget: each spent one, so one
		// account's burst could use it all up for the others.
		refresh, budget = true, a.limiter
	case retried:
		paused.wait = accountKeysRetry - now.Sub(set.tried)
	case down && hasKid:
		if free { // start would not start one: no need for its lock
			a.start(ctx, email, now, nil, true)
		}
	case stale:
		refresh = true
	case !hasKid:
		refresh, paused.wait = take(a.kids, now)
		paused.capped = !refresh
	case aheadDue(set, now):
		// Refetched ahead, in the background, and not waited for: the
		// keys are still fresh, and the account's next JWTs, once they
		// would not be, find them fetched again.
		if free {
			a.start(ctx, email, now, nil, true)
		}
	}
	var (
		f     *keyFetch
		began bool
	)
	if refresh {
		f, began = a.start(ctx, email, now, budget, false)
	} else if !hasKid || stale && !down {
		// A fetch in flight (for another JWT) may bring the key: wait
		// for it, as for one started here, rather than
		// answer as if the keys could not be fetched. Nor are stale
		// keys used while one is: only once it has failed, the issuer
		// not being reachable.
		f = inFlight
	}
	if !hasKid && lastFailed && !began {
		paused.failed, paused.wait = true, max(paused.wait, accountKeysRetry-now.Sub(set.tried))
		return nil, time.Time{}, nil, &paused
	}
	if f == nil && known && !hasKid && !set.failed {
		// The kid may be a key added since the keys were fetched: not
		// known to be invalid.
		return nil, time.Time{}, nil, &paused
	}
	if f == nil && !known {
		return nil, time.Time{}, nil, errAccountsThrottled
	}
	var failed bool // the fetch just made failed, not for the account being gone
	for f != nil {
		// The fetch outlives a cancelled request: other requests wait on
		// it. This one waits as long as its context allows.
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, time.Time{}, nil, fmt.Errorf("%w: the request ended while they were being fetched: %w", errKeysUnavailable, ctx.Err())
		}
		failed = f.err != nil
		a.mu.RLock()
		set, known = a.sets[email]
		a.mu.RUnlock()
		f = nil
		if refresh && !began && !failed && (!known || kid != "" && len(set.keys.Key(kid)) == 0 && set.unusable[kid] == nil) {
			// The fetch joined (for another JWT) began before this one
			// came, and its answer may predate the account or the key:
			// fetch them again, as this JWT may, rather than call it
			// invalid. For an account that was new, this fetch is the
			// one paid for from the budget (unless another JWT's, begun
			// since, is joined), and none left is as for any new one.
			if f, _ = a.start(ctx, email, now, budget, false); f == nil {
				return nil, time.Time{}, nil, errAccountsThrottled
			}
			began = true
		}
	}
	switch {
	case !known && failed:
		return nil, time.Time{}, nil, errKeysUnavailable
	case !known:
		return nil, time.Time{}, nil, errNoAccount
	case now.Sub(set.fetched) > accountKeysMaxStale:
		return nil, time.Time{}, nil, errKeysUnavailable
	case kid != "" && len(set.keys.Key(kid)) == 0 && set.unusable[kid] == nil && set.failed:
		// The kid may be a key added since the last successful fetch.
		return nil, time.Time{}, nil, errKeysUnavailable
	case !refresh && kid != "" && len(set.keys.Key(kid)) == 0 && set.unusable[kid] == nil:
		// Fetched without the kid, but by a fetch that began before
		// this JWT came: still not known to be invalid.
		return nil, time.Time{}, nil, &paused
	}
	for _, k := range set.keys.Keys {
		if (kid == "" || k.KeyID == kid) && k.Algorithm == alg {
			keys = append(keys, k)
		}
	}
	if kid != "" {
		return keys, set.fetched, set.unusable[kid], nil
	}
	var why []error
	for _, id := range slices.Sorted(maps.Keys(set.unusable)) {
		why = append(why, set.unusable[id])
	}
	return keys, set.fetched, errors.Join(why...), nil
}

// testHookKeySnapshot, if set (tests), is called by accountKeys.key once
// it has read the account's keys.
var testHookKeySnapshot func()

// aheadDue reports whether keys are due to be fetched ahead at now: in
// the last accountKeysAhead before they go stale, and not tried within
// accountKeysRetry.
func aheadDue(set accountSet, now time.Time) bool {
	age := now.Sub(set.fetched)
	return age > accountKeysFresh-accountKeysAhead && age <= accountKeysFresh && now.Sub(set.tried) >= accountKeysRetry
}

// ahead fetches email's keys again in the background, not waited for,
// when they are due to be fetched ahead (aheadDue): for a JWT answered
// from the cache, which key does not see. It is called on every such hit
// and takes only the read lock unless a fetch is due and start would
// make it (backgroundFree): once one has started (tried is then now) or
// brought the keys (fetched), none is due, and while the fetches in the
// background are at their cap the account's is left for a later hit, so
// the account's JWTs do not queue on one lock, nor on one another.
func (a *accountKeys) ahead(ctx context.Context, email string, now time.Time) {
	a.mu.RLock()
	set, known := a.sets[email]
	free := a.backgroundFree(email)
	a.mu.RUnlock()
	if known && free && aheadDue(set, now) {
		a.start(ctx, email, now, nil, true)
	}
}

// backgroundFree reports whether start would start a fetch of email's
// keys in the background: none is in flight, and fewer than
// accountKeysBackground are. Called with a.mu held, read-locked at
// least; start checks again under the write lock.
func (a *accountKeys) backgroundFree(email string) bool {
	return a.fetching[email] == nil && a.background < accountKeysBackground
}

// start returns the fetch of email's keys in flight, starting one when
// none is (began) and budget, if not nil, allows one, and, for one made in
// the background (not waited for), accountKeysBackground does (nil when
// they do not): bounded by fetchTimeout, and run apart from ctx, so that the
// caller may stop waiting for it. Its err is errKeysUnavailable when
// fetch reports a failure. The budget is spent at the clock's time, not
// at now, which is seconds behind for a JWT that waited on another fetch:
// a rate.Limiter told an earlier time than its last moves back to it, and
// counts the time between again.
func (a *accountKeys) start(ctx context.Context, email string, now time.Time, budget *rate.Limiter, background bool) (f *keyFetch, began bool) {
	if testHookAccountStart != nil {
		testHookAccountStart()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if f = a.fetching[email]; f != nil {
		return f, false
	}
	if background && a.background >= accountKeysBackground {
		return nil, false
	}
	if budget != nil && !budget.AllowN(a.o.now(), 1) {
		return nil, false
	}
	f = &keyFetch{done: make(chan struct{})}
	a.fetching[email] = f
	if background {
		a.background++
	}
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		if a.fetch(fctx, email, now) {
			f.err = errKeysUnavailable
		}
		cancel()
		a.mu.Lock()
		delete(a.fetching, email)
		if background {
			a.background--
		}
		a.mu.Unlock()
		close(f.done)
	}()
	return f, true
}

// testHookAccountStart, if set (tests), is called by accountKeys.start
// before it takes the write lock.
var testHookAccountStart func()

// fetch refreshes the cached keys of email: replaced on success, dropped
// when the issuer says the account is gone, kept (with the attempt noted,
// as of when it ended) on any other failure, which it reports.
func (a *accountKeys) fetch(ctx context.Context, email string, now time.Time) (failed bool) {
	a.mu.Lock()
	if s, ok := a.sets[email]; ok {
		s.tried, s.failed = now, true // until it succeeds
		a.sets[email] = s
	}
	a.mu.Unlock()
	var fresh publishedKeys
	err := getJSON(ctx, a.o.client, a.issuer+"/service_accounts/v1/jwk/"+url.PathEscape(email), &fresh, nil)
	var se *statusError
	gone := errors.As(err, &se) && (se.code == http.StatusNotFound || se.code == http.StatusGone)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err == nil:
		if len(a.sets) > 10_000 {
			clear(a.sets)
		}
		a.sets[email] = accountSet{keys: fresh.JSONWebKeySet, unusable: fresh.unusable, fetched: now, tried: now}
	case gone:
		delete(a.sets, email)
	default:
		if s, ok := a.sets[email]; ok {
			s.tried = a.o.now()
			s.failedAt = s.tried
			a.sets[email] = s
		}
		return true
	}
	return false
}

// verifySelfSigned checks a service account's own JWT used as a bearer
// token: iss = sub = the account email, aud = this API, at most an hour
// long, signed RS256 or ES256 with one of the account's published keys.
// It also returns when that key stops being trusted: accountKeysFresh
// after the fetch that brought it.
func (v *Verifier) verifySelfSigned(ctx context.Context, raw string, now time.Time) (*Claims, time.Time, error) {
	// google-auth for Python before 1.6.3 pads the segments of the JWTs it
	// signs; the signature then covers them as sent.
	compact, padded, err := jwspad.Unpad(raw)
	if err != nil {
		return nil, time.Time{}, invalid("the token's base64 padding is wrong", err)
	}
	jws, err := parseCompact(compact, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, time.Time{}, invalid("the token is neither an access token nor a service account's JWT", err)
	}
	// Read with go-jose's JSON, as Keyward's token endpoint reads a
	// service account's JWTs: claim names are case-sensitive (RFC 7519
	// §4), one named twice is refused, and times are numbers (§2), where
	// encoding/json took "ISS" for iss, the last of two aud, and a string
	// iat.
	var c struct {
		Iss string              `json:"iss"`
		Sub string              `json:"sub"`
		Aud josejson.RawMessage `json:"aud"`
		Iat *jwt.NumericDate    `json:"iat"`
		Exp *jwt.NumericDate    `json:"exp"`
		Nbf *jwt.NumericDate    `json:"nbf"`
	}
	h := jws.Signatures[0].Protected
	if err := checkEncoded(h); err != nil {
		return nil, time.Time{}, err
	}
	// As the token endpoint refuses such an assertion (RFC 8725 §3.11):
	// another kind of JWT is never taken for a service account's own.
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); oauth2.TypeIs(typ, "at+jwt") || oauth2.TypeIs(typ, "dpop+jwt") {
		return nil, time.Time{}, invalid("the JWT's typ names an access token (at+jwt) or a DPoP proof (dpop+jwt), not a service account's JWT; sign it with typ JWT, or none", nil)
	}
	if err := josejson.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return nil, time.Time{}, invalid("the JWT's claims are malformed: names are case-sensitive and each appears once, and times are numbers (RFC 7519)", err)
	}
	if c.Iss == "" || c.Iss != c.Sub || !strings.Contains(c.Iss, "@") {
		return nil, time.Time{}, invalid("a service account's JWT needs iss = sub = the account email", nil)
	}
	// Until the signature verifies, iss is the sender's say-so: it goes
	// into the causes, for logs, not into the descriptions sent back.
	iss := fmt.Errorf("iss %q", c.Iss)
	// What the JWT says is checked before its signature: a JWT that would
	// be refused whatever its key (expired, for another API) is refused
	// before its account's keys are looked up. It spends none of the
	// budget for accounts new to this API, which JWTs naming made-up
	// accounts would otherwise use up for real ones, and, asked to retry
	// while the keys may not be fetched, its sender would only be refused
	// then.
	aud, err := parseAudience(json.RawMessage(c.Aud))
	if err != nil || len(aud) != 1 || !oauth2.NamesAPI(aud[0], v.audience) {
		want := v.audience
		if oauth2.IsHTTPURL(want) {
			want += ", with or without a trailing slash"
		}
		return nil, time.Time{}, invalid("the JWT's aud must be this API, "+want, err)
	}
	if c.Iat == nil || c.Exp == nil {
		return nil, time.Time{}, invalid("the JWT needs numeric iat and exp", nil)
	}
	// nbf is optional, but a JWT that has one is not accepted before it
	// (RFC 7519 §4.1.5).
	iat, exp, nbf := c.Iat.Time(), c.Exp.Time(), c.Nbf.Time()
	if life := exp.Sub(iat); life <= 0 || life > v.o.maxSelfSignedAge {
		return nil, time.Time{}, invalid("a service account's JWT may live at most an hour (exp - iat)", nil)
	}
	cl := &Claims{Issuer: c.Iss, Subject: c.Sub, ClientEmail: c.Iss, Audience: aud, IssuedAt: iat, Expiry: exp, NotBefore: nbf, SelfSigned: true}
	if err := v.checkTimes(cl, now); err != nil {
		return nil, time.Time{}, err
	}
	keys, fetched, skipped, err := v.accounts.key(ctx, c.Iss, h.KeyID, h.Algorithm)
	var paused *refetchPaused
	switch {
	case errors.As(err, &paused) && paused.failed:
		e := unavailable("the JWT's key is not among the keys known here of the service account its iss names, and they could not be refreshed from the issuer", fmt.Errorf("%w: %w", iss, err))
		e.RetryAfter = boundRetryAfter(paused.wait)
		return nil, time.Time{}, e
	case errors.As(err, &paused):
		e := unavailable("the JWT's key is not among the keys known here of the service account its iss names, and they may not be fetched again yet", fmt.Errorf("%w: %w", iss, err))
		e.RetryAfter = boundRetryAfter(paused.wait)
		return nil, time.Time{}, e
	case errors.Is(err, errNoAccount):
		return nil, time.Time{}, invalid("the issuer has no enabled service account named by the JWT's iss", iss)
	case errors.Is(err, errAccountsThrottled):
		return nil, time.Time{}, unavailable("too many service accounts new to this API are being looked up just now", fmt.Errorf("%w: %w", iss, err))
	case err != nil:
		return nil, time.Time{}, unavailable("the keys of the service account named by the JWT's iss could not be refreshed from the issuer", fmt.Errorf("%w: %w", iss, err))
	}
	var payload []byte
	for _, k := range keys {
		if padded != nil {
			if padded.Verify(k.Key, jose.SignatureAlgorithm(h.Algorithm)) == nil {
				payload = jws.UnsafePayloadWithoutVerification()
				break
			}
			continue
		}
		if p, err := jws.Verify(k.Key); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, time.Time{}, invalid("the JWT is not signed with a key of the service account its iss names", errors.Join(iss, skipped))
	}
	return cl, fetched.Add(accountKeysFresh), nil
}
