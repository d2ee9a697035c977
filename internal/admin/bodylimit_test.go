package admin_test

import (
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
