package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unsafe"
)

// compactSigner writes JWS compact serializations (RFC 7515 §7.1) with one
// key. The protected header is the same for every token a key signs, so it
// is encoded once; signing a token is then one base64 pass over the claims
// and the signature itself. (go-jose re-encodes the header through a map for
// every token, which cost a third as much as the ECDSA signature; go-jose
// still parses and checks every token this writes, in the tests and in
// Verify.)
type compactSigner struct {
	prefix []byte // base64url(header) "."
	// sign appends the base64url of input's signature to out.
	sign func(out, input []byte) ([]byte, error)
}

var b64 = base64.RawURLEncoding

func newCompactSigner(alg, kid, typ string, key crypto.Signer) (*compactSigner, error) {
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, typ})
	if err != nil {
		return nil, err
	}
	cs := &compactSigner{prefix: append(b64.AppendEncode(nil, header), '.')}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg != "ES256" || k.Curve.Params().BitSize != 256 {
			return nil, fmt.Errorf("it is an EC key on %s, which cannot sign %s", k.Curve.Params().Name, alg)
		}
		cs.sign = func(out, input []byte) ([]byte, error) {
			d := sha256.Sum256(input)
			// A nil random source makes the signature deterministic (RFC
			// 6979): the nonce is an HMAC-DRBG over SHA-256 of the key and
			// the digest, where Go's hedged signatures (given a random
			// source) also mix in fresh randomness and run their DRBG on
			// SHA-512 — a fifth of the signature's cost. The randomness
			// guards against a fault injected while the same message is
			// signed twice, and against averaging side-channel traces of
			// one nonce; neither applies, as every token this signs
			// carries a fresh random jti (token.newTokenID), so no message
			// is signed twice. Ed25519 and RS256 signatures are
			// deterministic too.
			der, err := k.Sign(nil, d[:], crypto.SHA256)
			if err != nil {
				return nil, err
			}
			sig, err := es256FromDER(der)
			if err != nil {
				return nil, err
			}
			return b64.AppendEncode(out, sig[:]), nil
		}
	case *rsa.PrivateKey:
		if alg != "RS256" {
			return nil, fmt.Errorf("it is an RSA key, which cannot sign %s", alg)
		}
		cs.sign = func(out, input []byte) ([]byte, error) {
			d := sha256.Sum256(input)
			sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:])
			if err != nil {
				return nil, err
			}
			return b64.AppendEncode(out, sig), nil
		}
	case ed25519.PrivateKey:
		if alg != "EdDSA" {
			return nil, fmt.Errorf("it is an Ed25519 key, which cannot sign %s", alg)
		}
		cs.sign = func(out, input []byte) ([]byte, error) { return b64.AppendEncode(out, ed25519.Sign(k, input)), nil }
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return cs, nil
}

// es256FromDER turns an ASN.1 DER ECDSA signature (SEQUENCE of INTEGER r
// and s) into the JWS form of RFC 7518 §3.4: r and s as 32-byte big-endian
// integers. It refuses, rather than mangle, anything that is not exactly
// two positive integers of at most 256 bits, minimally encoded, and
// nothing after them.
//
// It reads the DER by hand: such a pair is at most 72 bytes, so every
// length is one byte (X.690 §8.1.3.4), and encoding/asn1's reflection and
// big.Ints cost 5 allocations a token (BenchmarkCompactSigner/ES256). The
// signature is an array, which the caller keeps on its stack while it
// encodes it.
func es256FromDER(der []byte) ([64]byte, error) {
	if len(der) < 2 || der[0] != 0x30 || der[1] >= 0x80 || int(der[1]) != len(der)-2 {
		return [64]byte{}, errors.New("ES256 signature: not exactly a DER pair of integers")
	}
	rest := der[2:]
	var sig [64]byte
	for i := range 2 {
		if len(rest) < 2 || rest[0] != 0x02 || rest[1] >= 0x80 || int(rest[1]) > len(rest)-2 {
			return [64]byte{}, errors.New("ES256 signature: not exactly a DER pair of integers")
		}
		v := rest[2 : 2+rest[1]]
		rest = rest[2+rest[1]:]
		// DER's integers are minimal two's complement (X.690 §8.3.2): a
		// leading zero byte only before a byte with its top bit set.
		if len(v) == 0 || v[0]&0x80 != 0 || v[0] == 0 && (len(v) == 1 || v[1]&0x80 == 0) {
			return [64]byte{}, errors.New("ES256 signature: not a pair of positive 256-bit integers")
		}
		if v[0] == 0 {
			v = v[1:]
		}
		if len(v) > 32 {
			return [64]byte{}, errors.New("ES256 signature: not a pair of positive 256-bit integers")
		}
		copy(sig[32*i+32-len(v):32*i+32], v)
	}
	if len(rest) != 0 {
		return [64]byte{}, errors.New("ES256 signature: not exactly a DER pair of integers")
	}
	return sig, nil
}

// serialize signs payload and returns header.payload.signature.
func (cs *compactSigner) serialize(payload []byte) (string, error) {
	const maxSig = 683 // an RSA-4096 signature (512 bytes), base64url-encoded
	buf := make([]byte, 0, len(cs.prefix)+b64.EncodedLen(len(payload))+1+maxSig)
	buf = append(buf, cs.prefix...)
	buf = b64.AppendEncode(buf, payload)
	// The signature's encoding goes after the '.', past the input's
	// end: the input signed is not written.
	buf, err := cs.sign(append(buf, '.'), buf)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	// buf is this call's own and is not written again: the token is made
	// of it, not of a copy.
	return unsafe.String(unsafe.SliceData(buf), len(buf)), nil
}
