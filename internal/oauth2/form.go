package oauth2

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// MaxFormBytes bounds the body of a form request. Assertions are a few
// kilobytes; 64 KiB leaves room for certificate chains without letting a
// client make the server buffer megabytes.
const MaxFormBytes = 64 << 10

// Form is a parsed application/x-www-form-urlencoded request body in which
// every parameter occurs at most once (RFC 6749 §3.2) — but the repeatable
// ones, whose values are kept joined by NUL characters (which no value may
// contain); read those with Values. A parameter sent without a value is
// not in the Form: RFC 6749 §3.1 has it treated as omitted.
type Form map[string]string

// repeatable are the parameters a request may give more than once:
// resource (RFC 8707 §2).
var repeatable = map[string]bool{"resource": true}

// Get returns the value of the named parameter, or "" when it is absent.
func (f Form) Get(name string) string { return f[name] }

// Values returns every value of the named parameter, in request order, or
// nil when it is absent.
func (f Form) Values(name string) []string {
	v, ok := f[name]
	if !ok {
		return nil
	}
	return strings.Split(v, "\x00")
}

// Has reports whether the named parameter is present. A parameter sent
// without a value is not (RFC 6749 §3.1).
func (f Form) Has(name string) bool {
	_, ok := f[name]
	return ok
}

// ParseForm reads the body of an OAuth endpoint request. It enforces what
// RFC 6749 asks of every endpoint: POST, a form-encoded body no larger than
// MaxFormBytes, no parameter given twice, and no parameters in the URL
// (§2.3.1 and §3.2: credentials must not travel in the request URI, where
// they end up in logs).
func ParseForm(w http.ResponseWriter, r *http.Request) (Form, error) {
	if r.Method != http.MethodPost {
		return nil, &Error{
			Code:        ErrInvalidRequest,
			Description: "The endpoint accepts only POST requests.",
			Status:      http.StatusMethodNotAllowed,
			Header:      http.Header{"Allow": {http.MethodPost}},
		}
	}
	if r.URL.RawQuery != "" {
		return nil, Errorf(ErrInvalidRequest, "Parameters must be sent in the form-encoded request body, not in the URL.")
	}
	if len(r.Header.Values("Content-Type")) > 1 {
		// Which one a proxy in front read is anyone's guess.
		return nil, Errorf(ErrInvalidRequest, "The request has more than one Content-Type header; send one, application/x-www-form-urlencoded.")
	}
	ct := r.Header.Get("Content-Type")
	var params map[string]string // nil: no parameters, as most clients send it
	if ct != formType {
		var mt string
		var err error
		mt, params, err = mime.ParseMediaType(ct)
		if err != nil || mt != formType {
			return nil, Errorf(ErrInvalidRequest, "The request body must have Content-Type application/x-www-form-urlencoded.")
		}
	}
	// A compressed body would be read as form encoding and refused for
	// what it looks like then: say what is wrong instead.
	if ce := Compression(r.Header); ce != "" {
		return nil, &Error{Code: ErrInvalidRequest, Status: http.StatusUnsupportedMediaType,
			Description: fmt.Sprintf("The request body must not be compressed (Content-Encoding %s): send it as plain form encoding.", QuoteForDescription(ce))}
	}
	cs, declared := params["charset"]
	asciiOnly := declared && !strings.EqualFold(cs, "utf-8")
	if asciiOnly && !asciiCompatible[strings.ToLower(cs)] {
		return nil, Errorf(ErrInvalidRequest, "The request body must be UTF-8 encoded (RFC 6749 Appendix B), not %s.", QuoteForDescription(cs))
	}
	BoundBodyRead(w, r)
	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxFormBytes), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Code: ErrInvalidRequest, Description: fmt.Sprintf("The request body is larger than %d KiB, more than any request to this endpoint needs.", MaxFormBytes>>10), Status: http.StatusRequestEntityTooLarge}
		}
		return nil, Errorf(ErrInvalidRequest, "The request body could not be read.").WithCause(err)
	}
	// body is not written again, and the Form's values may share it, as
	// they would share the string a copy of it made: no copy.
	f, err := ParseFormBody(unsafe.String(unsafe.SliceData(body), len(body)))
	if err == nil && asciiOnly && !f.ascii() {
		return nil, Errorf(ErrInvalidRequest, "The request body declares charset %s and holds characters beyond ASCII, which Keyward reads only as UTF-8 (RFC 6749 Appendix B): send it as UTF-8, with charset=UTF-8 or none.", QuoteForDescription(cs))
	}
	return f, err
}

// RecordMargin is how much of a request's bound (its context's deadline:
// server.RequestTimeout, the admin API's 20 s) BoundBodyRead keeps for
// what follows the reading of its body: a client that sends part of a
// body and stalls has its read given up this long before the deadline,
// and its refusal is recorded (oauth2.RecordContext keeps the deadline)
// and answered in that time. Without it the read ended only at keyward
// serve's 30-second ReadTimeout, past the deadline, and the refusal went
// unrecorded, with an error logged: a slow client's way to fill the log.
// An audit write takes milliseconds; 5 s leaves room for a busy store.
const RecordMargin = 5 * time.Second

// BoundBodyRead sets the read deadline of r's connection to RecordMargin
// before the deadline of r's context, if it has one, so that a body the
// client stalls sending fails to read, and is refused, in time to be
// recorded. Call it before reading the body. It does nothing to a request
// without a body (http.NoBody), whose connection net/http already reads
// on its own, to see the client hang up: a read deadline would end that
// read, and with it the request's context. Once the body is read to its
// end, net/http clears the deadline for that read. The deadline replaces
// the server's ReadTimeout one, which keyward serve sets (30 s) past the
// request's bound.
//
// The writer is unwrapped as http.ResponseController does, but without
// its error for a writer that has no deadlines (httptest's recorder), so
// that it costs no allocation there either.
func BoundBodyRead(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	d, ok := r.Context().Deadline()
	if !ok {
		return
	}
	for {
		switch t := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			t.SetReadDeadline(d.Add(-RecordMargin))
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return
		}
	}
}

// formType is the media type of a form-encoded body.
const formType = "application/x-www-form-urlencoded"

// readBody reads r to its end, as io.ReadAll does, into a buffer sized
// for the length the request declares (up to 4 KiB; past that it grows as
// needed): io.ReadAll starts at 512 bytes and grows twice for a
// JWT-bearer request of about 1 KiB. The extra byte lets the read that
// finds the end not grow it.
func readBody(r io.Reader, declared int64) ([]byte, error) {
	size := 512
	if declared > 0 {
		size = int(min(declared, 4<<10)) + 1
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// asciiCompatible are the charsets, lower-cased, that encode ASCII as
// UTF-8 does: a body declared in one of them whose parameters are all
// ASCII reads the same as UTF-8. Apache HttpClient's form entities, which
// Java clients build requests with, declare ISO-8859-1 by default.
var asciiCompatible = map[string]bool{
	"us-ascii": true, "ascii": true, "iso-8859-1": true, "iso_8859-1": true, "latin1": true, "windows-1252": true, "cp1252": true,
}

// ascii reports whether every parameter's name and value is ASCII.
func (f Form) ascii() bool {
	for k, v := range f {
		if !IsASCII(k) || !IsASCII(v) {
			return false
		}
	}
	return true
}

// ParseFormBody parses a form-encoded body, refusing malformed encodings,
// repeated parameters (but the repeatable ones), text that is not UTF-8 and
// NUL characters (no parameter has a use for them, and PostgreSQL cannot
// store them).
//
// Parameters sent without a value are left out, as RFC 6749 §3.1 requires
// ("treated as if they were omitted from the request"); so are the empty
// values of a repeatable parameter. A name given twice is refused even when
// one or both values are empty: "scope=&scope=x" is more likely a mistake,
// or a request built to be read differently by another parser, than a
// request for x.
func ParseFormBody(body string) (Form, error) {
	f := make(Form, 4)
	empty := false // some parameter was sent without a value
	for body != "" {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return nil, Errorf(ErrInvalidRequest, "The request body is not valid form encoding: semicolons are not separators.")
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, Errorf(ErrInvalidRequest, "The request body is not valid form encoding.")
		}
		if !IsText(key) || !IsText(val) {
			return nil, Errorf(ErrInvalidRequest, "The request body must be UTF-8 text (RFC 6749 Appendix B) without NUL characters.")
		}
		if prev, dup := f[key]; dup {
			if !repeatable[key] {
				return nil, Errorf(ErrInvalidRequest, "The parameter %s is given more than once.", QuoteForDescription(key))
			}
			switch {
			case val == "":
				val = prev
			case prev != "":
				val = prev + "\x00" + val
			}
		}
		// An empty value stays in f until the end, so that a second
		// occurrence of its name is still seen as one.
		f[key] = val
		empty = empty || val == ""
	}
	if empty {
		for k, v := range f {
			if v == "" {
				delete(f, k)
			}
		}
	}
	return f, nil
}

// IsText reports whether s is UTF-8 text without NUL characters, as every
// name, identifier and parameter value must be: nothing Keyward stores has
// a use for anything else, and PostgreSQL cannot store it.
func IsText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// IsASCII reports whether s holds only ASCII characters (bytes below
// 0x80).
func IsASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// IsBase64URL reports whether s is in the unpadded base64url alphabet
// (RFC 4648 §5), as the segments of a compact JWS and Keyward's opaque
// tokens are.
func IsBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isBase64URLByte(s[i]) {
			return false
		}
	}
	return true
}

// IsCompactJWS reports whether s has the characters of a compact JWS:
// three segments in the unpadded base64url alphabet, joined by dots. Go's
// base64 skips CR and LF, which a compact JWS never holds: this refuses
// them, so that one token has one form. It reads s in place, without
// copying.
func IsCompactJWS(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			dots++
		} else if !isBase64URLByte(s[i]) {
			return false
		}
	}
	return dots == 2
}

func isBase64URLByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// Compression returns the content codings other than identity that h's
// Content-Encoding headers name (RFC 9110 §8.4), joined by ", ": every
// header and every comma-separated member of each, so that an identity
// first hides no gzip after it. It is "" for a body sent as it is.
func Compression(h http.Header) string {
	var codings []string
	for _, v := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.Trim(c, " \t"); c != "" && !strings.EqualFold(c, "identity") {
				codings = append(codings, c)
			}
		}
	}
	return strings.Join(codings, ", ")
}
