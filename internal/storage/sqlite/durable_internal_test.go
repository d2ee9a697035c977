package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestCommitsDurable: the connections Open makes write in WAL mode and
// fsync every commit (synchronous FULL, 2), which an answered token's
// audit event relies on to survive a power failure. The SIGKILL crash
// tests cannot see a weaker setting: a killed process's writes stay in
// the page cache.
func TestCommitsDurable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyward.db")
	st, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", writerDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx) // one connection: the pragmas are its own
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tt := range []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"},
	} {
		var got string
		if err := conn.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %s, want %s", tt.pragma, got, tt.want)
		}
	}
}
