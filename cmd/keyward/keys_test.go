package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExpiresIn: --expires-in of keys and secrets is refused when negative
// or under a second (the API counts whole seconds: it would mean never).
func TestExpiresIn(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "expiring")
	admin := []string{"--credentials", m.AdminKeyFile}
	pub := filepath.Join(t.TempDir(), "k.pub")
	os.WriteFile(pub, []byte("not used"), 0o600)
	out := filepath.Join(t.TempDir(), "k.json")
	for _, cmd := range [][]string{
		{"keys", "create", email, "--out", out},
		{"keys", "upload", email, "--public-key", pub},
		{"secrets", "create", email},
	} {
		for _, tt := range []struct{ value, want string }{
			{"500ms", "under a second"},
			{"999ms", "under a second"},
			{"-1s", "negative"},
			{"-500ms", "negative"},
		} {
			name := strings.Join(cmd[:2], " ") + " " + tt.value
			t.Run(name, func(t *testing.T) {
				err := runCLIErr(t, append(append(cmd, "--expires-in", tt.value), admin...)...)
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want a usage error saying %q", err, tt.want)
				}
			})
		}
	}
	// One second is the smallest lifetime, and it is one.
	var sec struct {
		ExpiresAt string `json:"expires_at"`
	}
	json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "create", email, "--expires-in", "1s", "-o", "json"}, admin...)...)), &sec)
	if sec.ExpiresAt == "" {
		t.Fatal("a secret created with --expires-in 1s never expires")
	}
}
