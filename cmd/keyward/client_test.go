package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAdminClientForeignAnswer: an answer that is not the admin API's
// JSON (a proxy's login page, a web server's error page, a status Go has
// no name for without an "error") is reported as such: the URL, the
// status, the Content-Type, whether --server or the key file's token_uri
// may be wrong, and the start of the answer, clipped and quoted where it
// is not printable. A 2xx of that kind used to give encoding/json's
// syntax error, or pass as a success where no answer was read, and a
// nameless status read " (HTTP 599)".
func TestAdminClientForeignAnswer(t *testing.T) {
	const login = "<!DOCTYPE html>\n<html>\n  <head><title>Sign in</title></head>\n  <body><form action=/login>...</form></body>\n</html>\n"
	const hint = `, not the admin API's JSON: is --server Keyward's URL, or does a proxy in front of it answer instead? `
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		from        string // adminClient.from; --server if ""
		method      string
		out         any
		// want is the error, with {url} for the request's URL.
		want string
	}{
		{name: "2xx login page", status: 200, contentType: "text/html; charset=utf-8", body: login, method: http.MethodGet, out: new(struct{}),
			want: `the server at {url} answered HTTP 200 OK with Content-Type text/html; charset=utf-8` + hint + `The answer begins: <!DOCTYPE html> <html> <head><title>Sign in</title></head> <body><form action=/l…`},
		{name: "2xx login page, key file's token_uri", status: 200, contentType: "text/html", body: "<html>Sign in</html>", from: "admin-key.json: token_uri", method: http.MethodGet, out: new(struct{}),
			want: `the server at {url} answered HTTP 200 OK with Content-Type text/html, not the admin API's JSON: is admin-key.json: token_uri Keyward's URL, or does a proxy in front of it answer instead? The answer begins: <html>Sign in</html>`},
		{name: "2xx not JSON, read raw", status: 200, contentType: "text/html", body: "<html>Sign in</html>", method: http.MethodPost, out: new(json.RawMessage),
			want: `the server at {url} answered HTTP 200 OK with Content-Type text/html` + hint + `The answer begins: <html>Sign in</html>`},
		{name: "2xx not JSON, no answer wanted", status: 200, contentType: "text/html", body: "<html>Sign in</html>", method: http.MethodDelete,
			want: `the server at {url} answered HTTP 200 OK with Content-Type text/html` + hint + `The answer begins: <html>Sign in</html>`},
		{name: "2xx unprintable", status: 200, body: "\x1b[31mred\x07", method: http.MethodGet, out: new(struct{}),
			want: `the server at {url} answered HTTP 200 OK with Content-Type application/octet-stream` + hint + `The answer begins: "\x1b[31mred\a"`},
		{name: "nameless status, JSON without error", status: 599, contentType: "application/json", body: `{"message":"nope"}`, method: http.MethodGet,
			want: `the server at {url} answered HTTP 599 with Content-Type application/json` + hint + `The answer begins: {"message":"nope"}`},
		{name: "nameless status, empty error", status: 599, contentType: "application/json", body: `{"error":""}`, method: http.MethodGet,
			want: `the server at {url} answered HTTP 599 with Content-Type application/json` + hint + `The answer begins: {"error":""}`},
		{name: "proxy's error page", status: 502, contentType: "text/html", body: "<html><body><h1>502 Bad Gateway</h1></body></html>", method: http.MethodPost,
			want: `the server at {url} answered HTTP 502 Bad Gateway with Content-Type text/html` + hint + `The answer begins: <html><body><h1>502 Bad Gateway</h1></body></html>`},
		{name: "web server's 404", status: 404, contentType: "text/plain", body: "404 page not found\n", method: http.MethodGet,
			want: `the server at {url} answered HTTP 404 Not Found with Content-Type text/plain` + hint + `The answer begins: 404 page not found`},
		{name: "empty and untyped", status: 503, method: http.MethodGet,
			want: `the server at {url} answered HTTP 503 Service Unavailable with no Content-Type` + hint + `The answer was empty.`},
		{name: "unprintable Content-Type", status: 502, contentType: "text/html\u202e", body: "x", method: http.MethodGet,
			want: `the server at {url} answered HTTP 502 Bad Gateway with Content-Type "text/html\u202e"` + hint + `The answer begins: x`},
		{name: "long Content-Type", status: 502, contentType: "text/html; " + strings.Repeat("a", 5000), body: "x", method: http.MethodGet,
			want: `the server at {url} answered HTTP 502 Bad Gateway with Content-Type text/html; ` + strings.Repeat("a", 69) + `…` + hint + `The answer begins: x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.contentType != "" {
					w.Header()["Content-Type"] = []string{tt.contentType}
				} else if tt.body == "" {
					w.Header()["Content-Type"] = nil
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			from := tt.from
			if from == "" {
				from = "--server"
			}
			c := &adminClient{base: srv.URL, from: from, http: srv.Client()}
			err := c.do(context.Background(), tt.method, "/v1/apis/orders?limit=1", nil, tt.out)
			want := strings.ReplaceAll(tt.want, "{url}", srv.URL+"/v1/apis/orders")
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, want)
			}
			var ae *apiError
			if errors.As(err, &ae) != (tt.status >= 300) || (ae != nil && ae.Status != tt.status) {
				t.Fatalf("HTTP %d gave %#v; want an *apiError of that status for a status of 300 or more, and only then", tt.status, err)
			}
		})
	}
}

// An answer longer than the client reads is said to be so, whatever its
// status, not taken for one that is not JSON (from something other than
// Keyward, as its cut-off start reads) nor, of a request that reads no
// answer, passed as done.
func TestAdminClientAnswerTooLong(t *testing.T) {
	long := append([]byte(`{"events":["`), strings.Repeat("a", 16<<20)...)
	long = append(long, `"]}`...)
	for _, status := range []int{http.StatusOK, http.StatusBadGateway} {
		for _, out := range []any{nil, new(json.RawMessage)} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				w.Write(long)
			}))
			c := &adminClient{base: srv.URL, from: "--server", http: srv.Client()}
			err := c.do(context.Background(), http.MethodGet, "/v1/audit?limit=1000", nil, out)
			srv.Close()
			want := fmt.Sprintf("the server at %s/v1/audit answered %s with more than 16 MiB", srv.URL, httpStatus(status))
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("HTTP %d, out %T: %v; want %q", status, out, err, want)
			}
		}
	}
}
