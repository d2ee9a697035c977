package verify

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/time/rate"

	"github.com/keyward/keyward/internal/keyfile"
	"github.com/keyward/keyward/internal/oauth2"
)

// fetchTimeout bounds a fetch that outlives the request that started it,
// each of New's, and each background refresh of the issuer's keys.
const fetchTimeout = 10 * time.Second

// keySet caches the issuer's JWKS, refreshing it in the background and on
// an unknown kid — at most once every few seconds, so a flood of tokens
// with made-up kids cannot hammer the issuer.
type keySet struct {
	uri     string
	o       options
	limiter *rate.Limiter

	mu sync.RWMutex
	// fetching is the fetch in flight, which every refresh joins; nil
	// when none is.
	fetching *keyFetch
	keys     map[string]jose.JSONWebKey
	// unusable are the keys the issuer publishes that are not verified
	// with, by kid, with why (see publishedKeys and signingKeyProblem).
	// A token naming one is refused at once, without fetching the keys
	// again, with that reason as its Error's cause.
	unusable map[string]error
	// refused are why each key of the last fetch that was left out was:
	// as publishedKeys leaves keys out, with a kid or without, or for
	// signingKeyProblem.
	refused []error
	maxAge  time.Duration
	// trusted is when the keys stop being trusted: the last successful
	// fetch's start plus the refresh interval then in force
	// (refreshWait), when they are due to be fetched again (run fetches
	// them keysAhead before). A JWT verified with them is cached no
	// longer (Verifier.verifyBound).
	trusted time.Time
	failed  error // of the last fetch; nil if it succeeded
	// failedAt is when the last fetch that failed ended (by o.now):
	// onDemand waits keysRetry from then, as run does, so a fetch that
	// hangs until fetchTimeout is not followed at once by the next.
	failedAt time.Time
	// stopped is the Done channel of the ctx given to New: once it is
	// closed, run stops, and the keys are fetched on demand (onDemand).
	stopped <-chan struct{}
}

func newKeySet(uri string, o options) *keySet {
	return &keySet{uri: uri, o: o, limiter: rate.NewLimiter(rate.Every(o.unknownKidEvery), 1), keys: map[string]jose.JSONWebKey{}}
}

// keyFetch is a fetch of keys, the issuer's or an account's: done is
// closed when it ends, err set by then.
type keyFetch struct {
	done chan struct{}
	err  error
}

// start returns the fetch in flight, starting one when none is (began):
// bounded by ctx and fetchTimeout, and run apart from the caller, which
// may stop waiting for it.
func (ks *keySet) start(ctx context.Context) (f *keyFetch, began bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if f = ks.fetching; f != nil {
		return f, false
	}
	f = &keyFetch{done: make(chan struct{})}
	ks.fetching = f
	go func() {
		fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		f.err = ks.fetch(fctx)
		cancel()
		ks.mu.Lock()
		ks.fetching = nil
		ks.mu.Unlock()
		close(f.done)
	}()
	return f, true
}

// refresh fetches the JWKS now, or joins the fetch in flight, and waits
// for it to end (bounded by ctx and fetchTimeout, when it started it).
func (ks *keySet) refresh(ctx context.Context) error {
	f, _ := ks.start(ctx)
	<-f.done
	return f.err
}

// fetch fetches the JWKS; on success its keys replace those known.
func (ks *keySet) fetch(ctx context.Context) error {
	var (
		set publishedKeys
		hdr http.Header
	)
	began := ks.o.now() // the keys are the issuer's as of then
	if err := getJSON(ctx, ks.o.client, ks.uri, &set, &hdr); err != nil {
		err = fmt.Errorf("fetch keys: %w", err)
		ks.mu.Lock()
		ks.failed, ks.failedAt = err, ks.o.now()
		ks.mu.Unlock()
		return err
	}
	keys, unusable, refused := map[string]jose.JSONWebKey{}, set.unusable, set.refused // UnmarshalJSON made unusable
	for _, k := range set.Keys {
		if k.KeyID == "" {
			continue // a token names its key: without a kid, none can
		}
		// Only public signing keys with a declared, asymmetric
		// algorithm. One left out is known, as publishedKeys' are: a
		// token naming it is refused, not a reason to fetch again.
		if err := signingKeyProblem(k); err != nil {
			err = fmt.Errorf("the issuer's key %q is not used: %w", oauth2.Truncate(k.KeyID, 64), err)
			unusable[k.KeyID] = err
			refused = append(refused, err)
			continue
		}
		keys[k.KeyID] = k
	}
	age := maxAge(hdr)
	ks.mu.Lock()
	ks.keys, ks.unusable, ks.refused, ks.maxAge, ks.failed = keys, unusable, refused, age, nil
	ks.trusted = began.Add(ks.refreshWait(age))
	ks.mu.Unlock()
	return nil
}

// signingKeyProblem says why k is not verified with, or nil: only a
// public key, not for encryption (use enc), with an asymmetric signature
// algorithm of its own (RFC 8725 §3.1: the key decides, not the token).
func signingKeyProblem(k jose.JSONWebKey) error {
	switch {
	case !k.IsPublic():
		return errors.New("it is not a public key (a symmetric or private one)")
	case k.Use == "enc":
		return errors.New("it is for encryption (use enc), not signatures")
	case k.Algorithm == "":
		return errors.New("it names no algorithm (alg), and a key is used only with its own")
	case !slices.Contains(signingAlgs, jose.SignatureAlgorithm(k.Algorithm)):
		return fmt.Errorf("its algorithm %q is not an asymmetric signature algorithm", oauth2.Truncate(k.Algorithm, 32))
	}
	return nil
}

// noneUsable says why the keys of the last fetch cannot be used when
// none of them can and some were left out (too big, of a type go-jose
// does not know, or not for signatures: signingKeyProblem); nil
// otherwise, an empty set included.
func (ks *keySet) noneUsable() error {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if len(ks.keys) > 0 || len(ks.refused) == 0 {
		return nil
	}
	var why []string
	for _, err := range ks.refused[:min(len(ks.refused), 3)] {
		why = append(why, err.Error())
	}
	if n := len(ks.refused) - len(why); n > 0 {
		why = append(why, fmt.Sprintf("and %d more", n))
	}
	return fmt.Errorf("none of the issuer's keys at %s can be used: %s", ks.uri, strings.Join(why, "; "))
}

// run refreshes the keys as their cache lifetime says, until ctx ends:
// keysAhead before they stop being trusted (keySet.trusted), so that the
// keys fetched then, and when they are trusted until, are in place by
// the time those fetched before stop being trusted, and the tokens cached
// until then are verified again with them at once. After a fetch that
// failed, again keysRetry later: the old keys stay in use meanwhile, and
// a key the issuer dropped would otherwise stay trusted for a whole
// refresh interval more once it can be reached again.
func (ks *keySet) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(ks.nextRefresh()):
		}
		// Bounded as a fetch for an unknown kid is, whatever the HTTP
		// client: tokens with a new kid join this fetch, and an issuer
		// that never answered would hold them, and every later refresh.
		fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		ks.refresh(fctx) // on failure the old keys stay in use
		cancel()
	}
}

// onDemand fetches the keys once run has stopped (the ctx given to New
// has ended) and they are due, as run would have: keysAhead before they
// stop being trusted, and keysRetry after a fetch that failed. Keys no
// longer trusted are not used while that fetch is in flight, which it
// then waits for (as long as ctx allows), unless the last fetch failed:
// the issuer cannot be reached, and they stay in use meanwhile, as when
// run fetches them.
func (ks *keySet) onDemand(ctx context.Context) error {
	f, stale := ks.fetchDue(ctx)
	if f == nil || !stale {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return unavailable("the issuer's keys known here are no longer trusted, and the request ended while they were being fetched again", ctx.Err())
	}
}

// ahead is onDemand without the wait, for a token answered from the
// cache, which verify does not see: so that, as with run, the keys are
// fetched keysAhead before they stop being trusted, and the tokens
// cached until then are verified again with the new ones at once, none
// waiting for them. It takes only the read lock unless a fetch is due.
func (ks *keySet) ahead(ctx context.Context) {
	ks.fetchDue(ctx)
}

// fetchDue starts the fetch of the keys once run has stopped and they are
// due (see onDemand), and returns the fetch in flight, if any, and
// whether the keys are no longer trusted while the last fetch did not
// fail (stale): then they are not used until it ends.
func (ks *keySet) fetchDue(ctx context.Context) (f *keyFetch, stale bool) {
	select {
	case <-ks.stopped:
	default:
		return nil, false // run keeps them fresh
	}
	now := ks.o.now()
	ks.mu.RLock()
	f, trusted, age, failed, failedAt := ks.fetching, ks.trusted, ks.maxAge, ks.failed, ks.failedAt
	ks.mu.RUnlock()
	due := !now.Before(trusted.Add(-keysAhead(ks.refreshWait(age))))
	if f == nil && due && (failed == nil || now.Sub(failedAt) >= keysRetry) {
		// The fetch outlives a cancelled request, as one for an unknown
		// kid does.
		f, _ = ks.start(context.WithoutCancel(ctx))
	}
	return f, failed == nil && !now.Before(trusted)
}

// nextRefresh is how long run waits before it fetches the keys again:
// until keysAhead before they stop being trusted, or keysRetry after a
// fetch that failed. Never less than keysAhead, so a fetch that took
// longer than the keys are trusted does not start the next at once, nor
// more than refreshWait of the last successful fetch's max-age, whatever
// the clock (WithClock) says.
func (ks *keySet) nextRefresh() time.Duration {
	ks.mu.RLock()
	age, trusted, failed := ks.maxAge, ks.trusted, ks.failed
	ks.mu.RUnlock()
	if failed != nil {
		return keysRetry
	}
	every := ks.refreshWait(age)
	ahead := keysAhead(every)
	return min(max(trusted.Sub(ks.o.now())-ahead, ahead), every)
}

// keysAhead is how long before the issuer's keys stop being trusted
// they are fetched again, when they are fetched every refresh: 5 s,
// ample for a fetch, or a tenth of the refresh interval if that is less.
// Trusted from the start of that fetch, the keys are fetched that much
// more often, and trusted no longer.
func keysAhead(refresh time.Duration) time.Duration {
	return min(5*time.Second, refresh/10)
}

// refreshWait is how long keys sent with Cache-Control max-age age (0
// for none) are kept before they are fetched again: age or, without
// one, WithKeyRefresh's interval, at least 10 s and at most maxKeysAge.
func (ks *keySet) refreshWait(age time.Duration) time.Duration {
	if age <= 0 {
		age = ks.o.refreshInterval
	}
	return min(max(age, 10*time.Second), maxKeysAge)
}

// verify checks jws against the key its kid names, refreshing the keys
// once when the kid is unknown (after the fetch in flight, if one began
// before the token came; or waiting for that fetch alone, when they may
// not be fetched again yet, unless the last fetch failed: then only a
// fetch it started is waited for), and requires the key's algorithm
// to be the token's: the key decides, never the token. An unknown kid while the
// issuer's keys cannot be fetched, or may not be fetched again yet, is
// ErrUnavailable: the key may be new. A kid that names a key the issuer
// publishes but that is not verified with (an RSA key over
// keyfile.MaxRSABits bits, one without alg or with use enc) is
// invalid_token, with why as the cause, as is a token without a kid.
// It also returns when the keys it verified with stop being trusted
// (keySet.trusted): already past for stale keys, kept in use while the
// issuer cannot be reached.
func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature, h jose.Header) (payload []byte, trusted time.Time, err error) {
	if h.KeyID == "" {
		// Keys without a kid are not used (fetch): no key, however
		// new, can verify it, so it is neither a reason to fetch the
		// keys nor one to ask the sender to retry.
		return nil, time.Time{}, invalid("the token names no key (kid header)", nil)
	}
	if err := ks.onDemand(ctx); err != nil {
		return nil, time.Time{}, err
	}
	ks.mu.RLock()
	k, ok := ks.keys[h.KeyID]
	skipped := ks.unusable[h.KeyID]
	trusted = ks.trusted
	lastFailed := ks.failed != nil
	ks.mu.RUnlock()
	if !ok && skipped == nil {
		allowed, wait := take(ks.limiter, time.Now())
		var (
			f     *keyFetch
			began bool
		)
		if allowed {
			// The fetch outlives a cancelled request, so the limiter's
			// slot is not spent on nothing.
			f, began = ks.start(context.WithoutCancel(ctx))
		} else if !lastFailed {
			// A fetch in flight (for another token's kid, or the
			// background refresh) may bring the key: wait for it, as
			// for one started here, rather than answer as if the keys
			// had just been fetched without it.
			ks.mu.RLock()
			f = ks.fetching
			ks.mu.RUnlock()
		}
		if lastFailed && !began {
			// The last fetch failed: the issuer may not answer at all.
			// A fetch in flight (the background retry, another token's)
			// is not waited for, up to fetchTimeout, by every token of
			// an unknown kid: only by the one that started it.
			f = nil
		}
		if testHookKidFetch != nil {
			testHookKidFetch()
		}
		for f != nil {
			// As long as the request's context allows. A failure is
			// noted in ks.failed.
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, time.Time{}, unavailable("the token's key is not among the issuer's keys known here, and the request ended while they were being fetched", ctx.Err())
			}
			f = nil
			ks.mu.RLock()
			_, found := ks.keys[h.KeyID]
			again := allowed && !began && !found && ks.unusable[h.KeyID] == nil && ks.failed == nil
			ks.mu.RUnlock()
			if again {
				// The fetch joined (the background refresh, say) began
				// before this token came, and its answer may predate
				// the token's key: fetch them again, as the limiter
				// allowed, rather than call the token invalid.
				f, _ = ks.start(context.WithoutCancel(ctx))
				began = true
			}
		}
		ks.mu.RLock()
		k, ok = ks.keys[h.KeyID]
		skipped = ks.unusable[h.KeyID]
		trusted = ks.trusted
		failed := ks.failed
		ks.mu.RUnlock()
		switch {
		case !ok && skipped != nil:
			// Refused below.
		case !ok && failed != nil:
			e := unavailable("the token's key is not among the issuer's keys known here, and they could not be refreshed", failed)
			if !allowed {
				e.RetryAfter = boundRetryAfter(wait)
			}
			return nil, time.Time{}, e
		case !ok && allowed && !began:
			// The fetch in flight when the token came, not waited for
			// as the last one had failed, has ended since without its
			// key: it began before the token came, and its answer may
			// predate the key. Not known to be invalid; the limiter's
			// slot is spent.
			e := unavailable("the token's key is not among the issuer's keys known here, and they were being fetched again when it came", errKidPaused)
			e.RetryAfter = boundRetryAfter(ks.o.unknownKidEvery)
			return nil, time.Time{}, e
		case !ok && !allowed:
			// Not known to be invalid: the key may have been published
			// since the last fetch (RFC 6750 §3.1's invalid_token is for
			// tokens known bad). Retry once the keys may be fetched.
			e := unavailable("the token's key is not among the issuer's keys known here, and they were refreshed too recently to be fetched again yet", errKidPaused)
			e.RetryAfter = boundRetryAfter(wait)
			return nil, time.Time{}, e
		}
	}
	if !ok && skipped != nil {
		return nil, time.Time{}, invalid("the token was signed with a key of the issuer's that this verifier does not use", skipped)
	}
	if !ok {
		return nil, time.Time{}, invalid("the token was signed with a key the issuer does not publish", nil)
	}
	if k.Algorithm != h.Algorithm {
		return nil, time.Time{}, invalid("the token's algorithm is not its key's", nil)
	}
	payload, err = jws.Verify(k.Key)
	if err != nil {
		return nil, time.Time{}, invalid("the token's signature does not verify", err)
	}
	return payload, trusted, nil
}

// testHookKidFetch, if set (tests), is called by keySet.verify for a
// token of an unknown kid once it has chosen the fetch to wait for.
var testHookKidFetch func()

// publishedKeys is a JWK set as an issuer publishes it (RFC 7517 §5), read
// one key at a time: an RSA key over keyfile.MaxRSABits bits, whose cost
// to verify with grows with the square of its size, or a key go-jose does
// not parse (of a type it does not know, or an RSA key over its
// MaxRSAModulusBits, 4096 unless the program raised it) is left out and
// noted by kid with why, while the other keys stay in use. Read as a
// jose.JSONWebKeySet, one such key failed the whole set.
type publishedKeys struct {
	jose.JSONWebKeySet
	unusable map[string]error // by kid; keys without one are left out silently
	refused  []error          // why each key left out was, with a kid or without
}

// UnmarshalJSON implements json.Unmarshaler.
func (p *publishedKeys) UnmarshalJSON(b []byte) error {
	var set struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return err
	}
	if set.Keys == nil {
		// Not a JWK set (RFC 7517 §5: keys is required), as a proxy's
		// {} or null answer is not: read as an empty set, on a refresh
		// it would drop every key. {"keys":[]} is an empty set, and so
		// is {"keys":null}, go-jose's encoding of one.
		return errors.New("the answer is not a JWK set: it has no keys member (RFC 7517 §5)")
	}
	var keys []json.RawMessage
	if err := json.Unmarshal(set.Keys, &keys); err != nil {
		return err
	}
	p.Keys, p.unusable, p.refused = nil, map[string]error{}, nil
	for _, r := range keys {
		var (
			k  jose.JSONWebKey
			id struct {
				Kid string `json:"kid"`
				Kty string `json:"kty"`
				N   string `json:"n"`
			}
			err error
		)
		json.Unmarshal(r, &id) // for the kid and the size of an RSA key go-jose refuses; errors are go-jose's to tell
		if n, nerr := base64.RawURLEncoding.DecodeString(id.N); id.Kty == "RSA" && nerr == nil {
			err = keyfile.CheckRSASize(&rsa.PublicKey{N: new(big.Int).SetBytes(n)})
		}
		if err == nil {
			err = json.Unmarshal(r, &k)
		}
		// Again on the key go-jose parsed: encoding/json matches names in
		// any case, the last duplicate winning, and go-jose's JSON matches
		// them exactly, so {"n": huge, "N": small} passes the check above
		// and go-jose reads the huge n. Only go-jose's MaxRSAModulusBits
		// would then refuse it, and a program may raise that.
		if pub, ok := k.Key.(*rsa.PublicKey); ok && err == nil {
			err = keyfile.CheckRSASize(pub)
		}
		if err == nil {
			p.Keys = append(p.Keys, k)
			continue
		}
		name := "a key of the issuer's without a kid"
		if id.Kid != "" {
			name = fmt.Sprintf("the issuer's key %q", oauth2.Truncate(id.Kid, 64))
		}
		err = fmt.Errorf("%s is not used: %w", name, err)
		if id.Kid != "" {
			p.unusable[id.Kid] = err
		}
		p.refused = append(p.refused, err)
	}
	return nil
}

// errKidPaused is the cause of the ErrUnavailable of a token whose kid
// is unknown while the issuer's keys may not be fetched again yet.
var errKidPaused = errors.New("kid unknown, and the keys were fetched too recently to be fetched again yet")

// take takes one event from l at now if it allows one; otherwise it says
// how long until it would.
func take(l *rate.Limiter, now time.Time) (ok bool, wait time.Duration) {
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); !r.OK() || d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// signingAlgs are the algorithms an issuer's key may have: asymmetric
// only, so never none, HMAC or anything unknown.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// maxKeysAge bounds how long the issuer's keys are kept without a
// refetch, whatever their Cache-Control says: a key the issuer stops
// publishing (one that leaked, say) is no longer trusted within it, even
// when a proxy or CDN in front of the issuer sends a max-age of days; nor
// is a token it verified answered from the cache any longer, whatever
// its exp (keySet.trusted).
// Keyward itself sends 300 s.
const maxKeysAge = time.Hour

// keysRetry is how soon the background refresh of the issuer's keys is
// tried again after a fetch that failed.
const keysRetry = 10 * time.Second

// maxAge is how long keys answered with header h stay fresh: their
// Cache-Control max-age less their Age, the time a cache in front of the
// issuer (a CDN, a proxy) had already held them (RFC 9111 §4.2.3), at
// least 10 s (as refreshWait's floor) and at most maxKeysAge; 0 without
// a max-age. max-age=0, no-store and no-cache (unqualified: no-cache="…"
// names header fields only, §5.2.2.4) say not to reuse them unchecked:
// the 10 s floor, whatever a max-age beside them says. All the
// Cache-Control lines are read, as one list (RFC 9110 §5.3); of two
// max-ages the first counts (RFC 9111 §4.2.1).
func maxAge(h http.Header) time.Duration {
	const floor = 10 * time.Second
	age, found := time.Duration(0), false
	for _, part := range strings.Split(strings.Join(h.Values("Cache-Control"), ","), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok && (strings.EqualFold(k, "no-store") || strings.EqualFold(k, "no-cache")):
			return floor
		case ok && !found && strings.EqualFold(k, "max-age"):
			// §5.2: the token form is sent, the quoted one accepted.
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(v), `"`))
			if err != nil || n < 0 {
				continue
			}
			found = true
			left := int64(n) - ageOf(h)
			switch {
			case left >= int64(maxKeysAge/time.Second):
				age = maxKeysAge
			case left < 10:
				age = floor
			default:
				age = time.Duration(left) * time.Second
			}
		}
	}
	return age
}

// ageOf reads the Age header in seconds (RFC 9111 §5.1: delta-seconds,
// digits only), 0 when there is none or it is malformed; a value too
// large to read is 2147483648 (§1.2.2).
func ageOf(h http.Header) int64 {
	v := h.Get("Age")
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > 1<<31 {
		return 1 << 31
	}
	return n
}
