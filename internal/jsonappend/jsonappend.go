// Package jsonappend appends JSON to byte slices without reflection, byte
// for byte as encoding/json's Marshal writes the same values. It is for the
// few documents the server writes on every request — access-token claims,
// audit events, endpoint responses — where Marshal's reflection and
// allocations showed in profiles; everything else uses encoding/json.
// The tests hold every function to Marshal's output.
package jsonappend

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// Appender is implemented by types that write their own JSON, the same as
// json.Marshal would write them.
type Appender interface {
	AppendJSON(dst []byte) []byte
}

const hexDigits = "0123456789abcdef"

// safe marks the ASCII bytes Marshal writes as they are: not control
// characters, not the quote and backslash, not the HTML-sensitive <, > and &.
var safe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// String appends s as a JSON string, escaped as Marshal escapes it: control
// characters, <, >, &, U+2028 and U+2029 as escapes, invalid UTF-8 as
// U+FFFD.
func String(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Strings appends a JSON array of strings; nil is null, as Marshal writes it.
func Strings(dst []byte, v []string) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = String(dst, s)
	}
	return append(dst, ']')
}

// StringMap appends m as a JSON object with its keys in sorted order; nil
// is null, as Marshal writes it.
func StringMap(dst []byte, m map[string]string) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	// The keys of an audit event's data, a dozen or so, are sorted on the
	// stack: slices.Sorted(maps.Keys(m)) grew a slice for them on the
	// heap, several times.
	var small [16]string
	keys := small[:0]
	if len(m) > len(small) {
		keys = make([]string, 0, len(m))
	}
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// Appended to dst itself, not through an Object, which stores it
	// through a pointer and so puts a caller's buffer on the stack on
	// the heap (storage's encoding of an audit event).
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(String(dst, k), ':')
		dst = String(dst, m[k])
	}
	return append(dst, '}')
}

// Object appends a JSON object member by member. Members appear in the order
// they are added; leaving out an empty member is the caller's choice, as
// omitempty is in a struct tag.
type Object struct {
	buf  []byte
	more bool // a member was written at this level
}

// NewObject starts an object at the end of dst.
func NewObject(dst []byte) Object {
	return Object{buf: append(dst, '{')}
}

func (o *Object) key(k string) {
	if o.more {
		o.buf = append(o.buf, ',')
	}
	o.more = true
	o.buf = String(o.buf, k)
	o.buf = append(o.buf, ':')
}

// String adds a string member.
func (o *Object) String(k, v string) {
	o.key(k)
	o.buf = String(o.buf, v)
}

// Int adds a number member.
func (o *Object) Int(k string, v int64) {
	o.key(k)
	o.buf = strconv.AppendInt(o.buf, v, 10)
}

// Bool adds a true or false member.
func (o *Object) Bool(k string, v bool) {
	o.key(k)
	o.buf = strconv.AppendBool(o.buf, v)
}

// Strings adds an array-of-strings member.
func (o *Object) Strings(k string, v []string) {
	o.key(k)
	o.buf = Strings(o.buf, v)
}

// StringMap adds an object member with m's keys in sorted order.
func (o *Object) StringMap(k string, m map[string]string) {
	o.key(k)
	o.buf = StringMap(o.buf, m)
}

// Raw adds a member whose value is v, which must be valid JSON.
func (o *Object) Raw(k string, v []byte) {
	o.key(k)
	o.buf = append(o.buf, v...)
}

// Open starts an object member; its members follow until Close.
func (o *Object) Open(k string) {
	o.key(k)
	o.buf = append(o.buf, '{')
	o.more = false
}

// Close ends the object member Open started.
func (o *Object) Close() {
	o.buf = append(o.buf, '}')
	o.more = true
}

// End ends the object and returns the buffer it was appended to.
func (o *Object) End() []byte {
	return append(o.buf, '}')
}
