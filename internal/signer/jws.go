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
			return nil, fmt.Errorf("%s key on curve %s", alg, k.Curve.Params().Name)
		}
		cs.sign = func(input []byte) ([]byte, error) {
			d := sha256.Sum256(input)
			// A nil random source makes the signature deterministic (RFC
			// 6979): the nonce is derived from the key and the digest
			// alone, so no weak or failing random source can leak the key,
			// and the derivation costs a fifth less than the hedged one
			// (whose HMAC-DRBG runs on SHA-512). The hedge guards against a
			// fault injected while the same message is signed twice; every
			// token this signs carries a fresh random jti, so no message is.
			// Ed25519 and RS256 signatures are deterministic too.
			der, err := k.Sign(nil, d[:], crypto.SHA256)
			if err != nil {
				return nil, err
			}
			var rs struct{ R, S *big.Int }
			if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
				return nil, fmt.Errorf("ES256 signature: not an ASN.1 pair: %v", err)
			}
			// RFC 7518 §3.4: R and S as 32-byte big-endian integers.
			sig := make([]byte, 64)
			rs.R.FillBytes(sig[:32])
			rs.S.FillBytes(sig[32:])
			return sig, nil
		}
	case *rsa.PrivateKey:
		if alg != "RS256" {
			return nil, fmt.Errorf("%s with an RSA key", alg)
		}
		cs.sign = func(input []byte) ([]byte, error) {
			d := sha256.Sum256(input)
			return rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:])
		}
	case ed25519.PrivateKey:
		if alg != "EdDSA" {
			return nil, fmt.Errorf("%s with an Ed25519 key", alg)
		}
		cs.sign = func(input []byte) ([]byte, error) { return ed25519.Sign(k, input), nil }
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return cs, nil
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
