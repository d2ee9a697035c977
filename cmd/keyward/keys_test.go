package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeysCreateOut: a key file that cannot be written leaves no key
// behind: an unwritable --out is found before the key is created, and a
// write that fails anyway deletes the key again, naming it.
func TestKeysCreateOut(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "keyed")
	admin := []string{"--credentials", m.AdminKeyFile}
	keyCount := func() int {
		var resp struct {
			Keys []json.RawMessage `json:"keys"`
		}
		json.Unmarshal([]byte(runCLI(t, append([]string{"keys", "list", email, "-o", "json"}, admin...)...)), &resp)
		return len(resp.Keys)
	}
	dir := t.TempDir()
	tests := []struct {
		name string
		out  string
		want string
	}{
		{"no such directory", filepath.Join(dir, "missing", "key.json"), "no key was created"},
		{"a directory", dir, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := keyCount()
			err := runCLIErr(t, append([]string{"keys", "create", email, "--out", tt.out, "--force"}, admin...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if n := keyCount(); n != before {
				t.Fatalf("%d keys after the failure, want %d", n, before)
			}
		})
	}
	t.Run("write fails after the key is created", func(t *testing.T) {
		defer func(w func(string, []byte, os.FileMode) error) { writeKeyOut = w }(writeKeyOut)
		writeKeyOut = func(string, []byte, os.FileMode) error { return errors.New("disk full") }
		before := keyCount()
		err := runCLIErr(t, append([]string{"keys", "create", email, "--out", filepath.Join(dir, "k.json")}, admin...)...)
		if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "was deleted again") {
			t.Fatalf("error %v, want the cause and that the key was deleted", err)
		}
		if n := keyCount(); n != before {
			t.Fatalf("%d keys after the failure, want %d: the orphaned key stayed", n, before)
		}
	})
}

// TestExpiresIn: --expires-in of keys and secrets, and an account's
// --token-lifetime, are refused when negative or under a second (the API
// counts whole seconds, and 0 would mean never, or the server's default).
func TestExpiresIn(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "expiring")
	admin := []string{"--credentials", m.AdminKeyFile}
	pub := filepath.Join(t.TempDir(), "k.pub")
	os.WriteFile(pub, []byte("not used"), 0o600)
	out := filepath.Join(t.TempDir(), "k.json")
	for _, cmd := range []struct {
		args []string
		flag string
	}{
		{[]string{"keys", "create", email, "--out", out}, "--expires-in"},
		{[]string{"keys", "upload", email, "--public-key", pub}, "--expires-in"},
		{[]string{"secrets", "create", email}, "--expires-in"},
		{[]string{"sa", "create", "shortlived", "--project", "billing"}, "--token-lifetime"},
		{[]string{"sa", "update", email}, "--token-lifetime"},
	} {
		for _, tt := range []struct{ value, want string }{
			{"500ms", "under a second"},
			{"999ms", "under a second"},
			{"-1s", "negative"},
			{"-500ms", "negative"},
		} {
			name := strings.Join(cmd.args[:2], " ") + " " + tt.value
			t.Run(name, func(t *testing.T) {
				err := runCLIErr(t, append(append(cmd.args, cmd.flag, tt.value), admin...)...)
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), cmd.flag+" "+tt.value) {
					t.Fatalf("error %v, want a usage error about %s %s", err, cmd.flag, tt.value)
				}
				if cmd.flag == "--expires-in" && !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want it to say %q", err, tt.want)
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
