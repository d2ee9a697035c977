package validate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/storage"
)

// TestAccountDomain: the domain of account emails is a lower-case domain
// name short enough that the longest account email (a 30-byte name and
// project) is one Email accepts unchanged.
func TestAccountDomain(t *testing.T) {
	label := strings.Repeat("a", 63)
	longest := label + "." + label + "." + strings.Repeat("b", 61) + ".io" // 192 bytes
	for _, tt := range []struct {
		name, domain, want string // want: part of the error; "" for none
	}{
		{"default", "iam.keyward.internal", ""},
		{"two labels", "iam.test", ""},
		{"longest", longest, ""},
		{"one byte too long", "x" + longest, "is 193 bytes long; at most 192"},
		{"longer than a domain name", strings.Repeat(label+".", 4) + "com", "is 259 bytes long"},
		{"empty", "", `"" is not a domain name`},
		{"one label", "internal", `"internal" is not a domain name`},
		{"trailing dot", "iam.example.com.", `"iam.example.com." is not a domain name`},
		{"empty label", "iam..x", `"iam..x" is not a domain name`},
		{"leading dot", ".iam.test", `".iam.test" is not a domain name`},
		{"upper case", "IAM.example.com", `"IAM.example.com" has upper-case letters`},
		{"upper case non-ASCII", "iam.exÄmple.com", "has upper-case letters"},
		{"non-ASCII", "iam.exämple.com", `"iam.exämple.com" is not a domain name`},
		{"space", "iam example.com", "is not a domain name"},
		{"control character", "iam.example.com\n", `"iam.example.com\n" is not a domain name`},
		{"at sign", "a@iam.test", "is not a domain name"},
	} {
		err := AccountDomain(tt.domain)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: AccountDomain(%q) = %v, want nil", tt.name, tt.domain, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: AccountDomain(%q) = %v, want an error saying %q", tt.name, tt.domain, err, tt.want)
		}
	}
}

// The longest account email under the longest account domain is an email
// address Email takes as it is.
func TestAccountDomainLongestEmail(t *testing.T) {
	domain := strings.Repeat("a", 63) + "." + strings.Repeat("a", 63) + "." + strings.Repeat("b", 61) + ".io"
	name := "a" + strings.Repeat("0", 29)
	if len(domain) != MaxAccountDomainLength || !Name(name) {
		t.Fatalf("fixture: domain %d bytes, want %d; name %q valid %v", len(domain), MaxAccountDomainLength, name, Name(name))
	}
	email := name + "@" + name + "." + domain
	if got, err := Email(email); err != nil || got != email {
		t.Fatalf("Email(%d bytes) = %q, %v; want it unchanged", len(email), got, err)
	}
	if _, err := Email(name + "@" + name + ".x" + domain); err == nil {
		t.Fatalf("Email took a %d-byte address", len(email)+1)
	}
}

// check reports, for a table case named name, err against want: nil for
// "", else an error whose text holds want.
func check(t *testing.T, name string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v, want nil", name, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: %v, want an error saying %q", name, err, want)
	}
}

func TestAPIName(t *testing.T) {
	const rule = "must be 2-63 lowercase letters, digits and hyphens, starting with a letter."
	for _, tt := range []struct{ name, in, want string }{
		{"shortest", "ab", ""},
		{"longest", "a" + strings.Repeat("b", 62), ""},
		{"digits and hyphens", "orders-v2", ""},
		{"too long", "a" + strings.Repeat("b", 63), rule},
		{"one letter", "a", `The API name "a" ` + rule},
		{"empty", "", `The API name "" ` + rule},
		{"leading digit", "2fa", rule},
		{"trailing hyphen", "orders-", rule},
		{"upper case", "Orders", rule},
		{"dot", "orders.v2", rule},
		{"non-ASCII", "ordérs", rule},
		{"control character", "orders\x1b", `"orders\x1b"`},
	} {
		check(t, tt.name, APIName(tt.in), tt.want)
	}
}

func TestAPIIdentifier(t *testing.T) {
	const rule = "must be an absolute URI without a fragment"
	longest := "https://x/" + strings.Repeat("a", MaxIdentifierLength-len("https://x/"))
	for _, tt := range []struct{ name, in, want string }{
		{"https", "https://orders.internal", ""},
		{"path and query", "https://api.example.com/v1?x=1", ""},
		{"urn", "urn:example:orders", ""},
		{"longest", longest, ""},
		{"too long", longest + "a", "is 513 bytes long; at most 512"},
		{"empty", "", `The API identifier "" ` + rule},
		{"relative", "orders", rule},
		{"scheme-relative", "//orders.internal", rule},
		{"fragment", "https://orders.internal#x", rule},
		{"empty fragment", "https://orders.internal#", `The API identifier "https://orders.internal#" ` + rule},
		{"empty fragment of a urn", "urn:x#", rule},
		{"space", "https://orders.internal/a b", rule},
		{"tab", "https://orders.internal/\t", rule},
		{"line break", "https://orders.internal\n", rule},
		{"carriage return", "https://orders.internal\r", `"https://orders.internal\r"`},
		{"C1 CSI in the path", "https://orders.internal/\u009b2J", `"https://orders.internal/\u009b2J" ` + rule},
		{"C1 NEL in a urn", "urn:example:\u0085", rule},
		{"non-ASCII", "https://bestellungen.internal/grüße", ""},
		{"zero-width space in the host", "https://ord\u200bers.internal", `The API identifier "https://ord\u200bers.internal" contains the invisible format character U+200B; an API identifier has none.`},
		{"right-to-left override in the path", "https://orders.internal/\u202etxt.exe", "format character U+202E"},
		{"zero-width joiner", "urn:example:a\u200db", "format character U+200D"},
		{"soft hyphen", "https://orders.internal/or\u00adders", "format character U+00AD"},
		{"BOM in a urn", "urn:example:\ufefforders", "format character U+FEFF"},
		{"no-break space in the path", "https://orders.internal/a\u00a0b", `The API identifier "https://orders.internal/a\u00a0b" contains the space character U+00A0; an API identifier has none.`},
		{"ideographic space in the host", "https://orders\u3000internal", "space character U+3000"},
		{"thin space in a urn", "urn:a\u2009b", "space character U+2009"},
		{"line separator", "https://orders.internal/\u2028x", "space character U+2028"},
		{"paragraph separator", "urn:example:\u2029", "space character U+2029"},
		{"Latin-1 byte in the path", "https://orders.internal/gr\xfc\xdfe", `The API identifier "https://orders.internal/gr\xfc\xdfe" is not UTF-8 text: the byte 0xFC at byte 26 (counting from 0) is not part of a character; use UTF-8 text.`},
		{"cut character in a urn", "urn:example:\xe2\x82", "the byte 0xE2 at byte 12"},
		{"long and bad is clipped", "orders " + strings.Repeat("a", 600), "… (607 bytes)"},
	} {
		check(t, tt.name, APIIdentifier(tt.in), tt.want)
	}
}

func TestAPIScopes(t *testing.T) {
	many := make([]string, MaxAPIScopes+1)
	for i := range many {
		many[i] = fmt.Sprintf("s%d", i)
	}
	for _, tt := range []struct {
		name string
		in   []string
		want string
	}{
		{"one", []string{"orders.read"}, ""},
		{"most", many[:MaxAPIScopes], ""},
		{"none", nil, "An API needs at least one scope."},
		{"empty list", []string{}, "at least one scope"},
		{"too many", many, "An API has at most 1000 scopes; this lists 1001."},
		{"twice", []string{"a", "b", "a"}, `The scope "a" is listed twice.`},
		{"empty scope", []string{""}, `The scope "" is not a valid scope name`},
		{"space", []string{"a b"}, `The scope "a b" is not a valid scope name`},
		{"too long", []string{strings.Repeat("a", 201)}, "is not a valid scope name"},
	} {
		check(t, tt.name, APIScopes(tt.in), tt.want)
	}
}

func TestScopeName(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"orders.read", true},
		{"https://api.example.com/orders:read", true},
		{"!#$%&'()*+-./:;<=>?@[]^_`{|}~", true},
		{strings.Repeat("a", 200), true},
		{strings.Repeat("a", 201), false},
		{"", false},
		{"a b", false},
		{`a"b`, false},
		{`a\b`, false},
		{"a,b", false},
		{"a\x7f", false},
		{"a\tb", false},
		{"ordérs", false},
	} {
		if got := ScopeName(tt.in); got != tt.want {
			t.Errorf("ScopeName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBlockedScopes(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []string
		want string
	}{
		{"none", nil, ""},
		{"twice is fine", []string{"a", "a"}, ""},
		{"space", []string{"a", "a b"}, `The blocked scope "a b" is not a valid scope name`},
		{"empty", []string{""}, `The blocked scope ""`},
		{"says to list each", []string{"a,b"}, "list each scope on its own."},
	} {
		check(t, tt.name, BlockedScopes(tt.in), tt.want)
	}
}

func TestTokenFormat(t *testing.T) {
	for _, tt := range []struct {
		in         string
		allowEmpty bool
		want       string
	}{
		{"jwt", false, ""},
		{"opaque", true, ""},
		{"", true, ""},
		{"", false, `The token format "" must be jwt or opaque.`},
		{"JWT", true, `The token format "JWT" must be jwt or opaque, or empty (the default).`},
		{"jwt ", true, `"jwt "`},
	} {
		check(t, fmt.Sprintf("TokenFormat(%q, %v)", tt.in, tt.allowEmpty), TokenFormat(tt.in, tt.allowEmpty), tt.want)
	}
}

func TestLabel(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"at most, in characters", strings.Repeat("é", 20), ""},
		{"one too many", strings.Repeat("é", 21), "The description is 21 characters long; at most 20 are allowed."},
		{"printable unicode", "Rechnungsläufe 🧾", ""},
		{"spaces", "a b  c", ""},
		{"line break", "a\nb", "The description contains the control character U+000A at byte 1 (counting from 0); use printable text on one line."},
		{"tab", "\tb", "U+0009 at byte 0"},
		{"NUL", "ab\x00", "U+0000 at byte 2"},
		{"DEL", "a\x7f", "U+007F at byte 1"},
		{"C1 CSI after a 2-byte character", "é\u009b", "U+009B at byte 2"},
		{"escape", "\x1b[2J", "U+001B at byte 0"},
		{"right-to-left override", "invoice \u202efdp.exe", "The description contains the invisible format character U+202E at byte 8 (counting from 0); use text without bidi marks, embeddings, overrides or isolates"},
		{"left-to-right embedding", "\u202aab", "format character U+202A at byte 0"},
		{"pop directional formatting", "ab\u202c", "format character U+202C at byte 2"},
		{"right-to-left isolate", "a\u2067b\u2069", "format character U+2067 at byte 1"},
		{"pop directional isolate", "ab\u2069", "format character U+2069 at byte 2"},
		{"zero-width space", "adm\u200bin", "format character U+200B at byte 3"},
		{"word joiner", "a\u2060b", "format character U+2060 at byte 1"},
		{"BOM", "\ufeffab", "format character U+FEFF at byte 0"},
		{"zero-width joiner in an emoji sequence", "team 👩\u200d💻", ""},
		{"zero-width non-joiner in Persian", "می\u200cخواهم", ""},
		{"left-to-right mark", "a\u200eb", "format character U+200E at byte 1"},
		{"right-to-left mark", "ab\u200f", "format character U+200F at byte 2"},
		{"Arabic letter mark", "\u061cab", "format character U+061C at byte 0"},
		{"soft hyphen", "ad\u00admin", "format character U+00AD at byte 2"},
		{"line separator", "a\u2028b", "The description contains the line or paragraph separator U+2028 at byte 1 (counting from 0); use printable text on one line."},
		{"paragraph separator", "a\u2029b", "separator U+2029 at byte 1"},
		{"left-to-right override", "a\u202db", "format character U+202D at byte 1"},
		{"first strong isolate", "a\u2068b", "format character U+2068 at byte 1"},
		{"invisible times", "a\u2062b", "format character U+2062 at byte 1"},
		{"inhibit symmetric swapping", "a\u206ab", "format character U+206A at byte 1"},
		{"Mongolian vowel separator", "a\u180eb", "format character U+180E at byte 1"},
		{"interlinear annotation anchor", "a\ufff9b", "format character U+FFF9 at byte 1"},
		{"tag character", "a\U000e0041b", "format character U+E0041 at byte 1"},
		{"tags after a black flag, not a flag emoji", "\U0001F3F4\U000e0061\U000e007f", "format character U+E0061 at byte 4"},
		{"flag of England", "UK \U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", ""},
		{"flags of Scotland and Wales", "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F\U0001F3F4\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F", ""},
		{"a cancel tag after a flag emoji", "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F\U000E007F", "format character U+E007F at byte 28"},
		{"Arabic number sign, visible", "\u0600\u0661\u0662", ""},
		{"no-break space", "a\u00a0b", ""},
		{"not UTF-8", "caf\xe9", "The description is not UTF-8 text: the byte 0xE9 at byte 3 (counting from 0) is not part of a character; use UTF-8 text."},
		{"cut short", "ab\xe2\x82", "the byte 0xE2 at byte 2"},
		{"a surrogate", "\xed\xa0\x80", "the byte 0xED at byte 0"},
		{"the replacement character, UTF-8", "a\ufffdb", ""},
	} {
		check(t, tt.name, Label("description", tt.in, 20), tt.want)
	}
}

func TestName(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"abc", true},
		{"a" + strings.Repeat("b", 29), true},
		{"nightly-report", true},
		{"a1-2", true},
		{"ab", false},
		{"a" + strings.Repeat("b", 30), false},
		{"", false},
		{"1ab", false},
		{"ab-", false},
		{"Abc", false},
		{"a_b", false},
		{"a.b", false},
		{"abc\n", false},
		{"äbc", false},
	} {
		if got := Name(tt.in); got != tt.want {
			t.Errorf("Name(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestAuthMethods(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []string
		want string
	}{
		{"none", nil, ""},
		{"all", storage.AuthMethods, ""},
		{"unknown", []string{"client_secret_basic", "password"}, `Unknown client authentication method "password"; the methods are client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth, self_signed_tls_client_auth.`},
		{"case", []string{"Client_Secret_Basic"}, `"Client_Secret_Basic"`},
		{"empty", []string{""}, `method ""`},
	} {
		check(t, tt.name, AuthMethods(tt.in), tt.want)
	}
}

func TestDomain(t *testing.T) {
	label := strings.Repeat("a", 63)
	longest := strings.Repeat(label+".", 3) + strings.Repeat("b", 58) + ".io" // 253 bytes
	for _, tt := range []struct{ name, in, want string }{
		{"two labels", "example.com", ""},
		{"many labels", "a.b.c.example.co", ""},
		{"digits and hyphens", "x-1.9.example.com", ""},
		{"63-byte label", label + ".com", ""},
		{"longest", longest, ""},
		{"too long", "a" + longest, "The domain name is 254 bytes long; a domain name has at most 253."},
		{"64-byte label", label + "a.com", "is not a domain name such as example.com."},
		{"empty", "", `"" is not a domain name such as example.com.`},
		{"one label", "localhost", `"localhost" is not a domain name`},
		{"trailing dot", "example.com.", `"example.com." is not a domain name`},
		{"leading dot", ".example.com", "is not a domain name"},
		{"empty label", "a..com", "is not a domain name"},
		{"leading hyphen", "-a.com", "is not a domain name"},
		{"trailing hyphen", "a-.com", "is not a domain name"},
		{"one-letter top level", "example.c", "is not a domain name"},
		{"punycode top level", "example.xn--p1ai", ""},
		{"punycode top level, hyphen at the end", "example.xn--p1ai-", "is not a domain name"},
		{"hyphens in a letters-only top level", "example.co-m", "is not a domain name"},
		{"numeric top level", "1.2.3.4", "is not a domain name"},
		{"underscore", "a_b.com", "is not a domain name"},
		{"upper case", "Example.com", "is not a domain name"},
		{"non-ASCII", "exämple.com", `"exämple.com" is not a domain name`},
		{"control character", "example.com\x1b", `"example.com\x1b" is not a domain name`},
		{"long and bad is clipped", strings.Repeat("_", 100), "… (100 bytes) is not a domain name"},
	} {
		check(t, tt.name, Domain(tt.in), tt.want)
	}
}

func TestEmail(t *testing.T) {
	longest := strings.Repeat("a", 61) + "@" + strings.Repeat(strings.Repeat("b", 62)+".", 3) + "com" // 254 bytes
	for _, tt := range []struct{ name, in, want, err string }{
		{"plain", "job@proj.iam.test", "job@proj.iam.test", ""},
		{"lower-cased", "Ada@Example.COM", "ada@example.com", ""},
		{"trimmed", " \tada@example.com\n", "ada@example.com", ""},
		{"plus and dots", "a.b+c@example.com", "a.b+c@example.com", ""},
		{"no dot in the domain", "a@b", "a@b", ""},
		{"unicode local part", "jürgen@example.com", "jürgen@example.com", ""},
		{"longest", longest, longest, ""},
		{"too long", "a" + longest, "", "… (255 bytes) is longer than an email address may be (254 bytes)"},
		{"too long after trimming", " " + longest + " ", longest, ""},
		{"empty", "", "", `"" is not an email address`},
		{"no @", "example.com", "", `"example.com" is not an email address`},
		{"two @", "a@b@example.com", "", "is not an email address"},
		{"display name", "Ada <ada@example.com>", "", `"Ada <ada@example.com>" is not an email address`},
		{"angle brackets", "<ada@example.com>", "", "is not an email address"},
		{"trailing dot", "admin@keyward.iam.example.com.", "", `"admin@keyward.iam.example.com." is not an email address`},
		{"empty label", "a@iam..x", "", "is not an email address"},
		{"quoted local part", `"a b"@example.com`, "", "is not an email address"},
		{"space inside", "a b@example.com", "", "is not an email address"},
		{"NUL", "a\x00@example.com", "", `"a\x00@example.com" is not an email address`},
		{"invalid UTF-8", "\xff@example.com", "", "is not an email address"},
		{"C1 CSI in the local part", "a\u009b2Jb@example.com", "", `"a\u009b2Jb@example.com" is not an email address: it contains the control character U+009B`},
		{"C1 NEL in the domain", "a@exam\u0085ple.com", "", "control character U+0085"},
		{"zero-width space in the local part", "adm\u200bin@example.com", "", `"adm\u200bin@example.com" is not an email address: it contains the invisible format character U+200B`},
		{"zero-width joiner", "a\u200db@example.com", "", "format character U+200D"},
		{"zero-width non-joiner", "a\u200cb@example.com", "", "format character U+200C"},
		{"right-to-left override in the domain", "a@\u202emoc.elpmaxe", "", "format character U+202E"},
		{"first strong isolate", "a\u2068b@example.com", "", "format character U+2068"},
		{"word joiner", "a\u2060b@example.com", "", "format character U+2060"},
		{"BOM", "\ufeffa@example.com", "", "format character U+FEFF"},
		{"soft hyphen", "ad\u00admin@example.com", "", "format character U+00AD"},
		{"tag character", "a\U000e0041@example.com", "", "format character U+E0041"},
		{"no-break space in the local part", "ad\u00a0min@example.com", "", `"ad\u00a0min@example.com" is not an email address: it contains the space character U+00A0`},
		{"ideographic space", "ad\u3000min@example.com", "", "space character U+3000"},
		{"no-break space in the domain", "a@exa\u00a0mple.com", "", "space character U+00A0"},
		{"thin space", "a\u2009b@example.com", "", "space character U+2009"},
		{"en quad", "a\u2000b@example.com", "", "space character U+2000"},
		{"narrow no-break space", "a\u202fb@example.com", "", "space character U+202F"},
		{"medium mathematical space", "a\u205fb@example.com", "", "space character U+205F"},
		{"ogham space mark", "a\u1680b@example.com", "", "space character U+1680"},
		{"line separator", "a\u2028b@example.com", "", "space character U+2028"},
		{"paragraph separator", "a\u2029b@example.com", "", "space character U+2029"},
		{"no-break spaces around, trimmed", "\u00a0ada@example.com\u3000", "ada@example.com", ""},
	} {
		got, err := Email(tt.in)
		check(t, tt.name, err, tt.err)
		if got != tt.want {
			t.Errorf("%s: Email(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

// Email's answer is an email Email takes as it is: what the admin API
// stores is found again by it (a page token of users, a user in a path).
// Lower-casing can lengthen: "Ⱥ" (2 bytes) is "ⱥ" (3 bytes).
func TestEmailIdempotent(t *testing.T) {
	grows := strings.Repeat("Ⱥ", 10) + "@example.com"
	for _, in := range []string{
		strings.Repeat("a", 254-len(grows)) + grows, // 254 bytes, 264 lower-cased
		strings.Repeat("a", 244-len(grows)) + grows, // 244 bytes, 254 lower-cased
		strings.Repeat("K", 240) + "@example.com",   // KELVIN SIGN: 3 bytes, lower-cased 1
		"ADA@EXAMPLE.COM",
	} {
		got, err := Email(in)
		if err != nil {
			continue
		}
		if again, err := Email(got); err != nil || again != got {
			t.Errorf("Email(%d bytes) = %d bytes, which Email makes %q, %v", len(in), len(got), again, err)
		}
	}
	if _, err := Email(strings.Repeat("a", 244-len(grows)) + grows); err != nil {
		t.Errorf("refused an email of 254 bytes lower-cased: %v", err)
	}
	_, err := Email(strings.Repeat("a", 254-len(grows)) + grows)
	check(t, "254 bytes, 264 lower-cased", err, "… (254 bytes) is longer than an email address may be (254 bytes) once lower-cased (264 bytes)")
}

func TestEmailDomain(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"a@example.com", "example.com"},
		{"a@b@example.com", "example.com"},
		{"a@", ""},
		{"example.com", "example.com"},
	} {
		if got := EmailDomain(tt.in); got != tt.want {
			t.Errorf("EmailDomain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestQuoteClip(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"empty", "", `""`},
		{"64 bytes whole", strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `"`},
		{"65 bytes cut to 48", strings.Repeat("a", 65), `"` + strings.Repeat("a", 48) + `"… (65 bytes)`},
		{"control characters escaped", "a\x1b\n\u009b", `"a\x1b\n\u009b"`},
		{"invalid UTF-8 escaped", "a\xff", `"a\xff"`},
		// "é" is 2 bytes: the 24th ends at byte 48.
		{"2-byte characters, cut on a boundary", strings.Repeat("é", 40), `"` + strings.Repeat("é", 24) + `"… (80 bytes)`},
		// 3-byte "€" from byte 1: the 16th ends at byte 49, so 15 fit.
		{"3-byte characters, cut before a split one", "a" + strings.Repeat("€", 30), `"a` + strings.Repeat("€", 15) + `"… (91 bytes)`},
		// 4-byte "𝄞": 12 end at byte 48.
		{"4-byte characters", strings.Repeat("𝄞", 20), `"` + strings.Repeat("𝄞", 12) + `"… (80 bytes)`},
		{"4-byte character across the cut", strings.Repeat("a", 46) + strings.Repeat("𝄞", 10), `"` + strings.Repeat("a", 46) + `"… (86 bytes)`},
		// A byte that starts no character is one (Go's U+FFFD): the cut
		// keeps the first 48, not none of them.
		{"invalid UTF-8", strings.Repeat("\x80", 100), `"` + strings.Repeat(`\x80`, 48) + `"… (100 bytes)`},
		{"invalid UTF-8 after a character", "a" + strings.Repeat("\xbf", 99), `"a` + strings.Repeat(`\xbf`, 47) + `"… (100 bytes)`},
		{"truncated sequence before the cut", strings.Repeat("a", 40) + "\xe2\x82" + strings.Repeat("b", 30), `"` + strings.Repeat("a", 40) + `\xe2\x82bbbbbb"… (72 bytes)`},
	} {
		if got := QuoteClip(tt.in); got != tt.want {
			t.Errorf("%s: QuoteClip = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	upper := strings.ToUpper
	for _, tt := range []struct{ in, want string }{
		{"abc", "ABC"},
		{strings.Repeat("a", 64), strings.Repeat("A", 64)},
		{strings.Repeat("a", 100), strings.Repeat("A", 48) + "… (100 bytes)"},
	} {
		if got := Clip(tt.in, upper); got != tt.want {
			t.Errorf("Clip(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNotUTF8(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     int
	}{
		{"empty", "", -1},
		{"ASCII", "orders", -1},
		{"multi-byte", "grüße €", -1},
		{"U+FFFD as text", "a\ufffdb", -1},
		{"Latin-1", "caf\xe9", 3},
		{"first of two", "a\xffb\xfe", 1},
		{"cut character", "x\xe2\x82", 1},
		{"surrogate", "\xed\xa0\x80", 0},
	} {
		if got := NotUTF8(tt.in); got != tt.want {
			t.Errorf("%s: NotUTF8(%q) = %d, want %d", tt.name, tt.in, got, tt.want)
		}
	}
}
