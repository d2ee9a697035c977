package dpop

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// asciiHost returns host, a host name with its ASCII letters already in
// lower case, with each label that is not ASCII written as "xn--" and its
// Punycode (RFC 3492): the name net/http sends in the Host header, and
// HTTP/2's :authority, of a request to host (golang.org/x/net/idna's
// Punycode profile). As there, a label is encoded as written, not mapped
// first (UTS #46): "BÜCHER" is not "bücher". A host that is not UTF-8,
// which net/http sends as U+FFFD, is refused, and so is an A-label of
// nothing ("xn--"), which it sends as an empty label, and one longer
// than DNS allows.
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
		p, err := punycode(l)
		if err != nil {
			return "", err
		}
		if len("xn--")+len(p) > maxLabel {
			return "", errors.New("a host name label longer than 63 characters in Punycode")
		}
		labels[i] = "xn--" + p
	}
	return strings.Join(labels, "."), nil
}

// maxLabel is the length of the longest label of a DNS name (RFC 1035
// §2.3.4).
const maxLabel = 63

// The parameters of Punycode (RFC 3492 §5).
const (
	punyBase        = 36
	punyTMin        = 1
	punyTMax        = 26
	punySkew        = 38
	punyDamp        = 700
	punyInitialBias = 72
	punyInitialN    = 128
)

// punycode encodes s, valid UTF-8, in Punycode (RFC 3492 §6.3): its ASCII
// characters in order, a '-' if there are any, then the others as
// generalized variable-length integers, in lower case.
func punycode(s string) (string, error) {
	runes := []rune(s)
	var b strings.Builder
	for _, r := range runes {
		if r < punyInitialN {
			b.WriteRune(r)
		}
	}
	basic := b.Len()
	if basic > 0 {
		b.WriteByte('-')
	}
	const maxDelta = 1<<31 - 1 // overflow guard: RFC 3492 §6.4
	n, delta, bias := rune(punyInitialN), 0, punyInitialBias
	for h := basic; h < len(runes); {
		m := rune(utf8.MaxRune + 1)
		for _, r := range runes {
			if r >= n && r < m {
				m = r
			}
		}
		if int(m-n) > (maxDelta-delta)/(h+1) {
			return "", errors.New("a host name label too long to encode")
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range runes {
			if r < n {
				if delta++; delta > maxDelta {
					return "", errors.New("a host name label too long to encode")
				}
			}
			if r != n {
				continue
			}
			q := delta
			for k := punyBase; ; k += punyBase {
				t := min(max(k-bias, punyTMin), punyTMax)
				if q < t {
					break
				}
				b.WriteByte(punyDigit(t + (q-t)%(punyBase-t)))
				q = (q - t) / (punyBase - t)
			}
			b.WriteByte(punyDigit(q))
			bias = punyAdapt(delta, h+1, h == basic)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return b.String(), nil
}

// punyAdapt is RFC 3492 §6.1's bias adaptation.
func punyAdapt(delta, points int, first bool) int {
	if first {
		delta /= punyDamp
	} else {
		delta /= 2
	}
	delta += delta / points
	k := 0
	for delta > (punyBase-punyTMin)*punyTMax/2 {
		delta /= punyBase - punyTMin
		k += punyBase
	}
	return k + (punyBase-punyTMin+1)*delta/(delta+punySkew)
}

// punyDigit writes a Punycode digit, 0 to 35: a to z, then 0 to 9.
func punyDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}
