package oauth2

import (
	"net/url"
	"strings"
)

// TokenPath is the token endpoint's path under the issuer.
const TokenPath = "/token"

// TokenEndpoint is the token endpoint URL of the server at issuer.
func TokenEndpoint(issuer string) string { return issuer + TokenPath }

// IsAssertionAudience reports whether aud names the server at issuer the
// way the JWTs service accounts sign for its token endpoint do (RFC 7523
// §3): the issuer or the token endpoint URL, the aud values the JWT-bearer
// grant and private_key_jwt accept. They are compared as URLs, more
// loosely than those checks compare: scheme and host in any case (RFC
// 3986 §6.2.2.1), the default port or none (§6.2.3), with or without
// trailing slashes. An API with such an identifier would
// receive service accounts' self-signed JWTs that it could exchange at the
// token endpoint for access tokens of its callers.
func IsAssertionAudience(aud, issuer string) bool {
	a, ok := normalURL(aud)
	if !ok {
		return false
	}
	for _, u := range []string{issuer, TokenEndpoint(strings.TrimSuffix(issuer, "/"))} {
		if n, ok := normalURL(u); ok && n == a {
			return true
		}
	}
	return false
}

// normalURL is s in a normal form for comparison: scheme and host in lower
// case, the scheme's default port left out, trailing slashes trimmed from
// the path. ok is false for a string that is no absolute URI.
func normalURL(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if u.Opaque != "" { // urn:…: no host or path to normalize
		return scheme + ":" + u.Opaque, true
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(scheme == "https" && p == "443") && !(scheme == "http" && p == "80") {
		host += ":" + p
	}
	if u.User != nil {
		host = u.User.String() + "@" + host
	}
	n := scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
	if u.RawQuery != "" || u.ForceQuery {
		n += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		n += "#" + u.EscapedFragment()
	}
	return n, true
}
