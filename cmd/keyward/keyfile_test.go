package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyFileWithoutTokenURI: a key file that does not say where its token
// endpoint is must be refused, not traded at Google's endpoint (x/oauth2's
// default).
func TestKeyFileWithoutTokenURI(t *testing.T) {
	m := startServer(t)
	data, err := os.ReadFile(m.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var kf map[string]any
	json.Unmarshal(data, &kf)
	delete(kf, "token_uri")
	stripped, _ := json.Marshal(kf)
	path := filepath.Join(t.TempDir(), "key.json")
	os.WriteFile(path, stripped, 0o600)
	for _, args := range [][]string{
		{"token", "--key-file", path, "--scopes", "keyward.admin"},
		{"sa", "list", "--credentials", path},
	} {
		err := runCLIErr(t, args...)
		if err == nil || !strings.Contains(err.Error(), "token_uri") || strings.Contains(err.Error(), "googleapis") {
			t.Errorf("keyward %s: %v, want the missing token_uri named", strings.Join(args, " "), err)
		}
	}
}
