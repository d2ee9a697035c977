package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeyward"
)

// gatedKeys is a signer.Store whose ListSigningKeys, once gated, waits
// for its gate to open (or its context to end), counting the calls and
// the most running at once.
type gatedKeys struct {
	signer.Store
	mu               sync.Mutex
	gate             chan struct{} // nil: not gated
	calls, now, most int
	canceled         int
	// slowCancel: how long a call waits, once its context ends, before
	// it returns (a store slow to give up a query).
	slowCancel time.Duration
}

func (g *gatedKeys) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	g.mu.Lock()
	gate := g.gate
	if gate != nil {
		g.calls++
		g.now++
		g.most = max(g.most, g.now)
	}
	g.mu.Unlock()
	if gate != nil {
		defer func() { g.mu.Lock(); g.now--; g.mu.Unlock() }()
		select {
		case <-gate:
		case <-ctx.Done():
			g.mu.Lock()
			g.canceled++
			slow := g.slowCancel
			g.mu.Unlock()
			time.Sleep(slow)
			return nil, ctx.Err()
		}
	}
	return g.Store.ListSigningKeys(ctx)
}

func (g *gatedKeys) counts() (calls, now, most, canceled int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls, g.now, g.most, g.canceled
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("5 s without %s", what)
		}
	}
}

// signerOn returns a signer of srv's signing keys, sealed with its master
// key, that reads them from store: srv's store, wrapped.
func signerOn(t *testing.T, srv *Main, store signer.Store) *signer.Signer {
	t.Helper()
	key, _, err := findMasterKey(srv.Config)
	if err != nil || key == nil {
		t.Fatalf("master key: %v", err)
	}
	sealer, err := signer.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.New(context.Background(), store, sealer, signer.Config{Policy: signingPolicy(srv.Config)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChangeAllReloadsKeysOneAtATime: postgres.Watch sends ChangeAll when
// its connection is lost, at every failed reconnection and once it listens
// again, while a reload may wait up to keyReloadTimeout for a store that
// does not answer. Each ChangeAll started a reload of its own, all at
// once, and none was canceled at shutdown. The reloads now run one at a
// time: those asked for during one make one more after it, and Close
// cancels the one running. A ChangeSigningKeys (another replica rotated
// the keys) reloads them the same way: it did so in the watcher's own
// loop, with no time limit, so a store that did not answer held up every
// notification after it and the watcher's pings.
func TestChangeAllReloadsKeysOneAtATime(t *testing.T) {
	for _, change := range []string{storage.ChangeAll, storage.ChangeSigningKeys} {
		t.Run(change, func(t *testing.T) { testReloadsOneAtATime(t, change) })
	}
}

func testReloadsOneAtATime(t *testing.T, change string) {
	srv := startServer(t)
	g := &gatedKeys{Store: srv.store}
	s := signerOn(t, srv, g)
	m := &Main{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Server: srv.Server, signer: s}
	gate := make(chan struct{})
	g.mu.Lock()
	g.gate = gate
	g.mu.Unlock()

	applied := make(chan struct{})
	go func() {
		for range 10 {
			m.applyChange(change)
		}
		close(applied)
	}()
	select {
	case <-applied:
	case <-time.After(5 * time.Second):
		close(gate)
		t.Fatalf("10 %s with the store not answering: the watcher's loop still waits after 5 s", change)
	}
	waitFor(t, "a reload", func() bool { c, _, _, _ := g.counts(); return c >= 1 })
	time.Sleep(50 * time.Millisecond) // for any other to start
	if calls, _, most, _ := g.counts(); calls != 1 || most != 1 {
		t.Fatalf("10 %s with the store not answering: %d reloads started, %d at once; want 1", change, calls, most)
	}
	close(gate) // the store answers: the one running ends, and one more runs
	waitFor(t, "the reload asked for during the first", func() bool { c, n, _, _ := g.counts(); return c == 2 && n == 0 })
	time.Sleep(50 * time.Millisecond)
	if calls, _, most, _ := g.counts(); calls != 2 || most != 1 {
		t.Fatalf("%d reloads, %d at once; want 2, one at a time", calls, most)
	}

	// At shutdown, the reload waiting for the store is canceled, and no
	// other starts. Close returns once it has ended, however slowly the
	// store gives it up: it went on using the store Close then closed, a
	// goroutine left running after Close.
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.slowCancel = 200 * time.Millisecond
	g.mu.Unlock()
	m.applyChange(change)
	waitFor(t, "a reload", func() bool { c, _, _, _ := g.counts(); return c == 3 })
	if err := m.Close(); err != nil { // m's store is srv's: not closed here
		t.Fatal(err)
	}
	if _, n, _, c := g.counts(); n != 0 || c != 1 {
		t.Fatalf("Close returned with %d reloads still running (%d canceled); want the one running canceled and ended", n, c)
	}
	m.applyChange(change)
	time.Sleep(50 * time.Millisecond)
	if calls, _, _, _ := g.counts(); calls != 3 {
		t.Fatalf("%d reloads after shutdown began, want none", calls-3)
	}
}

// failingKeys is a signer.Store whose ListSigningKeys fails while fail is
// set.
type failingKeys struct {
	signer.Store
	fail atomic.Bool
}

func (f *failingKeys) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if f.fail.Load() {
		return nil, errors.New("store unreachable")
	}
	return f.Store.ListSigningKeys(ctx)
}

// Reloads of the signing keys that go on failing — one at each failed
// reconnection of postgres.Watch, every 5 s while the store is down — are
// logged at the first, then at most once a minute with how many failed
// since; the first that succeeds after them says so.
func TestKeyReloadFailuresLoggedOnceAMinute(t *testing.T) {
	srv := startServer(t)
	tests := []struct {
		name      string
		step      time.Duration // the clock's move after each reload
		wantWarns int
		wantCount string
	}{
		{"within a minute", time.Second, 1, ""},
		{"a reload each 40 s", 40 * time.Second, 3, "failed_reloads=2"}, // at 0, 80 and 160 s of 0 … 200
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &failingKeys{Store: srv.store}
			s := signerOn(t, srv, f)
			var (
				logs  testkeyward.SyncBuffer
				jlogs testkeyward.SyncBuffer
				mu    sync.Mutex
				clock = time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
			)
			log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&jlogs, nil)))
			m := &Main{Logger: log, Server: srv.Server, signer: s,
				Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }}
			reload := func() {
				m.applyChange(storage.ChangeSigningKeys)
				waitFor(t, "the reload to end", func() bool { m.keyReloads.Lock(); defer m.keyReloads.Unlock(); return !m.keyReloads.running })
				mu.Lock()
				clock = clock.Add(tt.step)
				mu.Unlock()
			}
			f.fail.Store(true)
			for range 6 {
				reload()
			}
			f.fail.Store(false)
			reload()
			out := logs.String()
			if n := strings.Count(out, "level=WARN"); n != tt.wantWarns {
				t.Errorf("%d warnings for 6 failed reloads, want %d:\n%s", n, tt.wantWarns, out)
			}
			if !strings.Contains(out, tt.wantCount) || !strings.Contains(out, `level=INFO msg="signing keys reloaded again"`) {
				t.Errorf("log does not hold %q and the recovery:\n%s", tt.wantCount, out)
			}
			// In JSON, failed_for is an integer of nanoseconds, as slog
			// writes every duration (took, grace), not a string.
			if w := fmt.Sprintf(`"msg":"signing keys reloaded again","failed_for":%d}`, 6*tt.step); !strings.Contains(jlogs.String(), w) {
				t.Errorf("JSON log lacks %s:\n%s", w, jlogs.String())
			}
		})
	}
}

// isAccountChange: only an account's ID, all ASCII digits, names one
// account; applyChange takes anything else it does not know as
// ChangeAll.
func TestIsAccountChange(t *testing.T) {
	tests := []struct {
		payload string
		want    bool
	}{
		{"103574398239472345678", true},
		{"7", true},
		{"", false},
		{storage.ChangeAll, false},
		{storage.ChangeSigningKeys, false},
		{storage.ChangeRevocations, false},
		{"a_later_kind", false},
		{"12a", false},
		{"-12", false},
		{" 12", false},
		{"١٢", false}, // Arabic-Indic digits
	}
	for _, tc := range tests {
		if got := isAccountChange(tc.payload); got != tc.want {
			t.Errorf("isAccountChange(%q) = %v, want %v", tc.payload, got, tc.want)
		}
	}
}
