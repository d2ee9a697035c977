// Package keyfile turns the private key of a service-account JSON key file
// into a JWS signer, with the one algorithm Keyward accepts for that key, or
// says at once why the key cannot sign anything Keyward would accept.
//
// Keyward verifies assertions with RS256 and ES256 only (RFC 7518 §3.1),
// each against a key registered for it: RSA keys of MinRSABits to
// MaxRSABits bits and EC keys on P-256. Algorithm is that rule, for the keys users
// upload as for the keys programs sign with.
//
// ParsePrivateKey, the PEM reading beneath NewSigner, also reads the keys
// the CLI signs DPoP proofs with; those are held to dpop.NewProver's rule,
// not to Algorithm's.
//
// DecodeJSON reads the key file itself, wording what is no key file the
// same way for the client and verify packages.
//
// It imports neither storage nor server code: the public client and verify
// packages use it.
package keyfile

import (
	"bytes"
	"crypto"
	"crypto/dsa"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// MinRSABits is the smallest RSA key Keyward accepts.
const MinRSABits = 2048

// MaxRSABits is the largest RSA key Keyward accepts, or verifies a
// signature with: the cost of verifying grows with the square of the
// key's size, and crypto/rsa sets no bound (a 1,048,576-bit key takes
// over a minute), so a key of any size would let whoever sends a JWT
// naming it burn the server's CPU. 8192 bits is crypto/tls's bound on the
// RSA keys of the certificates it verifies (defaultMaxRSAKeySize in
// crypto/tls/handshake_client.go, since Go 1.20.7 and 1.21).
const MaxRSABits = 8192

// accepted ends every refusal of a key: what would do instead.
const accepted = "Keyward accepts RS256 (RSA of 2048 to 8192 bits) and ES256 (P-256) keys"

// Algorithm returns the JWS algorithm a key of pub signs for Keyward: RS256
// for RSA keys of MinRSABits to MaxRSABits bits, ES256 for EC keys on
// P-256. Any other key is an error that names the key and what Keyward
// accepts, as is an RSA key crypto/rsa verifies nothing with: one whose
// modulus is even, or whose public exponent is not odd, 3 to 2^31-1.
func Algorithm(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits {
			return "", fmt.Errorf("the RSA key has %d bits: %s", n, accepted)
		}
		if err := CheckRSASize(k); err != nil {
			return "", fmt.Errorf("%w: %s", err, accepted)
		}
		// crypto/x509 parses any positive exponent and modulus, but
		// crypto/rsa verifies nothing with these.
		if k.E < 3 || k.E%2 == 0 || k.E > math.MaxInt32 {
			return "", fmt.Errorf("the RSA key's public exponent is %d, where an odd number from 3 to %d (usually 65537) is needed: %s", k.E, math.MaxInt32, accepted)
		}
		if k.N.Bit(0) == 0 {
			return "", fmt.Errorf("the RSA key's modulus is even, where an RSA modulus is odd: %s", accepted)
		}
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("the EC key is on %s: %s", k.Curve.Params().Name, accepted)
		}
		return jose.ES256, nil
	case ed25519.PublicKey:
		return "", errors.New("unsupported key type Ed25519: " + accepted)
	case *ecdh.PublicKey: // X25519, from crypto/x509
		return "", fmt.Errorf("unsupported key type %s, an ECDH key that cannot sign: %s", k.Curve(), accepted)
	case *dsa.PublicKey:
		return "", errors.New("unsupported key type DSA: " + accepted)
	case nil: // a certificate's key of an algorithm crypto/x509 does not know (Ed448, RSA-PSS)
		return "", errors.New("unsupported key type, of an algorithm Keyward does not know: " + accepted)
	default:
		return "", fmt.Errorf("unsupported key type %T: %s", pub, accepted)
	}
}

// CheckRSASize returns an error naming the key's size and the limit when
// pub is an RSA key of more than MaxRSABits bits, and nil for any other
// key. Whatever verifies a signature with a key it did not make checks it
// first: a key stored before the limit, or published by an issuer.
func CheckRSASize(pub crypto.PublicKey) error {
	k, ok := pub.(*rsa.PublicKey)
	if !ok || k.N == nil {
		return nil
	}
	if n := k.N.BitLen(); n > MaxRSABits {
		return fmt.Errorf("the RSA key has %d bits, more than the %d Keyward accepts", n, MaxRSABits)
	}
	return nil
}

// NewSigner returns a signer of JWTs (typ JWT) with privateKeyPEM, a key
// file's private_key, under the algorithm Algorithm gives its key, with a
// kid header of keyID unless keyID is empty. Like Google's libraries it
// reads a PEM block holding a PKCS #8 key or a PKCS #1 RSA key.
func NewSigner(privateKeyPEM, keyID string) (jose.Signer, error) {
	key, err := ParsePrivateKey([]byte(privateKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	alg, err := Algorithm(key.Public())
	if err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if keyID != "" {
		opts = opts.WithHeader("kid", keyID)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("the private key cannot sign %s: %w", alg, err)
	}
	return s, nil
}

// ParsePrivateKey reads the first PEM block of data (after an EC
// PARAMETERS block) as PKCS #8, else as PKCS #1, whatever its type says, as golang.org/x/oauth2 does. It checks
// only that the key can sign; which algorithm it may sign for is the
// caller's rule (Algorithm for key files).
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block != nil && block.Type == "EC PARAMETERS" {
		// 'openssl ecparam -genkey' writes the curve before the key.
		if block, _ = pem.Decode(rest); block == nil {
			return nil, errors.New("the PEM holds EC PARAMETERS and no private key after them")
		}
	}
	if block == nil {
		return nil, errors.New("not PEM: expected a PRIVATE KEY block")
	}
	switch block.Type {
	case "CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY":
		// Parsed as a private key, these fail with an ASN.1 structure
		// error that names tags, not the mix-up.
		return nil, fmt.Errorf("the PEM block is a %s, not a private key: give the file with the private key (a PRIVATE KEY block)", strings.ToLower(block.Type))
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		rk, err1 := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err1 != nil {
			var structural asn1.StructuralError
			var syntax asn1.SyntaxError
			if errors.As(err, &structural) || errors.As(err, &syntax) {
				// asn1's words name tags and Go types, not the file's problem.
				if hint := convertHint(block.Type); hint != "" {
					return nil, fmt.Errorf("the PEM block (%s) is neither a PKCS #8 nor a PKCS #1 key%s", block.Type, hint)
				}
				return nil, fmt.Errorf("the PEM block (%s) is neither a PKCS #8 nor a PKCS #1 key%s: its content is not a key's DER encoding (is the file cut short or altered?)", block.Type, convertHint(block.Type))
			}
			return nil, fmt.Errorf("the PEM block (%s) is neither a PKCS #8 nor a PKCS #1 key%s: %w", block.Type, convertHint(block.Type), err)
		}
		key = rk
	}
	s, ok := key.(crypto.Signer)
	if !ok { // an X25519 key, say
		return nil, fmt.Errorf("unsupported key type %T, which cannot sign", key)
	}
	return s, nil
}

// convertHint says how to turn the PEM blocks that hold a private key in
// another format into PKCS #8.
func convertHint(blockType string) string {
	switch blockType {
	case "EC PRIVATE KEY":
		return " (a SEC 1 EC key: write it as PKCS #8 with 'openssl pkey -in FILE -out NEW')"
	case "ENCRYPTED PRIVATE KEY":
		return " (an encrypted key: write it unencrypted with 'openssl pkey -in FILE -out NEW')"
	case "OPENSSH PRIVATE KEY":
		return " (an OpenSSH key: write it as PKCS #8 with 'ssh-keygen -p -m PKCS8 -f FILE', which rewrites FILE)"
	}
	return ""
}

// DecodeJSON reads a JSON key file into v, saying in plain words what data
// is instead when it is none: empty, a PEM file (a key alone, not the key
// file), not JSON, JSON of another shape. Its errors name no Go type,
// and each is a predicate ("is empty"): callers put the file, as it is to
// them, in front ("the introspection key file is empty"). A UTF-8 byte
// order mark before the JSON is ignored.
func DecodeJSON(data []byte, v any) error {
	// Some editors write one; RFC 8259 §8.1 lets a parser ignore it, and
	// encoding/json refuses it as "invalid character 'ï'". Its bytes are
	// added back to a byte offset, which counts in the file as it is.
	var bom int64
	if rest, ok := bytes.CutPrefix(data, []byte("\ufeff")); ok {
		data, bom = rest, int64(len(data)-len(rest))
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return errors.New("is empty")
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return errors.New("is a PEM file, not a JSON key file: give the JSON file 'keyward keys create' wrote, which holds the private key with its account and token_uri")
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	if typ, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if typ.Field == "" {
			return fmt.Errorf("is not a JSON key file: a JSON %s, not an object", typ.Value)
		}
		return fmt.Errorf("is not a JSON key file: %s is a JSON %s, not a %s", typ.Field, typ.Value, typ.Type)
	}
	if syntax, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("is not a JSON key file: %s (at byte %d)", syntax, syntax.Offset+bom)
	}
	return fmt.Errorf("is not a JSON key file: %w", err)
}
