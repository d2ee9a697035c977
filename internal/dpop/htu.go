package dpop

import (
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/keyward/keyward/internal/ascii"
)

// NormalizeURL returns the form of an http or https URL that proofs are
// compared in (RFC 9449 §4.3 check 9, RFC 3986 §6.2.2 and §6.2.3): scheme
// and host in lower case (the host's ASCII letters only), each label of
// the host that is not ASCII in Punycode ("xn--…", as net/http sends it in
// the Host header; see asciiHost), no default port, no query or fragment,
// an empty path as "/", percent-encodings of unreserved characters decoded
// and the others in upper case, and the bytes a URI cannot hold
// (non-ASCII, space, {, …) percent-encoded. The path is read as written:
// "/a%2Fb" (one segment) is never "/a/b", even where the path holds a byte
// that makes Go's url.URL.EscapedPath re-encode it from the decoded path.
// Dot segments are not removed: a proof for /a/../b does not match /b,
// which is the safe way to be wrong. A URL with userinfo, or an IPv6 zone
// in its host, is refused; the target URI of a request has neither (RFC
// 9110 §4.2.4: a sender must not put userinfo in one, and a recipient
// should take it for an error), so a proof's htu that has one is no proof
// of it.
func NormalizeURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", errors.New("not an http or https URL")
	}
	if u.Opaque != "" || u.Host == "" {
		return "", errors.New("no host")
	}
	if u.User != nil {
		return "", errors.New("userinfo in the URL")
	}
	// ASCII letters alone: Unicode case mapping would make one name of
	// two that resolve apart ("STRAẞE" and "straße" lower alike, but
	// IDNA maps them to strasse and xn--strae-oqa).
	host, port := ascii.Lower(u.Hostname()), u.Port()
	if host == "" {
		return "", errors.New("no host")
	}
	if strings.Contains(host, "%") {
		// An IPv6 zone ("%25eth0") names an interface of the sender's
		// machine, and url.Parse decodes "%25" in a host to a '%' that
		// it does not read back: the normal form would not be one.
		return "", errors.New("a zone or '%' in the host")
	}
	// The name net/http sends (the Host header) of a name that is not
	// ASCII: a client may sign either form of it.
	if host, err = asciiHost(host); err != nil {
		return "", err
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path, err := normalizePercent(WrittenPath(u))
	if err != nil {
		return "", err
	}
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// WrittenPath returns u's path as it was written, percent-encodings and
// all. url.URL.EscapedPath returns it only when it is one Go would write:
// else (a path that holds a byte such as '{' or a non-ASCII one) it
// encodes the decoded path again, and "/a%2Fb{" becomes "/a/b%7B".
// url.Parse keeps the path as written in RawPath whenever it differs from
// that encoding. A '#' or '?' in it is percent-encoded: the path of a
// request-target may hold a raw '#' (url.ParseRequestURI cuts no
// fragment), and a URL made of the path would end there, taking a proof
// for /a to be one for /a#b. A RawPath that no longer decodes to Path (a
// handler set Path alone, to strip a prefix say) is stale, and ignored as
// EscapedPath ignores it.
func WrittenPath(u *url.URL) string {
	if p, err := url.PathUnescape(u.RawPath); u.RawPath == "" || err != nil || p != u.Path {
		return u.EscapedPath()
	}
	if !strings.ContainsAny(u.RawPath, "#?") {
		return u.RawPath
	}
	return pathDelims.Replace(u.RawPath)
}

var pathDelims = strings.NewReplacer("#", "%23", "?", "%3F")

// matchURL checks that a proof's htu is the request's URL, want, which
// is normalized first unless normalized says it is already.
func matchURL(htu, want string, normalized bool) error {
	got, err := NormalizeURL(htu)
	if err != nil {
		return err
	}
	w := want
	if !normalized {
		if w, err = NormalizeURL(want); err != nil {
			return errors.New("the request's own URL is not an http or https URL: " + err.Error())
		}
	}
	if got != w {
		return errors.New("htu " + got + " is not " + w)
	}
	return nil
}

// normalizePercent decodes the percent-encodings of unreserved characters
// and writes the others in upper case (RFC 3986 §6.2.2.1, §6.2.2.2), and
// percent-encodes the bytes a path cannot hold (§3.3).
func normalizePercent(p string) (string, error) {
	// '%' is no path char: an encoding takes the loop too.
	if !strings.ContainsFunc(p, func(r rune) bool { return r > 0x7f || !isPathChar(byte(r)) }) {
		return p, nil
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			if isPathChar(p[i]) {
				b.WriteByte(p[i])
			} else {
				b.WriteByte('%')
				b.WriteByte(upperhex[p[i]>>4])
				b.WriteByte(upperhex[p[i]&15])
			}
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", errors.New("a malformed percent-encoding")
		}
		c := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteString(strings.ToUpper(p[i+1 : i+3]))
		}
		i += 2
	}
	return b.String(), nil
}

const upperhex = "0123456789ABCDEF"

// isPathChar reports whether c may stand for itself in a path (RFC 3986
// §3.3): a pchar but for a percent-encoding, or a '/'.
func isPathChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
