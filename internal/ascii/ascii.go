// Package ascii changes the case of ASCII letters and of nothing else, as
// the protocols Keyward speaks compare host names, URL schemes and the
// domains of emails (RFC 3986 §6.2.2.1, RFC 5280 §7.5), and as the stores
// compare account emails. strings.ToLower would also map other letters,
// some onto ASCII ones (U+0130 "İ" onto "i", U+212A the Kelvin sign onto
// "k"), so that a look-alike name would match.
package ascii

// Lower returns s with its ASCII letters in lower case and every other
// byte as it is, even in a string that is not valid UTF-8; s itself,
// without copying, when it has no upper-case ASCII letter, as host names
// and emails mostly have not.
func Lower(s string) string {
	for i := range len(s) {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
