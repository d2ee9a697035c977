package oauth2

import (
	"net/url"
	"strings"

	"github.com/keyward/keyward/internal/ascii"
)

// NamesAPI reports whether aud, the aud of a service account's JWT, names
// the API identified as id: exactly, or, for an http(s) URL, with one
// trailing slash added to or left out of its path (when neither has a
// query or fragment), and its scheme and host in any case of their ASCII
// letters (RFC 3986 §6.2.2.1). Google's documentation of "authorization without OAuth" has
// aud "https://{host}/", as newer releases of its clients send it
// (google-auth-library-java's ServiceAccountCredentials without scopes,
// google-auth for Python's AuthorizedSession with a default_host), and
// older ones (Debian's) send the URL they call, https://{host}/ for the
// API's root: an API registered as "https://orders.internal" must take
// "https://orders.internal/". Nothing else is loosened: not the port, nor
// the path's case or other slashes, nor a prefix (an aud of
// https://orders.internal/v1 does not name https://orders.internal).
func NamesAPI(aud, id string) bool {
	if aud == id {
		return true
	}
	aKey, ok := apiKey(aud)
	if !ok {
		return false
	}
	iKey, ok := apiKey(id)
	return ok && aKey == iKey
}

// splitHTTPURL splits an http or https URL into its scheme and authority,
// in lower case, and the rest as written (path, query, fragment). ok is
// false for anything else, and for a URL with a user: only the scheme and
// host are case-insensitive (RFC 3986 §6.2.2.1).
func splitHTTPURL(s string) (origin, rest string, ok bool) {
	scheme, after, found := strings.Cut(s, "://")
	if !found {
		return "", "", false
	}
	scheme = ascii.Lower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", false
	}
	i := strings.IndexAny(after, "/?#")
	if i < 0 {
		i = len(after)
	}
	host := after[:i]
	if host == "" || strings.Contains(host, "@") {
		return "", "", false
	}
	if _, err := url.Parse(s); err != nil {
		return "", "", false
	}
	return scheme + "://" + ascii.Lower(host), after[i:], true
}

// IsHTTPURL reports whether s is an http or https URL with a host and no
// user, one whose scheme and host NamesAPI takes in any case.
func IsHTTPURL(s string) bool {
	_, _, ok := splitHTTPURL(s)
	return ok
}

// APIKey is id in the form NamesAPI compares: two API identifiers have the
// same key when a self-signed JWT for either would be taken by the other.
func APIKey(id string) string {
	key, _ := apiKey(id)
	return key
}

// apiKey is APIKey's, and ok whether id is an http(s) URL (splitHTTPURL),
// whose key is then its origin in lower case and the rest without one
// trailing slash when it has no query or fragment.
func apiKey(id string) (key string, ok bool) {
	origin, rest, ok := splitHTTPURL(id)
	if !ok {
		return id, false
	}
	if !strings.ContainsAny(rest, "?#") {
		rest = strings.TrimSuffix(rest, "/")
	}
	return origin + rest, true
}
