package main

import (
	"net/http"
	"testing"

	"golang.org/x/oauth2"
)

// TestRetrieveErrorQuotesServerText: the token endpoint's error code and
// description reach the operator's terminal as cell shows them, printable
// text as it is and anything else quoted, escaped: a server, or a proxy
// before it, cannot send escape sequences to the terminal.
func TestRetrieveErrorQuotesServerText(t *testing.T) {
	for _, tt := range []struct {
		name, code, desc, want string
	}{
		{"printable", "invalid_grant", "Invalid JWT Signature.",
			"https://kw/token refused the request: invalid_grant: Invalid JWT Signature."},
		{"escape in the description", "invalid_grant", "bad\x1b]0;pwned\a",
			`https://kw/token refused the request: invalid_grant: "bad\x1b]0;pwned\a"`},
		{"bidi override in the code", "invalid\u202egrant", "x",
			`https://kw/token refused the request: "invalid\u202egrant": x`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := retrieveError("https://kw/token", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: tt.code, ErrorDescription: tt.desc})
			if err == nil || err.Error() != tt.want {
				t.Errorf("retrieveError = %v, want %s", err, tt.want)
			}
		})
	}
}
