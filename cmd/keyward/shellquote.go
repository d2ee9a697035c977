package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// shellCommand is a command line for the user to paste into a POSIX
// shell: args joined by spaces, each quoted by shellArg. Messages print
// it last on a line, after a colon, without quotes of their own around
// it, so that what is selected is what the shell should read.
func shellCommand(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellArg(a)
	}
	return strings.Join(q, " ")
}

// shellArg quotes s as one argument for a POSIX shell, only when it needs
// it: as it is when it holds only characters no shell treats specially
// (letters, digits, @%+=:,./_-), else in single quotes, a quote in it
// ending them, escaped with a backslash, and opening them again:
//
//	'it'\''s'
//
// A string with a character that is not printable (a control character,
// an escape sequence, invalid UTF-8) is written as $'…' with those bytes
// as \xHH escapes, which bash, zsh, ksh and POSIX.1-2024 shells read: in
// single quotes the raw character would reach the terminal, as cell
// keeps it from doing in tables.
func shellArg(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !shellSafe(r) }) {
		return s
	}
	if printable(s) {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == utf8.RuneError && n == 1, !unicode.IsPrint(r):
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// shellSafe reports whether r needs no quoting in a POSIX shell word.
func shellSafe(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)
}
