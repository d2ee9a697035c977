package oauth2

import "github.com/go-jose/go-jose/v4"

// Unencoded reports whether a JWS header's b64 (RFC 7797) is anything but
// absent or true. go-jose honours b64 false, marked critical or not, by
// checking the signature over the raw payload, and reads a b64 that is not
// a bool as true; a JWT has neither, its claims being always
// base64url-encoded (RFC 7519 §3). Every JWT parser refuses such a header.
func Unencoded(h jose.Header) bool {
	v, ok := h.ExtraHeaders["b64"]
	return ok && v != true
}
