package server_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/storage/storagetest"
	"github.com/keyward/keyward/internal/testkeyward"
)

// downStore is a store whose pings, once down is set, fail, or, once
// silent is set, wait until their context ends.
type downStore struct {
	storage.Storage
	down, silent atomic.Bool
}

func (s *downStore) Ping(ctx context.Context) error {
	switch {
	case s.silent.Load():
		<-ctx.Done()
		return ctx.Err()
	case s.down.Load():
		return errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
	}
	return s.Storage.Ping(ctx)
}

// /readyz logs when the store becomes unreachable, with why, at most once
// a minute while it stays so, and when it answers again, not a warning
// per probe: probed every few seconds by every replica's kubelet, it
// flooded the log during an outage.
func TestReadyzLogsTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &downStore{Storage: openSQLite(t)}
		var logs, jsonLogs testkeyward.SyncBuffer
		f := newFixtureOn(t, st, func(_ *server.Config, d *server.Deps) {
			opts := &slog.HandlerOptions{Level: slog.LevelInfo}
			d.Logger = slog.New(slog.NewMultiHandler(slog.NewTextHandler(&logs, opts), slog.NewJSONHandler(&jsonLogs, opts)))
		})
		// probe probes /readyz as a kubelet does, giving up after 1 s if
		// hangUp is set, every 5 s.
		probe := func(hangUp bool) int {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if hangUp {
				ctx, cancel = context.WithTimeout(ctx, time.Second)
			}
			defer cancel()
			start := time.Now()
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/readyz", nil))
			time.Sleep(5*time.Second - time.Since(start))
			return w.Code
		}
		lines := func() []string {
			var out []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "ready") && !strings.Contains(l, "msg=request") {
					out = append(out, l)
				}
			}
			return out
		}
		if c := probe(false); c != 200 {
			t.Fatalf("/readyz = %d, want 200", c)
		}
		st.down.Store(true)
		for range 12 { // a minute of probes, from 5 s
			if c := probe(false); c != 503 {
				t.Fatalf("/readyz with the store down = %d, want 503", c)
			}
		}
		st.silent.Store(true)
		probe(false)   // at 65 s, given up at 67 s
		for range 13 { // from 70 s, each given up by the prober at 1 s
			probe(true)
		}
		st.silent.Store(false)
		st.down.Store(false)
		probe(false) // at 135 s
		probe(false)
		got := lines()
		want := []string{
			`level=WARN msg="not ready: store unreachable (while it stays so, this is logged at most once a minute)" err="dial tcp 10.0.0.5:5432: connect: connection refused"`,
			`level=WARN msg="still not ready: store unreachable" err="the store did not answer within 2s" down_for=1m2s failed_probes=12`,
			`level=WARN msg="still not ready: store unreachable" err="the store did not answer before the prober gave up" down_for=2m6s failed_probes=13`,
			`level=INFO msg="ready again: the store answers" down_for=2m10s`,
		}
		if len(got) != len(want) {
			t.Fatalf("logged %d lines, want %d: %q", len(got), len(want), got)
		}
		for i := range want {
			if !strings.HasSuffix(got[i], want[i]) {
				t.Errorf("line %d = %q, want it to end %q", i, got[i], want[i])
			}
		}
		// In JSON, down_for is an integer of nanoseconds, as slog writes
		// every duration (took, grace), not the string "2m10s".
		if w := `"msg":"ready again: the store answers","down_for":130000000000}`; !strings.Contains(jsonLogs.String(), w) {
			t.Errorf("JSON log lacks %s:\n%s", w, jsonLogs.String())
		}
	})
}

// /readyz is 503 while the store answers but cannot serve token requests
// (here a table they need is gone), not only while it does not answer:
// it said 200 while every token request got 503. It says so, in its
// answer and its log, rather than that the store is unreachable.
func TestReadyzStoreCannotServe(t *testing.T) {
	for _, tc := range []struct {
		name, missing string
		open          func(t *testing.T) (storage.Storage, func(t *testing.T, queries ...string))
	}{
		{"sqlite", "no such table: accounts", func(t *testing.T) (storage.Storage, func(t *testing.T, queries ...string)) {
			path := filepath.Join(t.TempDir(), "keyward.db")
			st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st, storagetest.Exec("sqlite", "file:"+path)
		}},
		{"postgres", `relation \"accounts\" does not exist`, func(t *testing.T) (storage.Storage, func(t *testing.T, queries ...string)) {
			dsn := pgtest.SchemaDSN(t)
			st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st, storagetest.Exec("pgx", dsn)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, exec := tc.open(t)
			var logs testkeyward.SyncBuffer
			f := newFixtureOn(t, st, func(_ *server.Config, d *server.Deps) {
				d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			})
			var body string
			probe := func() int {
				w := httptest.NewRecorder()
				f.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
				body = w.Body.String()
				return w.Code
			}
			if c := probe(); c != 200 {
				t.Fatalf("/readyz = %d, want 200", c)
			}
			exec(t, `ALTER TABLE accounts RENAME TO gone_accounts`)
			if c := probe(); c != 503 || body != "store cannot serve\n" {
				t.Errorf("/readyz with the accounts table gone = %d %q, want 503 %q", c, body, "store cannot serve\n")
			}
			if !strings.Contains(logs.String(), tc.missing) {
				t.Errorf("log does not say why /readyz failed (%s):\n%s", tc.missing, logs.String())
			}
			if out := logs.String(); !strings.Contains(out, `msg="not ready: store cannot serve (`) || strings.Contains(out, "unreachable") {
				t.Errorf("log does not say the store cannot serve, or says it is unreachable:\n%s", out)
			}
			exec(t, `ALTER TABLE gone_accounts RENAME TO accounts`)
			if c := probe(); c != 200 {
				t.Errorf("/readyz with the accounts table back = %d, want 200", c)
			}
		})
	}
}

// /readyz is 503 while the store's read of the tables gives up waiting
// for a lock another transaction holds (here PostgreSQL's lock_timeout,
// as another replica's migration may hold one), and says the store is
// busy, in its answer and its log: it said the store cannot serve, and
// the log that the database cannot read the tables.
func TestReadyzStoreBusy(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	migrated, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	migrated.Close()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := postgres.Open(ctx, dsn+sep+"lock_timeout=200ms", postgres.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	var logs testkeyward.SyncBuffer
	f := newFixtureOn(t, st, func(_ *server.Config, d *server.Deps) {
		d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	var body string
	probe := func() int {
		w := httptest.NewRecorder()
		f.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		body = w.Body.String()
		return w.Code
	}
	if c := probe(); c != 200 {
		t.Fatalf("/readyz = %d, want 200", c)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if c := probe(); c != 503 || body != "store busy\n" {
		t.Errorf("/readyz while another transaction locks accounts = %d %q, want 503 %q", c, body, "store busy\n")
	}
	out := logs.String()
	if !strings.Contains(out, `msg="not ready: store busy (`) || !strings.Contains(out, "the database did not answer the read of the tables in time") {
		t.Errorf("log does not say the store is busy:\n%s", out)
	}
	if strings.Contains(out, "cannot serve") || strings.Contains(out, "cannot read the tables") {
		t.Errorf("log says the store cannot serve:\n%s", out)
	}
	tx.Rollback()
	if c := probe(); c != 200 {
		t.Errorf("/readyz with the lock released = %d, want 200", c)
	}
}
