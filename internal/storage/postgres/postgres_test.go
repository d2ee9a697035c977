package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := postgres.Open(context.Background(), pgtest.SchemaDSN(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenBadDSN(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", postgres.Options{})
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("error %q does not say which backend failed", err)
	}
}

// TestConcurrentMigrations: replicas starting at once on an empty database
// take turns migrating; all of them come up.
func TestConcurrentMigrations(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err == nil {
				_, err = s.CountAccounts(context.Background())
				s.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("a replica failed to start: %v", err)
		}
	}
	if _, err := postgres.Open(context.Background(), dsn, postgres.Options{NoMigrate: true}); err != nil {
		t.Fatalf("the schema is not current after concurrent starts: %v", err)
	}
}
