package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// FuzzAdminClientAnswer: whatever the admin API answers (status,
// Content-Type, ETag, body), adminClient.do never panics; it succeeds
// only on a 2xx whose body, if any, is JSON, then keeps the answer's
// ETag; it refuses a status of 300 or more with an *apiError of that
// status; and no error it returns, which the CLI prints on the
// operator's terminal, holds a control character or other unprintable
// text the server sent.
func FuzzAdminClientAnswer(f *testing.F) {
	for _, seed := range []struct {
		status      uint16
		contentType string
		etag        string
		body        string
	}{
		{200, "application/json", `"3"`, `{"name":"orders","identifier":"https://orders.internal","scopes":["orders.read"]}`},
		{200, "application/json", "", `{"apis":[{"name":"orders"}]}`},
		{200, "text/html", "", `<html>proxy login</html>`},
		{201, "application/json", `W/"x"`, `{}`},
		{204, "", "", ``},
		{200, "application/json", "", `{"name":1}`},
		{200, "application/json", "", `null`},
		{200, "application/json", "", "\x1b[31m"},
		{400, "application/json", "", `{"error":"invalid_request","error_description":"scopes is required"}`},
		{401, "application/json", "", `{"error":"invalid_token"}`},
		{404, "text/plain", "", `404 page not found`},
		{409, "application/json", "", `{"error":"conflict","error_description":"line one\nline two"}`},
		{412, "application/json", `"4"`, `{"error":"precondition_failed","error_description":"changed"}`},
		{500, "application/json", "", `{"error":"\u001b]0;pwned\u0007","error_description":"\u202eevil"}`},
		{502, "text/html", "", `<h1>Bad Gateway</h1>`},
		{503, "", "", ``},
		{302, "", "", ``},
		{599, "application/json", "", `{"error":""}`},
	} {
		f.Add(seed.status, seed.contentType, seed.etag, []byte(seed.body))
	}

	type answer struct {
		status      int
		contentType string
		etag        string
		body        []byte
	}
	var (
		mu  sync.Mutex
		ans answer
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		a := ans
		mu.Unlock()
		if a.contentType != "" {
			w.Header().Set("Content-Type", a.contentType)
		}
		if a.etag != "" {
			w.Header().Set("ETag", a.etag)
		}
		w.WriteHeader(a.status)
		w.Write(a.body)
	}))
	f.Cleanup(srv.Close)

	f.Fuzz(func(t *testing.T, status uint16, contentType, etag string, body []byte) {
		// 1xx is not a final answer, and net/http refuses to send a
		// status outside 200-999; the admin API's are 200-599.
		st := 200 + int(status)%400
		mu.Lock()
		ans = answer{st, contentType, etag, body}
		mu.Unlock()
		c := &adminClient{base: srv.URL, from: "--server", http: srv.Client(), out: io.Discard}

		var a admin.APIView
		var list struct {
			APIs []admin.APIView `json:"apis"`
		}
		var raw json.RawMessage
		for _, call := range []struct {
			method, path string
			in, out      any
		}{
			{http.MethodPost, "/v1/apis", admin.APIInput{Name: "orders"}, &a},
			{http.MethodGet, "/v1/apis", nil, &list},
			{http.MethodGet, "/v1/apis/orders", nil, &raw},
			{http.MethodDelete, "/v1/apis/orders", nil, nil},
		} {
			err := c.do(context.Background(), call.method, call.path, call.in, call.out)
			if err == nil {
				if st >= 300 {
					t.Fatalf("%s %s: HTTP %d taken as a success", call.method, call.path, st)
				}
				// (net/http sends no body with a 204.)
				if len(body) > 0 && st != http.StatusNoContent && !json.Valid(body) {
					t.Fatalf("%s %s: an answer that is not JSON taken as a success", call.method, call.path)
				}
				if etagSent(etag) && c.etag != etag {
					t.Fatalf("%s %s: etag %q, want %q", call.method, call.path, c.etag, etag)
				}
				continue
			}
			var ue *unreachableError
			if errors.As(err, &ue) {
				// The answer itself was malformed (a header net/http
				// refuses): no answer at all.
				continue
			}
			if st >= 300 {
				var ae *apiError
				if !errors.As(err, &ae) || ae.Status != st {
					t.Fatalf("%s %s: HTTP %d gave %#v", call.method, call.path, st, err)
				}
			}
			if msg := err.Error(); !printable(msg) {
				t.Fatalf("%s %s: the error holds unprintable text from the server: %q", call.method, call.path, msg)
			}
		}
	})
}

// etagSent reports whether net/http sends etag as it is: a value it
// would change (surrounding spaces, line breaks) is not worth a check.
func etagSent(etag string) bool {
	return etag != "" && printable(etag) && strings.TrimSpace(etag) == etag
}
