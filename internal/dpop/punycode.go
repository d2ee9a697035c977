package dpop

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// asciiHost returns host, a host name with its ASCII letters already in
// lower case, with each label that is not ASCII written as "xn--" and its
// Punycode (RFC 3492): the name net/http sends in the Host header, and
// HTTP/2's :authority, of a request to host (golang.org/x/net/idna's
// Punycode profile). As there, a label is encoded as written, not mapped
// first (UTS #46): "BÜCHER" is not "bücher". A host that is not UTF-8,
// which net/http sends as U+FFFD, is refused, and so is an A-label of
// nothing ("xn--"), which it sends as an empty label, and one longer
// than DNS allows; so is a label that begins "xn--" but holds characters
// beyond ASCII when golang.org/x/net/idna refuses it.
func asciiHost(host string) (string, error) {
	if !strings.ContainsFunc(host, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return host, nil
	}
	if !utf8.ValidString(host) {
		return "", errors.New("a host name that is not UTF-8")
	}
	labels := strings.Split(host, ".")
	for i, l := range labels {
		if l == "xn--" {
			// Punycode of nothing, which net/http sends as an empty label.
			return "", errors.New("a host name label xn-- with nothing after it")
		}
		if !strings.ContainsFunc(l, func(r rune) bool { return r >= utf8.RuneSelf }) {
			continue
		}
		// A label of DNS is 63 octets at most (RFC 1035 §2.3.4), and its
		// A-label "xn--" and a character at least for each of its: a
		// longer one names no host, and encoding it would cost time
		// growing with the square of its length.
		if utf8.RuneCountInString(l) > maxLabel-len("xn--") {
			return "", errors.New("a host name label longer than 63 characters in Punycode")
		}
		a, err := idna.Punycode.ToASCII(l)
		if err != nil {
			return "", fmt.Errorf("a host name label that cannot be written in Punycode: %w", err)
		}
		if len(a) > maxLabel {
			return "", errors.New("a host name label longer than 63 characters in Punycode")
		}
		labels[i] = a
	}
	return strings.Join(labels, "."), nil
}

// maxLabel is the length of the longest label of a DNS name (RFC 1035
// §2.3.4).
const maxLabel = 63
