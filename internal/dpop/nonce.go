package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
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
	return n.make(period(now))
}

// Valid reports whether nonce is one of these Nonces, of now's period or
// the one before or after it.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	if len(nonce) != nonceLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 8+16 { // Go's base64 skips CR and LF
		return false
	}
	p := binary.BigEndian.Uint64(b[:8])
	cur := period(now)
	if p+1 < cur || p > cur+1 {
		return false
	}
	return hmac.Equal(b[8:], n.mac(p))
}

func period(now time.Time) uint64 {
	return uint64(max(now.Unix(), 0)) / uint64(NoncePeriod/time.Second)
}

func (n *Nonces) make(p uint64) string {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+16), p)
	return base64.RawURLEncoding.EncodeToString(append(b, n.mac(p)...))
}

func (n *Nonces) mac(p uint64) []byte {
	m := hmac.New(sha256.New, n.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], p)
	m.Write(b[:])
	return m.Sum(nil)[:16]
}
