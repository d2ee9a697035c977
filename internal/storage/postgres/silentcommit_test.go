package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/sqlstore"
)

// openStore opens dsn, migrating it, and closes the store when the test
// ends.
func openStore(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A commit on a connection that went silent (its peer gone without a
// word) fails at the committer's CommitTimeout, and later writes commit
// on new connections: the pool recovers without a restart.
func TestCommitOnSilentConnection(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	ctx := context.Background()
	p := newSilencer(t, dsn)
	s := openStore(t, p.dsn)
	c := groupcommit.New(s, groupcommit.Options{CommitTimeout: 300 * time.Millisecond})
	defer func() {
		// Bounded, so that a commit stuck on the silent connection fails
		// the test rather than hanging it.
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c.Shutdown(ctx)
	}()
	w := func() storage.Write {
		return storage.Write{Events: []storage.AuditEvent{{Time: time.Now(), Action: "t", Outcome: storage.OutcomeSuccess}}}
	}
	if err := c.Write(ctx, w()); err != nil {
		t.Fatal(err)
	}
	p.silence()
	errc := make(chan error, 1)
	go func() { errc <- c.Write(ctx, w()) }()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Write on a silent connection = %v, want %v", err, context.DeadlineExceeded)
		}
	case <-time.After(time.Minute):
		t.Fatal("Write on a silent connection still waiting after a minute")
	}
	for start := time.Now(); c.Write(ctx, w()) != nil; {
		if time.Since(start) > 10*time.Second {
			t.Fatal("writes still fail 10 s after the connection went silent")
		}
	}
}
