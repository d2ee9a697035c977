package oauth2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseForm(t *testing.T) {
	const formCT = "application/x-www-form-urlencoded"
	tests := []struct {
		name       string
		method     string
		target     string
		ct         string
		ce         string // Content-Encoding
		ce2        string // a second Content-Encoding
		ct2        string // a second Content-Type
		body       string
		length     int64 // the declared Content-Length, when not 0 (-1: none); else the body's
		want       Form
		wantStatus int
	}{
		{name: "ok", method: "POST", target: "/token", ct: formCT, body: "grant_type=x&assertion=a%2Bb+c", want: Form{"grant_type": "x", "assertion": "a+b c"}},
		{name: "charset ok", method: "POST", target: "/token", ct: formCT + "; charset=UTF-8", body: "a=1", want: Form{"a": "1"}},
		// RFC 6749 §3.1: a parameter without a value is as if omitted.
		{name: "empty values omitted", method: "POST", target: "/token", ct: formCT, body: "a=&b&c=1", want: Form{"c": "1"}},
		{name: "empty scope omitted", method: "POST", target: "/token", ct: formCT, body: "grant_type=client_credentials&scope=", want: Form{"grant_type": "client_credentials"}},
		{name: "empty grant_type omitted", method: "POST", target: "/token", ct: formCT, body: "grant_type=", want: Form{}},
		{name: "duplicate, first empty", method: "POST", target: "/token", ct: formCT, body: "scope=&scope=b", wantStatus: 400},
		{name: "duplicate, second empty", method: "POST", target: "/token", ct: formCT, body: "scope=a&scope=", wantStatus: 400},
		{name: "duplicate, no equals sign", method: "POST", target: "/token", ct: formCT, body: "scope&scope=b", wantStatus: 400},
		{name: "empty resources omitted", method: "POST", target: "/token", ct: formCT, body: "resource=&resource=https%3A%2F%2Fa&resource=",
			want: Form{"resource": "https://a"}},
		{name: "only empty resources", method: "POST", target: "/token", ct: formCT, body: "resource=&resource=", want: Form{}},
		{name: "GET", method: "GET", target: "/token", ct: formCT, wantStatus: 405},
		{name: "query string", method: "POST", target: "/token?client_secret=x", ct: formCT, body: "a=1", wantStatus: 400},
		{name: "json body", method: "POST", target: "/token", ct: "application/json", body: `{}`, wantStatus: 400},
		{name: "no content type", method: "POST", target: "/token", body: "a=1", wantStatus: 400},
		// Apache HttpClient declares ISO-8859-1: the same as UTF-8 while
		// the parameters are ASCII; beyond it, refused rather than misread.
		{name: "latin1, ASCII", method: "POST", target: "/token", ct: formCT + "; charset=latin1", body: "a=1", want: Form{"a": "1"}},
		{name: "ISO-8859-1, ASCII", method: "POST", target: "/token", ct: formCT + "; charset=ISO-8859-1", body: "token=kwat_x%2By&token_type_hint=access_token", want: Form{"token": "kwat_x+y", "token_type_hint": "access_token"}},
		{name: "ISO-8859-1, beyond ASCII", method: "POST", target: "/token", ct: formCT + "; charset=ISO-8859-1", body: "a=%C3%A9", wantStatus: 400},
		{name: "ISO-8859-1, a Latin-1 byte", method: "POST", target: "/token", ct: formCT + "; charset=ISO-8859-1", body: "a=%E9", wantStatus: 400},
		{name: "gzip", method: "POST", target: "/token", ct: formCT, ce: "gzip", body: "\x1f\x8b", wantStatus: 415},
		{name: "two Content-Types", method: "POST", target: "/token", ct: formCT, ct2: "application/json", body: "a=1", wantStatus: 400},
		{name: "identity", method: "POST", target: "/token", ct: formCT, ce: "identity", body: "a=1", want: Form{"a": "1"}},
		// Every Content-Encoding header counts, every member of each, not
		// the first alone (RFC 9110 §5.3).
		{name: "identity, then gzip", method: "POST", target: "/token", ct: formCT, ce: "identity", ce2: "gzip", body: "\x1f\x8b", wantStatus: 415},
		{name: "identity, gzip in one", method: "POST", target: "/token", ct: formCT, ce: "identity, gzip", body: "\x1f\x8b", wantStatus: 415},
		{name: "identity twice", method: "POST", target: "/token", ct: formCT, ce: "identity", ce2: " Identity ,", body: "a=1", want: Form{"a": "1"}},
		{name: "UTF-16", method: "POST", target: "/token", ct: formCT + "; charset=UTF-16", body: "a=1", wantStatus: 400},
		{name: "duplicate", method: "POST", target: "/token", ct: formCT, body: "scope=a&scope=b", wantStatus: 400},
		{name: "resource repeats", method: "POST", target: "/token", ct: formCT, body: "resource=https%3A%2F%2Fa&scope=x&resource=https%3A%2F%2Fb",
			want: Form{"resource": "https://a\x00https://b", "scope": "x"}},
		{name: "duplicate empty", method: "POST", target: "/token", ct: formCT, body: "scope=&scope=", wantStatus: 400},
		{name: "bad escape", method: "POST", target: "/token", ct: formCT, body: "a=%zz", wantStatus: 400},
		{name: "semicolon", method: "POST", target: "/token", ct: formCT, body: "a=1;b=2", wantStatus: 400},
		{name: "NUL in value", method: "POST", target: "/token", ct: formCT, body: "client_id=a%00b", wantStatus: 400},
		{name: "NUL in name", method: "POST", target: "/token", ct: formCT, body: "a%00=1", wantStatus: 400},
		{name: "not UTF-8", method: "POST", target: "/token", ct: formCT, body: "client_id=a%ffb", wantStatus: 400},
		{name: "UTF-8", method: "POST", target: "/token", ct: formCT, body: "a=%C3%A9", want: Form{"a": "é"}},
		{name: "oversized", method: "POST", target: "/token", ct: formCT, body: "a=" + strings.Repeat("x", MaxFormBytes), wantStatus: 413},
		{name: "oversized, declared short", method: "POST", target: "/token", ct: formCT, body: "a=" + strings.Repeat("x", MaxFormBytes), length: 10, wantStatus: 413},
		{name: "media type in capitals", method: "POST", target: "/token", ct: "Application/X-WWW-Form-URLEncoded", body: "a=1", want: Form{"a": "1"}},
		{name: "longer than declared", method: "POST", target: "/token", ct: formCT, body: "a=" + strings.Repeat("x", 1000), length: 100, want: Form{"a": strings.Repeat("x", 1000)}},
		{name: "shorter than declared", method: "POST", target: "/token", ct: formCT, body: "a=" + strings.Repeat("x", 1000), length: 3000, want: Form{"a": strings.Repeat("x", 1000)}},
		{name: "no declared length", method: "POST", target: "/token", ct: formCT, body: "a=" + strings.Repeat("x", 1000), length: -1, want: Form{"a": strings.Repeat("x", 1000)}},
		{name: "oversized, declared huge", method: "POST", target: "/token", ct: formCT, body: "a=" + strings.Repeat("x", MaxFormBytes), length: 1 << 62, wantStatus: 413},
		{name: "declared huge", method: "POST", target: "/token", ct: formCT, body: "a=1", length: 1 << 62, want: Form{"a": "1"}},
		{name: "declared negative", method: "POST", target: "/token", ct: formCT, body: "a=1", length: -7, want: Form{"a": "1"}},
		{name: "longer than 4 KiB", method: "POST", target: "/token", ct: formCT, body: "a=" + strings.Repeat("x", 9000), want: Form{"a": strings.Repeat("x", 9000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			if tt.ce != "" {
				r.Header.Set("Content-Encoding", tt.ce)
			}
			if tt.ce2 != "" {
				r.Header.Add("Content-Encoding", tt.ce2)
			}
			if tt.ct2 != "" {
				r.Header.Add("Content-Type", tt.ct2)
			}
			if tt.length != 0 {
				r.ContentLength = tt.length
			}
			got, err := ParseForm(httptest.NewRecorder(), r)
			if tt.wantStatus != 0 {
				var oe *Error
				if !errors.As(err, &oe) {
					t.Fatalf("ParseForm error = %v, want *Error", err)
				}
				if oe.Code != ErrInvalidRequest || oe.HTTPStatus() != tt.wantStatus {
					t.Fatalf("got %s/%d, want invalid_request/%d", oe.Code, oe.HTTPStatus(), tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseForm: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestParseFormAllocs pins what reading a JWT-bearer request's form costs
// the heap: the body limit (1), the body (1, read to its declared length),
// the Form (2) and the unescaped grant type (1). Every request to /token,
// /introspect and /revoke reads one.
func TestParseFormAllocs(t *testing.T) {
	body := "grant_type=" + url.QueryEscape("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + strings.Repeat("x", 900)
	rd := strings.NewReader(body)
	r := httptest.NewRequest(http.MethodPost, "/token", nil)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(100, func() {
		rd.Reset(body)
		if _, err := ParseForm(w, r); err != nil {
			t.Fatal(err)
		}
	}); n > 5 {
		t.Errorf("ParseForm: %v allocations, want at most 5", n)
	}
}

// TestParseFormValuesStay: the Form's values are strings over the body
// ParseForm read (unsafe.String), and handlers keep them past the request
// (a jti in the replay cache, a client_id in the audit log). They must not
// change when later requests are read, as they would should the body's
// buffer ever be pooled, nor when the bytes the request's reader gave
// change, as they would were the body taken from the reader without a
// copy.
func TestParseFormValuesStay(t *testing.T) {
	parse := func(src []byte, declared int64) Form {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/token", nil)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(src)), declared
		f, err := ParseForm(httptest.NewRecorder(), r)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	body := func(c byte, n int) []byte {
		return []byte("client_id=" + strings.Repeat(string(c), n) + "&assertion=" + strings.Repeat(string(c+1), 2*n))
	}
	for _, declared := range []int64{-1, 60, 1 << 40} {
		src := body('a', 20)
		f := parse(src, declared)
		want := Form{"client_id": strings.Repeat("a", 20), "assertion": strings.Repeat("b", 40)}
		for i := range src {
			src[i] = 'z'
		}
		for c := byte('c'); c < 'y'; c += 2 {
			parse(body(c, 20), declared)
		}
		if !maps.Equal(f, want) {
			t.Errorf("declared %d: the form read changed to %q, want %q", declared, f, want)
		}
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		status   int
		body     string
		extraHdr string
	}{
		{"oauth error", Errorf(ErrInvalidGrant, "Invalid JWT Signature."), 400, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`, ""},
		{"cause hidden", Errorf(ErrInvalidClient, "Client authentication failed.").WithCause(errors.New("db password wrong")), 401, `{"error":"invalid_client","error_description":"Client authentication failed."}`, ""},
		{"plain error", errors.New("pq: connection refused at 10.0.0.1"), 500, `{"error":"server_error","error_description":"The server could not complete the request."}`, ""},
		{"header", &Error{Code: ErrInvalidClient, Header: http.Header{"Www-Authenticate": {`Basic realm="keyward"`}}}, 401, `{"error":"invalid_client"}`, `Basic realm="keyward"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteError(w, tt.err)
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tt.body {
				t.Errorf("body = %s, want %s", got, tt.body)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.extraHdr {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.extraHdr)
			}
		})
	}
}

func TestFormValues(t *testing.T) {
	f, err := ParseFormBody("resource=a&resource=&resource=c&scope=s")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Values("resource"); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("Values(resource) = %q", got)
	}
	if got := f.Values("scope"); !slices.Equal(got, []string{"s"}) {
		t.Errorf("Values(scope) = %q", got)
	}
	if got := f.Values("absent"); got != nil {
		t.Errorf("Values(absent) = %q", got)
	}
}

func FuzzParseFormBody(f *testing.F) {
	for _, s := range []string{"", "a=1", "a=1&a=2", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=e.y.j", "%", "a=%zz", "&&=&", "a;b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := ParseFormBody(body)
		if err != nil {
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != ErrInvalidRequest {
				t.Fatalf("error %v is not invalid_request", err)
			}
			return
		}
		for k, v := range form {
			if strings.IndexByte(k+v, 0) >= 0 || !utf8.ValidString(k+v) {
				t.Fatalf("a NUL character or invalid UTF-8 was accepted in %q=%q", k, v)
			}
			// RFC 6749 §3.1: a parameter without a value is omitted.
			if !form.Has(k) || slices.Contains(form.Values(k), "") {
				t.Fatalf("an empty value was kept for %q: %q", k, form.Values(k))
			}
		}
		// Every parsed pair must come from the body and be unique: re-encoding
		// must parse to the same map.
		var parts []string
		for k := range form {
			for _, v := range form.Values(k) {
				parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
			}
		}
		again, err := ParseFormBody(strings.Join(parts, "&"))
		if err != nil {
			t.Fatalf("re-encoded form does not parse: %v", err)
		}
		if len(again) != len(form) {
			t.Fatalf("round trip changed the form: %v vs %v", form, again)
		}
		for k, v := range form {
			if again[k] != v {
				t.Fatalf("round trip changed %q: %q vs %q", k, v, again[k])
			}
		}
	})
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in       string
		want     []string
		wantHint string // part of the error, if one is expected
	}{
		{"a b", []string{"a", "b"}, ""},
		{"  a   b a ", []string{"a", "b"}, ""},
		{"", []string{}, ""},
		{"https://orders.internal/read orders:write", []string{"https://orders.internal/read", "orders:write"}, ""},
		{"a,b", nil, "not commas"},
		{"a, b", nil, "not commas"},
		{"a\tb", nil, "tab or line break"},
		{"a\nb", nil, "tab or line break"},
		{"a\r\nb", nil, "tab or line break"},
		{`a"b`, nil, "does not allow"},
		{"é", nil, "does not allow"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if tt.wantHint != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantHint) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantHint)
				}
				if tt.wantHint != "not commas" && strings.Contains(err.Error(), "comma") {
					t.Fatalf("err = %v speaks of commas", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// ParseScope allocates only the list of scopes it returns: every token
// request parses one.
func TestParseScopeAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseScope("orders.read orders.write orders.read"); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("ParseScope: %v allocations, want 1", n)
	}
}

func TestAudienceJSON(t *testing.T) {
	var a Audience
	if err := json.Unmarshal([]byte(`"x"`), &a); err != nil || len(a) != 1 || !a.Contains("x") {
		t.Fatalf("string aud: %v %v", a, err)
	}
	if err := json.Unmarshal([]byte(`["x","y"]`), &a); err != nil || len(a) != 2 || !a.Contains("y") {
		t.Fatalf("array aud: %v %v", a, err)
	}
	if err := json.Unmarshal([]byte(`5`), &a); err == nil {
		t.Fatal("numeric aud accepted")
	}
	b, _ := json.Marshal(Audience{"x"})
	if string(b) != `"x"` {
		t.Fatalf("single aud marshals as %s", b)
	}
	b, _ = json.Marshal(Audience{"x", "y"})
	if string(b) != `["x","y"]` {
		t.Fatalf("two auds marshal as %s", b)
	}
}

// Truncate bounds what a client sent, marks the cut, and never leaves half
// a UTF-8 sequence behind (the parameter names of ParseForm's refusals and
// the assertion's header names were cut through one before).
func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456789…"},
		{"123456789é", 10, "123456789…"}, // é is two bytes: the tenth is half of it
		{"", 0, ""},
	} {
		if got := Truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
	// QuoteShort cuts the same way, inside the quotes.
	if got := QuoteShort(strings.Repeat("a", 63) + "é"); got != `"`+strings.Repeat("a", 63)+`…"` {
		t.Errorf("QuoteShort = %s", got)
	}
}

func TestIsCompactJWS(t *testing.T) {
	for s, want := range map[string]bool{
		"a.b.c": true, "..": true, "eyJ-_.x9.": true,
		"a.b": false, "a.b.c.d": false, "a.b\n.c": false, "a.b=.c": false, "a+.b.c": false, "": false,
	} {
		if got := IsCompactJWS(s); got != want {
			t.Errorf("IsCompactJWS(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestServerFault(t *testing.T) {
	cause := errors.New("disk full")
	tests := []struct {
		name string
		err  *Error
		want bool
		desc string
	}{
		{"store failed", StoreUnavailable(cause), true, "The server cannot reach its store right now; try again later."},
		{"store failed, wrapped", StoreUnavailable(fmt.Errorf("get account: %w", cause)), true, "The server cannot reach its store right now; try again later."},
		{"client hung up", StoreUnavailable(context.Canceled), false, "The request was canceled."},
		// No client sets the server a deadline: a timeout is the store's
		// (pgx wraps its connect_timeout's context.DeadlineExceeded).
		{"store timed out", StoreUnavailable(fmt.Errorf("failed to connect: timeout: %w", context.DeadlineExceeded)), true, "The server cannot reach its store right now; try again later."},
		{"unrecorded, no cause", Unrecorded(), false, "The server cannot record requests right now; try again later."},
		{"internal error", AsError(cause), true, "The server could not complete the request."},
		{"client's error with a cause", Errorf(ErrInvalidGrant, "Bad.").WithCause(cause), false, "Bad."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.ServerFault(); got != tt.want {
				t.Errorf("ServerFault() = %v, want %v", got, tt.want)
			}
			if tt.err.Description != tt.desc {
				t.Errorf("Description = %q, want %q", tt.err.Description, tt.desc)
			}
			if tt.err.Code == ErrTemporarilyUnavailable && tt.err.HTTPStatus() != http.StatusServiceUnavailable {
				t.Errorf("HTTPStatus() = %d, want 503", tt.err.HTTPStatus())
			}
		})
	}
}

// TestIsASCII: bytes below 0x80 are ASCII, DEL among them; anything from
// 0x80 up is not, whether it starts valid UTF-8 or not.
func TestIsASCII(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"", true},
		{"job@example.com", true},
		{"\x00\x7f", true},
		{"jöb@example.com", false},
		{"job@\u212aob.example", false},
		{"\xff", false},
	} {
		if got := IsASCII(tt.s); got != tt.want {
			t.Errorf("IsASCII(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
