package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecoverAdminIssuer: recover-admin run without --issuer or --listen
// writes a key file for the issuer the store recorded (the servers'
// --issuer), not for the default listener's, which a server with
// another issuer refuses; its output says which issuer the key file is
// for and where that came from. A store with none recorded (servers
// started without --issuer) gets the issuer derived from --listen, said
// so with how to give the server's; a --issuer given wins.
func TestRecoverAdminIssuer(t *testing.T) {
	const recorded = "https://keyward.test"
	tokenURI := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var kf struct {
			TokenURI string `json:"token_uri"`
		}
		if err := json.Unmarshal(b, &kf); err != nil {
			t.Fatal(err)
		}
		return kf.TokenURI
	}
	withIssuer := startServer(t, func(m *Main) { m.Config.Issuer = recorded })
	without := startServer(t)
	for _, tc := range []struct {
		name     string
		dir      string
		args     []string
		issuer   string
		wantLine string
	}{
		{"recorded", withIssuer.Config.DataDir, nil, recorded,
			"the key file is for the issuer " + recorded + ", recorded in the store by the server's --issuer; for a server with another issuer, give recover-admin its --issuer\n"},
		{"none recorded", without.Config.DataDir, nil, "http://127.0.0.1:8080",
			"the key file is for the issuer http://127.0.0.1:8080, derived from --listen 127.0.0.1:8080 (the default); for a server with another issuer, give recover-admin its --issuer or --listen\n"},
		{"--issuer given", withIssuer.Config.DataDir, []string{"--issuer", "https://other.test"}, "https://other.test",
			"the key file is for the issuer https://other.test, from --issuer; for a server with another issuer, give recover-admin its --issuer\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := filepath.Join(t.TempDir(), "admin-key.json")
			out := runCLI(t, append([]string{"recover-admin", "--config=", "--data-dir", tc.dir, "--key-file", key}, tc.args...)...)
			if got, want := tokenURI(key), tc.issuer+"/token"; got != want {
				t.Errorf("the key file's token_uri is %q, want %q", got, want)
			}
			if !strings.Contains(out, tc.wantLine) {
				t.Errorf("output %q, want it to contain %q", out, tc.wantLine)
			}
		})
	}
}

// TestRecoverAdminIssuerMasterKeyApart: a store whose recorded issuer is
// sealed with a master key kept apart from the data directory, and not
// given to recover-admin, gets a key file for the issuer derived from
// --listen, as before, with a warning that the store records one it
// could not read and what to give; it said nothing of it, and the output
// read as if the servers had no --issuer.
func TestRecoverAdminIssuerMasterKeyApart(t *testing.T) {
	t.Setenv("KEYWARD_MASTER_KEY", "")
	t.Setenv("KEYWARD_MASTER_KEY_FILE", "")
	masterKey := filepath.Join(t.TempDir(), "master.key")
	mustWriteFile(t, masterKey, []byte(strings.Repeat("a5", 32)+"\n"))
	m := startServer(t, func(m *Main) { m.Config.Issuer, m.Config.MasterKeyFile = "https://keyward.test", masterKey })
	var out, stderr strings.Builder
	cmd := newRootCommand()
	cmd.SetArgs([]string{"recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--key-file", filepath.Join(t.TempDir(), "admin-key.json")})
	cmd.SetOut(&out)
	cmd.SetErr(&stderr)
	if err := execute(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	if want := "the key file is for the issuer http://127.0.0.1:8080, derived from --listen"; !strings.Contains(out.String(), want) {
		t.Errorf("output %q, want it to contain %q", out.String(), want)
	}
	if want := "the store records one, sealed with the master key, which is not found here: give recover-admin the server's --master-key-file or KEYWARD_MASTER_KEY, or its --issuer"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want it to contain %q", stderr.String(), want)
	}
	// The flag the warning names is in --help, not hidden.
	if help := runCLI(t, "recover-admin", "--help"); !strings.Contains(help, "--master-key-file") {
		t.Errorf("recover-admin --help does not show --master-key-file:\n%s", help)
	}
}
