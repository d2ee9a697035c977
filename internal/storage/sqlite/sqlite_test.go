package sqlite_test

import (
	"context"
	"path/filepath"
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
