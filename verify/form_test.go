package verify_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// countingBody is a request body that counts what is read of it.
type countingBody struct {
	r    io.Reader
	read int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *countingBody) Close() error { return nil }

// With AllowQueryToken, the form body of a request without a bearer
// header is read for access_token only up to 64 KiB: a larger one, or one
// that is not a form, is 400 invalid_request, however much more the
// caller sends, and no more of it is read. The handler finds the form
// parsed and the body to read again. A request with the token in its
// header keeps its body for the handler, unread, whatever its size.
func TestMiddlewareFormBody(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	v := newVerifier(t, k)
	good := k.Sign(t, nil)
	type seen struct {
		Client, Note string
		Body         int
	}
	h := verify.Middleware(v, verify.AllowQueryToken())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		got := seen{Client: c.ClientID}
		if r.URL.Path == "/raw" { // a handler that reads the body itself
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("the handler cannot read the body: %v", err)
			}
			got.Body = len(body)
		} else {
			got.Note = r.PostFormValue("note")
		}
		json.NewEncoder(w).Encode(got)
	}))
	const limit = 64 << 10
	pad := func(n int) string { return "&pad=" + strings.Repeat("a", n) }
	huge := 10 << 20 // what net/http's ParseForm reads
	tests := []struct {
		name       string
		auth       string
		body       string
		wantStatus int
		wantError  string // of the body; for 200, the note the handler must see
		maxRead    int    // of the body, by the middleware; 0: all of it
	}{
		{"token in a small form", "", "access_token=" + good + "&note=hi", 200, "hi", 0},
		{"token in a form at the limit", "", "access_token=" + good + "&note=hi" + pad(limit-len("access_token="+good+"&note=hi&pad=")), 200, "hi", 0},
		{"token in a form over the limit", "", "access_token=" + good + "&note=hi" + pad(limit), 400, "invalid_request", limit + 1},
		{"no token, a 10 MB form", "", "note=hi" + pad(huge), 400, "invalid_request", limit + 1},
		{"token in a malformed form", "", "access_token=" + good + "&note=%zz", 400, "invalid_request", 0},
		{"no token in the form", "", "note=hi", 401, "", 0},
		{"two tokens in the form", "", "access_token=" + good + "&access_token=" + good + "&note=hi", 400, "invalid_request", 0},
		{"token in the header, a 1 MB form", "Bearer " + good, "note=hi" + pad(1<<20), 200, "hi", 0},
		// Only the query is checked for a second token: the body is the
		// handler's, as with DPoP.
		{"token in the header and the form", "Bearer " + good, "access_token=" + good + "&note=hi", 200, "hi", 0},
	}
	for _, tt := range tests {
		for _, path := range []string{"/form", "/raw"} {
			if path == "/raw" && tt.wantStatus != 200 {
				continue
			}
			t.Run(tt.name+" "+path, func(t *testing.T) {
				body := &countingBody{r: strings.NewReader(tt.body)}
				r := httptest.NewRequest("POST", path, body)
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tt.auth != "" {
					r.Header.Set("Authorization", tt.auth)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != tt.wantStatus {
					t.Fatalf("status %d (%.200s), want %d", w.Code, w.Body, tt.wantStatus)
				}
				if tt.maxRead > 0 && body.read > tt.maxRead {
					t.Fatalf("the middleware read %d bytes of a %d-byte body, want at most %d", body.read, len(tt.body), tt.maxRead)
				}
				if w.Code == 200 {
					var got seen
					json.Unmarshal(w.Body.Bytes(), &got)
					want := seen{Client: got.Client, Note: tt.wantError}
					if path == "/raw" {
						want = seen{Client: got.Client, Body: len(tt.body)}
					}
					if got != want || got.Client == "" {
						t.Fatalf("the handler saw %+v, want %+v: the form's note, or the whole body for one that reads it", got, want)
					}
					return
				}
				var out map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out["error"] != tt.wantError {
					t.Fatalf("body %.200s, want error %q", w.Body, tt.wantError)
				}
				if challenge := w.Header().Get("WWW-Authenticate"); tt.wantError != "" && !strings.Contains(challenge, fmt.Sprintf("error=%q", tt.wantError)) {
					t.Fatalf("WWW-Authenticate = %q, want error=%q", challenge, tt.wantError)
				}
			})
		}
	}
}

// With AllowQueryToken, a POST's body is read for access_token when its
// media type is application/x-www-form-urlencoded, in any case and with
// any parameters (RFC 9110 §8.3.1), as net/http's ParseForm reads it;
// not when it is another type that merely begins alike.
func TestMiddlewareFormContentType(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	v := newVerifier(t, k)
	h := verify.Middleware(v, verify.AllowQueryToken())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	body := "access_token=" + k.Sign(t, nil)
	tests := []struct {
		contentType string
		wantStatus  int
	}{
		{"application/x-www-form-urlencoded", 200},
		{"application/x-www-form-urlencoded; charset=utf-8", 200},
		{"Application/X-WWW-Form-URLEncoded", 200},
		{"application/x-www-form-urlencoded ; Charset=UTF-8", 200},
		{"application/x-www-form-urlencoded; charset", 200}, // a malformed parameter: ParseForm still reads the form
		{"application/x-www-form-urlencodedx", 401},
		{"application/x-www-form-urlencoded-v2", 401},
		{"text/plain", 401},
		{"", 401},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(body))
			r.Header.Set("Content-Type", tt.contentType)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d (%.200s), want %d", w.Code, w.Body, tt.wantStatus)
			}
		})
	}
}

// A response to a request with the token in its URI is marked private
// (RFC 6750 §2.3), so that no shared cache keeps it for whoever asks for
// that URI next; the handler may say more. A token in the header or the
// form body leaves Cache-Control to the handler.
func TestMiddlewareQueryTokenResponseIsPrivate(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	v := newVerifier(t, k)
	good := k.Sign(t, nil)
	plain := verify.Middleware(v, verify.AllowQueryToken())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	maxAge := verify.Middleware(v, verify.AllowQueryToken())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Cache-Control", "max-age=60")
	}))
	tests := []struct {
		name   string
		h      http.Handler
		method string
		target string
		header string
		body   string
		want   []string
	}{
		{"query", plain, "GET", "/?access_token=" + good, "", "", []string{"private"}},
		{"query, handler adds max-age", maxAge, "GET", "/?access_token=" + good, "", "", []string{"private", "max-age=60"}},
		{"header", plain, "GET", "/", "Bearer " + good, "", nil},
		{"form body", plain, "POST", "/", "", "access_token=" + good, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.body != "" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d (%s), want 200", w.Code, w.Body)
			}
			if got := w.Header().Values("Cache-Control"); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("Cache-Control = %q, want %q", got, tt.want)
			}
		})
	}
}

// With AllowQueryToken, a POST with an access_token in both its query and
// its form body is refused (400 invalid_request), as one with a token in
// its header and its query is: RFC 6750 §2 allows one method per request.
// The form was not read once the query had a token, and the query's was
// used. A form without a token leaves the query's in use.
func TestMiddlewareQueryAndFormToken(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	v := newVerifier(t, k)
	good := k.Sign(t, nil)
	h := verify.Middleware(v, verify.AllowQueryToken())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tests := []struct {
		name       string
		body       string
		wantStatus int
	}{
		{"a token in the form too", "access_token=" + good, 400},
		{"another token in the form", "access_token=" + k.Sign(t, nil), 400},
		{"no token in the form", "note=hi", 200},
		{"an empty token in the form", "access_token=", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/?access_token="+good, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d (%.200s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			var out map[string]string
			if json.Unmarshal(w.Body.Bytes(), &out); tt.wantStatus == 400 && out["error"] != "invalid_request" {
				t.Fatalf("body %.200s, want error invalid_request", w.Body)
			}
		})
	}
}

// Without AllowQueryToken, an access_token in a POST's form body is no
// token, as one in the query is: the request gets the bare challenge of
// RFC 6750 §3.1 (here with WithRealm's realm) and an empty body, and the
// middleware reads none of the body.
func TestMiddlewareFormTokenIgnoredByDefault(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	v := newVerifier(t, k)
	h := verify.Middleware(v, verify.WithRealm("orders"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler was reached without a token")
	}))
	body := &countingBody{r: strings.NewReader("access_token=" + k.Sign(t, nil))}
	r := httptest.NewRequest("POST", "/?note=hi", body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if ch := w.Header().Values("WWW-Authenticate"); w.Code != 401 || len(ch) == 0 || ch[0] != `Bearer realm="orders"` || strings.TrimSpace(w.Body.String()) != "{}" {
		t.Fatalf("%d, WWW-Authenticate %q, body %s; want 401 with a bare Bearer challenge with the realm, and {}", w.Code, ch, w.Body)
	}
	if body.read != 0 {
		t.Fatalf("the middleware read %d bytes of the body, want none", body.read)
	}
}
