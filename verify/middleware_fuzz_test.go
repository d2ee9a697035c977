package verify_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/verify"
)

// FuzzMiddleware: whatever request reaches an API — method, Authorization
// and DPoP headers, query, Content-Type and body — Middleware (with
// AllowQueryToken) and RequireScopes never panic and answer 200, or
// refuse with 400, 401 or 403 and a well-formed challenge, or 503; a
// request passes only with a token of the issuer for this API, and the
// handler reads the body the caller sent.
func FuzzMiddleware(f *testing.F) {
	tk := newFuzzTokens(f)
	good := tk.access[0]
	for _, seed := range []struct{ method, authz, dpop, query, contentType, body string }{
		{"GET", "Bearer " + good, "", "", "", ""},
		{"POST", "bearer  " + good + " ", "", "", "application/json", `{"n":1}`},
		{"POST", "", "", "", "application/x-www-form-urlencoded", "access_token=" + good + "&x=1"},
		{"POST", "", "", "", "application/x-www-form-urlencoded; charset=utf-8", "access_token=%zz"},
		{"GET", "", "", "access_token=" + good, "", ""},
		{"GET", "Bearer " + good, "", "access_token=" + good, "", ""},
		{"GET", "Bearer a b", "", "", "", ""},
		{"GET", "Basic YTpi", "", "", "", ""},
		{"GET", "DPoP " + good, "eyJ.eyJ.sig", "", "", ""},
		{"GET", "DPoP " + good, "", "access_token=x", "", ""},
		{"GET", "Bearer " + tk.forged[0], "", "", "", ""},
		{"GET", "Bearer kwat_" + strings.Repeat("A", 43), "", "", "", ""},
	} {
		f.Add(seed.method, seed.authz, seed.dpop, seed.query, seed.contentType, []byte(seed.body))
	}
	docs := map[string][]byte{"/.well-known/oauth-authorization-server": tk.metadata, "/jwks": tk.jwks}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	v, err := verify.New(ctx, fuzzIssuer, fuzzAud, verify.WithHTTPClient(memoryClient(docs, http.StatusServiceUnavailable, nil)),
		verify.WithClock(func() time.Time { return fuzzNow }))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, authz, dpopHeader, query, contentType string, body []byte) {
		u, err := url.ParseRequestURI("/orders?" + query)
		if err != nil || !validMethod(method) || !validHeader(authz) || !validHeader(dpopHeader) || !validHeader(contentType) || strings.ContainsAny(query, " #") {
			return // not a request net/http would hand over
		}
		var reached bool
		var read []byte
		h := verify.Middleware(v, verify.AllowQueryToken())(verify.RequireScopes("orders.read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached = true
			c, ok := verify.ClaimsFromContext(r.Context())
			if !ok || c.Issuer != fuzzIssuer || !slices.Contains(c.Audience, fuzzAud) || !c.HasScope("orders.read") {
				t.Fatalf("the handler reached with claims %+v", c)
			}
			read, _ = io.ReadAll(r.Body)
		})))
		r := httptest.NewRequest(method, u.String(), bytes.NewReader(body))
		for name, v := range map[string]string{"Authorization": authz, "DPoP": dpopHeader, "Content-Type": contentType} {
			if v != "" {
				r.Header.Set(name, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if authz == "Bearer "+good && query == "" && dpopHeader == "" && w.Code != http.StatusOK {
			t.Fatalf("the issuer's token in the header: %d %s", w.Code, w.Body)
		}
		switch w.Code {
		case http.StatusOK:
			if !reached {
				t.Fatal("200 without the handler")
			}
			if len(body) <= 64<<10 && !bytes.Equal(read, body) {
				t.Fatalf("the handler read %q of the body %q", read, body)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			ch := w.Header().Values("WWW-Authenticate")
			if len(ch) == 0 {
				t.Fatalf("%d without a challenge", w.Code)
			}
			for _, c := range ch {
				if !validHeader(c) || strings.ContainsAny(c, "\t") {
					t.Fatalf("challenge %q", c)
				}
			}
		case http.StatusServiceUnavailable:
			if w.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if reached && w.Code != http.StatusOK {
			t.Fatalf("the handler reached, and the answer is %d", w.Code)
		}
	})
}

// validMethod reports whether m is an HTTP token (RFC 9110 §9.1).
func validMethod(m string) bool {
	return m != "" && !strings.ContainsFunc(m, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	})
}

// validHeader reports whether v is a field value net/http passes on:
// no control characters but tab.
func validHeader(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f })
}
