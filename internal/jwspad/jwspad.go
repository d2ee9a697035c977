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
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// ErrPadding reports a segment whose padding is not what base64 puts at
// its end, or with '=' elsewhere.
var ErrPadding = errors.New("jwspad: a segment has the wrong base64 padding")

// Signed is the signing input and signature of a JWS that had padding.
type Signed struct {
	input     string // header.payload, as received
	signature []byte
}

// Unpad returns raw with the padding of its three segments removed and,
// when it had any, the Signed to verify in place of go-jose. A raw without
// '=' is returned as it is, with a nil Signed; so is anything that is not
// three segments, for the JWS parser to refuse. Padding must be exactly
// what base64 puts at the end of a segment of that length.
func Unpad(raw string) (string, *Signed, error) {
	if !strings.Contains(raw, "=") {
		return raw, nil, nil
	}
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return raw, nil, nil
	}
	for i, seg := range segs {
		trimmed := strings.TrimRight(seg, "=")
		if n := len(seg) - len(trimmed); strings.Contains(trimmed, "=") || n > 0 && (n > 2 || n != (4-len(trimmed)%4)%4) {
			return "", nil, ErrPadding
		}
		segs[i] = trimmed
	}
	sig, err := base64.RawURLEncoding.DecodeString(segs[2])
	if err != nil {
		return "", nil, fmt.Errorf("jwspad: the signature is not base64url: %w", err)
	}
	return strings.Join(segs, "."), &Signed{input: raw[:strings.LastIndexByte(raw, '.')], signature: sig}, nil
}

// Verify checks the signature with pub for alg, RS256 or ES256 (the
// algorithms service accounts sign with), over the segments as received.
func (s *Signed) Verify(pub crypto.PublicKey, alg jose.SignatureAlgorithm) error {
	h := sha256.Sum256([]byte(s.input))
	switch key := pub.(type) {
	case *rsa.PublicKey:
		if alg == jose.RS256 {
			return rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], s.signature)
		}
	case *ecdsa.PublicKey:
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
