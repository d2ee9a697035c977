// Package validate holds the rules the admin API applies to what it
// creates (API names and identifiers, scopes, labels, token formats,
// client authentication methods, domains, emails, certificates' validity),
// as plain functions of the values, so that the admin API and keyward
// import refuse the same values. Their errors are sentences for a person;
// callers add the OAuth error code.
package validate

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// Limits of the free-text fields, in characters.
const (
	MaxDisplayNameLength = 100
	MaxDescriptionLength = 1000
)

// MaxIdentifierLength bounds an API identifier: it is indexed, and
// identifiers are URLs people type.
const MaxIdentifierLength = 512

// MaxAPIScopes bounds an API's scopes: the store checks who holds them
// with one statement, whose parameters SQLite and PostgreSQL bound (a list
// of some 16,000 failed there, as a 503 no retry would mend).
const MaxAPIScopes = 1000

var (
	apiNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,61}[a-z0-9]$`)
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9-]{1,28}[a-z0-9]$`)
	// A top-level domain is letters, or an internationalized one in
	// punycode (xn--p1ai, RFC 5890's A-label).
	domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9]([a-z0-9-]{0,57}[a-z0-9])?)$`)
)

// APIName checks the name of an API.
func APIName(name string) error {
	if !apiNameRE.MatchString(name) {
		return fmt.Errorf("The API name %s must be 2-63 lowercase letters, digits and hyphens, starting with a letter.", QuoteClip(name))
	}
	return nil
}

// APIIdentifier checks an API identifier (its audience): an absolute URI
// without a fragment (RFC 8707 §2), of at most MaxIdentifierLength bytes.
// A "#" always starts a fragment, an empty one too, which url.URL does
// not tell from none. url.Parse refuses ASCII control characters but not
// the C1 ones (U+009B is a terminal's CSI), which no URI holds either and
// which the CLI would print raw. Nor does it refuse the invisible format
// characters (Unicode category Cf: bidi overrides and isolates, zero-width
// spaces and joiners, U+FEFF, the soft hyphen), which no URI needs and
// which make one look like another in a list; they are refused too, and
// so are the spaces above ASCII url.Parse takes (the no-break space
// U+00A0, the ideographic space U+3000, the line separator U+2028, …).
// Nor does it refuse bytes that are not UTF-8, which Label refuses and an
// API identifier is refused for too: a JSON encoder would send each as
// U+FFFD, an identifier no token's aud or resource would match as sent.
func APIIdentifier(id string) error {
	u, err := url.Parse(id)
	if err != nil || u.Scheme == "" || strings.ContainsAny(id, "# \t\n") || strings.ContainsFunc(id, unicode.IsControl) {
		return fmt.Errorf("The API identifier %s must be an absolute URI without a fragment, such as https://orders.internal.", QuoteClip(id))
	}
	if i := NotUTF8(id); i >= 0 {
		return fmt.Errorf("The API identifier %s is not UTF-8 text: the byte 0x%02X at byte %d (counting from 0) is not part of a character; use UTF-8 text.", QuoteClip(id), id[i], i)
	}
	if i := strings.IndexFunc(id, unicode.IsSpace); i >= 0 {
		r, _ := utf8.DecodeRuneInString(id[i:])
		return fmt.Errorf("The API identifier %s contains the space character %U; an API identifier has none.", QuoteClip(id), r)
	}
	if i := strings.IndexFunc(id, isFormat); i >= 0 {
		r, _ := utf8.DecodeRuneInString(id[i:])
		return fmt.Errorf("The API identifier %s contains the invisible format character %U; an API identifier has none.", QuoteClip(id), r)
	}
	if len(id) > MaxIdentifierLength {
		return fmt.Errorf("The API identifier is %d bytes long; at most %d are allowed.", len(id), MaxIdentifierLength)
	}
	return nil
}

// APIScopes checks the scopes of an API: at least one, each a valid scope
// name, none twice.
func APIScopes(scopes []string) error {
	if len(scopes) == 0 {
		return errors.New("An API needs at least one scope.")
	}
	if len(scopes) > MaxAPIScopes {
		return fmt.Errorf("An API has at most %d scopes; this lists %d.", MaxAPIScopes, len(scopes))
	}
	seen := map[string]bool{}
	for _, sc := range scopes {
		if !ScopeName(sc) {
			return fmt.Errorf("The scope %s is not a valid scope name (printable ASCII without spaces, quotes, backslashes or commas).", QuoteClip(sc))
		}
		if seen[sc] {
			return fmt.Errorf("The scope %s is listed twice.", QuoteClip(sc))
		}
		seen[sc] = true
	}
	return nil
}

// ScopeName reports whether sc can name a scope: a scope token (RFC 6749
// §3.3) of at most 200 bytes.
func ScopeName(sc string) bool { return oauth2.ValidScopeToken(sc) && len(sc) <= 200 }

// BlockedScopes refuses a blocked scope that cannot be a scope: it would
// block nothing ("a b" never matches a requested scope, and its author
// meant two).
func BlockedScopes(scopes []string) error {
	for _, sc := range scopes {
		if !ScopeName(sc) {
			return fmt.Errorf("The blocked scope %s is not a valid scope name (printable ASCII without spaces, quotes, backslashes or commas): list each scope on its own.", QuoteClip(sc))
		}
	}
	return nil
}

// TokenFormat checks a token format: jwt or opaque, or "" if allowEmpty.
func TokenFormat(f string, allowEmpty bool) error {
	if f == storage.TokenJWT || f == storage.TokenOpaque || (allowEmpty && f == "") {
		return nil
	}
	if allowEmpty {
		// Empty is the default (jwt for an API, the APIs' format for an
		// account); a refusal that left it out sent the reader to one of
		// the two.
		return fmt.Errorf("The token format %s must be jwt or opaque, or empty (the default).", QuoteClip(f))
	}
	return fmt.Errorf("The token format %s must be jwt or opaque.", QuoteClip(f))
}

// Label refuses a display name or description that is too long, is not
// UTF-8 text (a byte of no character, which a JSON encoder would send as
// U+FFFD), or holds a control character (C0, DEL or C1, line breaks and
// tabs too) or a line or paragraph separator (U+2028, U+2029): they are
// shown on one line in terminals and the console, where control
// characters could rewrite what an administrator sees. It refuses too the
// invisible format characters (Unicode category Cf) that make a label
// read as another (hiddenInLabel): the bidi marks, embeddings, overrides
// and isolates (U+200E, U+200F, U+061C, U+202A to U+202E, U+2066 to
// U+2069; U+202E shows the text after it reversed), the zero-width space
// U+200B, the word joiner U+2060, the soft hyphen U+00AD, U+FEFF and the
// others. It keeps the zero-width non-joiner and joiner (U+200C, U+200D),
// which emoji sequences and Persian and Indic text need, the visible
// prepended concatenation marks (the Arabic number sign U+0600, …), and
// the tag characters of the three flag emoji made of them (England,
// Scotland, Wales), whose tags are hidden text anywhere else.
func Label(field, v string, max int) error {
	if n := utf8.RuneCountInString(v); n > max {
		return fmt.Errorf("The %s is %d characters long; at most %d are allowed.", field, n, max)
	}
	for i := 0; i < len(v); {
		if n := tagFlagLen(v[i:]); n > 0 {
			i += n
			continue
		}
		r, n := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return fmt.Errorf("The %s is not UTF-8 text: the byte 0x%02X at byte %d (counting from 0) is not part of a character; use UTF-8 text.", field, v[i], i)
		case unicode.IsControl(r):
			return fmt.Errorf("The %s contains the control character %U at byte %d (counting from 0); use printable text on one line.", field, r, i)
		case r == '\u2028' || r == '\u2029':
			return fmt.Errorf("The %s contains the line or paragraph separator %U at byte %d (counting from 0); use printable text on one line.", field, r, i)
		case hiddenInLabel(r):
			return fmt.Errorf("The %s contains the invisible format character %U at byte %d (counting from 0); use text without bidi marks, embeddings, overrides or isolates, zero-width spaces, word joiners, soft hyphens or U+FEFF (the zero-width joiner and non-joiner, U+200D and U+200C, are allowed).", field, r, i)
		}
		i += n
	}
	return nil
}

// NotUTF8 is the offset of the first byte of s that is not part of a
// UTF-8 character, or -1 when s is UTF-8 text.
func NotUTF8(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// hiddenInLabel reports whether Label refuses r, an invisible format
// character (Unicode category Cf) that reorders the text shown around it
// or hides between its letters: every one but the zero-width non-joiner
// and joiner and the visible prepended concatenation marks.
func hiddenInLabel(r rune) bool {
	return isFormat(r) && r != '\u200c' && r != '\u200d' && !unicode.Is(unicode.Prepended_Concatenation_Mark, r)
}

// tagFlags are the emoji made of tag characters (RGI subdivision flags):
// a black flag, the tags of gbeng, gbsct or gbwls, and a cancel tag.
var tagFlags = []string{
	"\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", // England
	"\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", // Scotland
	"\U0001F3F4\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F", // Wales
}

// tagFlagLen is the length of the tag flag emoji s starts with, 0 if none.
func tagFlagLen(s string) int {
	for _, f := range tagFlags {
		if strings.HasPrefix(s, f) {
			return len(f)
		}
	}
	return 0
}

// isFormat reports whether r is a format character (Unicode category Cf),
// which Email and APIIdentifier refuse, every one.
func isFormat(r rune) bool { return unicode.Is(unicode.Cf, r) }

// Name reports whether s can be an account's name or a project: NameRule.
func Name(s string) bool { return nameRE.MatchString(s) }

// NameRule says what Name takes, for an error message.
const NameRule = "3-30 lowercase letters, digits and hyphens, starting with a letter"

// AuthMethods checks client authentication methods.
func AuthMethods(methods []string) error {
	for _, m := range methods {
		if !slices.Contains(storage.AuthMethods, m) {
			return fmt.Errorf("Unknown client authentication method %s; the methods are %s.", QuoteClip(m), strings.Join(storage.AuthMethods, ", "))
		}
	}
	return nil
}

// Domain checks an organization's domain, already lower-cased.
func Domain(domain string) error {
	if len(domain) > 253 {
		return fmt.Errorf("The domain name is %d bytes long; a domain name has at most 253.", len(domain))
	}
	if !domainRE.MatchString(domain) {
		return fmt.Errorf("%s is not a domain name such as example.com.", QuoteClip(domain))
	}
	return nil
}

// MaxAccountDomainLength bounds the domain of account emails
// (NAME@PROJECT.<domain>): the longest such email, of a 30-byte name and
// project, must fit the 254 bytes of an email address (Email).
const MaxAccountDomainLength = 254 - len("@.") - 2*30

// AccountDomain checks the domain of account emails, NAME@PROJECT.<domain>:
// a lower-case domain name (Domain) short enough that every account email
// made with it is one Email accepts as it is. It is not lower-cased here:
// emails are unique exactly, and one written in another case would name
// other accounts.
func AccountDomain(domain string) error {
	if n := len(domain); n > MaxAccountDomainLength {
		return fmt.Errorf("The account domain is %d bytes long; at most %d are allowed, so that an account email (a name and project of up to 30 characters each, then the domain) fits the 254 bytes of an email address.", n, MaxAccountDomainLength)
	}
	if domain != strings.ToLower(domain) {
		return fmt.Errorf("The account domain %s has upper-case letters; write it in lower case.", QuoteClip(domain))
	}
	return Domain(domain)
}

// Email checks that e, trimmed, is a bare email address (RFC 5322
// addr-spec, no display name) of at most 254 bytes, and lower-cases it.
// The lower-cased email is at most 254 bytes too (lower-casing can
// lengthen: "Ⱥ" is 2 bytes, "ⱥ" 3), so Email takes what it returns.
// net/mail takes any character above ASCII, the C1 controls among them
// (U+009B is a terminal's CSI); Email refuses them, as Label does, since
// the CLI prints emails raw. It refuses every invisible format character
// (Unicode category Cf: bidi overrides and isolates, zero-width spaces and
// joiners, U+2060, U+FEFF, the soft hyphen U+00AD) too, which no email
// needs and which make one look like another ("adm\u200bin@example.com"),
// and, inside it, the spaces net/mail takes above ASCII (Unicode's white
// space: the no-break space U+00A0, the ideographic space U+3000, U+2000 to
// U+200A, U+202F, U+205F, U+1680, the line and paragraph separators), which
// make "ad min@example.com" one too.
func Email(e string) (string, error) {
	e = strings.TrimSpace(e)
	if len(e) > 254 { // RFC 5321 §4.5.3.1.3
		return "", fmt.Errorf("%s is longer than an email address may be (254 bytes)", QuoteClip(e))
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", fmt.Errorf("%s is not an email address", QuoteClip(e))
	}
	if i := strings.IndexFunc(e, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(e[i:])
		return "", fmt.Errorf("%s is not an email address: it contains the control character %U", QuoteClip(e), r)
	}
	if i := strings.IndexFunc(e, unicode.IsSpace); i >= 0 {
		r, _ := utf8.DecodeRuneInString(e[i:])
		return "", fmt.Errorf("%s is not an email address: it contains the space character %U", QuoteClip(e), r)
	}
	if i := strings.IndexFunc(e, isFormat); i >= 0 {
		r, _ := utf8.DecodeRuneInString(e[i:])
		return "", fmt.Errorf("%s is not an email address: it contains the invisible format character %U", QuoteClip(e), r)
	}
	lower := strings.ToLower(e)
	if len(lower) > 254 {
		return "", fmt.Errorf("%s is longer than an email address may be (254 bytes) once lower-cased (%d bytes)", QuoteClip(e), len(lower))
	}
	return lower, nil
}

// UnderAccountDomain reports whether the organization domain is under
// accountDomain (compared in lower case, without a final dot): a user of
// such an organization could have a service account's email
// (NAME@PROJECT.<account domain>), and a delegated token's sub would then
// name the account, as its self-signed JWTs' sub does, for an API to take
// one for the other (RFC 9700 §4.15).
func UnderAccountDomain(domain, accountDomain string) bool {
	ad := strings.TrimSuffix(strings.ToLower(accountDomain), ".")
	return ad != "" && strings.HasSuffix(strings.ToLower(domain), "."+ad)
}

// NotBeforeSkew is how far ahead of now a certificate's notBefore may be
// for NotYetValid to take it as valid: one made a moment ago, on a clock a
// little ahead of the server's, is.
const NotBeforeSkew = time.Minute

// NotYetValid reports whether a certificate whose validity begins at
// notBefore is not valid yet at now. Its key, once registered, is usable at
// once (for assertions and self_signed_tls_client_auth): the admin API
// refuses to register it, and import warns of it.
func NotYetValid(notBefore, now time.Time) bool { return notBefore.After(now.Add(NotBeforeSkew)) }

// EmailDomain returns the domain of a well-formed email: what follows its
// last @.
func EmailDomain(e string) string { return e[strings.LastIndexByte(e, '@')+1:] }

// QuoteClip quotes s, a value from an import file or a request body, for
// an error message, as Clip cuts it.
func QuoteClip(s string) string { return Clip(s, strconv.Quote) }

// Clip shows s, a value from an import file or a request body, with show
// for an error message; one longer than 64 bytes is cut to the whole
// characters of its first 48, shown with its length: a file of one 50 MB
// line is not echoed back whole. A byte that starts no character (not
// UTF-8) counts as one, as strconv.Quote shows it.
func Clip(s string, show func(string) string) string {
	if len(s) <= 64 {
		return show(s)
	}
	cut := 0
	for {
		_, n := utf8.DecodeRuneInString(s[cut:])
		if cut+n > 48 {
			break
		}
		cut += n
	}
	return fmt.Sprintf("%s… (%d bytes)", show(s[:cut]), len(s))
}
