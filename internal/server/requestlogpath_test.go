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

// The request's log line names the path as it was sent, escapes kept, as
// the 404 and the admin audit event do, so an operator finds it with the
// same search: decoded, /a%2Fb read /a/b and %20 a space. A credential
// given in it, escaped or not, is left out.
func TestRequestLogPathAsSent(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, func(_ *server.Config, d *server.Deps) { d.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	secret := "kw_" + strings.Repeat("Zs9", 14) + "x"
	tests := []struct {
		name, path, want string
	}{
		{"escaped slash", "/nope/a%2Fb", "/nope/a%2Fb"},
		{"escaped space", "/nope/no%20such%3Fthing", "/nope/no%20such%3Fthing"},
		{"escaped line break", "/nope/a%0Ab", "/nope/a%0Ab"},
		{"long", "/nope/" + strings.Repeat("%2F", 1000), "/nope/" + strings.Repeat("%2F", 339) + "…"},
		{"secret", "/nope/" + secret + "/x", "/nope/(credential)/x"},
		{"escaped secret", "/nope/kw%5F" + secret[3:], "/nope/(credential)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			f.handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tt.path, nil))
			var got string
			for l := range strings.Lines(logs.String()) {
				var line struct{ Msg, Path string }
				if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "request" {
					got = line.Path
				}
			}
			if got != tt.want {
				t.Errorf("request line's path %q, want %q", got, tt.want)
			}
		})
	}
}
