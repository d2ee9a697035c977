package dpop

import (
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Replay errors.
var (
	// ErrReplayed is a proof whose jti was seen before.
	ErrReplayed = errors.New("dpop: the proof was used before")
	// ErrReplayCacheFull means the cache holds as many unexpired proofs
	// as it may: the proof is refused rather than an entry forgotten early,
	// which would let a replay through.
	ErrReplayCacheFull = errors.New("dpop: too many recent proofs to remember")
	// ErrOwnerShareFull means the proof's owner (a client) holds its share
	// of the cache already: its proof is refused, so that one client
	// cannot fill the cache for every other.
	ErrOwnerShareFull = errors.New("dpop: too many recent proofs of this client to remember")
)

// OwnerShare is the part of a ReplayCache's room one owner may hold.
const OwnerShare = 4 // a quarter

// DefaultReplayCacheSize bounds a ReplayCache made with size 0: with the
// map's and the queue's overhead about 150 bytes an entry, 15 MB in all.
const DefaultReplayCacheSize = 100_000

// ReplayCache remembers the proofs it was given, by key thumbprint and
// jti, for a fixed time after it first saw each (RFC 9449 §11.1). It holds
// at most a fixed number, and of those at most 1/OwnerShare for one owner;
// it is safe for concurrent use. Expiry is in arrival order, so forgetting
// is O(1) per proof.
type ReplayCache struct {
	retention time.Duration
	max       int

	mu    sync.Mutex
	seen  map[[32]byte]struct{}
	owned map[string]int // live proofs per owner
	queue []entry        // by arrival; queue[head:] are live
	head  int
}

type entry struct {
	key   [32]byte
	owner string
	until time.Time
}

// NewReplayCache returns a cache that remembers each proof for retention
// (use Checker.Retention) and at most size proofs (0: the default).
func NewReplayCache(retention time.Duration, size int) *ReplayCache {
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	return &ReplayCache{retention: retention, max: size, seen: map[[32]byte]struct{}{}, owned: map[string]int{}}
}

// Use records the proof of key jkt with jti at now, for owner (who the
// token was issued to; "" for none). It returns ErrReplayed if it was
// recorded before and is still remembered, ErrReplayCacheFull, or
// ErrOwnerShareFull when owner holds its share.
func (c *ReplayCache) Use(owner, jkt, jti string, now time.Time) error {
	k := ReplayKey(jkt, jti)

	c.mu.Lock()
	defer c.mu.Unlock()
	// Forget the expired. A clock that steps back leaves later entries
	// before earlier ones: they are kept longer, never forgotten early.
	for c.head < len(c.queue) && !now.Before(c.queue[c.head].until) {
		e := c.queue[c.head]
		delete(c.seen, e.key)
		if e.owner != "" {
			if c.owned[e.owner]--; c.owned[e.owner] <= 0 {
				delete(c.owned, e.owner)
			}
		}
		c.queue[c.head] = entry{}
		c.head++
	}
	if c.head > 0 && c.head >= len(c.queue)/2 {
		n := copy(c.queue, c.queue[c.head:])
		clear(c.queue[n:])
		c.queue, c.head = c.queue[:n], 0
	}
	if _, ok := c.seen[k]; ok {
		return ErrReplayed
	}
	if len(c.seen) >= c.max {
		return ErrReplayCacheFull
	}
	if owner != "" {
		if c.owned[owner] >= max(1, c.max/OwnerShare) {
			return ErrOwnerShareFull
		}
		c.owned[owner]++
	}
	c.seen[k] = struct{}{}
	c.queue = append(c.queue, entry{key: k, owner: owner, until: now.Add(c.retention)})
	return nil
}

// ReplayKey is what a replay cache remembers a proof by: the SHA-256 of
// its key's thumbprint and its jti, so that jtis of different keys never
// collide and what is stored has one size whatever the client sent.
func ReplayKey(jkt, jti string) [32]byte {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// Len returns how many proofs the cache remembers.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
