package oauth2

import "strings"

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
