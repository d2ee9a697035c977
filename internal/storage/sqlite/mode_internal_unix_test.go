//go:build unix

package sqlite

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDatabaseModeWording: the warning of a database file whose mode lets
// group or others in says what they can do from its mode: read it,
// change it, or both (execute alone, for the bit that grants only that),
// as the master key's does; it said they could read it for any group or
// other bit, 0620 included, and 'was readable' when tightened.
func TestDatabaseModeWording(t *testing.T) {
	const holds = "secrets' hashes, sealed signing keys and the audit log"
	for _, tc := range []struct {
		name  string
		mode  os.FileMode // the file's mode before
		owner int         // chown the file to this user first (as root); 0: keep
		link  bool        // the name is a symbolic link to the file
		want  os.FileMode // the file's mode after
		says  string      // the warning; "" means no log at all
	}{
		{name: "group read", mode: 0o640, want: 0o600, says: "other local users could read the database file (it holds " + holds + "): its mode was tightened"},
		{name: "others read", mode: 0o604, want: 0o600, says: "other local users could read the database file ("},
		{name: "group write", mode: 0o620, want: 0o600, says: "other local users could change the database file ("},
		{name: "others write", mode: 0o602, want: 0o600, says: "other local users could change the database file ("},
		{name: "group read-write", mode: 0o660, want: 0o600, says: "other local users could read or change the database file ("},
		{name: "group write, others read", mode: 0o624, want: 0o600, says: "other local users could read or change the database file ("},
		{name: "group execute", mode: 0o610, want: 0o600, says: "other local users could execute the database file ("},
		{name: "the owner's alone", mode: 0o600, want: 0o600},
		{name: "another user's, read", mode: 0o644, owner: 65534, want: 0o644, says: "other local users can read the database file, which holds " + holds + ", and another user owns it"},
		{name: "another user's, write", mode: 0o620, owner: 65534, want: 0o620, says: "other local users can change the database file, which holds"},
		{name: "another user's, read-write", mode: 0o666, owner: 65534, want: 0o666, says: "other local users can read or change the database file, which holds"},
		{name: "a link, not followed", mode: 0o644, link: true, want: 0o644, says: "cannot check whether other local users can access the database file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owner != 0 && os.Geteuid() != 0 {
				t.Skip("giving a file to another user needs root")
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "keyward.db-wal")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file, tc.mode); err != nil {
				t.Fatal(err)
			}
			if tc.owner != 0 {
				if err := os.Chown(file, tc.owner, tc.owner); err != nil {
					t.Fatal(err)
				}
			}
			name := file
			if tc.link {
				name = filepath.Join(dir, "link")
				if err := os.Symlink(file, name); err != nil {
					t.Fatal(err)
				}
			}
			var log bytes.Buffer
			tightenMode(name, slog.New(slog.NewTextHandler(&log, nil)))
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.want {
				t.Errorf("mode %#o, want %#o", got, tc.want)
			}
			if tc.says == "" {
				if log.Len() > 0 {
					t.Errorf("logged %q, want nothing", log.String())
				}
				return
			}
			lines := strings.Split(strings.TrimSpace(log.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1:\n%s", len(lines), log.String())
			}
			for _, want := range []string{"level=WARN", tc.says, "file=" + name} {
				if !strings.Contains(lines[0], want) {
					t.Errorf("log line %s\ndoes not say %q", lines[0], want)
				}
			}
		})
	}
}
