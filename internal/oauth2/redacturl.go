package oauth2

import (
	"net/url"
	"strings"
)

// RedactURL is raw with its password, if it has one, replaced by xxxxx,
// for an error to show: as url.URL.Redacted writes it, or, from a URL it
// does not read so (another scheme's opaque part, "admin:pw@host", or
// one it cannot parse, such as a password with a space, a bare "%", or a
// "/", "?" or "#" that ends its authority early, even where url.Parse
// reads the rest as a port and a path), with all before the last "@"
// replaced: of its authority for a URL url.Parse reads with one and no
// ":" in it, else of all after its scheme.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		return u.Redacted()
	}
	start := 0
	i := strings.Index(raw, "://")
	if i >= 0 {
		start = i + len("://")
	}
	end := len(raw)
	if j := strings.IndexAny(raw[start:], "/?#"); j >= 0 && err == nil && i >= 0 && !strings.Contains(raw[start:start+j], ":") {
		// Parsed with an authority, and no user: an "@" after it is
		// in the path, query or fragment. Not so after an authority
		// with a ":": "admin:1234/5678@h" is read as the host admin,
		// port 1234 and the path /5678@h, and its writer meant the
		// user admin with the password 1234/5678 (an "@" after a port
		// is hidden too, as it may be).
		end = start + j
	}
	if at := strings.LastIndex(raw[start:end], "@"); at >= 0 {
		return raw[:start] + "xxxxx" + raw[start+at:]
	}
	return raw
}
