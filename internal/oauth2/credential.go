package oauth2

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// SecretPrefix starts every client secret Keyward generates, so that
// secret scanners can spot a leaked one; the rest is 256 random bits in
// unpadded base64url.
const SecretPrefix = "kw_"

// IsCredential reports whether s holds something shaped like a
// credential: a client secret or an opaque access token (its prefix, in
// any case, then at least 256 bits in base64url), a compact JWS with a
// JSON header (eyJ…, or ew… when the header starts with a line break),
// such as a JWT access token, an assertion or a DPoP proof, or a PEM
// private key. No name or ID Keyward gives, nor the token IDs (jti) of
// its tokens, holds one: one in their place is a credential pasted there
// by mistake, which no log line or audit event may hold. What is around
// it (a line break, quotes, a label such as "Bearer " or
// "client_secret=") does not hide it.
func IsCredential(s string) bool {
	if strings.Contains(s, "PRIVATE KEY") {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 'k', 'K':
			for _, prefix := range []string{OpaqueTokenPrefix, SecretPrefix} {
				if len(s)-i >= len(prefix) && strings.EqualFold(s[i:i+len(prefix)], prefix) &&
					startsBase64URL(s[i+len(prefix):], 43) {
					return true
				}
			}
		case 'e':
			// A JWS starts a run of its characters: not inside one.
			if (i == 0 || !isJWSByte(s[i-1])) && i+1 < len(s) && (s[i+1] == 'y' || s[i+1] == 'w') {
				n := i
				for n < len(s) && isJWSByte(s[n]) {
					n++
				}
				if IsCompactJWS(s[i:n]) && jsonHeader(s[i:n]) {
					return true
				}
			}
		}
	}
	return false
}

// startsBase64URL reports whether s starts with n bytes of the base64url
// alphabet. It reads no more of s than those.
func startsBase64URL(s string, n int) bool {
	if len(s) < n {
		return false
	}
	for i := 0; i < n; i++ {
		if !isBase64URLByte(s[i]) {
			return false
		}
	}
	return true
}

// jsonHeader reports whether the first segment of the compact JWS jws
// decodes to a JSON object with a member, as a JWS header is ({"…), and
// not a name with two dots that happens to start with ey (eyes.on.me).
func jsonHeader(jws string) bool {
	seg, _, _ := strings.Cut(jws, ".")
	if len(seg) > 64 {
		seg = seg[:64] // enough to start it: 48 bytes
	}
	b, _ := base64.RawURLEncoding.DecodeString(seg[:len(seg)/4*4])
	return strings.HasPrefix(strings.TrimLeft(string(b), "{ \t\r\n"), `"`) && strings.HasPrefix(string(b), "{")
}

func isJWSByte(c byte) bool { return c == '.' || isBase64URLByte(c) }

// ShownPath is a request path for a log line, an audit event or an error
// description: each segment shaped like a credential (IsCredential) — a
// client secret given where its ID goes, say — replaced by
// "(credential)", then cut to n bytes as Truncate cuts it, but before a
// percent escape the cut would split (/a/%2… is /a/…). An escaped path
// (URL.EscapedPath) is judged as the server reads it: kw%5F… is a client
// secret as kw_… is.
func ShownPath(p string, n int) string {
	if !credentialIn(p) {
		return truncatePath(p, n)
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if credentialIn(seg) {
			segs[i] = "(credential)"
		}
	}
	return truncatePath(strings.Join(segs, "/"), n)
}

// ShownRequestPath is ShownPath of r's path as it came, escaped
// (URL.EscapedPath): the form every log line, audit event and error
// description shows, so none shows a decoded path ("/a%2Fb" as "/a/b") or
// misses an escaped credential.
func ShownRequestPath(r *http.Request, n int) string {
	return ShownPath(r.URL.EscapedPath(), n)
}

// truncatePath is Truncate(p, n), cut before a "%" in the last two bytes
// kept, which would start an escape cut short.
func truncatePath(p string, n int) string {
	if len(p) <= n {
		return p
	}
	from := max(n-2, 0)
	if i := strings.IndexByte(p[from:n], '%'); i >= 0 {
		n = from + i
	}
	return cut(p, n)
}

// credentialIn reports whether the path or segment p, escaped or not,
// holds a credential. A path with a bad escape, which fails unescaping
// whole, is judged a segment at a time: an escaped credential in one is
// not hidden by a bad escape in another. (A request's EscapedPath has
// none; ShownPath is for any path.)
func credentialIn(p string) bool {
	if IsCredential(p) {
		return true
	}
	if !strings.Contains(p, "%") {
		return false
	}
	u, err := url.PathUnescape(p)
	if err != nil {
		return strings.Contains(p, "/") && slices.ContainsFunc(strings.Split(p, "/"), credentialIn)
	}
	return IsCredential(u)
}
