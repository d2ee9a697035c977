package oauth2

import (
	"net/url"
	"strings"
)

// RedactURL is raw with its password, if it has one, replaced by xxxxx,
// for an error to show: as url.URL.Redacted writes it, or, from a URL it
// does not read so (another scheme's opaque part, "admin:pw@host", or
// one it cannot parse, such as a password with a space or a bare "%"),
// with all before the last "@" of what would be its host replaced.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + len("://")
	}
	end := len(raw)
	if i := strings.IndexAny(raw[start:], "/?#"); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndex(raw[start:end], "@"); at >= 0 {
		return raw[:start] + "xxxxx" + raw[start+at:]
	}
	return raw
}
