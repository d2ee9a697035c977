package server_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/server"
)

// jsonHeaders are the headers oauth2.WriteJSON sets, with their values.
var jsonHeaders = map[string]string{
	"Content-Type":           "application/json",
	"Cache-Control":          "no-store",
	"Pragma":                 "no-cache",
	"X-Content-Type-Options": "nosniff",
}

// addingWriter adds to every header WriteJSON sets when the status is
// written, as a middleware in front of the server may (Cache-Control:
// no-transform, Vary), so those additions reach the response.
type addingWriter struct{ http.ResponseWriter }

func (w addingWriter) WriteHeader(code int) {
	h := w.Header()
	for k := range jsonHeaders {
		h.Add(k, "added")
	}
	h.Add("Vary", "Accept-Encoding")
	w.ResponseWriter.WriteHeader(code)
}

func (w addingWriter) Write(b []byte) (int, error) { return w.ResponseWriter.Write(b) }

// TestJSONHeadersNotChangedInPlace: WriteJSON gives every response the
// same slices as its header values, which nothing may change in place. A
// batch of token, error and other JSON answers of the whole server, with
// the headers its handlers add (WWW-Authenticate, Allow, Retry-After,
// DPoP-Nonce, X-Request-Id, ETag) and a middleware adding to the very
// headers WriteJSON set, before, while and after they are written, leaves
// those slices as they were, and a fresh response has the headers once.
func TestJSONHeadersNotChangedInPlace(t *testing.T) {
	// The slices WriteJSON shares, as a response gets them.
	rec := httptest.NewRecorder()
	oauth2.WriteJSON(rec, http.StatusOK, struct{}{})
	shared := map[string][]string{}
	for k, v := range jsonHeaders {
		s := rec.Header()[k]
		// len == cap, so that an Add to a response's header appends to a
		// copy, never to the shared array.
		if len(s) != 1 || s[0] != v || cap(s) != 1 {
			t.Fatalf("WriteJSON's %s is %q (cap %d), want [%s] with cap 1", k, s, cap(s), v)
		}
		shared[k] = s
	}

	f := newFixture(t, func(c *server.Config, _ *server.Deps) { c.DPoPNonces = true })
	introspector := f.introspector(t)
	opaque := f.accessToken(t, "opaque")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret))
	wrong := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":kw_wrong"))
	prover := dpoptest.NewProver(t)

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k := range jsonHeaders {
			h.Add(k, "before")
		}
		f.handler.ServeHTTP(addingWriter{w}, r)
		for k := range jsonHeaders {
			h.Add(k, "after")
		}
		h.Set("Vary", "Origin")
	})
	serve := func(method, path, body string, header http.Header) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for k, v := range header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if got := w.Result().Header; got.Get("Content-Type") == "application/json" {
			for k, v := range jsonHeaders {
				if want := []string{v, "added"}; !slices.Equal(got[k], want) {
					t.Errorf("%s %s: %s %q, want %q", method, path, k, got[k], want)
				}
			}
		}
		return w
	}
	auth := func(v string) http.Header { return http.Header{"Authorization": {v}} }
	want := func(w *httptest.ResponseRecorder, status int, header string) {
		t.Helper()
		if w.Code != status || header != "" && w.Header().Get(header) == "" {
			t.Fatalf("%d %s (%v), want %d with %s", w.Code, w.Body, w.Header(), status, header)
		}
	}

	cc := "grant_type=client_credentials&scope=orders.read"
	want(serve("POST", "/token", cc, auth(basic)), http.StatusOK, "X-Request-Id")
	want(serve("POST", "/token", cc, auth(wrong)), http.StatusUnauthorized, "WWW-Authenticate")
	want(serve("POST", "/token", "grant_type=password", auth(basic)), http.StatusBadRequest, "")
	want(serve("GET", "/token", "", nil), http.StatusMethodNotAllowed, "Allow")
	want(serve("GET", "/nothing", "", nil), http.StatusNotFound, "")
	want(serve("POST", "/v1/../token", cc, auth(basic)), http.StatusBadRequest, "")
	want(serve("POST", "/introspect", "token="+url.QueryEscape(opaque), auth(introspector)), http.StatusOK, "")
	want(serve("GET", "/v1/whoami", "", auth("Bearer "+opaque)), http.StatusForbidden, "")
	want(serve("GET", "/v1/whoami", "", nil), http.StatusUnauthorized, "")

	// DPoP: the nonce comes with the error that asks for it, then with
	// the token.
	now := time.Now()
	p, err := prover.Proof("POST", issuer+"/token", "", now)
	if err != nil {
		t.Fatal(err)
	}
	w := serve("POST", "/token", cc, http.Header{"Authorization": {basic}, "Dpop": {p}})
	want(w, http.StatusBadRequest, dpop.NonceHeader)
	if p, err = prover.ProofWithNonce("POST", issuer+"/token", "", w.Header().Get(dpop.NonceHeader), now); err != nil {
		t.Fatal(err)
	}
	want(serve("POST", "/token", cc, http.Header{"Authorization": {basic}, "Dpop": {p}}), http.StatusOK, dpop.NonceHeader)

	// Wrong secrets until the source is throttled: 429 with Retry-After.
	for i := 0; ; i++ {
		r := httptest.NewRequest("POST", "/token", strings.NewReader(cc))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", wrong)
		r.RemoteAddr = "198.51.100.9:443"
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code == http.StatusTooManyRequests {
			want(w, http.StatusTooManyRequests, "Retry-After")
			break
		}
		if i == 100 {
			t.Fatalf("100 wrong secrets never throttled: %d %s", w.Code, w.Body)
		}
	}

	for k, v := range jsonHeaders {
		if s := shared[k]; len(s) != 1 || s[0] != v || cap(s) != 1 {
			t.Errorf("after the batch, WriteJSON's shared %s is %q (cap %d), want [%s]", k, s[:cap(s)], cap(s), v)
		}
	}
	// A fresh response, straight from the server, has each header once.
	for _, w := range []*httptest.ResponseRecorder{f.do(cc, basic), f.doPath("/nothing", "", "")} {
		got := w.Result().Header
		for k, v := range jsonHeaders {
			if !slices.Equal(got[k], []string{v}) {
				t.Errorf("a fresh %d answer: %s %q, want [%s]", w.Code, k, got[k], v)
			}
		}
	}
}
