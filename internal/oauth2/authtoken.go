package oauth2

import "strings"

// AuthToken reads the token that follows an Authorization header's
// scheme and its space (Bearer, DPoP): spaces and tabs alone surround it
// (RFC 7235 §2.1, RFC 9110 §5.6.3), not strings.TrimSpace's Unicode white
// space, and it is one word of printable ASCII (RFC 6750 §2.1's b64token
// is narrower). ok is false for an empty or malformed token.
func AuthToken(s string) (tok string, ok bool) {
	tok = strings.Trim(s, " \t")
	return tok, tok != "" && !strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f })
}
