package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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
	mustWriteFile(t, path, stripped)
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

// TestECKeyFile: the CLI signs with an EC P-256 key file as it does with an
// RSA one (ES256), for tokens and for the admin API, also through
// --server (another name for the server, the audience staying token_uri).
func TestECKeyFile(t *testing.T) {
	m := startServer(t)
	data, err := os.ReadFile(m.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var kf map[string]any
	json.Unmarshal(data, &kf)
	admin := kf["client_email"].(string)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	dir := t.TempDir()
	pub := filepath.Join(dir, "ec.pub")
	mustWriteFile(t, pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	var uploaded struct {
		ID string `json:"key_id"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, "keys", "upload", admin, "--public-key", pub, "-o", "json", "--credentials", m.AdminKeyFile)), &uploaded); err != nil || uploaded.ID == "" {
		t.Fatalf("keys upload: %v %+v", err, uploaded)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	kf["private_key_id"], kf["private_key"] = uploaded.ID, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	ec, _ := json.Marshal(kf)
	path := filepath.Join(dir, "ec.json")
	mustWriteFile(t, path, ec)

	if tok := strings.TrimSpace(runCLI(t, "token", "--key-file", path, "--scopes", "keyward.admin")); tok == "" {
		t.Fatal("keyward token printed no token")
	}
	for _, server := range []string{"", "http://localhost:" + strings.TrimPrefix(m.listener.Addr().String(), "127.0.0.1:")} {
		args := []string{"sa", "list", "-o", "json", "--credentials", path}
		if server != "" {
			args = append(args, "--server", server)
		}
		if out := runCLI(t, args...); !strings.Contains(out, admin) {
			t.Errorf("keyward %s: %s, want the administrator listed", strings.Join(args, " "), out)
		}
	}
}

// TestAdminClientRedirects: the admin client follows no redirect to
// another host, where its token would go along.
func TestAdminClientRedirects(t *testing.T) {
	m := startServer(t)
	var leaked atomic.Bool
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
	}))
	defer evil.Close()
	redirector := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			return false
		}
		http.Redirect(w, r, evil.URL+r.URL.Path, http.StatusTemporaryRedirect)
		return true
	})
	err := runCLIErr(t, "sa", "list", "--credentials", m.AdminKeyFile, "--server", redirector.URL)
	if err == nil || !strings.Contains(err.Error(), "refusing to follow a redirect") {
		t.Errorf("sa list through a redirect to another host: %v, want it refused", err)
	}
	if leaked.Load() {
		t.Error("the administrator's token was sent to the other host")
	}
}
