package oauth2

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRedactURL: RedactURL shows an issuer or token URL an operator or a
// program gave, in logs and errors. Whatever the URL, the password
// url.Parse reads in it (as net/http would send it) is not in what
// RedactURL shows, as written or escaped; and neither is the password of
// a URL written user:password@host, whatever the password holds but an
// "@", even where url.Parse reads it with a host and no user
// ("https://admin:1234/5678@h" is host admin, port 1234, to url.Parse).
func FuzzRedactURL(f *testing.F) {
	for _, s := range []struct{ scheme, user, pw, rest string }{
		{"https", "admin", "s3cret", "keyward.internal/token"},
		{"https", "admin", "p w0rd", "keyward.internal/token"},
		{"https", "admin", "s3%cret", "keyward.internal"},
		{"https", "admin", "ab/cdef", "keyward.internal/token"},
		{"https", "admin", "ab?cdef", "keyward.internal"},
		{"https", "admin", "ab#cdef", "keyward.internal"},
		{"ftp", "admin", "s3cret", "keyward.internal"},
		{"", "admin", "s3cret", "keyward.internal/token"},
		{"https", "admin", "1234/5678", "keyward.internal/token"},
	} {
		f.Add(s.scheme, s.user, s.pw, s.rest)
	}
	f.Fuzz(func(t *testing.T, scheme, user, pw, rest string) {
		if strings.ContainsAny(user, "@:/?#") || strings.Contains(pw, "@") || strings.Contains(rest, "@") || strings.ContainsAny(scheme, ":/?#@") {
			return
		}
		raw := user + ":" + pw + "@" + rest
		if scheme != "" {
			raw = scheme + "://" + raw
		}
		shown := RedactURL(raw)
		check := func(pw string) {
			if len(pw) < 4 || strings.Count(raw, pw) > 1 || strings.Contains("xxxxx", pw) {
				return
			}
			for _, form := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw)} {
				if strings.Contains(shown, form) {
					t.Fatalf("RedactURL(%q) = %q, which shows the password %q", raw, shown, pw)
				}
			}
		}
		u, err := url.Parse(raw)
		if err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				check(p)
			}
		}
		// Every password is hidden, also one url.Parse reads as a port
		// and a path (admin:1234 the host and port, /5678@… the path):
		// an HTTP client sends none, but its writer meant one.
		check(pw)
	})
}
