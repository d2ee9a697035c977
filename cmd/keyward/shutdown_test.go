package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/tally"
	"github.com/keyward/keyward/internal/testkeyward"
)

// TestGracefulShutdown: a request in flight when shutdown begins completes,
// and its audit event is durable once Close returns.
func TestGracefulShutdown(t *testing.T) {
	m := openMain(t, io.Discard)
	active := make(chan struct{}, 1)
	m.http.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateActive {
			select {
			case active <- struct{}{}:
			default:
			}
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	clientID, email := setupAccount(t, m, "inflight")
	var sec struct {
		Secret string `json:"client_secret"`
	}
	json.Unmarshal([]byte(runCLI(t, "secrets", "create", email, "-o", "json", "--credentials", m.AdminKeyFile)), &sec)

	// Start a request, stopping halfway through its body.
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {sec.Secret}, "scope": {"orders.read"}}.Encode()
	conn, err := net.Dial("tcp", m.listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for len(active) > 0 { // forget the setup's requests
		<-active
	}
	fmt.Fprintf(conn, "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
	select {
	case <-active:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never became active")
	}

	stop() // SIGTERM
	// New connections are refused once shutdown has begun…
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", m.listener.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections during shutdown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// …while the one in flight completes.
	io.WriteString(conn, body[10:])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request was cut off: %v", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("in-flight request: %s", resp.Status)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// The token's audit event is on disk.
	st, err := sqlite.Open(context.Background(), m.Config.DataDir+"/keyward.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.issued", AccountID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d token.issued events for the in-flight request, want 1", len(evs))
	}
}

// stuckStore is a store whose commits never answer until they are
// canceled: a hung PostgreSQL.
type stuckStore struct {
	storage.Storage
	closed bool
}

func (s *stuckStore) Commit(ctx context.Context, _ []storage.Write) ([]error, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *stuckStore) Close() error { s.closed = true; return nil }

// stuckCommits gives the journal's commits longer than Close waits, so
// that a commit is still stuck when Close gives up on it.
var stuckCommits = groupcommit.Options{CommitTimeout: 2 * tally.CloseTimeout}

// TestCloseGivesUpOnStuckStore: Close waits for a store that does not
// answer only as long as tally.CloseTimeout, then says how many writes it
// could not confirm and closes the store, well before systemd's
// TimeoutStopSec would kill it without a word.
func TestCloseGivesUpOnStuckStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs strings.Builder
		st := &stuckStore{}
		m := &Main{Logger: slog.New(slog.NewTextHandler(&logs, nil)), store: st, journal: groupcommit.New(st, stuckCommits)}
		written := make(chan error, 1)
		go func() { written <- m.journal.Write(context.Background(), storage.Write{}) }()
		synctest.Wait()
		start := time.Now()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != tally.CloseTimeout {
			t.Errorf("Close took %v, want %v", d, tally.CloseTimeout)
		}
		if !st.closed {
			t.Error("the store was not closed")
		}
		if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "writes=1") {
			t.Errorf("log = %q, want an ERROR naming 1 write", logs.String())
		}
		if err := <-written; !errors.Is(err, context.Canceled) {
			t.Errorf("Write = %v, want context.Canceled", err)
		}
	})
}

// hungStore is a store that does not answer at all: its commits wait
// until canceled, and its Close until release is closed (closing the
// connections of a hung PostgreSQL takes 5 s each).
type hungStore struct {
	stuckStore
	release chan struct{}
}

func (s *hungStore) Close() error { <-s.release; return nil }

// TestCloseGivesUpOnHungClose: closing a store that does not answer is
// bounded too, by what is left of tally.CloseTimeout and at least
// storeCloseTimeout; the data directory stays locked, and the logs say
// how long the shutdown waited.
func TestCloseGivesUpOnHungClose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes bool // a write the store never answers is pending
		want   time.Duration
	}{
		{"no writes", false, tally.CloseTimeout},
		{"writes stuck", true, tally.CloseTimeout + storeCloseTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs strings.Builder
				st := &hungStore{release: make(chan struct{})}
				defer close(st.release)
				unlocked := false
				m := &Main{Logger: slog.New(slog.NewTextHandler(&logs, nil)), store: st, journal: groupcommit.New(st, stuckCommits),
					unlock: func() { unlocked = true }}
				if tc.writes {
					go m.journal.Write(context.Background(), storage.Write{})
					synctest.Wait()
				}
				start := time.Now()
				if err := m.Close(); err == nil {
					t.Error("Close = nil for a store that did not close")
				}
				if d := time.Since(start); d != tc.want {
					t.Errorf("Close took %v, want %v", d, tc.want)
				}
				if unlocked {
					t.Error("the data directory was unlocked while the store may still use it")
				}
				// took, as every line that says how long the shutdown
				// took names it; they said waited.
				if want := "took=" + tc.want.String(); !strings.Contains(logs.String(), "the store did not close in time") || !strings.Contains(logs.String(), want) {
					t.Errorf("log = %q, want the store not closed, %s", logs.String(), want)
				}
				if tc.writes && !strings.Contains(logs.String(), "writes=1 took="+tally.CloseTimeout.String()) {
					t.Errorf("log = %q, want 1 write not confirmed after %v", logs.String(), tally.CloseTimeout)
				}
			})
		})
	}
}

// slowGCStore deletes a batch of expired rows, then does not answer until
// the run's deadline: a backlog larger than one run deletes.
type slowGCStore struct{ storage.Storage }

func (slowGCStore) DeleteExpired(ctx context.Context, _ time.Time) (int64, error) {
	<-ctx.Done()
	return 1000, fmt.Errorf("delete expired: %w", ctx.Err())
}

// TestCollectGarbageStoppedByItsDeadline: a run that its interval ends
// says how many rows it deleted and that the next run goes on, not just
// that it failed.
func TestCollectGarbageStoppedByItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs strings.Builder
		m := &Main{Logger: slog.New(slog.NewTextHandler(&logs, nil)), store: slowGCStore{}, Now: time.Now}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		m.collectGarbage(ctx)
		got := logs.String()
		if !strings.Contains(got, "did not finish within its interval: the next run goes on") || !strings.Contains(got, "deleted=1000") {
			t.Errorf("log = %q, want the rows deleted and that the next run goes on", got)
		}
	})
}

// TestLastSecretUsageFlushFailed: the flush at shutdown that fails says
// the last uses are lost, not that a next flush tries again, for none
// follows.
func TestLastSecretUsageFlushFailed(t *testing.T) {
	var logs testkeyward.SyncBuffer
	m := startServer(t, func(m *Main) { m.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	clientID, email := setupAccount(t, m, "ingest")
	var sec struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, "secrets", "create", email, "-o", "json", "--credentials", m.AdminKeyFile)), &sec); err != nil {
		t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: sec.Secret, TokenURL: m.Issuer + "/token", Scopes: []string{"orders.read"}}
	if _, err := cc.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the store's write fails at once
	m.flushLastSecretUsage(ctx)
	got := logs.String()
	if !strings.Contains(got, "failed at shutdown: the uses since the last flush are not recorded") || strings.Contains(got, "next flush") {
		t.Errorf("log = %q, want the last uses said to be lost, not retried", got)
	}
}

// stoppedStore answers as a store does once its context is canceled.
type stoppedStore struct{ storage.Storage }

func (stoppedStore) DeleteExpired(ctx context.Context, _ time.Time) (int64, error) {
	return 0, fmt.Errorf("delete expired: %w", ctx.Err())
}

func (stoppedStore) SignInExpiry(ctx context.Context, _ string, _ bool, _ time.Time) (time.Time, bool, error) {
	return time.Time{}, false, fmt.Errorf("sign-in expiry: %w", ctx.Err())
}

// TestJobsStoppedByShutdownDoNotWarn: shutdown cancels the periodic jobs
// in progress; that is no failure to warn of.
func TestJobsStoppedByShutdownDoNotWarn(t *testing.T) {
	var logs testkeyward.SyncBuffer
	m := &Main{Logger: slog.New(slog.NewTextHandler(&logs, nil)), store: stoppedStore{}, Now: time.Now,
		flushUsage: func(ctx context.Context) error { return ctx.Err() }}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.collectGarbage(ctx)
	m.refreshAdminExpiry(ctx)
	m.flushSecretUsage(ctx)
	if got := logs.String(); strings.Contains(got, "level=WARN") {
		t.Errorf("log = %q, want no warning for jobs stopped by shutdown", got)
	}
}

// errListenerBroke is what an idleListener's Accept fails with once its
// fail is closed, as a listener whose socket breaks does.
var errListenerBroke = errors.New("the listener broke")

// openMain opens a Main on a new data directory, listening on a free
// port and logging to log, for a test that runs it; closing it is the
// test's.
func openMain(t *testing.T, log io.Writer) *Main {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(log, nil))}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// shutdownEvents is what happened at a shutdown, in order.
type shutdownEvents struct {
	mu     sync.Mutex
	events []string
}

func (e *shutdownEvents) record(ev string) {
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

// list returns the events recorded so far.
func (e *shutdownEvents) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.events)
}

// recordShutdown gives m one periodic job, each run of which calls
// started (if not nil), then waits for its context to end and records
// "job ended", and a last usage flush that records "last usage flush".
func recordShutdown(m *Main, started func()) *shutdownEvents {
	e := &shutdownEvents{}
	m.jobs = []job{{time.Millisecond, func(ctx context.Context) {
		if started != nil {
			started()
		}
		<-ctx.Done() // its deadline, or the jobs stopped
		e.record("job ended")
	}}}
	m.flushUsage = func(context.Context) error {
		e.record("last usage flush")
		return nil
	}
	return e
}

// TestRunListenerFailureStopsJobs: a listener that fails ends Run as a
// shutdown does: the periodic jobs are stopped and waited for, then the
// secrets' last use is flushed, before Run returns the listener's error.
// It returned at once, leaving a job to run on while Close closed the
// store.
func TestRunListenerFailureStopsJobs(t *testing.T) {
	m := openMain(t, io.Discard)
	defer m.Close()
	defer m.listener.Close() // replaced by one that fails
	started := make(chan struct{})
	rec := recordShutdown(m, sync.OnceFunc(func() { close(started) }))
	l := newIdleListener()
	m.listener = l
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	<-started
	close(l.fail)
	if err := <-done; !errors.Is(err, errListenerBroke) {
		t.Errorf("Run = %v, want the listener's error", err)
	}
	// The job's runs all ended before the flush, and none ran after it.
	events := rec.list()
	if n := len(events); n < 2 || events[n-1] != "last usage flush" || slices.Index(events, "last usage flush") != n-1 {
		t.Errorf("when Run returned: %q, want the job's runs ended, then the last usage flush", events)
	}
}

// TestRunWaitsForKeyRefresh: Run returns only once the periodic refresh
// of the signing keys has, at a shutdown and when the listener fails. It
// canceled the refresh without waiting for it, which went on reading the
// store that Close closes next. In a synctest bubble, Run is seen still
// waiting once everything else is blocked, with no real time to outlast.
func TestRunWaitsForKeyRefresh(t *testing.T) {
	for _, tc := range []struct {
		name          string
		listenerFails bool
	}{
		{"shutdown", false},
		{"listener failure", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := openMain(t, io.Discard)
			defer m.Close()
			defer m.listener.Close() // replaced by one that blocks in the bubble
			// The runtime's signal thread starts at the first
			// signal.Notify, which Run's must not be: begun in the
			// bubble, it fails on the channels it makes there.
			_, stopHUP := notifyHUP()
			stopHUP()
			synctest.Test(t, func(t *testing.T) {
				started, release := make(chan struct{}), make(chan struct{})
				var ended atomic.Bool
				m.refreshKeys = func(ctx context.Context) {
					close(started)
					<-ctx.Done()
					<-release // still reading the store after it was canceled
					ended.Store(true)
				}
				l := newIdleListener()
				m.listener = l
				ctx, stop := context.WithCancel(context.Background())
				defer stop()
				done := make(chan error, 1)
				go func() { done <- m.Run(ctx) }()
				<-started
				if tc.listenerFails {
					close(l.fail)
				} else {
					stop()
				}
				synctest.Wait() // Run has returned, or waits for what it cannot do without the refresh
				select {
				case <-done:
					t.Error("Run returned while the refresh of the signing keys was still running")
					close(release)
					return
				default:
				}
				close(release)
				<-done
				if !ended.Load() {
					t.Error("Run returned before the refresh of the signing keys ended")
				}
			})
		})
	}
}

// idleListener is a listener that accepts no connection: Accept waits
// until it is closed, or fails with errListenerBroke once fail is closed.
// For a synctest bubble, make it in the bubble.
type idleListener struct {
	fail, closed chan struct{}
	once         sync.Once
}

func newIdleListener() *idleListener {
	return &idleListener{fail: make(chan struct{}), closed: make(chan struct{})}
}

func (l *idleListener) Accept() (net.Conn, error) {
	select {
	case <-l.fail:
		return nil, errListenerBroke
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestRunStopsKeyRefreshBeforeLastFlush: the refresh of the signing keys
// is stopped and waited for before the last flush of the secrets' last
// use, within the time the flush leaves the stops. It was waited for
// after the flush, and a flush that took all its time left it none: it
// was said not to have ended in time.
func TestRunStopsKeyRefreshBeforeLastFlush(t *testing.T) {
	m := openMain(t, io.Discard)
	defer m.Close()
	rec := recordShutdown(m, nil)
	started := make(chan struct{})
	m.refreshKeys = func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		rec.record("key refresh ended")
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-started
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	events := rec.list()
	if i, j := slices.Index(events, "key refresh ended"), slices.Index(events, "last usage flush"); i < 0 || j < i {
		t.Errorf("shutdown: %q, want the key refresh ended before the last usage flush", events)
	}
}

// TestShutdownCutsOffRequests: requests still in flight when the grace
// period is over are cut off, and waited for; the periodic jobs are still
// stopped and the secrets' last use flushed, and the logs say how many
// requests were cut off. Past its grace, Run returned at once, losing the
// last uses since the last flush and leaving the requests and jobs
// running while Close closed the store. When the listener failed, the
// requests in flight and the keep-alive connections already accepted
// went on being served on the store Close closed.
func TestShutdownCutsOffRequests(t *testing.T) {
	for _, tc := range []struct {
		name          string
		listenerFails bool
	}{
		{"grace over", false},
		{"listener failure", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testkeyward.SyncBuffer
			m := openMain(t, &logs)
			defer m.Close()
			m.grace = 300 * time.Millisecond
			rec := recordShutdown(m, nil)
			// A request that goes on until it is cut off.
			holding := make(chan struct{})
			served := m.http.Handler
			m.http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/test/hold" {
					served.ServeHTTP(w, r)
					return
				}
				close(holding)
				<-r.Context().Done()
				rec.record("request ended")
			})
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			dial := func() net.Conn {
				conn, err := net.Dial("tcp", m.listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				return conn
			}
			// A keep-alive connection, idle after its first request.
			idle := dial()
			idleReader := bufio.NewReader(idle)
			healthz := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
			io.WriteString(idle, healthz)
			if resp, err := http.ReadResponse(idleReader, nil); err != nil || resp.StatusCode != 200 {
				t.Fatalf("healthz: %v %v", resp, err)
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			io.WriteString(dial(), "GET /test/hold HTTP/1.1\r\nHost: x\r\n\r\n")
			<-holding
			if tc.listenerFails {
				m.listener.Close()
			} else {
				stop() // SIGTERM
			}
			err := <-done
			switch {
			case tc.listenerFails && !errors.Is(err, net.ErrClosed):
				t.Errorf("Run = %v, want the listener's error", err)
			case !tc.listenerFails && (err == nil || !strings.Contains(err.Error(), "cut off")):
				t.Errorf("Run = %v, want the requests in flight said to be cut off", err)
			case !tc.listenerFails && !strings.Contains(err.Error(), "shutdown: 1 request in flight did not finish"):
				// It said "1 requests".
				t.Errorf("Run = %v, want the one request counted in the singular", err)
			}
			// The request and the job's runs all ended before the flush, and
			// none ran after it.
			events := rec.list()
			if n := len(events); slices.Index(events, "request ended") < 0 || events[n-1] != "last usage flush" || slices.Index(events, "last usage flush") != n-1 {
				t.Errorf("when Run returned: %q, want the request ended and the job's runs, then the last usage flush", events)
			}
			if got := logs.String(); !strings.Contains(got, "did not finish within the grace period at shutdown: cut off") || !strings.Contains(got, "requests=1") {
				t.Errorf("log = %q, want 1 request said to be cut off", got)
			}
			// The keep-alive connection serves no more.
			io.WriteString(idle, healthz)
			if resp, err := http.ReadResponse(idleReader, nil); err == nil {
				resp.Body.Close()
				t.Errorf("a keep-alive connection was still served after Run returned: %s", resp.Status)
			}
		})
	}
}

// hungJournal does not answer a write until it is canceled: the journal
// of a store that does not answer.
type hungJournal struct{}

func (hungJournal) Write(ctx context.Context, _ storage.Write) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestCloseSharesOneBound: a reload of the signing keys that ignores its
// cancellation and introspection summaries the store does not take share
// Close's one bound, tally.CloseTimeout, which deploy/keyward.service's
// TimeoutStopSec counts once. The summaries waited 30 s of their own
// after the reload had taken the bound: Close took a minute.
func TestCloseSharesOneBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs strings.Builder
		m := &Main{Logger: slog.New(slog.NewTextHandler(&logs, nil)), store: &stuckStore{}}
		m.keyReloads.done = make(chan struct{}) // a reload that never ends
		m.introspections = tally.New(hungJournal{}, tally.Options{Interval: time.Hour})
		m.introspections.Add(storage.AuditEvent{Action: "token.introspected"})
		start := time.Now()
		m.Close()
		if d := time.Since(start); d != tally.CloseTimeout {
			t.Errorf("Close took %v, want %v", d, tally.CloseTimeout)
		}
		if got := logs.String(); !strings.Contains(got, "reload of the signing keys did not end in time") {
			t.Errorf("log = %q, want the reload said not to have ended", got)
		}
	})
}

// TestCutOffLeavesLastFlushItsTime: requests cut off that ignore their
// cancellation are waited for only until lastFlushTime before the
// shutdown's bound, so the flush of the secrets' last use still gets that
// time: they took all of it, and the flush ran on a context already
// ended, losing the last uses since the flush before.
func TestCutOffLeavesLastFlushItsTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	var logs testkeyward.SyncBuffer
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil)), grace: 100 * time.Millisecond}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.jobs = []job{}
	flushed := make(chan error, 1)
	m.flushUsage = func(ctx context.Context) error {
		flushed <- ctx.Err()
		return ctx.Err()
	}
	holding, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	m.http.Handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(holding)
		<-release // deaf to its cancellation
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	conn, err := net.Dial("tcp", m.listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /test/hold HTTP/1.1\r\nHost: x\r\n\r\n")
	<-holding
	stop()
	<-done
	if err := <-flushed; err != nil {
		t.Errorf("the flush at shutdown ran on an ended context (%v), want it given lastFlushTime", err)
	}
	if got := logs.String(); !strings.Contains(got, "requests cut off at shutdown did not end in time") {
		t.Errorf("log = %q, want the request cut off said not to have ended", got)
	}
}

// closeFailingListener's Close fails, as closing a listener's socket can.
type closeFailingListener struct{ net.Listener }

var errCloseFailed = errors.New("closing the socket failed")

func (l closeFailingListener) Close() error {
	l.Listener.Close()
	return errCloseFailed
}

// TestShutdownErrorSaysWhatHappened: a shutdown whose listener does not
// close, or whose grace ends on connections still receiving a request
// (none being handled), says so, not that 0 requests were cut off.
func TestShutdownErrorSaysWhatHappened(t *testing.T) {
	for _, tc := range []struct {
		name        string
		closeFails  bool
		want, wantL string
	}{
		{"listener close fails", true, "closing the listener: " + errCloseFailed.Error(), ""},
		{"a request being received", false, "connections still receiving a request", "connections still receiving a request when the grace period ended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen = "127.0.0.1:0"
			cfg.DataDir = t.TempDir()
			var logs testkeyward.SyncBuffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil)), grace: 100 * time.Millisecond}
			if err := m.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			m.jobs = []job{}
			if tc.closeFails {
				m.listener = closeFailingListener{m.listener}
			}
			accepted := make(chan struct{}, 1)
			m.http.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					accepted <- struct{}{}
				}
			}
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			conn, err := net.Dial("tcp", m.listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			<-accepted // served on
			if tc.closeFails {
				io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
				if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
					t.Fatal(err)
				} else {
					resp.Body.Close() // and the connection idle
				}
			} else {
				io.WriteString(conn, "GET /healthz HTTP/1.1\r\n") // and no more
			}
			stop()
			err = <-done
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "cut off") {
				t.Errorf("Run = %v, want %q and no request said cut off", err, tc.want)
			}
			if tc.closeFails && !errors.Is(err, errCloseFailed) {
				t.Errorf("Run = %v, want it to wrap the listener's error", err)
			}
			got := logs.String()
			if strings.Contains(got, "requests=0") || strings.Contains(got, ": cut off") || !strings.Contains(got, tc.wantL) {
				t.Errorf("log = %q, want %q and no request said cut off", got, tc.wantL)
			}
		})
	}
}

// TestCleanStopLogsItsEnd: a clean stop's last line, once everything is
// closed, is "keyward serve stopped" at info with how long the shutdown
// took: the log of a clean stop ended on the last shutdown step, as that
// of a server hung after it would.
func TestCleanStopLogsItsEnd(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	var logs testkeyward.SyncBuffer
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	stop() // SIGTERM
	if err := m.runAndClose(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `level=INFO msg="keyward serve stopped" took=`) {
		t.Errorf("last log line %q, want keyward serve stopped at info with the time the shutdown took", last)
	}
	if m.store == nil || m.store.Ping(context.Background()) == nil {
		t.Error("the store is still open after runAndClose")
	}
}
