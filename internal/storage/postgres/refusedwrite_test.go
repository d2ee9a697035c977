package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// A write PostgreSQL refuses, batched with others by the group commit,
// fails alone and says so: the writes batched with it are committed, their
// audit events recorded once each, the refused one's not at all, and the
// chain verifies. One refused row failed the batch's transaction, and with
// it every request batched with it.
func TestGroupCommitRefusedWriteFailsAlone(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name    string
		refused func(s storage.Write) storage.Write // the write PostgreSQL refuses
		want    error                               // errors.Is its error; nil: any
	}{
		{"NUL in a jti", func(w storage.Write) storage.Write {
			w.JTIs[0].JTI = "bad\x00jti"
			return w
		}, nil},
		{"opaque token hash already stored (unique violation)", func(w storage.Write) storage.Write {
			w.Token = &storage.TokenRecord{Hash: []byte("taken-hash"), ID: "tok-dup", AccountID: "1", Subject: "1", IssuedAt: time.Now(), ExpiresAt: exp}
			return w
		}, storage.ErrAlreadyExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.SchemaDSN(t)
			ctx := context.Background()
			s := openStore(t, dsn)
			var (
				mu      sync.Mutex
				batches []string
			)
			c := groupcommit.New(s, groupcommit.Options{OnBatch: func(n int, _ time.Duration, err error) {
				mu.Lock()
				batches = append(batches, fmt.Sprintf("%d:%v", n, err != nil))
				mu.Unlock()
			}})
			defer c.Close()
			write := func(jti string) storage.Write {
				return storage.Write{JTIs: []storage.UsedJTI{{Issuer: "i", JTI: jti, ExpiresAt: exp}},
					Events: []storage.AuditEvent{{Time: time.Now(), Action: "token.issued", Outcome: storage.OutcomeSuccess, Data: map[string]string{"jti": jti}}}}
			}
			if err := c.Write(ctx, storage.Write{Token: &storage.TokenRecord{Hash: []byte("taken-hash"), ID: "tok-first", AccountID: "1", Subject: "1", IssuedAt: time.Now(), ExpiresAt: exp},
				Events: []storage.AuditEvent{{Time: time.Now(), Action: "setup", Outcome: storage.OutcomeSuccess}}}); err != nil {
				t.Fatal(err)
			}

			// Another session holds the first write's JTI uncommitted: the
			// committer waits on it, and the writes after it gather into one
			// batch.
			db, blocker, blockerPID := holdJTI(t, dsn, "held", exp)
			defer blocker.Rollback() // before c.Close, which would wait on it
			firstErr := make(chan error, 1)
			go func() { firstErr <- c.Write(ctx, write("held")) }()
			for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
				var n int
				if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", blockerPID).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					break
				}
				if time.Since(start) > 10*time.Second {
					t.Fatal("the first write did not wait on the blocker's row")
				}
			}
			const n, bad = 5, 2
			errs := make([]chan error, n)
			for i := range n {
				errs[i] = make(chan error, 1)
				w := write(fmt.Sprintf("j%d", i))
				if i == bad {
					w = tc.refused(w)
				}
				go func() { errs[i] <- c.Write(ctx, w) }()
			}
			// All of them queued behind the first, which the committer is
			// committing: the next batch takes them all.
			for start := time.Now(); c.Queued() < n; time.Sleep(5 * time.Millisecond) {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("%d of %d writes queued behind the first after 10 s", c.Queued(), n)
				}
			}
			blocker.Rollback()
			if err := <-firstErr; err != nil {
				t.Fatalf("the first write: %v", err)
			}
			for i := range n {
				err := <-errs[i]
				switch {
				case i == bad && err == nil:
					t.Errorf("the refused write: Write = nil, want its error")
				case i == bad && tc.want != nil && !errors.Is(err, tc.want):
					t.Errorf("the refused write: Write = %v, want %v", err, tc.want)
				case i != bad && err != nil:
					t.Errorf("write %d, batched with a refused one: Write = %v, want nil", i, err)
				}
			}
			// A failed batch of all n writes: the refused one was batched
			// with the others.
			mu.Lock()
			if !slices.Contains(batches, fmt.Sprintf("%d:true", n)) {
				t.Errorf("batches (size:failed) %v: no failed batch of %d writes; the test did not batch them", batches, n)
			}
			mu.Unlock()

			evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Action: "token.issued"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range evs {
				got = append(got, e.Data["jti"])
			}
			slices.Sort(got)
			want := []string{"held", "j0", "j1", "j3", "j4"}
			if !slices.Equal(got, want) {
				t.Errorf("token.issued events recorded for %q, want %q", got, want)
			}
			if _, err := storage.VerifyLog(ctx, s); err != nil {
				t.Errorf("VerifyLog: %v", err)
			}
		})
	}
}
