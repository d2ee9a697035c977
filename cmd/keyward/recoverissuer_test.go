package main

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/signer"
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

// TestRecoverAdminIssuerListenDiffers: recover-admin with --listen (on the
// command line, in the environment or the config file) and no --issuer,
// on a store that recorded another issuer from the servers' --issuer,
// writes its key file for the issuer derived from --listen, as before,
// and warns, naming both and --issuer; it used the derived one with no
// word of the recorded one. A --key-file in the way is refused before the
// store's issuer is looked up, so no warning of it comes first.
func TestRecoverAdminIssuerListenDiffers(t *testing.T) {
	t.Setenv("KEYWARD_MASTER_KEY", "")
	t.Setenv("KEYWARD_MASTER_KEY_FILE", "")
	const recorded = "https://keyward.test"
	m := startServer(t, func(m *Main) { m.Config.Issuer = recorded })
	run := func(t *testing.T, key string, args ...string) (stderr string, err error) {
		t.Helper()
		var out, errs strings.Builder
		cmd := newRootCommand()
		cmd.SetArgs(append([]string{"recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--key-file", key}, args...))
		cmd.SetOut(&out)
		cmd.SetErr(&errs)
		err = execute(context.Background(), cmd)
		return errs.String(), err
	}
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"flag", "", []string{"--listen", "127.0.0.1:9090"}},
		{"environment", "127.0.0.1:9090", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KEYWARD_LISTEN", tc.env)
			stderr, err := run(t, filepath.Join(t.TempDir(), "admin-key.json"), tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{recorded, "http://127.0.0.1:9090", "--issuer " + recorded} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q, want a warning naming %q", stderr, want)
				}
			}
		})
	}
	t.Run("--key-file in the way", func(t *testing.T) {
		// Its master key not found here, the recorded issuer is warned of
		// as unreadable when looked up.
		t.Setenv("KEYWARD_LISTEN", "")
		if err := os.Rename(filepath.Join(m.Config.DataDir, "master.key"), filepath.Join(t.TempDir(), "master.key")); err != nil {
			t.Fatal(err)
		}
		key := filepath.Join(t.TempDir(), "admin-key.json")
		mustWriteFile(t, key, []byte("{}\n"))
		stderr, err := run(t, key)
		if want := "--key-file " + key + " already exists; name a new file"; err == nil || err.Error() != want {
			t.Fatalf("recover-admin: %v, want %q", err, want)
		}
		if stderr != "" {
			t.Errorf("stderr %q before the refusal, want nothing", stderr)
		}
	})
}

// TestRecoverAdminWrongMasterKey: recover-admin given a master key that
// does not open the store (--master-key-file or KEYWARD_MASTER_KEY; read
// for the issuer the store recorded) refuses with the message a start
// with it gets, before it writes a key file or stores a key. It warned
// that the recorded issuer could not be read (or, with --listen, said
// nothing), then wrote a key file for the derived issuer and stored its
// key.
func TestRecoverAdminWrongMasterKey(t *testing.T) {
	t.Setenv("KEYWARD_MASTER_KEY", "")
	t.Setenv("KEYWARD_MASTER_KEY_FILE", "")
	m := startServer(t, func(m *Main) { m.Config.Issuer = "https://keyward.test" })
	wrong := strings.Repeat("5a", 32)
	wrongFile := filepath.Join(t.TempDir(), "wrong.key")
	mustWriteFile(t, wrongFile, []byte(wrong+"\n"))
	ctx := context.Background()
	acct, err := m.store.GetAccountByEmail(ctx, m.Server.Admin.Email(admin.AdminAccountName, admin.AdminProject))
	if err != nil {
		t.Fatal(err)
	}
	before, err := m.store.ListKeys(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"--master-key-file", "", []string{"--master-key-file", wrongFile}},
		{"--master-key-file and --listen", "", []string{"--master-key-file", wrongFile, "--listen", "127.0.0.1:9090"}},
		{"KEYWARD_MASTER_KEY", wrong, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KEYWARD_MASTER_KEY", tc.env)
			key := filepath.Join(t.TempDir(), "admin-key.json")
			err := runCLIErr(t, append([]string{"recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--key-file", key}, tc.args...)...)
			if want := "the master key does not open the stored client-secret pepper: it is not the key this store was sealed with"; err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("recover-admin: %v, want an error saying %q", err, want)
			}
			if !errors.Is(err, signer.ErrWrongMasterKey) {
				t.Errorf("recover-admin: %v, want signer.ErrWrongMasterKey", err)
			}
			if _, err := os.Lstat(key); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the key file: %v, want none written", err)
			}
			after, err := m.store.ListKeys(ctx, acct.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Errorf("the administrator has %d keys, had %d: a key was stored", len(after), len(before))
			}
		})
	}
}
