package oauth2

import (
	"strings"
	"unicode/utf8"
)

// DescriptionText keeps s to the characters RFC 6749 §5.2 allows in
// error_description, which RFC 6750 §3, RFC 7009 §2.2.1 and RFC 7662 §2.3
// reuse: %x20-21 / %x23-5B / %x5D-7E, printable ASCII but " and \. It maps
// what it must so the text stays readable: " to ', \ to /, § to
// "section", … to "...", tabs and line breaks to spaces, and any other
// character to ?.
func DescriptionText(s string) string {
	for i := 0; i < len(s); i++ {
		if !descriptionByte(s[i]) {
			return strings.Map(descriptionRune, descriptionReplacer.Replace(s))
		}
	}
	return s
}

// descriptionByte reports whether c may stand in an error_description.
func descriptionByte(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
}

// descriptionRune is r, or ? for a rune that may not stand in an
// error_description.
func descriptionRune(r rune) rune {
	if r < 0x80 && descriptionByte(byte(r)) {
		return r
	}
	return '?'
}

// descriptionReplacer maps the characters Keyward's own descriptions and
// the values they quote most often hold to readable ASCII.
var descriptionReplacer = strings.NewReplacer(
	`"`, "'", `\`, "/", "§ ", "section ", "§", "section ", "…", "...",
	"\t", " ", "\r\n", " ", "\n", " ", "\r", " ",
)

// maxQuoted is how many bytes of a value QuoteForDescription shows.
const maxQuoted = 64

// QuoteForDescription quotes a value a client sent for an OAuth error
// description, in the characters RFC 6749 §5.2 allows, so that
// DescriptionText leaves it as it is: in single quotes, cut as Truncate
// cuts to 64 bytes but marked with "...", and with ?, one for each
// character, in place of ', " and \ and of any character beyond printable
// ASCII. The closing quote is then always the value's end, and a value
// that is plain ASCII, as scopes, parameter names and most URLs are,
// reads as it was sent; the value itself is in the client's own request.
// QuoteShort, whose JSON escapes §5.2 does not allow, is for messages
// that are no OAuth error description. A value shaped like a credential
// (IsCredential), a client secret sent as a scope say, is not repeated:
// descriptions are logged and written to the audit log.
func QuoteForDescription(s string) string {
	if IsCredential(s) {
		return "'(not repeated: shaped like a secret or token)'"
	}
	cut := len(s) > maxQuoted
	b := make([]byte, 0, min(len(s), maxQuoted)+len("'...'"))
	b = append(b, '\'')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if cut && i+size > maxQuoted {
			break
		}
		if r < utf8.RuneSelf && descriptionByte(byte(r)) && r != '\'' {
			b = append(b, byte(r))
		} else {
			b = append(b, '?')
		}
		i += size
	}
	if cut {
		b = append(b, "..."...)
	}
	return string(append(b, '\''))
}
