package oauth2

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// descriptionAllowed reports whether s holds only the characters RFC 6749
// §5.2 allows in error_description: %x20-21 / %x23-5B / %x5D-7E.
func descriptionAllowed(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func TestDescriptionText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Client authentication failed.", "Client authentication failed."},
		{`The scope "orders.read" is not allowed.`, `The scope 'orders.read' is not allowed.`},
		{"See RFC 6749 §5.2 and § 3.3.", "See RFC 6749 section 5.2 and section 3.3."},
		{"There is nothing at /aaa….", "There is nothing at /aaa...."},
		{`a\b`, "a/b"},
		{"line\r\nbreak\tand\nmore", "line break and more"},
		{"caf\u00e9 \u2028 \x00 \x7f \xff", "caf? ? ? ? ?"},
		{"", ""},
	} {
		got := DescriptionText(tt.in)
		if got != tt.want {
			t.Errorf("DescriptionText(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !descriptionAllowed(got) {
			t.Errorf("DescriptionText(%q) = %q, outside RFC 6749 §5.2's characters", tt.in, got)
		}
	}
}

func TestQuoteForDescription(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"orders.read", "'orders.read'"},
		{"", "''"},
		{"https://orders.internal/v1?x=1&y=~", "'https://orders.internal/v1?x=1&y=~'"},
		{`a"b`, "'a?b'"},
		{`a'b`, "'a?b'"},
		{`a\b`, "'a?b'"},
		{"a\"b<\u00e9", "'a?b<?'"},
		{"tab\there\nline\r\x00\x7f", "'tab?here?line???'"},
		{"\u00e9\u2028\U0001F600", "'???'"},
		{"bad\xff\xfeutf8", "'bad??utf8'"},
		{"{\"json\":[1]}", "'{?json?:[1]}'"},
		{strings.Repeat("a", 64), "'" + strings.Repeat("a", 64) + "'"},
		{strings.Repeat("a", 65), "'" + strings.Repeat("a", 64) + "...'"},
		// A cut never splits a character: é at bytes 63-64 is left out.
		{strings.Repeat("a", 63) + "\u00e9", "'" + strings.Repeat("a", 63) + "...'"},
		{strings.Repeat("\u00e9", 40), "'" + strings.Repeat("?", 32) + "...'"},
		{strings.Repeat("\xff", 100), "'" + strings.Repeat("?", 64) + "...'"},
		// A credential sent where a scope, resource or other name goes is
		// not repeated: descriptions are logged and audited.
		{"kw_" + strings.Repeat("A", 43), "'(not repeated: shaped like a secret or token)'"},
		{"scope=kwat_" + strings.Repeat("A", 43), "'(not repeated: shaped like a secret or token)'"},
		{"Bearer eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln", "'(not repeated: shaped like a secret or token)'"},
	} {
		got := QuoteForDescription(tt.in)
		if got != tt.want {
			t.Errorf("QuoteForDescription(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if DescriptionText(got) != got {
			t.Errorf("QuoteForDescription(%q) = %q, which DescriptionText changes to %q", tt.in, got, DescriptionText(got))
		}
		if inner := got[1 : len(got)-1]; strings.Contains(inner, "'") {
			t.Errorf("QuoteForDescription(%q) = %q, a quote inside the quotes", tt.in, got)
		}
	}
}

// writtenDescription is the error_description WriteError sends for err.
func writtenDescription(t *testing.T, err error) string {
	t.Helper()
	rec := httptest.NewRecorder()
	WriteError(rec, err)
	var body struct {
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	return body.Description
}

// TestWriteErrorDescriptionChars: WriteError, the one writer of every
// OAuth endpoint's errors (token, introspection, revocation), sends only
// descriptions RFC 6749 §5.2 allows, whatever the description quotes of
// the request.
func TestWriteErrorDescriptionChars(t *testing.T) {
	for _, err := range []error{
		Errorf(ErrInvalidScope, "The service account is not allowed the scope %s.", QuoteForDescription(`a"b\c`)),
		Errorf(ErrInvalidRequest, "The parameter %s is given more than once.", QuoteForDescription(strings.Repeat("é", 40))),
		&Error{Code: "not_found", Description: "There is nothing at " + Truncate("/\u00fc\u00fc\u00fc", 3) + ".", Status: http.StatusNotFound},
		Errorf(ErrInvalidRequest, "A TLS client certificate was presented without client_id (RFC 8705 §2)."),
		errors.New("internal \"cause\" é"),
	} {
		if got := writtenDescription(t, err); got == "" || !descriptionAllowed(got) {
			t.Errorf("WriteError(%v) sent error_description %q, outside RFC 6749 §5.2's characters", err, got)
		}
	}
	if got, want := writtenDescription(t, Errorf(ErrInvalidScope, "No registered API has the scope %s.", QuoteForDescription("orders.read"))),
		"No registered API has the scope 'orders.read'."; got != want {
		t.Errorf("error_description = %q, want %q", got, want)
	}
}

func FuzzWriteErrorDescription(f *testing.F) {
	f.Add("The scope \"x\" (RFC 6749 §3.3)…")
	f.Add("a\\b\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, desc string) {
		if q := QuoteForDescription(desc); DescriptionText(q) != q {
			t.Fatalf("QuoteForDescription(%q) = %q, which DescriptionText changes", desc, q)
		}
		for _, d := range []string{desc, "The parameter " + QuoteForDescription(desc) + " is bad.", Truncate(desc, 10)} {
			if got := writtenDescription(t, &Error{Code: ErrInvalidRequest, Description: d}); !descriptionAllowed(got) {
				t.Fatalf("WriteError sent error_description %q for %q", got, d)
			}
		}
	})
}
