package oauth2

import (
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Unencoded reports whether a JWS header's b64 (RFC 7797) is anything but
// absent or true. go-jose honours b64 false, marked critical or not, by
// checking the signature over the raw payload, and reads a b64 that is not
// a bool as true; a JWT has neither, its claims being always
// base64url-encoded (RFC 7519 §3). Every JWT parser refuses such a header.
func Unencoded(h jose.Header) bool {
	v, ok := h.ExtraHeaders["b64"]
	return ok && v != true
}

// TypeIs reports whether typ, a JWS header's, names the media type
// application/name, name being a JWT kind such as at+jwt (RFC 9068 §4) or
// dpop+jwt (RFC 9449 §4.2). A typ without a '/' stands for itself after
// "application/" (RFC 7515 §4.1.9), and media type names are
// case-insensitive (RFC 6838 §4.2); no character outside ASCII folds to a
// letter of these names.
func TypeIs(typ, name string) bool {
	const app = "application/"
	if len(typ) > len(app) && strings.EqualFold(typ[:len(app)], app) {
		typ = typ[len(app):]
	}
	return strings.EqualFold(typ, name)
}
