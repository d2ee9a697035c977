//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMasterKeyFileMode: a master key file group or others may read is
// warned of, naming the file and the chmod 600 to run, at a server's start
// and by the commands that read the master key (master-key rotate,
// recover-admin); nothing warned of it, though the key opens all the
// store holds sealed. An operator's file (--master-key-file) is left as it
// is; the generated <data-dir>/master.key, Keyward's own, is tightened, as
// keyward.db is.
func TestMasterKeyFileMode(t *testing.T) {
	t.Setenv("KEYWARD_MASTER_KEY", "")
	t.Setenv("KEYWARD_MASTER_KEY_FILE", "")
	keyFile := func(t *testing.T) string {
		t.Helper()
		f := filepath.Join(t.TempDir(), "master.key")
		mustWriteFile(t, f, []byte(strings.Repeat("5a", 32)+"\n"))
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	mode := func(t *testing.T, f string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	warned := func(t *testing.T, what, log, file string) {
		t.Helper()
		if !strings.Contains(log, "other local users can read the master key file") || !strings.Contains(log, "chmod 600 "+file) {
			t.Errorf("%s logged:\n%s\nwant a warning naming chmod 600 %s", what, log, file)
		}
	}
	t.Run("serve, --master-key-file", func(t *testing.T) {
		f := keyFile(t)
		cfg := DefaultConfig()
		cfg.DataDir, cfg.MasterKeyFile = t.TempDir(), f
		var log bytes.Buffer
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&log, nil))}
		if _, _, err := m.loadMasterKey(context.Background()); err != nil {
			t.Fatal(err)
		}
		warned(t, "serve", log.String(), f)
		if got := mode(t, f); got != 0o644 {
			t.Errorf("the operator's key file is mode %#o now, want it left 0644", got)
		}
	})
	t.Run("serve, generated master.key", func(t *testing.T) {
		dir := t.TempDir()
		_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
		stop()
		f := filepath.Join(dir, "master.key")
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.DataDir = dir
		var log bytes.Buffer
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&log, nil))}
		if _, _, err := m.loadMasterKey(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "its mode was tightened") || !strings.Contains(log.String(), f) {
			t.Errorf("serve logged:\n%s\nwant a warning that the mode of %s was tightened", log.String(), f)
		}
		if got := mode(t, f); got != 0o600 {
			t.Errorf("the generated master.key is mode %#o, want 0600", got)
		}
	})
	t.Run("serve, generated master.key a link", func(t *testing.T) {
		// A <data-dir>/master.key that is a symbolic link (to a volume, a
		// secret mount) is checked as the file it names, and warned of;
		// it is never changed through the link, which may name anything.
		dir := t.TempDir()
		_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
		stop()
		f := filepath.Join(dir, "master.key")
		target := filepath.Join(t.TempDir(), "master.key")
		if err := os.Rename(f, target); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, f); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(target, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.DataDir = dir
		var log bytes.Buffer
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&log, nil))}
		if _, _, err := m.loadMasterKey(context.Background()); err != nil {
			t.Fatal(err)
		}
		warned(t, "serve", log.String(), f)
		if !strings.Contains(log.String(), "mode=0644") {
			t.Errorf("serve logged:\n%s\nwant the mode of the file the link names, mode=0644", log.String())
		}
		if got := mode(t, target); got != 0o644 {
			t.Errorf("the file master.key links to is mode %#o now, want it left 0644", got)
		}
	})
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		var stderr strings.Builder
		cmd := newRootCommand()
		cmd.SetArgs(args)
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(&stderr)
		if err := execute(context.Background(), cmd); err != nil {
			t.Fatalf("keyward %s: %v", strings.Join(args, " "), err)
		}
		return stderr.String()
	}
	t.Run("master-key rotate", func(t *testing.T) {
		f := keyFile(t)
		dir := t.TempDir()
		_, stop := launchServer(t, func(m *Main) { m.Config.DataDir, m.Config.MasterKeyFile = dir, f })
		stop()
		newKey := keyFile(t)
		mustWriteFile(t, newKey, []byte(strings.Repeat("a5", 32)+"\n"))
		stderr := run(t, "master-key", "rotate", "--config=", "--data-dir", dir, "--master-key-file", f, "--new-master-key-file", newKey)
		warned(t, "master-key rotate", stderr, f)
		warned(t, "master-key rotate", stderr, newKey)
	})
	t.Run("recover-admin", func(t *testing.T) {
		f := keyFile(t)
		dir := t.TempDir()
		_, stop := launchServer(t, func(m *Main) {
			m.Config.DataDir, m.Config.MasterKeyFile, m.Config.Issuer = dir, f, "https://keyward.test"
		})
		stop()
		stderr := run(t, "recover-admin", "--config=", "--data-dir", dir, "--master-key-file", f, "--key-file", filepath.Join(t.TempDir(), "admin.json"))
		warned(t, "recover-admin", stderr, f)
	})
}

// TestMasterKeyModeWording: the warning of a master key file that group
// or others may access says what they can do from its mode: read it,
// change it, or both (execute alone, for the bit that grants only that);
// it said they could read it for any group or other bit, 0620 included.
// filemode's TestOthersMay words every mode; this checks each word
// reaches both warnings.
func TestMasterKeyModeWording(t *testing.T) {
	for _, tt := range []struct {
		mode os.FileMode
		want string
	}{
		{0o640, "read"},
		{0o620, "change"},
		{0o660, "read or change"},
		{0o610, "execute"},
	} {
		for _, generated := range []bool{false, true} {
			want := "other local users can " + tt.want + " the master key file,"
			if generated {
				want = "other local users could " + tt.want + " the master key file ("
			}
			t.Run(fmt.Sprintf("%#o generated=%v", tt.mode, generated), func(t *testing.T) {
				f := filepath.Join(t.TempDir(), "master.key")
				mustWriteFile(t, f, []byte(strings.Repeat("5a", 32)+"\n"))
				if err := os.Chmod(f, tt.mode); err != nil {
					t.Fatal(err)
				}
				var log bytes.Buffer
				checkMasterKeyMode(f, generated, slog.New(slog.NewTextHandler(&log, nil)))
				if !strings.Contains(log.String(), want) {
					t.Errorf("logged:\n%s\nwant %q", log.String(), want)
				}
			})
		}
	}
}
