package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// A transaction that cannot start because another connection holds the
// database's write lock is busy: Commit returns it as storage.ErrBusy, so
// that group commit does not wait for it again write by write.
func TestIsBusy(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "busy.db") + "?_pragma=busy_timeout(0)&_txlock=immediate"
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	ctx := context.Background()
	if _, err := a.ExecContext(ctx, "CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	holder, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	_, err = b.BeginTx(ctx, nil)
	if err == nil || !isBusy(err) || isUniqueViolation(err) {
		t.Fatalf("begin while another holds the lock: %v; want a busy error", err)
	}
	if isBusy(nil) {
		t.Fatal("isBusy(nil)")
	}
}
