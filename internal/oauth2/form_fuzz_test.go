package oauth2

import (
	"errors"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParseForm: every request to /token, /introspect and /revoke, with
// no authentication yet, has its Content-Type, Content-Encoding, declared
// length and body read by ParseForm. Whatever they are, it takes a body
// only with the form media type (parameters aside), uncompressed, as
// ParseFormBody reads it, and only ASCII under a charset other than
// UTF-8; and it refuses with invalid_request, a 4xx, whose description,
// which may quote the headers, is RFC 6749 §5.2-clean.
func FuzzParseForm(f *testing.F) {
	const formCT = "application/x-www-form-urlencoded"
	for _, s := range []struct {
		ct, ce, body string
		length       int64
	}{
		{formCT, "", "grant_type=client_credentials&scope=orders.read", 0},
		{formCT + "; charset=UTF-8", "", "a=%C3%A9", 0},
		{formCT + "; charset=ISO-8859-1", "", "a=%E9", 0},
		{formCT + "; charset=\"latin1\"", "identity", "a=1", 0},
		{formCT + "; charset=\x00\"é", "", "a=1", 0},
		{"Application/X-WWW-Form-URLEncoded", "", "a=1", -1},
		{formCT, "gzip\x1b[31m", "\x1f\x8b", 0},
		{formCT, "", "a=1", 1 << 62},
		{"application/json", "", "{}", 0},
		{formCT + "; charset=UTF-16; charset=UTF-8", "", "a=1", 3},
		{"", "", "a=1", 0},
	} {
		f.Add(s.ct, s.ce, s.body, s.length)
	}
	f.Fuzz(func(t *testing.T, ct, ce, body string, length int64) {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if ce != "" {
			r.Header.Set("Content-Encoding", ce)
		}
		if length != 0 {
			r.ContentLength = length
		}
		form, err := ParseForm(httptest.NewRecorder(), r)
		if err != nil {
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != ErrInvalidRequest {
				t.Fatalf("Content-Type %q, Content-Encoding %q: error %v is not invalid_request", ct, ce, err)
			}
			if s := oe.HTTPStatus(); s < 400 || s >= 500 {
				t.Fatalf("Content-Type %q, Content-Encoding %q: refused with %d", ct, ce, s)
			}
			if !descriptionAllowed(oe.Description) {
				t.Fatalf("Content-Type %q, Content-Encoding %q: error_description %q is not RFC 6749 §5.2-clean", ct, ce, oe.Description)
			}
			return
		}
		mt, params, merr := mime.ParseMediaType(ct)
		if ct != formCT && (merr != nil || mt != formCT) {
			t.Fatalf("Content-Type %q taken for a form", ct)
		}
		if ce != "" && !strings.EqualFold(ce, "identity") {
			t.Fatalf("Content-Encoding %q taken as plain form encoding", ce)
		}
		want, werr := ParseFormBody(body)
		if werr != nil || !maps.Equal(form, want) {
			t.Fatalf("body %q: ParseForm = %q, ParseFormBody = %q, %v", body, form, want, werr)
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !form.ascii() {
			t.Fatalf("charset %q: characters beyond ASCII taken: %q", cs, form)
		}
	})
}
