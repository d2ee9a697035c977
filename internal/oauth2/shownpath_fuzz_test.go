package oauth2

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzShownPath: every request's path, any client's, is shown by
// ShownPath in the request's log line, its audit event and a 404's
// description. Whatever the path, what is shown is the path with each
// segment that holds a credential, escaped or not, replaced by
// "(credential)" and no other segment changed; cut, it is at most n bytes
// of that and "…", never ending in a percent escape cut short (in a path
// whose escapes are valid, as a request's EscapedPath's are).
func FuzzShownPath(f *testing.F) {
	secret := SecretPrefix + strings.Repeat("Zs9", 14) + "x"
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMTEifQ.c2lnbmF0dXJl"
	for _, s := range []struct {
		path string
		n    int
	}{
		{"/v1/service-accounts/job@p.iam.test/secrets/" + secret + "/disable", 1024},
		{"/v1/tokens/" + jwt + "/revoke", 1024},
		{"/v1/service-accounts/x/secrets/kw%5F" + secret[3:] + "/disable", 1024},
		{"/v1/tokens/%6Bwat_" + strings.Repeat("Tk4", 15), 30},
		{"/a/" + secret, 8},
		{"/a/%%2F", 5},
		{"/v1/" + strings.Repeat("%2F", 100), 200},
		{"/x/kw_Zq3bH0aXwLm9Pt2cRs/eyJ", 1024},
		{"/-----BEGIN PRIVATE KEY-----", 10},
		{"", 0},
	} {
		f.Add(s.path, s.n)
	}
	f.Fuzz(func(t *testing.T, p string, n int) {
		if n < 0 || n > 1<<16 {
			return // the callers' bounds are constants from 64 to 1024
		}
		shown := ShownPath(p, n)
		segs := strings.Split(p, "/")
		for i, seg := range segs {
			if credentialIn(seg) {
				segs[i] = "(credential)"
			}
		}
		whole := strings.Join(segs, "/")
		if len(whole) <= n {
			if shown != whole {
				t.Fatalf("ShownPath(%q, %d) = %q, want %q", p, n, shown, whole)
			}
			return
		}
		kept, ok := strings.CutSuffix(shown, "…")
		if !ok || len(kept) > n {
			t.Fatalf("ShownPath(%q, %d) = %q: %d bytes, want at most %d and …", p, n, shown, len(whole), n)
		}
		if utf8.ValidString(whole) && !strings.HasPrefix(whole, kept) {
			t.Fatalf("ShownPath(%q, %d) = %q, not a cut of %q", p, n, shown, whole)
		}
		// (A "%" that starts no escape, as in "%0%", may be left last.)
		if _, err := url.PathUnescape(p); err == nil && strings.Contains(kept[max(len(kept)-2, 0):], "%") {
			t.Fatalf("ShownPath(%q, %d) = %q: an escape cut short", p, n, shown)
		}
	})
}
