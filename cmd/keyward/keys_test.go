package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// TestKeysCreateOut: a key file that cannot be written leaves no key
// behind: an unwritable --out is found before the key is created, and a
// write that fails anyway deletes the key again, naming it, and the file
// if it was written.
func TestKeysCreateOut(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "keyed")
	admin := []string{"--credentials", m.AdminKeyFile}
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
			before := keyCount(t, m, email)
			err := runCLIErr(t, append([]string{"keys", "create", email, "--out", tt.out, "--force"}, admin...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if n := keyCount(t, m, email); n != before {
				t.Fatalf("%d keys after the failure, want %d", n, before)
			}
		})
	}
	// A file system with neither hard links nor a rename that does not
	// replace, refused with EINVAL or (some FUSE and SMB ones) EPERM:
	// without --force the file cannot be written, found before the key
	// is created (it was created, and then deleted again).
	for _, renameErr := range []syscall.Errno{syscall.EINVAL, syscall.EPERM} {
		t.Run("no hard links, rename "+renameErr.Error(), func(t *testing.T) {
			defer func(l, r func(string, string) error) { linkFile, renameNew = l, r }(linkFile, renameNew)
			linkFile = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
			renameNew = func(o, n string) error { return &os.LinkError{Op: "rename", Old: o, New: n, Err: renameErr} }
			var created bool
			defer func(f func(string)) { publishing = f }(publishing)
			publishing = func(string) { created = true }
			dir := t.TempDir()
			out := filepath.Join(dir, "key.json")
			err := runCLIErr(t, append([]string{"keys", "create", email, "--out", out}, admin...)...)
			want := "cannot write the key file, no key was created: cannot create " + out + " without the risk of replacing a file made there meanwhile"
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; write it elsewhere, or pass --force to replace any file there") || created {
				t.Fatalf("error %v (a key created: %v), want %q… before a key is created", err, created, want)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("the directory holds %v, want nothing", names)
			}
			// --force renames over the file: no link is needed.
			runCLI(t, append([]string{"keys", "create", email, "--out", out, "--force"}, admin...)...)
			if names := dirNames(t, dir); len(names) != 1 {
				t.Errorf("the directory holds %v, want only key.json", names)
			}
		})
	}
	t.Run("write fails after the key is created", func(t *testing.T) {
		defer func(w func(string, []byte, bool) error) { writeKeyOut = w }(writeKeyOut)
		writeKeyOut = func(string, []byte, bool) error { return errors.New("disk full") }
		before := keyCount(t, m, email)
		err := runCLIErr(t, append([]string{"keys", "create", email, "--out", filepath.Join(dir, "k.json")}, admin...)...)
		if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "was deleted again") {
			t.Fatalf("error %v, want the cause and that the key was deleted", err)
		}
		if n := keyCount(t, m, email); n != before {
			t.Fatalf("%d keys after the failure, want %d: the orphaned key stayed", n, before)
		}
	})
	// The write fails and its temporary file, holding the private key,
	// cannot be removed: the message names it instead of saying no key
	// file was left.
	t.Run("write fails, temporary file left", func(t *testing.T) {
		tdir := t.TempDir()
		out := filepath.Join(tdir, "left.json")
		defer func(w func(string, io.Writer) io.Writer, r func(string) error) { writingFile, removeFile = w, r }(writingFile, removeFile)
		writingFile = func(p string, w io.Writer) io.Writer {
			if p == out {
				return failingWriter{syscall.ENOSPC}
			}
			return w
		}
		removeFile = func(name string) error {
			if filepath.Dir(name) == tdir {
				return &fs.PathError{Op: "remove", Path: name, Err: syscall.EIO}
			}
			return os.Remove(name)
		}
		before := keyCount(t, m, email)
		err := runCLIErr(t, append([]string{"keys", "create", email, "--out", out}, admin...)...)
		names := dirNames(t, tdir)
		if len(names) != 1 {
			t.Fatalf("the directory holds %v, want the temporary file alone", names)
		}
		tmp := filepath.Join(tdir, names[0])
		want := "; no key file of it was left at " + out + ", but its temporary file " + tmp + " is left, which could not be removed (input/output error): remove it"
		if err == nil || !strings.Contains(err.Error(), "was deleted again") || !strings.HasSuffix(err.Error(), want) || strings.Count(err.Error(), tmp) != 1 {
			t.Fatalf("error %v, want that the key was deleted, ending %q and naming the temporary file once", err, want)
		}
		if n := keyCount(t, m, email); n != before {
			t.Fatalf("%d keys after the failure, want %d", n, before)
		}
	})
	// The file is in place, but its directory cannot be synced: the key
	// was deleted, and its file, holding the private key of no key, stayed.
	t.Run("directory cannot be synced", func(t *testing.T) {
		defer func(f func(string) error) { syncDir = f }(syncDir)
		syncDir = func(string) error { return errors.New("input/output error") }
		before := keyCount(t, m, email)
		out := filepath.Join(dir, "unsynced.json")
		err := runCLIErr(t, append([]string{"keys", "create", email, "--out", out}, admin...)...)
		if err == nil || !strings.Contains(err.Error(), "was deleted again") || !strings.Contains(err.Error(), out+", written but not made durable, was removed") {
			t.Fatalf("error %v, want that the key was deleted and its file removed", err)
		}
		if n := keyCount(t, m, email); n != before {
			t.Fatalf("%d keys after the failure, want %d: the orphaned key stayed", n, before)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the key file of a deleted key is left: %v", err)
		}
	})
	// Another file put at --out meanwhile, even a copy of the key file,
	// is left: the key file's content was compared, not the file.
	t.Run("directory cannot be synced, file replaced meanwhile", func(t *testing.T) {
		out := filepath.Join(dir, "copied.json")
		defer func(f func(string) error) { syncDir = f }(syncDir)
		sync := syncDir
		syncDir = func(d string) error {
			if d != dir {
				return sync(d)
			}
			replaceWithCopy(t, out)
			return errors.New("input/output error")
		}
		err := runCLIErr(t, append([]string{"keys", "create", email, "--out", out}, admin...)...)
		if want := "no key file of it was left at " + out; err == nil || !strings.Contains(err.Error(), "was deleted again") || !strings.HasSuffix(err.Error(), want) {
			t.Fatalf("error %v, want that the key was deleted and %q", err, want)
		}
		if _, err := os.Stat(out); err != nil {
			t.Fatalf("the file put there meanwhile was removed: %v", err)
		}
	})
	// With --force over a file, that file went with the new one, which
	// replaced it: the error says so.
	t.Run("directory cannot be synced, --force", func(t *testing.T) {
		defer func(f func(string) error) { syncDir = f }(syncDir)
		syncDir = func(string) error { return errors.New("input/output error") }
		out := filepath.Join(dir, "replaced.json")
		if err := os.WriteFile(out, []byte("old key file\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := runCLIErr(t, append([]string{"keys", "create", email, "--out", out, "--force"}, admin...)...)
		want := out + ", written but not made durable, was removed, and the file it had replaced there is gone too"
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Fatalf("error %v, want it to end %q", err, want)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the key file of a deleted key is left: %v", err)
		}
	})
	// --out -: standard output closed (a pipe whose reader is gone) or
	// full. The key stayed, and a closed pipe killed the command
	// (SIGPIPE) before it could say so.
	t.Run("standard output fails", func(t *testing.T) {
		before := keyCount(t, m, email)
		cmd := newRootCommand()
		cmd.SetArgs(append([]string{"keys", "create", email, "--out", "-"}, admin...))
		cmd.SetOut(failingWriter{errors.New("broken pipe")})
		cmd.SetErr(new(strings.Builder))
		err := execute(context.Background(), cmd)
		if err == nil || !strings.Contains(err.Error(), "broken pipe") || !strings.Contains(err.Error(), "was deleted again") {
			t.Fatalf("error %v, want the cause and that the key was deleted", err)
		}
		if n := keyCount(t, m, email); n != before {
			t.Fatalf("%d keys after the failure, want %d: the orphaned key stayed", n, before)
		}
	})
}

// TestSecretsCreateOutputFails: a secret that could not be shown (standard
// output closed or full, as a table or JSON) is deleted again; it stayed
// active, unseen, holding one of the account's two active places.
func TestSecretsCreateOutputFails(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "secretive")
	admin := []string{"--credentials", m.AdminKeyFile}
	for _, output := range []string{"table", "json"} {
		t.Run(output, func(t *testing.T) {
			cmd := newRootCommand()
			cmd.SetArgs(append([]string{"secrets", "create", email, "-o", output}, admin...))
			cmd.SetOut(failingWriter{errors.New("broken pipe")})
			cmd.SetErr(new(strings.Builder))
			err := execute(context.Background(), cmd)
			if err == nil || !strings.Contains(err.Error(), "broken pipe") || !strings.Contains(err.Error(), "was deleted again") {
				t.Fatalf("error %v, want the cause and that the secret was deleted", err)
			}
			var resp struct {
				Secrets []json.RawMessage `json:"secrets"`
			}
			json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "list", email, "-o", "json"}, admin...)...)), &resp)
			if len(resp.Secrets) != 0 {
				t.Fatalf("%d secrets after the failure, want none: the unseen secret stayed", len(resp.Secrets))
			}
		})
	}
}

// failingWriter fails every write with err.
type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// TestExpiresIn: --expires-in of keys and secrets, and an account's
// --token-lifetime, are refused when negative or under a second (the API
// counts whole seconds, and 0 would mean never, or the server's default).
func TestExpiresIn(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "expiring")
	admin := []string{"--credentials", m.AdminKeyFile}
	pub := filepath.Join(t.TempDir(), "k.pub")
	mustWriteFile(t, pub, []byte("not used"))
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

// TestKeysAtTheCap: 'keys create' and 'keys upload' for an account with
// admin.MaxKeys keys fail (status 1, not a usage error) with the server's
// words, which name the cap and the command that makes room, and
// 'keys create' writes no key file.
func TestKeysAtTheCap(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "full")
	creds := []string{"--credentials", m.AdminKeyFile}
	dir := t.TempDir()
	pemFile := func(name string) string {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for i := range admin.MaxKeys {
		runCLI(t, append([]string{"keys", "upload", email, "--public-key", pemFile(fmt.Sprintf("k%d.pub", i))}, creds...)...)
	}
	out := filepath.Join(dir, "key.json")
	for _, args := range [][]string{
		{"keys", "create", email, "--out", out},
		{"keys", "upload", email, "--public-key", pemFile("one-more.pub")},
	} {
		err := runCLIErr(t, append(args, creds...)...)
		var ue usageError
		if err == nil || errors.As(err, &ue) {
			t.Fatalf("keyward %s: error %v, want a failure that is not a usage error", strings.Join(args[:2], " "), err)
		}
		for _, want := range []string{fmt.Sprintf("at most %d", admin.MaxKeys), "keyward keys delete " + email} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("keyward %s: %q does not say %q", strings.Join(args[:2], " "), err, want)
			}
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused 'keys create' left %s: %v", out, err)
	}
}

// TestSecretsAtTheCaps: 'secrets create' for an account with
// admin.MaxSecrets secrets, and 'secrets enable' of one past
// admin.MaxActiveSecrets active, fail (status 1, not a usage error) with
// the server's words, which name the cap and what makes room.
func TestSecretsAtTheCaps(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "full")
	creds := []string{"--credentials", m.AdminKeyFile}
	ctx, sys := context.Background(), admin.Actor{ID: "test"}
	var ids []string
	for i := range admin.MaxSecrets {
		s, err := m.Server.Admin.CreateSecret(ctx, sys, email, 0)
		if err != nil {
			t.Fatal(err)
		}
		if i < admin.MaxSecrets-admin.MaxActiveSecrets { // the last ones stay active
			if _, err := m.Server.Admin.SetSecretDisabled(ctx, sys, email, s.ID, true); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, s.ID)
	}
	for _, c := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"secrets", "create", email}, []string{fmt.Sprintf("at most %d", admin.MaxSecrets), "keyward secrets delete " + email}},
		{[]string{"secrets", "enable", email, ids[0]}, []string{fmt.Sprintf("at most %d at once", admin.MaxActiveSecrets), "Disable or delete one"}},
	} {
		err := runCLIErr(t, append(c.args, creds...)...)
		var ue usageError
		if err == nil || errors.As(err, &ue) {
			t.Fatalf("keyward %s: error %v, want a failure that is not a usage error", strings.Join(c.args[:2], " "), err)
		}
		for _, want := range c.wants {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("keyward %s: %q does not say %q", strings.Join(c.args[:2], " "), err, want)
			}
		}
	}
}

// keyCount returns how many keys keys list shows email's account has.
func keyCount(t *testing.T, m *Main, email string) int {
	t.Helper()
	var resp struct {
		Keys []json.RawMessage `json:"keys"`
	}
	out := runCLI(t, "keys", "list", email, "--credentials", m.AdminKeyFile, "-o", "json")
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("keys list: %v: %q", err, out)
	}
	return len(resp.Keys)
}
