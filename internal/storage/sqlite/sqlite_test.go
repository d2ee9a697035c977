package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNoMigrateRefusesEmptyDatabase(t *testing.T) {
	_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{NoMigrate: true})
	if err == nil {
		t.Fatal("Open with NoMigrate accepted a database without the schema")
	}
}

// A database a newer release migrated is refused, migrating or not.
func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, opts := range []sqlite.Options{{}, {NoMigrate: true}} {
		_, err := sqlite.Open(ctx, path, opts)
		if err == nil || !strings.Contains(err.Error(), "version 9999") {
			t.Errorf("NoMigrate=%v: err = %v, want a refusal naming version 9999", opts.NoMigrate, err)
		}
	}
}
