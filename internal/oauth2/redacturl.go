package oauth2

import (
	"net/url"
	"strings"
)

// RedactURL is raw with its password, if it has one, replaced by xxxxx,
// for an error to show: as url.URL.Redacted writes it, or, from a URL it
// does not read so (another scheme's opaque part, "admin:pw@host", or
// one it cannot parse, such as a password with a space, a bare "%", or a
// "/", "?" or "#" that ends its authority early), with all before the
// last "@" replaced: of its authority for a URL url.Parse reads with one,
// else of all after its scheme.
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
	if j := strings.IndexAny(raw[start:], "/?#"); j >= 0 && err == nil && i >= 0 {
		// Parsed with an authority, and no user: an "@" after it is
		// in the path, query or fragment.
		end = start + j
	}
	if at := strings.LastIndex(raw[start:end], "@"); at >= 0 {
		return raw[:start] + "xxxxx" + raw[start+at:]
	}
	return raw
}
