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
