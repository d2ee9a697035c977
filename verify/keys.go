package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// fetchTimeout bounds a fetch that outlives the request that started it.
const fetchTimeout = 10 * time.Second

// keySet caches the issuer's JWKS, refreshing it in the background and on
// an unknown kid — at most once every few seconds, so a flood of tokens
// with made-up kids cannot hammer the issuer.
type keySet struct {
	uri     string
	o       options
	sf      singleflight.Group
	limiter *rate.Limiter

	mu     sync.RWMutex
	keys   map[string]jose.JSONWebKey
	maxAge time.Duration
	failed error // of the last fetch; nil if it succeeded
}

func newKeySet(uri string, o options) *keySet {
	return &keySet{uri: uri, o: o, limiter: rate.NewLimiter(rate.Every(o.unknownKidEvery), 1), keys: map[string]jose.JSONWebKey{}}
}

// refresh fetches the JWKS now.
func (ks *keySet) refresh(ctx context.Context) error {
	_, err, _ := ks.sf.Do("jwks", func() (any, error) {
		var (
			set jose.JSONWebKeySet
			hdr http.Header
		)
		if err := getJSON(ctx, ks.o.client, ks.uri, &set, &hdr); err != nil {
			err = fmt.Errorf("fetch keys: %w", err)
			ks.mu.Lock()
			ks.failed = err
			ks.mu.Unlock()
			return nil, err
		}
		keys := map[string]jose.JSONWebKey{}
		for _, k := range set.Keys {
			// Only public signing keys with a declared, asymmetric algorithm.
			if !k.IsPublic() || k.Use == "enc" || !slices.Contains(signingAlgs, jose.SignatureAlgorithm(k.Algorithm)) || k.KeyID == "" {
				continue
			}
			keys[k.KeyID] = k
		}
		ks.mu.Lock()
		ks.keys, ks.maxAge, ks.failed = keys, maxAge(hdr), nil
		ks.mu.Unlock()
		return nil, nil
	})
	return err
}

// run refreshes the keys as their cache lifetime says, until ctx ends.
func (ks *keySet) run(ctx context.Context) {
	for {
		ks.mu.RLock()
		wait := ks.maxAge
		ks.mu.RUnlock()
		if wait <= 0 {
			wait = ks.o.refreshInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 10*time.Second)):
		}
		ks.refresh(ctx) // on failure the old keys stay in use
	}
}

// verify checks jws against the key its kid names, refreshing the keys
// once when the kid is unknown, and requires the key's algorithm to be the
// token's: the key decides, never the token. An unknown kid while the
// issuer's keys cannot be fetched, or may not be fetched again yet, is
// ErrUnavailable: the key may be new.
func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature, h jose.Header) ([]byte, error) {
	ks.mu.RLock()
	k, ok := ks.keys[h.KeyID]
	ks.mu.RUnlock()
	if !ok {
		allowed, wait := take(ks.limiter, time.Now())
		if allowed {
			// The fetch outlives a cancelled request, so the limiter's
			// slot is not spent on nothing.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
			ks.refresh(fctx) // a failure is noted in ks.failed
			cancel()
		}
		ks.mu.RLock()
		k, ok = ks.keys[h.KeyID]
		failed := ks.failed
		ks.mu.RUnlock()
		switch {
		case !ok && failed != nil:
			return nil, unavailable("the token's key is not among the issuer's keys known here, and they could not be refreshed", failed)
		case !ok && !allowed:
			// Not known to be invalid: the key may have been published
			// since the last fetch (RFC 6750 §3.1's invalid_token is for
			// tokens known bad). Retry once the keys may be fetched.
			e := unavailable("the token's key is not among the issuer's keys known here, and they were refreshed too recently to be fetched again yet", errKidPaused)
			e.RetryAfter = boundRetryAfter(wait)
			return nil, e
		}
	}
	if !ok {
		return nil, invalid("the token was signed with a key the issuer does not publish", nil)
	}
	if k.Algorithm != h.Algorithm {
		return nil, invalid("the token's algorithm is not its key's", nil)
	}
	payload, err := jws.Verify(k.Key)
	if err != nil {
		return nil, invalid("the token's signature does not verify", err)
	}
	return payload, nil
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

// maxAge reads Cache-Control max-age.
func maxAge(h http.Header) time.Duration {
	for _, part := range strings.Split(h.Get("Cache-Control"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(k, "max-age") {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 0
}
