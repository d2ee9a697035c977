package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2/google"

	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// TestExportImport moves a served SQLite store to PostgreSQL with the CLI
// and checks that the key file still gets tokens there.
func TestExportImport(t *testing.T) {
	master := filepath.Join(t.TempDir(), "master.key")
	os.WriteFile(master, []byte(strings.Repeat("cd", 32)), 0o600)
	src := startServer(t, func(m *Main) { m.Config.MasterKeyFile = master })
	_, email := setupAccount(t, src, "mover")
	keyFile := filepath.Join(t.TempDir(), "key.json")
	runCLI(t, "keys", "create", email, "--out", keyFile, "--credentials", src.AdminKeyFile)
	dump := filepath.Join(t.TempDir(), "export.json")
	runCLI(t, "export", "--data-dir", src.Config.DataDir, "--out", dump)

	dsn := pgtest.SchemaDSN(t)
	out := runCLI(t, "import", "--db", dsn, dump)
	if !strings.Contains(out, "2 accounts") {
		t.Fatalf("import said %q", out)
	}
	dst := startServer(t, func(m *Main) {
		m.Config.DB, m.Config.MasterKeyFile = dsn, master
		m.Config.Issuer = src.Issuer // clients' key files name the old URL
		m.Config.Listen = "127.0.0.1:0"
	})
	if dst.AdminKeyFile != "" {
		t.Fatal("the imported store was bootstrapped again")
	}
	if dst.signer.CurrentKeyID() != src.signer.CurrentKeyID() {
		t.Fatal("the signing keys did not move")
	}
	// The old key file gets a token from the new server (same issuer).
	data, _ := os.ReadFile(keyFile)
	conf, err := google.JWTConfigFromJSON(data, "orders.read")
	if err != nil {
		t.Fatal(err)
	}
	conf.Audience, conf.TokenURL = conf.TokenURL, dst.URL()+"/token"
	if _, err := conf.TokenSource(context.Background()).Token(); err != nil {
		t.Fatalf("the moved account gets no token: %v", err)
	}
}
