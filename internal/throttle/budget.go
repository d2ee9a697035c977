package throttle

import (
	"sync"
	"time"
)

// The audit budget of each source address for the refusals that no
// throttle counts, at the token, revocation and introspection endpoints:
// requests refused before any client authenticated, for what they are
// (an empty body, a duplicate parameter, an unknown grant type, no
// credentials), not for credentials that failed. An address may have
// AuditBurst such refusals recorded at once and AuditRate a second after
// that, at each endpoint; the rest are answered and logged all the same,
// and counted, the count going into the next event recorded for the
// address as "unrecorded". So a flood of junk writes about one event a
// second per address and endpoint, not one per request, to a log that
// is synced to disk. A client that authenticated, right credentials of a
// disabled account (disabled_client) or with a client_id that disagrees,
// a failure the client-authentication throttle counts, and a replayed
// assertion never meet this budget.
const (
	AuditBurst = 20
	AuditRate  = 1 // a second
)

// Budget says which of a key's refusals to record, by a token bucket per
// key, and counts those it does not. It tracks at most maxKeys keys, as a
// Limiter does: a key forgotten (the table full) or a restart loses the
// count of the refusals not recorded since that key's last event, as
// does a recorded event that could not be written; that is only the
// count, and only of an address that went quiet, one of very many, or
// one refused while the store was failing.
type Budget struct {
	l   *Limiter
	max int

	mu      sync.Mutex
	skipped map[string]int
}

// NewBudget returns a Budget of AuditBurst and AuditRate per key,
// tracking at most maxKeys keys.
func NewBudget(maxKeys int, now func() time.Time) *Budget {
	return &Budget{l: New(AuditRate, AuditBurst, maxKeys, now), max: maxKeys, skipped: map[string]int{}}
}

// Take reports whether a refusal of key is to be recorded: when it is,
// unrecorded is how many of key's refusals were not since the last one
// that was (and the count starts again); when not, it counts this one.
func (b *Budget) Take(key string) (record bool, unrecorded int) {
	record = b.l.take(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	if record {
		unrecorded = b.skipped[key]
		delete(b.skipped, key)
		return true, unrecorded
	}
	if _, ok := b.skipped[key]; !ok && len(b.skipped) >= b.max {
		for k := range b.skipped {
			delete(b.skipped, k)
			break
		}
	}
	b.skipped[key]++
	return false, 0
}
