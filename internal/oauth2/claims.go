package oauth2

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/jsonappend"
)

// AccessClaims are the claims of a Keyward JWT access token (RFC 9068 §2.2).
type AccessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	ClientID  string   `json:"client_id"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf,omitempty"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
	Scope     string   `json:"scope,omitempty"`
	// ClientEmail is the service account's email, next to its numeric
	// client ID, so resource servers can tell both.
	ClientEmail string `json:"client_email,omitempty"`
	// Actor names who acts for the subject in delegated tokens (RFC 8693 §4.1).
	Actor *Actor `json:"act,omitempty"`
	// Confirmation binds the token to a key or certificate (RFC 8705 §3.1,
	// RFC 9449 §6).
	Confirmation *Confirmation `json:"cnf,omitempty"`
	// Credential names what the client authenticated with ("key:ID",
	// "secret:ID" or "cert:THUMBPRINT"), so introspection can report the
	// token inactive once that key or secret is disabled or deleted. Key
	// and secret IDs are identifiers, not secrets.
	Credential string `json:"cred,omitempty"`
}

// Actor is the RFC 8693 act claim.
type Actor struct {
	Subject     string `json:"sub"`
	ClientEmail string `json:"client_email,omitempty"`
}

// Confirmation is the cnf claim.
type Confirmation struct {
	X5TS256 string `json:"x5t#S256,omitempty"`
	JKT     string `json:"jkt,omitempty"`
}

// Thumbprint returns a certificate's x5t#S256 (RFC 8705 §3.1): the
// base64url SHA-256 of its DER, as Confirmation.X5TS256 holds it. The
// token endpoint binds tokens with it and verify checks the binding.
func Thumbprint(cert *x509.Certificate) string { return ThumbprintDER(cert.Raw) }

// ThumbprintDER is Thumbprint of a certificate's DER.
func ThumbprintDER(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Audience is the aud claim: one string or an array of strings (RFC 7519
// §4.1.3). It marshals a single value as a string.
type Audience []string

// UnmarshalJSON implements json.Unmarshaler.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if s, ok := plainJSONString(b); ok {
		*a = Audience{s}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud must be a string or an array of strings")
	}
	*a = l
	return nil
}

// plainJSONString returns the string the JSON string b holds, as
// json.Unmarshal would, when b has nothing for json.Unmarshal to change or
// refuse (no escape, control character or invalid UTF-8), as an aud
// mostly does: without json.Unmarshal's 3 allocations besides the string.
func plainJSONString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	for _, c := range in {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// MarshalJSON implements json.Marshaler.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return jsonappend.String(nil, a[0]), nil
	}
	return jsonappend.Strings(nil, a), nil
}

// AppendTo adds a to o as its "aud" member, as MarshalJSON writes it.
func (a Audience) AppendTo(o *jsonappend.Object) {
	if len(a) == 1 {
		o.String("aud", a[0])
	} else {
		o.Strings("aud", a)
	}
}

// AppendJSON appends the claims as JSON, the same as json.Marshal writes
// them, without reflection: the token endpoint encodes one set per token.
func (c *AccessClaims) AppendJSON(dst []byte) []byte {
	o := jsonappend.NewObject(dst)
	o.String("iss", c.Issuer)
	o.String("sub", c.Subject)
	c.Audience.AppendTo(&o)
	o.String("client_id", c.ClientID)
	o.Int("iat", c.IssuedAt)
	if c.NotBefore != 0 {
		o.Int("nbf", c.NotBefore)
	}
	o.Int("exp", c.Expiry)
	o.String("jti", c.ID)
	if c.Scope != "" {
		o.String("scope", c.Scope)
	}
	if c.ClientEmail != "" {
		o.String("client_email", c.ClientEmail)
	}
	c.Actor.AppendTo(&o)
	c.Confirmation.AppendTo(&o)
	if c.Credential != "" {
		o.String("cred", c.Credential)
	}
	return o.End()
}

// AppendTo adds a to o as its "act" member, if a is set.
func (a *Actor) AppendTo(o *jsonappend.Object) {
	if a == nil {
		return
	}
	o.Open("act")
	o.String("sub", a.Subject)
	if a.ClientEmail != "" {
		o.String("client_email", a.ClientEmail)
	}
	o.Close()
}

// AppendTo adds c to o as its "cnf" member, if c is set.
func (c *Confirmation) AppendTo(o *jsonappend.Object) {
	if c == nil {
		return
	}
	o.Open("cnf")
	if c.X5TS256 != "" {
		o.String("x5t#S256", c.X5TS256)
	}
	if c.JKT != "" {
		o.String("jkt", c.JKT)
	}
	o.Close()
}

// Contains reports whether v is one of the audience values.
func (a Audience) Contains(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

// ParseScope splits a space-delimited scope string (RFC 6749 §3.3). It
// returns the scopes in order without duplicates, or an error naming the
// first malformed scope token.
func ParseScope(s string) ([]string, error) {
	fields := strings.Split(s, " ")
	// Kept in place: the scopes out keeps are never more, nor later, than
	// the fields read.
	out := fields[:0]
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if f == "" {
			continue
		}
		if !ValidScopeToken(f) {
			return nil, errors.New("the scope " + QuoteForDescription(f) + " " + scopeHint(f))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// ValidScopeToken reports whether s is a scope-token: one or more of
// %x21 / %x23-5B / %x5D-7E. Commas are allowed by the grammar, but
// Keyward's scope names never contain them, so a comma most likely means a
// comma-separated list and is refused with a hint.
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' || c == ',' {
			return false
		}
	}
	return true
}

// scopeHint says what is wrong with a malformed scope token, guessing at
// the list it was meant to be.
func scopeHint(s string) string {
	switch {
	case strings.Contains(s, ","):
		return "contains a comma: scopes are separated by spaces, not commas"
	case strings.ContainsAny(s, "\t\n\r\v\f"):
		return "contains a tab or line break: scopes are separated by single spaces (RFC 6749 section 3.3)"
	default:
		return "contains characters RFC 6749 section 3.3 does not allow: a scope is printable ASCII without spaces, double quotes or backslashes"
	}
}

// QuoteShort quotes a value a client sent, for an error message that is
// no OAuth error description (the CLI's, an import's, the admin API's; an
// OAuth error description quotes with QuoteForDescription): cut to 64
// bytes, so that a refusal does not echo a value of up to 64 KiB into the
// response, the log and the audit event.
func QuoteShort(s string) string {
	b, _ := json.Marshal(Truncate(s, 64))
	return string(b)
}

// Truncate cuts a value a client sent to at most n bytes, and marks the
// cut with "…": for error descriptions, logs, audit events and map keys,
// which must not grow with what a client sends. A cut never splits a
// UTF-8 sequence.
//
// The cut, the rare case, is a function of its own that is never inlined,
// so that Truncate stays cheap enough to inline and so do its callers:
// clientauth's throttle key is then built on the stack, not in one more
// allocation per token request.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cut(s, n)
}

//go:noinline
func cut(s string, n int) string {
	return strings.ToValidUTF8(s[:n], "") + "…"
}
