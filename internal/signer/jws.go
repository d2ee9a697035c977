package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
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
	sign   func(input []byte) ([]byte, error)
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
		cs.sign = func(input []byte) ([]byte, error) {
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
			return es256FromDER(der)
		}
	case *rsa.PrivateKey:
		if alg != "RS256" {
			return nil, fmt.Errorf("it is an RSA key, which cannot sign %s", alg)
		}
		cs.sign = func(input []byte) ([]byte, error) {
			d := sha256.Sum256(input)
			return rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:])
		}
	case ed25519.PrivateKey:
		if alg != "EdDSA" {
			return nil, fmt.Errorf("it is an Ed25519 key, which cannot sign %s", alg)
		}
		cs.sign = func(input []byte) ([]byte, error) { return ed25519.Sign(k, input), nil }
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return cs, nil
}

// es256FromDER turns an ASN.1 DER ECDSA signature (SEQUENCE of INTEGER r
// and s) into the JWS form of RFC 7518 §3.4: r and s as 32-byte big-endian
// integers. It refuses, rather than mangle, anything that is not exactly
// two positive integers of at most 256 bits.
func es256FromDER(der []byte) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 ||
		rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
		return nil, errors.New("ES256 signature: not a pair of positive 256-bit integers")
	}
	// encoding/asn1 skips what follows the pair, inside the SEQUENCE or
	// after it. The pair alone is a 2-byte header and, per integer, a
	// 2-byte header and BitLen/8 + 1 bytes (a leading zero when the top
	// bit is set): anything longer carries more.
	if len(der) != 2+(2+rs.R.BitLen()/8+1)+(2+rs.S.BitLen()/8+1) {
		return nil, errors.New("ES256 signature: not exactly a DER pair of integers")
	}
	sig := make([]byte, 64)
	rs.R.FillBytes(sig[:32])
	rs.S.FillBytes(sig[32:])
	return sig, nil
}

// serialize signs payload and returns header.payload.signature.
func (cs *compactSigner) serialize(payload []byte) (string, error) {
	const maxSig = 512 // an RSA-4096 signature, base64url-encoded, with room
	buf := make([]byte, 0, len(cs.prefix)+b64.EncodedLen(len(payload))+1+maxSig)
	buf = append(buf, cs.prefix...)
	buf = b64.AppendEncode(buf, payload)
	sig, err := cs.sign(buf)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}
