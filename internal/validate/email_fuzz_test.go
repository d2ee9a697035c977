package validate

import (
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzEmail: Email reads the emails of users files, the admin API's user
// and delegation bodies and the CLI's arguments. Whatever it is given, an
// email it takes is one net/mail reads as a bare address, lower-case, at
// most 254 bytes, UTF-8, without controls, spaces or invisible format
// characters, and one Email takes again unchanged (it is stored, then
// looked up by); an email it refuses is quoted in the error clipped, on
// one line, whatever its length.
func FuzzEmail(f *testing.F) {
	grows := strings.Repeat("Ⱥ", 10) + "@example.com"
	for _, s := range []string{
		"job@proj.iam.test", "Ada@Example.COM", " \tada@example.com\n", "a@b",
		"jürgen@example.com", "Ada <ada@example.com>", `"a b"@example.com`,
		"a\x00@example.com", "\xff@example.com", "a\u009b2Jb@example.com",
		"adm\u200bin@example.com", "ad\u00a0min@example.com", "\u00a0ada@example.com\u3000",
		strings.Repeat("a", 244-len(grows)) + grows, strings.Repeat("K", 240) + "@example.com",
		"a@[127.0.0.1]", "\ufffd@example.com", "a@example.com (comment)", "=?utf-8?q?a?=@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Email(s)
		if err != nil {
			if msg := err.Error(); len(msg) > 300 || strings.ContainsAny(msg, "\r\n") || !utf8.ValidString(msg) {
				t.Fatalf("Email(%q): error %q is not one clipped line", s, msg)
			}
			if got != "" {
				t.Fatalf("Email(%q) = %q with error %v", s, got, err)
			}
			return
		}
		if len(got) > 254 || got != strings.ToLower(got) {
			t.Fatalf("Email(%q) = %q: longer than 254 bytes or not lower-case", s, got)
		}
		if a, err := mail.ParseAddress(got); err != nil || a.Address != got || a.Name != "" {
			t.Fatalf("Email(%q) = %q, which net/mail reads as %v, %v", s, got, a, err)
		}
		if i := strings.IndexFunc(got, func(r rune) bool {
			return unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r)
		}); i >= 0 {
			t.Fatalf("Email(%q) = %q, with %q at %d", s, got, got[i:], i)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Email(%q) = %q, not UTF-8", s, got)
		}
		if again, err := Email(got); err != nil || again != got {
			t.Fatalf("Email(%q) = %q, which Email makes %q, %v", s, got, again, err)
		}
	})
}
