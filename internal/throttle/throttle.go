// Package throttle slows down repeated failures per key (a source address,
// a client at an address) with token buckets, so guessing costs time and no
// hashing work, while a key that does not fail is never held back.
package throttle

import (
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter tracks failures per key.
type Limiter struct {
	limit rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// New returns a Limiter that lets a key fail burst times at once and then
// perSecond times a second. It tracks at most maxKeys keys, forgetting one
// at random when full (a forgotten key starts with a full bucket again).
func New(perSecond float64, burst, maxKeys int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{limit: rate.Limit(perSecond), burst: burst, max: maxKeys, now: now, m: map[string]*rate.Limiter{}}
}

// Check reports whether key may try now; if not, it says when it may.
// Checking does not count as a failure.
func (l *Limiter) Check(key string) (bool, time.Duration) {
	l.mu.Lock()
	lim := l.m[key]
	l.mu.Unlock()
	if lim == nil {
		return true, 0
	}
	tokens := lim.TokensAt(l.now())
	if tokens >= 1 {
		return true, 0
	}
	return false, l.retryAfter(tokens)
}

// retryAfter is when a key whose bucket holds tokens may try again, in
// whole seconds (as Retry-After says it), at least one.
func (l *Limiter) retryAfter(tokens float64) time.Duration {
	wait := time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
	return max(time.Second, time.Duration(math.Ceil(wait.Seconds()))*time.Second)
}

// Fail records a failure of key.
func (l *Limiter) Fail(key string) { l.take(key) }

// Take records a failure of key if it is within key's budget and reports
// whether it was; if not, it says when the key may fail again, as Check
// does. It is Check and Fail in one step, for a caller that knows the
// request failed before it asks: of callers at once, no more than the
// budget's are let through, where each could pass Check before any of
// them called Fail.
func (l *Limiter) Take(key string) (bool, time.Duration) {
	lim := l.limiter(key)
	now := l.now()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	return false, l.retryAfter(lim.TokensAt(now))
}

// take counts a try of key and reports whether it was within its budget,
// in one step, so that two callers at once cannot both take its last
// token.
func (l *Limiter) take(key string) bool { return l.limiter(key).AllowN(l.now(), 1) }

// limiter is key's bucket, made full if key has none, forgetting another
// key's when the Limiter tracks as many as it may.
func (l *Limiter) limiter(key string) *rate.Limiter {
	l.mu.Lock()
	lim := l.m[key]
	if lim == nil {
		if len(l.m) >= l.max {
			for k := range l.m {
				delete(l.m, k)
				break
			}
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[key] = lim
	}
	l.mu.Unlock()
	return lim
}

// AddressKey is the key of a source address. An IPv6 address counts by
// its /64, the smallest block a network is given (RFC 6177), so a guesser
// cannot take a fresh allowance from each of its subnet's 2^64 addresses,
// nor fill a Limiter's table with them and push out other sources'
// failures. Other sources count as they are.
func AddressKey(source string) string {
	if !strings.Contains(source, ":") {
		return source // IPv4, the common case: no parse
	}
	addr, err := netip.ParseAddr(source)
	switch {
	case err != nil:
		return source
	case addr.Is4In6():
		return addr.Unmap().String()
	}
	return netip.PrefixFrom(addr.WithZone(""), 64).Masked().String()
}
