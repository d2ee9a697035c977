package postgres_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/testkeyward"
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
	go postgres.Watch(ctx, dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p string) { got <- p }, ready, nil)
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
	// The account's creation (which ends another replica's cached "no
	// account has this email"), its update, the API's creation.
	want := []string{a.ID, a.ID, storage.ChangeAll}
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
	go postgres.Watch(ctx, dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p string) { got <- p }, ready, nil)
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

// A LISTEN connection that goes quiet without being closed (a NAT or
// firewall that dropped it, a proxy whose server went away) is pinged,
// found dead and replaced: the caches are flushed, and later changes are
// heard again. Watch waited on it for ever, hearing nothing, as TCP
// keepalives the near end answers do not end it.
func TestWatchReplacesSilentConnection(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := newSilencer(t, dsn)
	got := make(chan string, 64)
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		postgres.WatchPinging(ctx, p.dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p string) {
			select {
			case got <- p:
			default:
			}
		}, ready, nil, 200*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()
	<-ready

	ev := storage.AuditEvent{Time: time.Now(), Action: "t", Outcome: storage.OutcomeSuccess}
	a := storage.Account{ID: "100000000000000000001", Email: "a@p.example", Name: "a", Project: "p", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateAccount(ctx, a, ev); err != nil {
		t.Fatal(err)
	}
	p.silence()
	disable := func() {
		t.Helper()
		if _, err := s.UpdateAccount(ctx, a.ID, func(a storage.Account) (storage.Account, error) { a.Disabled = !a.Disabled; return a, nil }, ev); err != nil {
			t.Fatal(err)
		}
	}
	disable() // unheard
	// What was missed is flushed.
	wait := func(want string, d time.Duration) bool {
		deadline := time.After(d)
		for {
			select {
			case p := <-got:
				if p == want {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	if !wait(storage.ChangeAll, 10*time.Second) {
		t.Fatalf("no notification %q after the connection went quiet", storage.ChangeAll)
	}
	// Changes are heard again once Watch has reconnected.
	for start := time.Now(); !wait(a.ID, 200*time.Millisecond); {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no notification %q on a new connection", a.ID)
		}
		disable()
	}
}

// Watch, as the server runs it, notices a LISTEN connection that went
// dead without a word within about 20 s (pinged after 10 s of quiet,
// given 10 s to answer), as the operations guide says, and flushes the
// caches:
// it took up to a minute (30 s and 30 s), during which changes made on
// other replicas went unheard, bounded only by --cache-ttl (up to 1h).
func TestWatchNoticesSilentConnectionWithin20s(t *testing.T) {
	if testing.Short() {
		t.Skip("waits up to 20 s")
	}
	dsn := pgtest.SchemaDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := newSilencer(t, dsn)
	got := make(chan string, 64)
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		postgres.Watch(ctx, p.dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p string) {
			select {
			case got <- p:
			default:
			}
		}, ready, nil)
	}()
	defer func() { cancel(); <-done }()
	<-ready
	p.silence()
	deadline := time.After(25 * time.Second) // 20 s, and room for a loaded machine
	for {
		select {
		case pl := <-got:
			if pl == storage.ChangeAll {
				return
			}
		case <-deadline:
			t.Fatal("the silent connection was not noticed within 25 s")
		}
	}
}

// A LISTEN connection that is only quiet, alive and answering its
// pings, is kept: a wait that timed out leaves it usable. Were it
// replaced at every ping (a wait's timeout taken for a loss, as pgx's
// handling of a context ending may make it), each replica would drop its
// caches every 30 s, log the notifications lost, and miss, between the
// connections, what only its TTL would then bound.
func TestWatchKeepsQuietConnection(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make(chan string, 64)
	var mu sync.Mutex
	var listening []bool
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		postgres.WatchPinging(ctx, dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p string) { got <- p }, ready, func(on bool) {
			mu.Lock()
			listening = append(listening, on)
			mu.Unlock()
		}, 250*time.Millisecond) // an answer may take a while on a loaded machine
	}()
	defer func() { cancel(); <-done }()
	<-ready
	time.Sleep(1300 * time.Millisecond) // 5 pings, and nothing else

	ev := storage.AuditEvent{Time: time.Now(), Action: "t", Outcome: storage.OutcomeSuccess}
	a := storage.Account{ID: "100000000000000000001", Email: "a@p.example", Name: "a", Project: "p", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateAccount(ctx, a, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateAccount(ctx, a.ID, func(a storage.Account) (storage.Account, error) { a.Disabled = true; return a, nil }, ev); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != a.ID {
			t.Fatalf("first notification %q, want %q: the quiet connection was replaced", p, a.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after the pings")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(listening) != 1 {
		t.Fatalf("listening called with %v; want [true], one connection", listening)
	}
}

// silencer forwards TCP connections to the server of a DSN until it is
// silenced: the connections it has then stay open but pass nothing either
// way; new ones pass.
type silencer struct {
	dsn   string
	mu    sync.Mutex
	conns []net.Conn
	quiet []*atomic.Bool
}

func newSilencer(t *testing.T, dsn string) *silencer {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		t.Skip("the server is reached by a Unix socket")
	}
	upstream := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p := &silencer{dsn: withSetting(withSetting(dsn, "host", host), "port", port)}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			quiet := new(atomic.Bool)
			p.mu.Lock()
			p.conns, p.quiet = append(p.conns, c, u), append(p.quiet, quiet)
			p.mu.Unlock()
			go forward(c, u, quiet)
			go forward(u, c, quiet)
		}
	}()
	return p
}

// silence makes the connections made so far pass nothing.
func (p *silencer) silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, q := range p.quiet {
		q.Store(true)
	}
}

func forward(dst, src net.Conn, quiet *atomic.Bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if quiet.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// A LISTEN connection the database ends (pg_terminate_backend) is
// logged as lost, and, once Watch listens again, as back: an operator
// who saw the warning can tell that the replica recovered.
func TestWatchLogsReconnection(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs testkeyward.SyncBuffer
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		postgres.Watch(ctx, dsn, slog.New(slog.NewTextHandler(&logs, nil)), func(string) {}, ready, nil)
	}()
	defer func() { cancel(); <-done }()
	<-ready
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %' AND query LIKE '%' || current_schema() || '%' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("ended %d LISTEN connections, want 1", n)
	}
	for start := time.Now(); !strings.Contains(logs.String(), "listening again"); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no reconnection logged 10 s after the connection was ended; log:\n%s", logs.String())
		}
	}
	out := logs.String()
	if lost, back := strings.Index(out, "level=WARN msg=\"lost the PostgreSQL change notifications"), strings.Index(out, "level=INFO msg=\"listening again"); lost < 0 || back < lost {
		t.Errorf("log = %q, want the loss as a warning, then the reconnection", out)
	}
}

// Connections that go on failing (the database is down) are logged at
// the first, then at most once a minute, with how many failed since: a
// warning at each, every 5 seconds, read as the notifications lost again
// and again. The first, at startup, says the notifications could not be
// had, not that they were lost: Watch never had them. No PostgreSQL is
// needed: nothing listens at the address.
func TestWatchLogsFailedReconnectionsOnceAMinute(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dsn := "postgres://keyward@" + closed.Addr().String() + "/keyward?sslmode=disable&connect_timeout=5"
	closed.Close()
	tests := []struct {
		name       string
		step       time.Duration // the clock's move at each failed attempt
		wantWarns  int
		wantCounts string
		wantJSON   string // in JSON, durations are integers of nanoseconds
	}{
		{"within a minute", time.Second, 1, "", `"retry_in":`},
		{"an attempt each 40 s", 40 * time.Second, 3, "waited_for=1m20s failed_connections=2", `"waited_for":80000000000,"failed_connections":2`}, // at 0, 80 and 160 s of 0 … 200
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				logs  testkeyward.SyncBuffer
				jlogs testkeyward.SyncBuffer
				mu    sync.Mutex
				clock = time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
				calls int
			)
			log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&jlogs, nil)))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				postgres.WatchAt(ctx, dsn, log, func(string) {
					mu.Lock()
					defer mu.Unlock()
					clock = clock.Add(tt.step)
					if calls++; calls == 6 {
						cancel()
					}
				}, nil, nil, time.Minute, func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				cancel()
				t.Fatal("6 failed connections took over a minute")
			}
			out := logs.String()
			if n := strings.Count(out, "level=WARN"); n != tt.wantWarns {
				t.Errorf("%d warnings for 6 failed connections, want %d:\n%s", n, tt.wantWarns, out)
			}
			if !strings.Contains(out, `level=WARN msg="could not listen for the PostgreSQL change notifications`) || !strings.Contains(out, tt.wantCounts) {
				t.Errorf("log does not say the notifications could not be had, or %q:\n%s", tt.wantCounts, out)
			}
			if strings.Contains(out, "lost the PostgreSQL") || strings.Contains(out, "reconnect") || strings.Contains(out, "lost_for") {
				t.Errorf("log says the notifications were lost, or are to be had again, which Watch never had:\n%s", out)
			}
			if !strings.Contains(jlogs.String(), tt.wantJSON) {
				t.Errorf("JSON log lacks %s:\n%s", tt.wantJSON, jlogs.String())
			}
		})
	}
}

// A first connection that failed, which is logged as a warning, is
// logged once more when Watch listens at last, as a reconnection is: an
// operator who saw the warning can tell that it is over.
func TestWatchLogsFirstConnectionAfterFailures(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		t.Skip("the server is reached by a Unix socket")
	}
	upstream := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	// A gate that hangs up on every connection until it is opened, then
	// forwards them to the server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var open atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !open.Load() {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go forward(c, u, new(atomic.Bool))
			go forward(u, c, new(atomic.Bool))
		}
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	gated := withSetting(withSetting(dsn, "host", host), "port", port)

	ctx, cancel := context.WithCancel(context.Background())
	var logs testkeyward.SyncBuffer
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		postgres.Watch(ctx, gated, slog.New(slog.NewTextHandler(&logs, nil)), func(string) {}, ready, nil)
	}()
	defer func() { cancel(); <-done }()
	for start := time.Now(); !strings.Contains(logs.String(), "could not listen"); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no failed connection logged; log:\n%s", logs.String())
		}
	}
	open.Store(true)
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("not listening 10 s after the gate opened; log:\n%s", logs.String())
	}
	out := logs.String()
	if !strings.Contains(out, `level=INFO msg="listening for the PostgreSQL change notifications" waited_for=`) {
		t.Errorf("log does not say Watch listens at last:\n%s", out)
	}
}
