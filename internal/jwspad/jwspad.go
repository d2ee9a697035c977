// Package jwspad accepts compact JWS whose segments carry base64 padding.
//
// RFC 7515 encodes each segment as base64url without the trailing '='.
// Some clients pad them anyway — google-auth for Python before 1.6.3, the
// python3-google-auth of Debian 12 (1.5.1), signs every JWT that
// way — and Google's own endpoints accept them. go-jose refuses padded
// segments and, since it rebuilds the signing input from the decoded
// segments, could not verify their signature anyway: the signature covers
// the segments as the client sent them. Unpad gives go-jose the unpadded
// form to parse and keeps what is needed to verify the signature over the
// padded one.
package jwspad

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// ErrPadding reports a segment that is not exactly the padded base64url
// of its bytes: padding of the wrong length or with '=' elsewhere,
// non-zero trailing bits, line breaks.
var ErrPadding = errors.New("jwspad: a segment is not padded base64url")

// ErrCritical reports a padded JWS whose header marks extensions critical
// (RFC 7515 §4.1.11): only go-jose, which knows which it supports, may
// verify those, and it does not take padded segments.
var ErrCritical = errors.New("jwspad: a JWS with padded segments may not have a crit header")

// ErrHeader reports a padded JWS whose header has a member other than
// alg, typ and kid. The padded path verifies the signature itself, so it
// admits only what it understands: go-jose gives some members meaning for
// verification (b64 false signs the payload unencoded, RFC 7797), which
// this path would otherwise ignore.
var ErrHeader = errors.New("jwspad: a JWS with padded segments may have only alg, typ and kid in its header")

// paddedHeader are the header members a padded JWS may have: what
// google-auth for Python puts there.
var paddedHeader = map[string]bool{"alg": true, "typ": true, "kid": true}

// Signed is the signing input and signature of a JWS that had padding.
type Signed struct {
	input     string // header.payload, as received
	signature []byte
}

// Unpad returns raw with the padding of its three segments removed and,
// when its header or payload had padding, the Signed to verify in place
// of go-jose. Padding on the signature alone changes nothing signed: raw
// comes back without it and a nil Signed, for go-jose to verify. A raw
// without '=' is returned as it is, with a nil Signed; so is anything that
// is not three segments, for the JWS parser to refuse.
//
// When a Signed is returned, every segment is exactly the padded base64url
// of its bytes (as google-auth makes them), and the header has no crit and
// no member but alg, typ and kid.
func Unpad(raw string) (string, *Signed, error) {
	if !strings.Contains(raw, "=") {
		return raw, nil, nil
	}
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return raw, nil, nil
	}
	if !strings.Contains(segs[0], "=") && !strings.Contains(segs[1], "=") {
		sig := strings.TrimRight(segs[2], "=")
		if n := len(segs[2]) - len(sig); strings.Contains(sig, "=") || n > 2 || n != (4-len(sig)%4)%4 {
			return "", nil, ErrPadding
		}
		return segs[0] + "." + segs[1] + "." + sig, nil, nil
	}
	var decoded [3][]byte
	for i, seg := range segs {
		b, err := base64.URLEncoding.Strict().DecodeString(seg)
		if err != nil || base64.URLEncoding.EncodeToString(b) != seg {
			return "", nil, ErrPadding
		}
		decoded[i], segs[i] = b, strings.TrimRight(seg, "=")
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(decoded[0], &header); err != nil {
		return "", nil, fmt.Errorf("jwspad: the header is not a JSON object: %w", err)
	}
	if _, ok := header["crit"]; ok {
		return "", nil, ErrCritical
	}
	for k := range header {
		if !paddedHeader[k] {
			return "", nil, ErrHeader
		}
	}
	return strings.Join(segs, "."), &Signed{input: raw[:strings.LastIndexByte(raw, '.')], signature: decoded[2]}, nil
}

// Verify checks the signature with pub for alg, RS256 or ES256 (the
// algorithms service accounts sign with), over the segments as received.
// A nil Signed or key, or a key without its numbers, verifies nothing.
func (s *Signed) Verify(pub crypto.PublicKey, alg jose.SignatureAlgorithm) error {
	if s == nil {
		return errors.New("jwspad: nothing to verify")
	}
	h := sha256.Sum256([]byte(s.input))
	switch key := pub.(type) {
	case *rsa.PublicKey:
		if key == nil || key.N == nil || key.E == 0 {
			return errors.New("jwspad: no RSA public key")
		}
		if alg == jose.RS256 {
			return rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], s.signature)
		}
	case *ecdsa.PublicKey:
		if key == nil || key.X == nil || key.Y == nil {
			return errors.New("jwspad: no ECDSA public key")
		}
		if alg == jose.ES256 && key.Curve == elliptic.P256() {
			if len(s.signature) != 64 {
				return errors.New("jwspad: an ES256 signature is 64 bytes")
			}
			r, ss := new(big.Int).SetBytes(s.signature[:32]), new(big.Int).SetBytes(s.signature[32:])
			if ecdsa.Verify(key, h[:], r, ss) {
				return nil
			}
			return errors.New("jwspad: invalid ES256 signature")
		}
	}
	return fmt.Errorf("jwspad: a %T does not verify %s", pub, alg)
}
