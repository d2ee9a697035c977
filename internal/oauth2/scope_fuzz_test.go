package oauth2

import (
	"slices"
	"strings"
	"testing"
)

// referenceScope is RFC 6749 §3.3 read independently of ParseScope:
// scope-tokens of %x21 / %x23-5B / %x5D-7E separated by spaces (any
// number of them, as ParseScope tolerates), with Keyward's one narrowing,
// no commas; duplicates dropped, first one kept.
func referenceScope(s string) ([]string, bool) {
	out := []string{}
	for _, f := range strings.Split(s, " ") {
		if f == "" {
			continue
		}
		for _, c := range []byte(f) {
			if !(c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c <= 0x7e) || c == ',' {
				return nil, false
			}
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, true
}

// FuzzParseScope: the scope parameter of every token request, and the
// scope claim of every JWT-bearer assertion, is the client's. ParseScope
// agrees with the grammar read independently, and a refusal, which
// becomes the error_description of an invalid_scope answer, is RFC 6749
// §5.2-clean and short whatever the client sent.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		"", " ", "a b", "  a   b a ", "orders.read orders.write",
		"https://orders.internal/read orders:write", "a,b", "a\tb", "a\r\nb",
		`a"b`, `a\b`, "é", "a\x00b", "\x7f", "!#[]~", strings.Repeat("a ", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseScope(s)
		want, ok := referenceScope(s)
		if !ok {
			if err == nil {
				t.Fatalf("ParseScope(%q) = %q, want an error", s, got)
			}
			if msg := err.Error(); !descriptionAllowed(msg) || len(msg) > 400 {
				t.Fatalf("ParseScope(%q): error %q is no short §5.2-clean description", s, msg)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseScope(%q): %v, want %q", s, err, want)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("ParseScope(%q) = %q, want %q", s, got, want)
		}
	})
}
