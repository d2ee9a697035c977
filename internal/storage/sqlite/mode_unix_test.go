//go:build unix

package sqlite_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
)

// An existing database that other local users can read (a release before
// 0600 made it 0644) is tightened on open, with its -wal and -shm files,
// and each change is logged at warn; one another user owns is left as it
// is, with a warning. Files only their owner can read are not touched.
func TestOpenTightensExistingModes(t *testing.T) {
	ctx := context.Background()
	ev := storage.AuditEvent{Time: time.Now(), Action: "test", Outcome: storage.OutcomeSuccess}
	for _, tc := range []struct {
		name    string
		mode    os.FileMode // the files' mode before the open
		inUse   bool        // another store has the database open: -wal and -shm exist
		owner   int         // chown the files to this user first (as root); 0: keep
		want    os.FileMode
		logSays string // in the warning of each file; "" means no log at all
	}{
		{"0644 from an older release", 0o644, false, 0, 0o600, "its mode was tightened"},
		{"0644 with -wal and -shm", 0o644, true, 0, 0o600, "its mode was tightened"},
		{"the owner's alone", 0o600, true, 0, 0o600, ""},
		{"another user's", 0o644, true, 65534, 0o644, "another user owns it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owner != 0 && os.Geteuid() != 0 {
				t.Skip("giving a file to another user needs root")
			}
			path := filepath.Join(t.TempDir(), "keyward.db")
			first, err := sqlite.Open(ctx, path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := first.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}, CreatedAt: time.Now()}, ev); err != nil {
				t.Fatal(err)
			}
			if tc.inUse {
				defer first.Close()
			} else {
				first.Close()
			}
			files := []string{path}
			if tc.inUse {
				files = append(files, path+"-wal", path+"-shm")
			}
			for _, name := range files {
				if err := os.Chmod(name, tc.mode); err != nil {
					t.Fatal(err)
				}
				if tc.owner != 0 {
					if err := os.Chown(name, tc.owner, tc.owner); err != nil {
						t.Fatal(err)
					}
				}
			}

			var log bytes.Buffer
			s, err := sqlite.Open(ctx, path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.CreateAPI(ctx, storage.API{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}, CreatedAt: time.Now()}, ev); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(name)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != tc.want {
					t.Errorf("%s: mode %#o, want %#o", filepath.Base(name), got, tc.want)
				}
			}
			lines := strings.Split(strings.TrimSpace(log.String()), "\n")
			if tc.logSays == "" {
				if log.Len() > 0 {
					t.Errorf("logged %q, want nothing", log.String())
				}
				return
			}
			if len(lines) != len(files) {
				t.Fatalf("logged %d lines, want one for each of %d files:\n%s", len(lines), len(files), log.String())
			}
			for i, name := range files {
				for _, want := range []string{"level=WARN", tc.logSays, "file=" + name} {
					if !strings.Contains(lines[i], want) {
						t.Errorf("log line %q does not say %q", lines[i], want)
					}
				}
			}
		})
	}
}

// A database path that is a symbolic link has its -wal and -shm files
// beside the file it names, where SQLite keeps them: those are tightened,
// not files beside the link. A -wal file that is itself a link is not
// followed, so the file it names keeps its mode.
func TestOpenTightensThroughSymlink(t *testing.T) {
	ctx := context.Background()
	ev := storage.AuditEvent{Time: time.Now(), Action: "test", Outcome: storage.OutcomeSuccess}
	dir := t.TempDir()
	for _, d := range []string{"volume", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	real := filepath.Join(dir, "volume", "keyward.db")
	link := filepath.Join(dir, "data", "keyward.db")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	first, err := sqlite.Open(ctx, link, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := first.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}, CreatedAt: time.Now()}, ev); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{real, real + "-wal", real + "-shm"} {
		if err := os.Chmod(name, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Beside the link, where SQLite never looks: a -wal that is a link to
	// another file, which must keep its mode.
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, link+"-wal"); err != nil {
		t.Fatal(err)
	}

	s, err := sqlite.Open(ctx, link, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{real, real + "-wal", real + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", name, got)
		}
	}
	if fi, err := os.Stat(other); err != nil {
		t.Fatal(err)
	} else if got := fi.Mode().Perm(); got != 0o644 {
		t.Errorf("the file a -wal link beside the database link names: mode %#o, want 0644 (left alone)", got)
	}
}
