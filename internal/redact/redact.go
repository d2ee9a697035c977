// Package redact hides the passwords in a database connection string
// (--db), a URL or key=value string, for logs, hints and refusals. It is
// a package of its own, not part of cmd/keyward, so that its fuzz test
// links neither the server nor its stores.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// dsnPassword finds password settings in a key=value connection string:
// a value quoted or not, in which a backslash escapes any character, a
// space or a line break too, as pgx and libpq read it. A quote never
// closed runs to the end of the string.
var dsnPassword = regexp.MustCompile(`(?i)(\w*password\s*=\s*)('(?:[^'\\]|\\[\s\S])*(?:'|$)|(?:[^\s\\]|\\[\s\S])+)`)

// urlScheme matches a URL scheme (RFC 3986 §3.1).
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// Placeholder stands for a hidden password, as it does in
// url.URL.Redacted.
const Placeholder = "xxxxx"

// DSN hides the passwords in a database URL (user info and query
// parameters such as password= or sslpassword=) or key=value string. A
// URL is a string that starts with a scheme and "://", as the driver
// reads one: a key=value string with a "://" further on
// (application_name=https://…) is one still, and its password as hidden.
func DSN(dsn string) string {
	if scheme, _, ok := strings.Cut(dsn, "://"); !ok || !urlScheme.MatchString(scheme) {
		return dsnPassword.ReplaceAllString(dsn, "${1}"+Placeholder)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a database URL that does not parse)"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// A pair that does not parse ('password=a;b', a bad escape) is
		// not looked at below but would be printed as written.
		u.RawQuery = redactQuery(u.RawQuery)
	}
	// A fragment, which no driver reads, is hidden whole.
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = Placeholder, ""
	}
	changed := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, Placeholder)
			changed = true
		}
	}
	if changed && err == nil {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// redactQuery hides the passwords in raw, a URL query of which a pair
// does not parse: each pair that does not (a semicolon or a bad escape,
// which url.ParseQuery refuses, and pgx ignores) is replaced by xxxxx as
// a whole, and one that does keeps its key, with its value as xxxxx if
// the key names a password. The others (sslmode, say) stay as written,
// so that a command shown with the URL still has them.
func redactQuery(raw string) string {
	pairs := strings.Split(raw, "&")
	for i, pair := range pairs {
		k, v, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(k)
		_, verr := url.QueryUnescape(v)
		switch {
		case strings.Contains(pair, ";") || kerr != nil || verr != nil:
			pairs[i] = Placeholder
		case strings.Contains(strings.ToLower(key), "password"):
			pairs[i] = k + "=" + Placeholder
		}
	}
	return strings.Join(pairs, "&")
}
