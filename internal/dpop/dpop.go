// Package dpop checks DPoP proofs (RFC 9449): JWTs a client signs with a
// key of its own for each HTTP request, so that an access token bound to
// that key (cnf.jkt) is useless to whoever steals it without the key.
//
// It is a leaf package, shared by the token endpoint and the public verify
// library: it imports only go-jose, the standard library and the oauth2
// vocabulary leaf. It checks a
// proof against the request it came with (Checker.Check, RFC 9449 §4.3)
// without state; replay detection is a separate step (ReplayCache), taken
// once the caller knows the proof is worth remembering.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"

	"github.com/keyward/keyward/internal/oauth2"
)

// Header is the HTTP header that carries a proof (RFC 9449 §4.1), and
// Scheme the Authorization scheme of a DPoP-bound token (§7.1).
const (
	Header = "DPoP"
	Scheme = "DPoP"
)

// headerKey is Header as http.Header stores it. Indexing with it spares
// every request the allocation that Header.Values makes to canonicalize
// "DPoP", with or without a proof.
var headerKey = http.CanonicalHeaderKey(Header)

// HeaderValues returns the values of the DPoP headers in h, for Check.
func HeaderValues(h http.Header) []string { return h[headerKey] }

// Limits on untrusted input.
const (
	// MaxProofSize bounds a proof: a P-256 proof is about 600 bytes and an
	// RSA-4096 one about 1,400.
	MaxProofSize = 8 << 10
	// MaxJTILength bounds a proof's jti, which replay caches keep.
	MaxJTILength = 256
	// minRSABits and maxRSABits bound the RSA keys a proof may be signed
	// with: strong enough, and cheap enough to verify.
	minRSABits = 2048
	maxRSABits = 8192
)

// Algorithms are the signature algorithms a proof may use: asymmetric
// only (RFC 9449 §4.3 check 5), never none or an HMAC.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256, jose.PS256}

// AlgorithmNames returns the names of Algorithms, for discovery metadata
// (dpop_signing_alg_values_supported) and challenges (algs).
func AlgorithmNames() []string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return names
}

// Defaults of a Checker.
const (
	// DefaultMaxAge is how old a proof may be: clients make one per
	// request, just before sending it.
	DefaultMaxAge = 60 * time.Second
	// DefaultSkew is the clock difference tolerated on either side.
	DefaultSkew = 10 * time.Second
)

// Checker checks proofs. Its zero value uses time.Now, DefaultMaxAge and
// DefaultSkew.
type Checker struct {
	Now func() time.Time
	// MaxAge is how long after its iat a proof is accepted.
	MaxAge time.Duration
	// Skew is the clock difference tolerated: a proof may be dated that
	// much in the future, and may be MaxAge+Skew old.
	Skew time.Duration
}

// Retention is how long after a proof was first accepted a replay cache
// must remember its jti: until this clock would not accept the proof
// again, and oauth2.ReplayMargin (a second) more. (A replica whose clock
// is behind this one's accepts it for as much longer: replicas sharing a
// cache must keep their clocks in step, as NTP does, well within the
// second.) A proof dated Skew ahead is accepted up to MaxAge+2*Skew after
// that, that last instant included, when a cache that forgets at its
// until (Redis PXAT, or ReplayCache) already forgot it; the second also
// covers a store that rounds until to milliseconds, and the moments
// between checking a proof and recording it, which read the clock apart.
func (c *Checker) Retention() time.Duration { return c.maxAge() + 2*c.skew() + oauth2.ReplayMargin }

func (c *Checker) maxAge() time.Duration {
	if c.MaxAge > 0 {
		return c.MaxAge
	}
	return DefaultMaxAge
}

func (c *Checker) skew() time.Duration {
	if c.Skew > 0 {
		return c.Skew
	}
	return DefaultSkew
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Request is what a proof must match.
type Request struct {
	// Method is the HTTP method of the request.
	Method string
	// URL is the request's target URI as the client addressed it
	// (scheme, host and path); query and fragment are ignored.
	URL string
	// URLNormalized says URL is already in NormalizeURL's form: a caller
	// whose proofs all name one URL normalizes it once, and Check
	// compares htu with URL as it is instead of normalizing it again.
	URLNormalized bool
	// AccessToken is the token presented with the proof to a resource
	// server, whose hash the proof's ath must carry; "" at the token
	// endpoint.
	AccessToken string
}

// Proof is a checked proof.
type Proof struct {
	// JKT is the SHA-256 JWK thumbprint (RFC 7638) of the proof's key,
	// base64url-encoded: the cnf.jkt of a token bound to it (RFC 9449 §6).
	JKT       string
	JTI       string
	IssuedAt  time.Time
	Algorithm string
	// Nonce is the proof's nonce claim, "" if it has none; the caller
	// checks it (Nonces.Valid) where nonces are required.
	Nonce string
}

// Error is a refused proof. Description says why, in words safe to send
// the client (it never repeats what the proof says); Err is the cause, for
// logs.
type Error struct {
	Description string
	Err         error
}

func (e *Error) Error() string {
	s := "dpop: " + e.Description
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func refuse(desc string, cause error) *Error { return &Error{Description: desc, Err: cause} }

// claims are a proof's claims (RFC 9449 §4.2), decoded with go-jose's
// json: claim names are case-sensitive (RFC 7519 §4) and a claim named
// twice is refused, so a proof means to Check what it means to any other
// JOSE library, where encoding/json would take "HTU" for htu and the
// last of two htu. IAT is a JSON number (RFC 7519 §2), not a string.
type claims struct {
	JTI string   `json:"jti"`
	HTM string   `json:"htm"`
	HTU string   `json:"htu"`
	IAT *float64 `json:"iat"`
	ATH string   `json:"ath"`
	// Nonce is the server-provided nonce (RFC 9449 §8), if any.
	Nonce string `json:"nonce"`
}

// Check checks the DPoP header values of a request (RFC 9449 §4.3, all
// checks but the nonce and replay ones) and returns the proof. There must
// be exactly one value.
func (c *Checker) Check(values []string, req Request) (*Proof, error) {
	switch len(values) {
	case 0:
		return nil, refuse("the request has no DPoP proof", nil)
	case 1:
	default:
		return nil, refuse("the request has more than one DPoP header", nil)
	}
	raw := values[0]
	if len(raw) > MaxProofSize {
		return nil, refuse("the DPoP proof is too large", nil)
	}
	if !oauth2.IsCompactJWS(raw) {
		return nil, refuse("the DPoP proof is not a compact JWS", nil)
	}
	if err := preflight(raw); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(raw, Algorithms)
	if err != nil {
		return nil, refuse("the DPoP proof is not a well-formed JWS with a usable public jwk", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse("the DPoP proof is not a compact JWS", nil)
	}
	h := jws.Signatures[0].Protected
	if oauth2.Unencoded(h) {
		return nil, refuse("the DPoP proof's b64 header must be true or absent: a proof's claims are base64url-encoded, never an unencoded payload (RFC 7797)", nil)
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !oauth2.TypeIs(typ, "dpop+jwt") {
		return nil, refuse("the DPoP proof's typ is not dpop+jwt", nil)
	}
	jwk := h.JSONWebKey
	if jwk == nil {
		return nil, refuse("the DPoP proof has no jwk header", nil)
	}
	if !jwk.IsPublic() || !jwk.Valid() {
		return nil, refuse("the DPoP proof's jwk is not a public key", nil)
	}
	if err := keyFits(jose.SignatureAlgorithm(h.Algorithm), jwk.Key); err != nil {
		return nil, refuse("the DPoP proof's jwk does not fit its alg", err)
	}
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		return nil, refuse("the DPoP proof's signature does not verify with its jwk", err)
	}
	var cl claims
	if err := josejson.Unmarshal(payload, &cl); err != nil {
		return nil, refuse("the DPoP proof's claims are malformed", err)
	}
	var missing []string
	for _, f := range [...]struct {
		name string
		ok   bool
	}{{"jti", cl.JTI != ""}, {"htm", cl.HTM != ""}, {"htu", cl.HTU != ""}, {"iat", cl.IAT != nil}} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, refuse("the DPoP proof lacks "+strings.Join(missing, ", "), nil)
	}
	if len(cl.JTI) > MaxJTILength {
		return nil, refuse("the DPoP proof's jti is too long", nil)
	}
	if !oauth2.IsText(cl.JTI) {
		// Kept for replay checks, where PostgreSQL refuses a NUL.
		return nil, refuse("the DPoP proof's jti contains a NUL character", nil)
	}
	if cl.HTM != req.Method {
		return nil, refuse("the DPoP proof is for another HTTP method (htm)", nil)
	}
	if err := matchURL(cl.HTU, req.URL, req.URLNormalized); err != nil {
		return nil, refuse("the DPoP proof is for another URL (htu): sign the URL of the request, without query or fragment", err)
	}
	iat, err := numericDate(*cl.IAT)
	if err != nil {
		return nil, refuse("the DPoP proof's iat is malformed", err)
	}
	now := c.now()
	if iat.After(now.Add(c.skew())) {
		return nil, refuse("the DPoP proof is dated in the future (iat); check the clocks", nil)
	}
	if now.After(iat.Add(c.maxAge() + c.skew())) {
		return nil, refuse("the DPoP proof is too old (iat): make a new proof for every request", nil)
	}
	if req.AccessToken != "" {
		if cl.ATH == "" {
			return nil, refuse("the DPoP proof lacks ath, the hash of the access token", nil)
		}
		want := TokenHash(req.AccessToken)
		if subtle.ConstantTimeCompare([]byte(cl.ATH), []byte(want)) != 1 {
			return nil, refuse("the DPoP proof is for another access token (ath)", nil)
		}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, refuse("the DPoP proof's jwk has no thumbprint", err)
	}
	return &Proof{JKT: base64.RawURLEncoding.EncodeToString(tp), JTI: cl.JTI, IssuedAt: iat, Algorithm: h.Algorithm, Nonce: cl.Nonce}, nil
}

// privateMembers are the JWK members of private and symmetric keys
// (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// preflight reads the proof's header before go-jose does, to say exactly
// why the commonest bad proofs are refused: an alg off the list, or a jwk
// with private key material (which go-jose refuses too).
func preflight(raw string) error {
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return refuse("the DPoP proof's header is not base64url", err)
	}
	var h struct {
		Alg string                     `json:"alg"`
		JWK map[string]json.RawMessage `json:"jwk"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return refuse("the DPoP proof's header is not a JSON object", err)
	}
	if !slices.Contains(Algorithms, jose.SignatureAlgorithm(h.Alg)) {
		return refuse("the DPoP proof's alg is not one of "+strings.Join(AlgorithmNames(), ", "), nil)
	}
	for _, m := range privateMembers {
		if _, ok := h.JWK[m]; ok {
			return refuse("the DPoP proof's jwk holds private or symmetric key material: send the public key only", nil)
		}
	}
	return nil
}

// TokenHash is the ath of a proof sent with an access token: the
// base64url-encoded SHA-256 of the token (RFC 9449 §4.2).
func TokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// MatchJKT reports whether a proof's thumbprint is the one a token is bound
// to, in constant time.
func MatchJKT(proofJKT, tokenJKT string) bool {
	return tokenJKT != "" && subtle.ConstantTimeCompare([]byte(proofJKT), []byte(tokenJKT)) == 1
}

// keyFits checks that key is of the kind alg signs with, and strong
// enough: an EC key on alg's curve, an RSA key of 2048 bits or more, an
// Ed25519 key. go-jose would refuse most mismatches at verification; this
// says which, and keeps small RSA keys out.
func keyFits(alg jose.SignatureAlgorithm, key any) error {
	switch alg {
	case jose.ES256, jose.ES384:
		k, ok := key.(*ecdsa.PublicKey)
		want := elliptic.P256()
		if alg == jose.ES384 {
			want = elliptic.P384()
		}
		if !ok || k.Curve != want {
			return errors.New(string(alg) + " needs an EC key on " + want.Params().Name)
		}
	case jose.RS256, jose.PS256:
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return errors.New(string(alg) + " needs an RSA key")
		}
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return errors.New("the RSA key is not of 2048 to 8192 bits")
		}
	case jose.EdDSA:
		if _, ok := key.(ed25519.PublicKey); !ok {
			return errors.New("EdDSA needs an Ed25519 key")
		}
	default:
		return errors.New("unsupported alg")
	}
	return nil
}

func numericDate(f float64) (time.Time, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, errors.New("iat out of range")
	}
	return time.Unix(int64(f), 0), nil
}
