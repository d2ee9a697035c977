package oauth2

import "strings"

// SecretPrefix starts every client secret Keyward generates, so that
// secret scanners can spot a leaked one; the rest is 256 random bits in
// unpadded base64url.
const SecretPrefix = "kw_"

// IsCredential reports whether s is shaped like a credential: a client
// secret or an opaque access token (its prefix, then at least 256 bits in
// base64url), or a compact JWS with a JSON header (eyJ…), such as a JWT
// access token or an assertion. No name or ID Keyward gives, nor the
// token IDs (jti) of its tokens, is so shaped: one in their place is a
// credential pasted there by mistake, which no log line or audit event
// may hold. Whitespace around s (a secret read from a file with its
// line break, pasted with a space) does not hide it.
func IsCredential(s string) bool {
	s = strings.TrimSpace(s)
	for _, prefix := range []string{OpaqueTokenPrefix, SecretPrefix} {
		if rest, ok := strings.CutPrefix(s, prefix); ok && len(rest) >= 43 && IsBase64URL(rest) {
			return true
		}
	}
	return strings.HasPrefix(s, "eyJ") && IsCompactJWS(s)
}

// ShownPath is a request path for a log line, an audit event or an error
// description: each segment shaped like a credential (IsCredential) — a
// client secret given where its ID goes, say — replaced by
// "(credential)", then cut to n bytes as Truncate cuts it.
func ShownPath(p string, n int) string {
	if !strings.Contains(p, "kw") && !strings.Contains(p, "eyJ") {
		return Truncate(p, n)
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if IsCredential(seg) {
			segs[i] = "(credential)"
		}
	}
	return Truncate(strings.Join(segs, "/"), n)
}
