package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/server"
)

// A path the server has, asked with a method it does not take, is 405 with
// Allow (RFC 9110 §15.5.6), not 404: the catch-all routes, which take every
// method, kept the mux from saying so. A path it does not have stays 404.
func TestWrongMethod(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		method, path string
		status       int
		allow        string
		code         string
	}{
		{"POST", "/.well-known/oauth-authorization-server", 405, "GET, HEAD", "invalid_request"},
		{"DELETE", "/.well-known/jwks.json", 405, "GET, HEAD", "invalid_request"},
		{"PUT", "/service_accounts/v1/jwk/job@shop.iam.test", 405, "GET, HEAD", "invalid_request"},
		{"POST", "/healthz", 405, "GET, HEAD", "invalid_request"},
		{"GET", "/token", 405, "POST", "invalid_request"}, // the endpoint's own answer
		{"POST", "/nothing", 404, "", "not_found"},
		{"GET", "/.well-known/nothing", 404, "", "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
			var body struct {
				Error string `json:"error"`
			}
			json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tc.status || w.Header().Get("Allow") != tc.allow || body.Error != tc.code {
				t.Errorf("%d, Allow %q, %s; want %d, Allow %q, %s", w.Code, w.Header().Get("Allow"), w.Body, tc.status, tc.allow, tc.code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}
}

// A 404 names the path it did not find, cut short as the 405 and the
// admin API's 404 are: the answer does not grow with the request line.
func TestNotFoundPathCut(t *testing.T) {
	f := newFixture(t)
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, httptest.NewRequest("GET", "/"+strings.Repeat("x", 6000), nil))
	var body struct {
		Description string `json:"error_description"`
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 404 || !strings.Contains(body.Description, "/xxxx") || len(body.Description) > 300 {
		t.Fatalf("%d, description of %d bytes; want 404 with the path cut", w.Code, len(body.Description))
	}
}

// The request's log line cuts a long path and method, as the 404's
// description does: a client cannot make the server write 64 KiB lines.
// A path of any route, with the longest email, is logged whole.
func TestRequestLogCut(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, func(_ *server.Config, d *server.Deps) { d.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	longest := "/v1/service-accounts/" + strings.Repeat("a", 64) + "@" + strings.Repeat("b", 188) + "/secrets/0123456789abcdef/disable"
	tests := []struct {
		name, method, path string
		wantPath           string
	}{
		{"long path", "GET", "/" + strings.Repeat("x", 60000), "/" + strings.Repeat("x", 1023) + "…"},
		{"long method", strings.Repeat("M", 5000), "/nothing", "/nothing"},
		{"a route's longest path", "POST", longest, longest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			f.handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, tt.path, nil))
			var line string
			for l := range strings.Lines(logs.String()) {
				if strings.Contains(l, "msg=request ") {
					line = l
				}
			}
			if !strings.Contains(line, " path="+tt.wantPath+" ") || len(line) > 1400 {
				t.Errorf("request line of %d bytes: %.300q…, want path=%.60q… and at most 1400 bytes", len(line), line, tt.wantPath)
			}
		})
	}
}

// A request line is logged at the level that lets it through: /healthz's,
// which probes send every few seconds, at debug, so a debug log filtered
// to info and above leaves them out; every other at info.
func TestRequestLineLevel(t *testing.T) {
	tests := []struct {
		name, method, path string
		level              slog.Level
		want               string // the line's level=, or "" for none
	}{
		{"healthz at debug", "GET", "/healthz", slog.LevelDebug, "level=DEBUG"},
		{"healthz at info", "GET", "/healthz", slog.LevelInfo, ""},
		{"token at debug", "POST", "/token", slog.LevelDebug, "level=INFO"},
		{"token at info", "POST", "/token", slog.LevelInfo, "level=INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			f := newFixture(t, func(_ *server.Config, d *server.Deps) {
				d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: tt.level}))
			})
			f.handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, tt.path, nil))
			var line string
			for l := range strings.Lines(logs.String()) {
				if strings.Contains(l, "msg=request ") {
					line = l
				}
			}
			if got := strings.Contains(line, tt.want+" msg=request "); tt.want != "" && !got || tt.want == "" && line != "" {
				t.Errorf("request line %q, want %q", line, tt.want)
			}
		})
	}
}
