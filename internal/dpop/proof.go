package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Prover makes proofs with one key: the client side of RFC 9449 §4.
type Prover struct {
	signer jose.Signer
	jkt    string
}

// NewProver returns a Prover for key: an EC P-256 key signs ES256, a
// P-384 key ES384, an Ed25519 key EdDSA, an RSA key RS256.
func NewProver(key crypto.Signer) (*Prover, error) {
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch name := k.Curve.Params().Name; name {
		case "P-256":
			alg = jose.ES256
		case "P-384":
			alg = jose.ES384
		default:
			return nil, errors.New("dpop: an EC proof key must be on P-256 (ES256) or P-384 (ES384), not " + name)
		}
	case ed25519.PrivateKey:
		alg = jose.EdDSA
	case *rsa.PrivateKey:
		alg = jose.RS256
	default:
		return nil, errors.New("dpop: a proof key must be EC, Ed25519 or RSA")
	}
	if err := keyFits(alg, key.Public()); err != nil {
		return nil, errors.New("dpop: " + err.Error())
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return nil, err
	}
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Prover{signer: s, jkt: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// JKT returns the thumbprint of the prover's key: the cnf.jkt of the
// tokens bound to it.
func (p *Prover) JKT() string { return p.jkt }

// Proof returns a fresh proof for a request: method and URL (its query
// and fragment are left out), and the access token sent with it ("" for a
// token request).
func (p *Prover) Proof(method, rawURL, accessToken string, now time.Time) (string, error) {
	return p.ProofWithNonce(method, rawURL, accessToken, "", now)
}

// ProofWithNonce is Proof with the nonce the server provided (RFC 9449
// §8), if not "".
func (p *Prover) ProofWithNonce(method, rawURL, accessToken, nonce string, now time.Time) (string, error) {
	htu, err := NormalizeURL(rawURL)
	if err != nil {
		return "", errors.New("dpop: the request URL: " + err.Error())
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	c := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"htm": method,
		"htu": htu,
		"iat": now.Unix(),
	}
	if accessToken != "" {
		c["ath"] = TokenHash(accessToken)
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := p.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
