package throttle

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
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

// The audit budget of all source addresses together, on top of each
// one's (AuditBurst): of the refusals each address's budget lets through,
// AuditAllBurst are recorded at once and AuditAllRate a second after
// that, at each endpoint, so that many addresses (an IPv6 /48 holds
// 65,536 /64s) each within its own budget do not grow the audit log at
// the rate they send. The rest are answered and logged all the same,
// and counted, the count going into the next event recorded, from any
// address, as "unrecorded_all" (an address's "unrecorded" is only of
// those its own budget did not let through).
const (
	AuditAllBurst = 200
	AuditAllRate  = 50 // a second
)

// Budget says which of a key's refusals to record, by a token bucket per
// key and one of all keys together, and counts those it does not. It
// tracks at most maxKeys keys, as a Limiter does: a key forgotten (the
// table full) or a restart loses the count of the refusals not recorded
// since that key's last event, as does a recorded event that could not
// be written (and a restart, or such an event, the count of all keys');
// that is only the count, and only of an address that went quiet, one
// of very many, or one refused while the store was failing.
type Budget struct {
	l   *Limiter
	all *rate.Limiter // of all keys, AuditAllBurst and AuditAllRate
	max int

	mu         sync.Mutex
	skipped    map[string]int
	skippedAll int // let through by their key's bucket, not by all
}

// NewBudget returns a Budget of AuditBurst and AuditRate per key, and
// AuditAllBurst and AuditAllRate of all keys, tracking at most maxKeys
// keys.
func NewBudget(maxKeys int, now func() time.Time) *Budget {
	return &Budget{l: New(AuditRate, AuditBurst, maxKeys, now), all: rate.NewLimiter(AuditAllRate, AuditAllBurst), max: maxKeys, skipped: map[string]int{}}
}

// Take reports whether a refusal of key is to be recorded, which it is
// when both key's bucket and that of all keys let it through (key's
// first: a refusal key's bucket holds back takes nothing from all's,
// one all's holds back has spent key's token). When it is recorded,
// unrecorded is how many of key's refusals its own bucket held back, and
// unrecordedAll how many of any key's the bucket of all keys held back,
// since the last refusal recorded (of key, of any key), and those counts
// start again; when not, it counts this one in the count of the bucket
// that held it back.
func (b *Budget) Take(key string) (record bool, unrecorded, unrecordedAll int) {
	own := b.l.take(key)
	record = own && b.all.AllowN(b.l.now(), 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if record {
		unrecorded, unrecordedAll = b.skipped[key], b.skippedAll
		delete(b.skipped, key)
		b.skippedAll = 0
		return true, unrecorded, unrecordedAll
	}
	if own {
		b.skippedAll++
		return false, 0, 0
	}
	if _, ok := b.skipped[key]; !ok && len(b.skipped) >= b.max {
		for k := range b.skipped {
			delete(b.skipped, k)
			break
		}
	}
	b.skipped[key]++
	return false, 0, 0
}
