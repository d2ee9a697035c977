// Package assertion verifies JWTs that service accounts sign with their own
// keys: the assertions of the JWT-bearer grant (RFC 7523 §2.1) and of
// private_key_jwt client authentication (RFC 7523 §2.2). It checks the
// signature against the keys registered for the account named by the token
// and the time and audience claims; callers turn its errors into the OAuth
// error their endpoint uses.
package assertion

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/jwspad"
	"github.com/keyward/keyward/internal/keyfile"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// Algorithms are the only JWS algorithms an assertion may use. Each key
// verifies only the one it was registered for; none, HMAC and everything
// else are refused before any key is looked at.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// AlgorithmNames are the names of Algorithms, as the server's metadata
// lists them (RFC 8414 §2, *_auth_signing_alg_values_supported).
func AlgorithmNames() []string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return names
}

// Claims are the claims Keyward reads from an assertion.
type Claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Prn       string           `json:"prn"`
	Audience  oauth2.Audience  `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	ID        string           `json:"jti"`
	Scope     string           `json:"scope"`
	// TargetAudience, in place of a scope, asks Google's endpoint for an
	// ID token (google-auth's IDTokenCredentials); Keyward only notes it,
	// to say why it refuses. Any JSON type: it is not otherwise read.
	TargetAudience any `json:"target_audience"`
}

// Reason classifies why an assertion was refused.
type Reason int

// Reasons an assertion is refused.
const (
	Malformed     Reason = iota + 1 // not a JWS we accept, or bad claim types
	MissingClaim                    // a required claim is absent
	BadSignature                    // no registered, enabled, unexpired key verifies it
	DisabledKey                     // only a disabled key verifies it
	WrongAudience                   // aud does not name this server
	Expired                         // exp is in the past
	NotYetValid                     // iat or nbf is in the future
	TooLongLived                    // exp - iat is longer than allowed, or negative
)

// Error is a refused assertion, with a description safe to show the client.
type Error struct {
	Reason      Reason
	Description string
	Err         error // internal cause, for the log
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Description + " (" + e.Err.Error() + ")"
	}
	return e.Description
}

func (e *Error) Unwrap() error { return e.Err }

func fail(r Reason, desc string, cause error) *Error {
	return &Error{Reason: r, Description: desc, Err: cause}
}

// Token is a parsed, not yet verified assertion.
type Token struct {
	jwt *jwt.JSONWebToken
	// padded is set for an assertion whose segments carry base64 padding.
	padded *jwspad.Signed
	Header jose.Header
	// Claims are unverified until Verify succeeds.
	Claims Claims
	// sigLen is the length of the signature in bytes: an RSA key checks
	// only one as long as its modulus (see fits).
	sigLen int
	// sig is the signature's last segment, base64url without padding.
	sig string
}

// Parse parses raw and decodes its claims without checking the signature,
// so the caller can find the account the assertion claims to come from.
//
// Segments may carry base64 padding ('='), which RFC 7515 leaves out but
// Google's token endpoint accepts and google-auth for Python before 1.6.3
// (Debian 12's python3-google-auth is 1.5.1) sends; the signature of such
// an assertion is checked over the segments as received (package jwspad).
func Parse(raw string) (*Token, error) {
	// A compact JWS has no line breaks (RFC 7515 §7.1), and the
	// service-account flow refuses an assertion with them. Go's base64
	// decoding skips CR and LF, so go-jose would accept them.
	if strings.ContainsAny(raw, "\r\n") {
		return nil, fail(Malformed, notCompact, errors.New("a line break in the assertion"))
	}
	compact, padded, err := jwspad.Unpad(raw)
	switch {
	case errors.Is(err, jwspad.ErrHeader):
		return nil, fail(Malformed, "Invalid JWT: an assertion with padded base64 segments may have only alg, typ and kid in its header; sign it without padding, or without the other members.", err)
	case errors.Is(err, jwspad.ErrCritical):
		return nil, fail(Malformed, "Invalid JWT: the header marks extensions critical (crit), which this server does not support in an assertion with padded base64 segments; sign it without crit.", err)
	case err != nil:
		return nil, fail(Malformed, "Invalid JWT: the assertion's base64 padding is wrong.", err)
	}
	tok, err := jwt.ParseSigned(compact, Algorithms)
	if err != nil {
		return nil, fail(Malformed, notCompact, loggedCause(err))
	}
	// The last of the three segments that go-jose decoded, unpadded.
	sig := compact[strings.LastIndexByte(compact, '.')+1:]
	t := &Token{jwt: tok, padded: padded, Header: tok.Headers[0], sig: sig, sigLen: base64.RawURLEncoding.DecodedLen(len(sig))}
	if err := checkCritical(t.Header); err != nil {
		return nil, err
	}
	if oauth2.Unencoded(t.Header) {
		return nil, fail(Malformed, "Invalid JWT: the header's b64 must be true or absent: a JWT's claims are base64url-encoded (RFC 7519 section 3), never an unencoded payload (RFC 7797); sign the assertion without b64.", nil)
	}
	if err := checkType(t.Header); err != nil {
		return nil, err
	}
	if err := tok.UnsafeClaimsWithoutVerification(&t.Claims); err != nil {
		return nil, fail(Malformed, "Invalid JWT: the claim set is not a JSON object with the standard claim types.", err)
	}
	c := t.Claims
	for _, vs := range [...][]string{{c.Issuer, c.Subject, c.Prn, c.ID, c.Scope}, c.Audience} {
		for _, v := range vs {
			if !oauth2.IsText(v) {
				return nil, fail(Malformed, "Invalid JWT: a claim contains a NUL character.", nil)
			}
		}
	}
	// The jti is stored until the assertion expires: keep it an ID.
	if len(c.ID) > MaxJTILength {
		return nil, fail(Malformed, fmt.Sprintf("Invalid JWT: jti is longer than %d bytes.", MaxJTILength), nil)
	}
	return t, nil
}

// maxCause bounds the message of a go-jose refusal kept as the cause.
const maxCause = 256

// loggedCause is err, a go-jose refusal, as the cause the endpoints log:
// its message repeats what the header holds (the alg as sent), so it is
// cut at maxCause bytes, and not repeated at all when it holds a value
// shaped like a credential (oauth2.IsCredential).
func loggedCause(err error) error {
	msg := err.Error()
	switch {
	case oauth2.IsCredential(msg):
		return errors.New("go-jose refused the header; its message is not repeated: it holds a value shaped like a secret or token")
	case len(msg) > maxCause:
		return errors.New(oauth2.Truncate(msg, maxCause))
	}
	return err
}

// notCompact describes an assertion that is not a compact JWS.
const notCompact = "Invalid JWT: the assertion must be a compact JWS signed with RS256 or ES256 (three base64url segments, no newlines)."

// supportedCritical are the extensions go-jose verifies when a header
// marks them critical (RFC 7515 §4.1.11): b64 (RFC 7797), accepted only
// with its default value, true (see oauth2.Unencoded).
var supportedCritical = []string{"b64"}

// checkCritical refuses, with a description that says so, a header that
// marks critical an extension go-jose does not support, or whose crit is
// not a list of names. go-jose would refuse it too, but only when checking
// the signature, which would then be reported as invalid.
func checkCritical(h jose.Header) error {
	v, ok := h.ExtraHeaders["crit"]
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		return fail(Malformed, "Invalid JWT: the crit header must be a list of extension names; this server supports no critical extensions but b64.", nil)
	}
	var unsupported []string
	for _, x := range list {
		name, ok := x.(string)
		if !ok {
			return fail(Malformed, "Invalid JWT: the crit header must be a list of extension names; this server supports no critical extensions but b64.", nil)
		}
		if !slices.Contains(supportedCritical, name) {
			unsupported = append(unsupported, oauth2.QuoteForDescription(name))
		}
	}
	if len(unsupported) > 0 {
		return fail(Malformed, fmt.Sprintf("Invalid JWT: the header marks critical (crit) the extension %s, which this server does not support; sign the assertion without it.",
			strings.Join(unsupported[:min(len(unsupported), 3)], ", ")), nil)
	}
	return nil
}

// checkType refuses an assertion whose typ names another kind of JWT
// Keyward knows, so that none is ever taken for an assertion (RFC 8725
// §3.11): an access token, at+jwt (RFC 9068 §4), or a DPoP proof,
// dpop+jwt (RFC 9449 §4.2), in any case, with application/ or without.
// RFC 7523 names no typ for an assertion: clients send JWT or none, and
// any other is accepted.
func checkType(h jose.Header) error {
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	switch {
	case oauth2.TypeIs(typ, "at+jwt"):
		return fail(Malformed, "Invalid JWT: the typ header names an access token (at+jwt), not an assertion; sign the assertion with typ JWT, or none.", nil)
	case oauth2.TypeIs(typ, "dpop+jwt"):
		return fail(Malformed, "Invalid JWT: the typ header names a DPoP proof (dpop+jwt), not an assertion; sign the assertion with typ JWT, or none.", nil)
	}
	return nil
}

// MaxJTILength bounds the jti of an assertion.
const MaxJTILength = 256

// UsedUntil is how long a store must remember the jti of an assertion
// accepted with skew: until no replica would accept it again, exp + skew
// by its clock, and oauth2.ReplayMargin (a second) more, as DPoP's replay
// retention (dpop.Checker.Retention) allows. c.Expiry must be set (Verify
// refuses an assertion without it).
func (c Claims) UsedUntil(skew time.Duration) time.Time {
	return c.Expiry.Time().Add(skew + oauth2.ReplayMargin)
}

// LifetimeGrace is how far exp - iat may exceed MaxLifetime. Google
// refuses an assertion only when exp is more than 65 minutes after iat,
// and clients rely on it: Google's PHP client backdates iat by a minute
// and still asks for an hour.
const LifetimeGrace = 5 * time.Minute

// Expect is what a valid assertion must satisfy.
type Expect struct {
	// Audiences are the aud values that name this server; the assertion's
	// aud must contain one of them.
	Audiences []string
	// AudienceHint names what aud must be in the messages that refuse it,
	// such as "this server's token endpoint URL https://kw/token or its
	// issuer https://kw"; default: the Audiences, joined by "or".
	AudienceHint string
	// SingleAudience requires aud to be exactly one value (private_key_jwt).
	SingleAudience bool
	// MaxLifetime bounds exp - iat (inclusive), give or take LifetimeGrace.
	MaxLifetime time.Duration
	// RequireIssuedAt makes iat mandatory.
	RequireIssuedAt bool
	// RequireID makes jti mandatory, so that every assertion accepted is
	// single-use: without a jti one can be replayed until it expires.
	RequireID bool
	// Skew is the clock difference tolerated for iat, nbf and exp.
	Skew time.Duration
	Now  time.Time
	// Logger is told, at warn, of each stored key that cannot be used to
	// verify the assertion: one whose DER does not parse, or an RSA key
	// of more than keyfile.MaxRSABits bits stored before that bound was
	// enforced. Each such key is logged once per process, whichever
	// Logger is then given. Nil: such keys are skipped silently.
	Logger *slog.Logger
}

// Verify checks the signature against keys, which must all belong to the
// account the token names, and then the claims. It returns the key that
// verified the signature.
//
// Keys are tried as the service-account flow specifies: the one named by kid
// first, then — the kid being missing, unknown or wrong — every other key
// of the account. A signature that only a
// disabled key verifies is reported as DisabledKey; one that only an expired
// or deleted key would verify is a BadSignature.
// The BadSignature's cause, for the log, names an expired key or a kid
// that names no key of the account, when the kid does.
//
// A refusal costs one signature check for each key tried: those of the
// assertion's alg and, for RS256, of its signature's length (see fits),
// unexpired and usable; with none, one check with a decoy key, as for an
// iss naming no account (VerifyDecoy). So an account with several such
// keys answers a signature that none verifies later than an unknown iss
// does, and timing can tell it is an account. The kid does not bound
// this: the sender chooses it, and one naming no key, or none (a key file
// without private_key_id), has every key tried. Checking as many decoys
// as an account may have keys would cost every refusal up to 10 checks.
func (t *Token) Verify(keys []storage.Key, e Expect) (storage.Key, error) {
	k, err := t.verifySignature(keys, e.Now, e.Logger)
	if err != nil {
		return k, err
	}
	return k, t.checkClaims(e)
}

// warnedKeys holds the IDs of the stored keys that verifySignature has
// warned cannot be used, so that each is logged once per process: every
// assertion naming the account tries all its keys, and anyone who knows
// its client ID or email could otherwise fill the log. It grows at most
// to the number of stored keys that do not parse or are too big.
var warnedKeys sync.Map // key ID → struct{}

func (t *Token) verifySignature(keys []storage.Key, now time.Time, log *slog.Logger) (storage.Key, error) {
	alg := t.Header.Algorithm
	candidates := keys
	if i := slices.IndexFunc(keys, func(k storage.Key) bool { return k.ID == t.Header.KeyID }); i > 0 {
		candidates = append([]storage.Key{keys[i]}, slices.Delete(slices.Clone(keys), i, i+1)...)
	}
	var (
		disabled *storage.Key
		unusable error // why the last key skipped could not be used
		tried    bool
	)
	for i, k := range candidates {
		if k.Algorithm != alg || k.Expired(now) {
			continue
		}
		pub, err := publicKey(k)
		if err != nil {
			// Skipped as if it were not there: a key too big to verify
			// with in bounded time is never tried.
			unusable = fmt.Errorf("key %s cannot be used: %w", k.ID, err)
			if _, seen := warnedKeys.LoadOrStore(k.ID, struct{}{}); log != nil && !seen {
				log.Warn("skipping a service-account key that cannot verify assertions (logged once per process for each key): delete it, and register another key if needed",
					"account", k.AccountID, "key", k.ID, "err", err)
			}
			continue
		}
		if !t.fits(pub) {
			// Not tried, as it would be refused at once; the decoy of
			// the signature's length is checked instead.
			continue
		}
		tried = true
		if err := t.verifyWith(pub, jose.SignatureAlgorithm(alg)); err != nil {
			continue
		}
		if k.Disabled {
			disabled = &candidates[i] // not &k, which would move every k to the heap
			continue
		}
		return k, nil
	}
	if !tried {
		// An account with no key to try (none of alg or of the
		// signature's length, none whose modulus is above the
		// signature's value, or all expired or unusable, or none at
		// all: one with secrets only) answers as late as one whose keys
		// all refuse the signature, and as an unknown account does
		// (VerifyDecoy).
		t.VerifyDecoy()
	}
	if disabled != nil {
		return *disabled, fail(DisabledKey, "The OAuth client was disabled. The key used to sign the JWT assertion is disabled.", nil)
	}
	if unusable == nil {
		// Expired keys are never tried; the log says so when the kid
		// names one, the likeliest reason a working job stops. A kid
		// naming no key at all is the next likeliest: a key deleted
		// (the store keeps none to tell it from one never made).
		i := slices.IndexFunc(keys, func(k storage.Key) bool { return k.ID == t.Header.KeyID })
		switch {
		case i >= 0 && keys[i].Expired(now):
			unusable = fmt.Errorf("key %s, which the assertion's kid names, expired at %s", keys[i].ID, keys[i].ExpiresAt.UTC().Format(time.RFC3339))
		case i < 0 && t.Header.KeyID != "":
			unusable = fmt.Errorf("the account has no key %s, which the assertion's kid names (deleted, or never made)", oauth2.QuoteShort(t.Header.KeyID))
		}
	}
	return storage.Key{}, fail(BadSignature, "Invalid JWT Signature.", unusable)
}

// signatureChecks counts the signatures verifyWith has checked.
var signatureChecks atomic.Uint64

// SignatureChecks returns the number of signature checks made so far in
// this process, decoys included: tests use it to show that a refusal
// spent one.
func SignatureChecks() uint64 { return signatureChecks.Load() }

// fits reports whether pub checks t's signature in full: an RSA key
// refuses at once a signature of another length than its modulus's (RFC
// 8017 §8.2.2), so its check costs what the signature's length does, not
// the key's; and one whose value is not below its modulus (§5.2.2), before
// the exponentiation, which the sender, choosing the signature, could
// time. Every ES256 signature and P-256 key is checked in full (a
// signature of another length than 64 bytes is refused at once by every
// key, the decoy's too, and every key has the curve's order).
func (t *Token) fits(pub crypto.PublicKey) bool {
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return true
	}
	if k.Size() != t.sigLen {
		return false
	}
	// Both as big-endian bytes of the key's length, on the stack: this
	// runs for every RS256 assertion, and a big.Int of the signature
	// cost three allocations a request.
	var sigBuf, modBuf [keyfile.MaxRSABits / 8]byte
	var enc [(keyfile.MaxRSABits/8 + 2) / 3 * 4]byte
	if t.sigLen > len(sigBuf) || len(t.sig) > len(enc) {
		return true // a key over MaxRSABits, stored before it was bounded: checked in full
	}
	n, err := base64.RawURLEncoding.Decode(sigBuf[:], enc[:copy(enc[:], t.sig)])
	if err != nil || n != t.sigLen {
		return false // go-jose decoded it: not reached
	}
	return bytes.Compare(sigBuf[:n], k.N.FillBytes(modBuf[:n])) < 0
}

// decoyES256 is a P-256 public key whose private key was thrown away when
// it was made: VerifyDecoy checks ES256 signatures with it.
var decoyES256 = sync.OnceValue(func() crypto.PublicKey {
	der, err := base64.StdEncoding.DecodeString("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAElMaUP+4G1UOVBY+8tz0pZi+TJUhnsUu9OM01Glu3bFtWyq5bzoy95ePqBJbAqLD4qJiwtOXitGO+skvB3lY6og==")
	if err != nil {
		panic(err) // a constant
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		panic(err) // a constant
	}
	return pub
})

// decoysRSA are the RSA decoy keys, one for each length in bytes of a
// modulus of keyfile.MinRSABits to keyfile.MaxRSABits bits, made when
// first needed: 769 at most, under 1 MiB.
var decoysRSA [keyfile.MaxRSABits/8 - keyfile.MinRSABits/8 + 1]atomic.Pointer[rsa.PublicKey]

// decoyRSA returns the RSA decoy key whose modulus is size bytes long, or
// nil when no RSA key Keyward accepts has one that long. Its modulus is
// 2^(8×size) − 1, all one bits: no one holds a private key for it (the
// answer is ignored all the same), a signature's check with it costs
// what one with a real key of that length does (bigmod's arithmetic does
// not depend on the numbers, only on their length), and it is above
// every modulus of that length, so it checks in full every signature
// that a real key would (fits): all but the one of all one bits, which
// every key refuses at once. A random modulus would refuse at once a
// signature that a real key checks in full, and the sender, choosing the
// signature's value, could time that.
func decoyRSA(size int) *rsa.PublicKey {
	i := size - keyfile.MinRSABits/8
	if i < 0 || i >= len(decoysRSA) {
		return nil
	}
	if pub := decoysRSA[i].Load(); pub != nil {
		return pub
	}
	n := new(big.Int).Lsh(big.NewInt(1), uint(8*size))
	decoysRSA[i].CompareAndSwap(nil, &rsa.PublicKey{N: n.Sub(n, big.NewInt(1)), E: 65537})
	return decoysRSA[i].Load()
}

// VerifyDecoy checks t's signature against a key no one holds, of the
// algorithm t's header names and, for RS256, of the signature's length,
// and ignores the answer. A caller refusing an assertion whose iss names
// no account calls it, so that the refusal costs what a signature that
// none of a known account's keys verifies does: its answer is the same
// ("Invalid JWT Signature."), and must not come back measurably sooner,
// or a guesser timing it could tell which emails and client IDs are
// accounts. An RS256 signature of a length no RSA key Keyward accepts has
// (under keyfile.MinRSABits or over keyfile.MaxRSABits bits) is checked
// with nothing, as a known account's keys would refuse it at once.
func (t *Token) VerifyDecoy() {
	switch alg := jose.SignatureAlgorithm(t.Header.Algorithm); alg { // Parse accepts only Algorithms
	case jose.RS256:
		if pub := decoyRSA(t.sigLen); pub != nil {
			_ = t.verifyWith(pub, alg)
		}
	case jose.ES256:
		_ = t.verifyWith(decoyES256(), alg)
	}
}

// onCheck, set by tests only, is given each key verifyWith checks a
// signature with.
var onCheck func(pub crypto.PublicKey)

// verifyWith checks the signature with pub, a key registered for alg.
func (t *Token) verifyWith(pub crypto.PublicKey, alg jose.SignatureAlgorithm) error {
	signatureChecks.Add(1)
	if onCheck != nil {
		onCheck(pub)
	}
	if t.padded != nil {
		return t.padded.Verify(pub, alg)
	}
	return t.jwt.Claims(pub) // verify only: the claims are decoded already
}

func (t *Token) checkClaims(e Expect) error {
	c := t.Claims
	if c.Expiry == nil {
		return fail(MissingClaim, "Invalid JWT: the exp claim is required.", nil)
	}
	if e.RequireIssuedAt && c.IssuedAt == nil {
		return fail(MissingClaim, "Invalid JWT: the iat claim is required.", nil)
	}
	if e.RequireID && c.ID == "" {
		return fail(MissingClaim, "Invalid JWT: this server requires a jti claim, a unique ID for each assertion, which it accepts only once.", nil)
	}
	hint := e.AudienceHint
	if hint == "" {
		hint = strings.Join(e.Audiences, " or ")
	}
	if len(c.Audience) == 0 {
		return fail(MissingClaim, "Invalid JWT: the aud claim is required; use "+hint+".", nil)
	}
	if e.SingleAudience && len(c.Audience) != 1 {
		return fail(WrongAudience, "Invalid JWT: aud must be a single value, "+hint+".", nil)
	}
	matched := false
	for _, a := range e.Audiences {
		matched = matched || c.Audience.Contains(a)
	}
	if !matched {
		// The aud sent, for the log: cut short, and not repeated when
		// shaped like a credential.
		return fail(WrongAudience, "Invalid JWT: aud must be "+hint+".",
			errors.New("aud "+oauth2.QuoteForDescription(strings.Join(c.Audience, " "))))
	}
	exp := c.Expiry.Time()
	if !e.Now.Before(exp.Add(e.Skew)) {
		return fail(Expired, fmt.Sprintf("%s The assertion expired at %s; check the clock of the system that signs it.", e.timeframe(), exp.UTC().Format(time.RFC3339)), nil)
	}
	if c.NotBefore != nil && c.NotBefore.Time().After(e.Now.Add(e.Skew)) {
		return fail(NotYetValid, e.timeframe()+" nbf is in the future; check the clock of the system that signs it (clock skew).", nil)
	}
	if c.IssuedAt != nil {
		iat := c.IssuedAt.Time()
		if iat.After(e.Now.Add(e.Skew)) {
			return fail(NotYetValid, fmt.Sprintf("%s iat is %s in the future; check the clock of the system that signs it (clock skew).",
				e.timeframe(), howFar(c.IssuedAt.Time().Unix()-e.Now.Unix())), nil)
		}
		switch life := exp.Sub(iat); {
		case life < 0:
			return fail(TooLongLived, e.timeframe()+" exp is before iat.", fmt.Errorf("exp - iat = %s", life))
		case e.MaxLifetime > 0 && life > e.MaxLifetime+LifetimeGrace:
			return fail(TooLongLived, fmt.Sprintf("%s exp is %s after iat; this server allows at most %s.",
				e.timeframe(), howFar(int64(life/time.Second)), e.MaxLifetime+LifetimeGrace), fmt.Errorf("exp - iat = %s", life))
		}
	} else if e.MaxLifetime > 0 && exp.Sub(e.Now) > e.MaxLifetime+e.Skew {
		return fail(TooLongLived, e.timeframe()+" exp is too far in the future.", nil)
	}
	return nil
}

// timeframe is the service-account flow's one description of an
// assertion out of its time frame (a clock that is off, or a lifetime too
// long), which a refusal follows with what is wrong.
func (e Expect) timeframe() string {
	// "60 minutes" as Google's message, with the server's own longest
	// lifetime: a part of a minute is not cut off, nor one minute plural.
	span := strconv.FormatInt(int64(e.MaxLifetime/time.Minute), 10) + " minutes"
	switch {
	case e.MaxLifetime%time.Minute != 0:
		span = e.MaxLifetime.String()
	case e.MaxLifetime == time.Minute:
		span = "1 minute"
	}
	return "Invalid JWT: Token must be a short-lived token (" + span + ") and in a reasonable timeframe. Check your 'iat' and 'exp' values and use a clock with skew to account for clock differences between systems."
}

// howFar describes a positive number of seconds for a message: exactly up
// to two days, then in days, and past a year only as that. (A Duration
// holds 292 years: an iat near the end of int64 overflowed it into
// "2562047h47m16.854775807s".)
func howFar(secs int64) string {
	switch {
	case secs <= 2*24*60*60:
		return (time.Duration(secs) * time.Second).String()
	case secs <= 365*24*60*60:
		return strconv.FormatInt(secs/(24*60*60), 10) + " days"
	default:
		return "more than a year"
	}
}

// parsed caches decoded public keys by key ID. Public keys never change
// (only their enabled flag and expiry do, which are read from the Key), so
// the cache needs no invalidation; the DER is compared to be safe. It holds
// at most maxParsedKeys keys, evicting one at random when full: past that,
// keys are parsed again, which costs microseconds, not correctness.
var (
	parsedMu      sync.RWMutex
	parsed        = map[string]parsedKey{}
	maxParsedKeys = 10_000
)

type parsedKey struct {
	der string
	pub crypto.PublicKey
}

// publicKey returns the public key of k, or an error when it does not
// parse or is an RSA key over keyfile.MaxRSABits bits (UploadKey refuses
// those; one stored before it did is never verified with).
func publicKey(k storage.Key) (crypto.PublicKey, error) {
	parsedMu.RLock()
	v, ok := parsed[k.ID]
	parsedMu.RUnlock()
	if ok && v.der == string(k.PublicKey) {
		return v.pub, nil
	}
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := keyfile.CheckRSASize(pub); err != nil {
		return nil, err
	}
	parsedMu.Lock()
	if len(parsed) >= maxParsedKeys {
		for id := range parsed { // map order is random
			delete(parsed, id)
			break
		}
	}
	parsed[k.ID] = parsedKey{der: string(k.PublicKey), pub: pub}
	parsedMu.Unlock()
	return pub, nil
}

// IsReason reports whether err is an *Error with reason r.
func IsReason(err error, r Reason) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == r
}
