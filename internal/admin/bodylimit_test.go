package admin_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// TestBodyLimitWording: the 413 for a body over the limit names the limit
// and fits every route that reads a body, not imports alone: a key upload
// of a huge file is no import.
func TestBodyLimitWording(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	huge := strings.Repeat("A", admin.MaxBodyBytes)
	tests := []struct {
		name, method, path string
		body               any
	}{
		{"key upload", "POST", "/v1/service-accounts/" + f.admin.Email + "/keys/upload", admin.KeyRequest{PublicKeyPEM: huge}},
		{"API create", "POST", "/v1/apis", admin.APIInput{Name: "big", Identifier: "https://big.internal", Scopes: []string{huge}}},
		{"users import", "POST", "/v1/users", `{"users":[{"email":"` + huge + `"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out, _ := f.call(t, tt.method, tt.path, auth, tt.body)
			desc, _ := out["error_description"].(string)
			if status != 413 {
				t.Fatalf("status %d (%s), want 413", status, desc)
			}
			for _, want := range []string{"larger than 1048576 bytes (1 MiB)", "in one request", "send a smaller body"} {
				if !strings.Contains(desc, want) {
					t.Errorf("error_description %q does not say %q", desc, want)
				}
			}
			if strings.Contains(desc, "imports") {
				t.Errorf("error_description %q speaks of imports on every route", desc)
			}
		})
	}
}

// TestCompressedBodyRefused: a body sent compressed (Content-Encoding
// gzip, …) is refused 415 saying so, as the token endpoint refuses one; it
// was read as JSON and refused for what it looked like then ("The request
// body contains a NUL character."). identity is no compression.
func TestCompressedBodyRefused(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"name":"zipped","identifier":"https://zipped.internal","scopes":["zipped.read"]}`))
	zw.Close()
	for _, tt := range []struct {
		encoding, body string
		more           string // a second Content-Encoding header
		status         int
		says           string
	}{
		{"gzip", gz.String(), "", 415, `The request body must not be compressed (Content-Encoding "gzip"): send the JSON uncompressed.`},
		{"br", `{"name":"br"}`, "", 415, `(Content-Encoding "br")`},
		{"IDENTITY", `{"name":"plain","identifier":"https://plain.internal","scopes":["plain.read"]}`, "", 201, ""},
		// Every header counts, every member of each, not the first alone.
		{"identity", gz.String(), "gzip", 415, `(Content-Encoding "gzip")`},
		{"identity, gzip", gz.String(), "", 415, `(Content-Encoding "gzip")`},
		{"identity", `{"name":"plain2","identifier":"https://plain2.internal","scopes":["plain2.read"]}`, "identity", 201, ""},
	} {
		req := httptest.NewRequest("POST", "/v1/apis", strings.NewReader(tt.body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Encoding", tt.encoding)
		if tt.more != "" {
			req.Header.Add("Content-Encoding", tt.more)
		}
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, req)
		var out map[string]any
		json.Unmarshal(w.Body.Bytes(), &out)
		desc, _ := out["error_description"].(string)
		if w.Code != tt.status || (tt.says != "" && (out["error"] != "invalid_request" || !strings.Contains(desc, tt.says))) {
			t.Errorf("Content-Encoding %s, %s: %d %v, want %d saying %q", tt.encoding, tt.more, w.Code, out, tt.status, tt.says)
		}
	}
}
