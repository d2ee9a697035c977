package signer

import (
	"slices"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// Policy says how the set of signing keys evolves. Plan applies it.
type Policy struct {
	// Algorithm of new keys.
	Algorithm string
	// RotateEvery is how long a key signs before the next one takes over;
	// zero disables scheduled rotation.
	RotateEvery time.Duration
	// RetainFor is how long a retired key stays in the JWKS: at least the
	// longest token lifetime, so every token it signed still verifies.
	RetainFor time.Duration
	// PublishFor is how long a new key is published in the JWKS before it
	// may sign, so that resource servers' cached key sets know it first;
	// zero means DefaultPublishFor.
	PublishFor time.Duration
}

// DefaultPublishFor covers the JWKS's cache lifetime (max-age 300), the
// verify package's refresh interval (5 minutes) and the minute in which
// every replica picks up a new key, with room to spare.
const DefaultPublishFor = 15 * time.Minute

func (p Policy) publishFor() time.Duration {
	if p.PublishFor > 0 {
		return p.PublishFor
	}
	return DefaultPublishFor
}

// Plan computes the next set of signing keys from the stored set at now:
// one current key, one next key of the policy's algorithm (published before
// it signs, so verifiers never meet an unknown kid), and the retired keys
// still within RetainFor. When a rotation is due — on schedule, or because
// the current key is not of the policy's algorithm — the next key takes over
// once it has been published for PublishFor; until then the current key
// keeps signing. Only on the very first start (no current key) or with
// force does a key sign at once. newKey makes a fresh key. Plan reports
// whether anything changed.
func (p Policy) Plan(keys []storage.SigningKey, now time.Time, force bool, newKey func() (storage.SigningKey, error)) ([]storage.SigningKey, bool, error) {
	keys = slices.Clone(keys)
	changed := false
	cur, next := -1, -1
	for i, k := range keys {
		switch {
		case !k.RetiredAt.IsZero():
		case !k.ActivatedAt.IsZero():
			if cur >= 0 { // two current keys: keep the newest
				keys[cur].RetiredAt, changed = now, true
			}
			cur = i
		default:
			if next >= 0 {
				keys[next].RetiredAt, changed = now, true
			}
			next = i
		}
	}
	// An unused next key of the wrong algorithm is replaced.
	if next >= 0 && keys[next].Algorithm != p.Algorithm {
		keys = slices.Delete(keys, next, next+1)
		if cur > next {
			cur--
		}
		next, changed = -1, true
	}
	due := cur < 0 || force || keys[cur].Algorithm != p.Algorithm ||
		(p.RotateEvery > 0 && now.Sub(keys[cur].ActivatedAt) >= p.RotateEvery)
	if due {
		if next < 0 {
			k, err := newKey()
			if err != nil {
				return nil, false, err
			}
			keys = append(keys, k)
			next, changed = len(keys)-1, true
		}
		if cur < 0 || force || now.Sub(keys[next].CreatedAt) >= p.publishFor() {
			if cur >= 0 {
				keys[cur].RetiredAt = now
			}
			keys[next].ActivatedAt = now
			next, changed = -1, true
		}
	}
	if next < 0 {
		k, err := newKey()
		if err != nil {
			return nil, false, err
		}
		keys = append(keys, k)
		changed = true
	}
	kept := keys[:0]
	for _, k := range keys {
		if !k.RetiredAt.IsZero() && now.Sub(k.RetiredAt) > p.RetainFor {
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	return kept, changed, nil
}
