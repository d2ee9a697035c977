package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

func TestWatchSeesCommittedChanges(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make(chan string, 16)
	ready := make(chan struct{})
	go postgres.Watch(ctx, dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p string) { got <- p }, ready)
	<-ready

	ev := storage.AuditEvent{Time: time.Now(), Action: "t", Outcome: storage.OutcomeSuccess}
	a := storage.Account{ID: "100000000000000000001", Email: "a@p.example", Name: "a", Project: "p", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateAccount(ctx, a, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateAccount(ctx, a.ID, func(a storage.Account) (storage.Account, error) { a.Disabled = true; return a, nil }, ev); err != nil {
		t.Fatal(err)
	}
	// A failed update sends nothing.
	s.UpdateAccount(ctx, a.ID, func(a storage.Account) (storage.Account, error) { return a, context.Canceled }, ev)
	if err := s.CreateAPI(ctx, storage.API{Name: "x", Identifier: "https://x", Scopes: []string{"x.read"}, CreatedAt: time.Now()}, ev); err != nil {
		t.Fatal(err)
	}
	want := []string{a.ID, storage.ChangeAll}
	for _, w := range want {
		select {
		case p := <-got:
			if p != w {
				t.Fatalf("notification %q, want %q", p, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no notification for %q", w)
		}
	}
}

// A schema whose name is too long for PostgreSQL's channel names (63
// bytes) with the channel's prefix still has its changes made and
// announced: pg_notify refused the channel, failing every change, while
// LISTEN cut the name short.
func TestWatchLongSchemaName(t *testing.T) {
	if os.Getenv(pgtest.DSNEnv) == "" {
		t.Skipf("%s is not set", pgtest.DSNEnv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// 50 bytes, with the 13 random ones TempSchema adds: 63, the longest
	// name PostgreSQL keeps.
	dsn, drop, err := postgres.TempSchema(ctx, os.Getenv(pgtest.DSNEnv), "kwtest_a_schema_name_too_long_for_a_channel_")
	if err != nil {
		t.Fatal(err)
	}
	defer drop(context.Background())
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make(chan string, 16)
	ready := make(chan struct{})
	go postgres.Watch(ctx, dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p string) { got <- p }, ready)
	<-ready
	ev := storage.AuditEvent{Time: time.Now(), Action: "t", Outcome: storage.OutcomeSuccess}
	if err := s.CreateAPI(ctx, storage.API{Name: "x", Identifier: "https://x", Scopes: []string{"x.read"}, CreatedAt: time.Now()}, ev); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != storage.ChangeAll {
			t.Fatalf("notification %q, want %q", p, storage.ChangeAll)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
}
