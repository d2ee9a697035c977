package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// NonceHeader is the response header that carries the nonce for the
// client's next proof (RFC 9449 §8.1), with the error
// oauth2.ErrUseDPoPNonce and after it.
const NonceHeader = "DPoP-Nonce"

// NoncePeriod is how long a nonce is current. A nonce is accepted from
// the period before it is current to the period after: one to two periods
// once issued, and one period early, for replicas whose clocks differ.
const NoncePeriod = time.Minute

// Nonces makes and checks server-provided nonces (RFC 9449 §8): an HMAC of
// the current period, so that nothing is stored and every server that
// holds the key accepts the nonces of the others. A nonce bounds how long
// before its use a proof can have been made by the server's clock, not the
// client's iat: a proof made in advance, by someone who held the key for a
// while, stops working within two periods.
type Nonces struct {
	key []byte
	// latest is the latest period's nonce and MACs, so that an HMAC is
	// computed once a period, not for every Current and Valid.
	latest atomic.Pointer[periodNonce]
}

// periodNonce is the nonce of one period, with the MACs that check the
// nonces of that period and of the one before. It is not changed once
// published.
type periodNonce struct {
	period    uint64
	nonce     string
	mac, prev [16]byte
}

// NewNonces returns Nonces keyed with key, which every server that must
// accept the others' nonces shares.
func NewNonces(key []byte) *Nonces {
	return &Nonces{key: append([]byte(nil), key...)}
}

// nonceLen is a nonce's length, base64url-encoded: an 8-byte period and a
// 16-byte MAC.
var nonceLen = base64.RawURLEncoding.EncodedLen(8 + 16)

// Current returns the nonce of now's period.
func (n *Nonces) Current(now time.Time) string {
	return n.at(period(now)).nonce
}

// Valid reports whether nonce is one of these Nonces, of now's period or
// the one before or after it.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	if len(nonce) != nonceLen {
		return false
	}
	var b [8 + 16]byte
	if k, err := base64.RawURLEncoding.Decode(b[:], []byte(nonce)); err != nil || k != len(b) { // Go's base64 skips CR and LF
		return false
	}
	p := binary.BigEndian.Uint64(b[:8])
	cur := period(now)
	if p+1 < cur || p > cur+1 {
		return false
	}
	var want [16]byte
	switch c := n.at(cur); p {
	case cur:
		want = c.mac
	case cur - 1:
		want = c.prev
	default: // the period after, from a replica whose clock is ahead
		want = n.mac(p)
	}
	return hmac.Equal(b[8:], want[:])
}

func period(now time.Time) uint64 {
	return uint64(max(now.Unix(), 0)) / uint64(NoncePeriod/time.Second)
}

// at returns the periodNonce of p: the latest one if it is p's, else one
// made anew. A newer one is published, unless another goroutine has
// published a later period's meanwhile: a request whose clock was read
// just before the period changed does not move latest back.
func (n *Nonces) at(p uint64) *periodNonce {
	old := n.latest.Load()
	if old != nil && old.period == p {
		return old
	}
	c := &periodNonce{period: p, mac: n.mac(p)}
	if old != nil && old.period+1 == p {
		c.prev = old.mac
	} else {
		c.prev = n.mac(p - 1)
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+16), p)
	c.nonce = base64.RawURLEncoding.EncodeToString(append(b, c.mac[:]...))
	for old == nil || old.period < p {
		if n.latest.CompareAndSwap(old, c) {
			break
		}
		old = n.latest.Load()
	}
	return c
}

func (n *Nonces) mac(p uint64) (sum [16]byte) {
	m := hmac.New(sha256.New, n.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], p)
	m.Write(b[:])
	copy(sum[:], m.Sum(nil))
	return sum
}
