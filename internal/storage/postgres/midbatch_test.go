package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// A batch whose connection the database ends in the middle of its
// transaction fails, as one, with the connection's error (a token request
// is then answered 503 and hands out no token); nothing of it is
// recorded, and the next write commits on a new connection.
func TestCommitConnectionEndedMidBatch(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	ctx := context.Background()
	s := openStore(t, dsn)
	c := groupcommit.New(s, groupcommit.Options{})
	defer c.Close()
	// Another session inserts the batch's JTI and holds it uncommitted:
	// the batch waits on it, inside its transaction.
	exp := time.Now().Add(time.Hour)
	db, blocker, blockerPID := holdJTI(t, dsn, "j", exp)
	defer blocker.Rollback() // before c.Close, which would wait on it
	w := func(jti string) storage.Write {
		return storage.Write{JTIs: []storage.UsedJTI{{Issuer: "i", JTI: jti, ExpiresAt: exp}},
			Events: []storage.AuditEvent{{Time: time.Now(), Action: "token.issued", Outcome: storage.OutcomeSuccess, Data: map[string]string{"jti": jti}}}}
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Write(ctx, w("j")) }()
	// End the session that waits on the blocker's row.
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", blockerPID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the batch did not wait on the blocker's row")
		}
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a batch whose connection was ended committed")
		}
		t.Log(err)
	case <-time.After(time.Minute):
		t.Fatal("Write still waiting a minute after its connection was ended")
	}
	blocker.Rollback()
	evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Action: "token.issued"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Errorf("%d events recorded by a failed batch", len(evs))
	}
	if err := c.Write(ctx, w("k")); err != nil {
		t.Errorf("Write after the connection was ended: %v", err)
	}
}
