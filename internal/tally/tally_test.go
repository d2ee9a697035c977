package tally

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeyward"
)

// journal records what is written to it, fails the writes after the first
// failAfter ones while fail is set, and, when gate is set, announces each
// write on started (buffered) and waits for gate or the end of its ctx.
// With late set, a write whose ctx ends first is still written when gate
// opens, as a group commit's is; late counts those not yet written.
type journal struct {
	mu        sync.Mutex
	fail      error
	failAfter int
	writes    int
	events    []storage.AuditEvent
	wrote     chan struct{}
	started   chan struct{}
	gate      chan struct{}
	late      *sync.WaitGroup
}

func newJournal() *journal { return &journal{wrote: make(chan struct{}, 100)} }

func (j *journal) setFail(err error, after int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fail, j.failAfter = err, after
}

func (j *journal) Write(ctx context.Context, w storage.Write) error {
	if j.gate != nil {
		select {
		case j.started <- struct{}{}:
		default:
		}
		select {
		case <-j.gate:
		case <-ctx.Done():
			if j.late != nil {
				j.late.Go(func() { <-j.gate; j.commit(w) })
			}
			return ctx.Err()
		}
	}
	return j.commit(w)
}

func (j *journal) commit(w storage.Write) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil && j.writes >= j.failAfter {
		return j.fail
	}
	j.writes++
	j.events = append(j.events, w.Events...)
	select {
	case j.wrote <- struct{}{}:
	default:
	}
	return nil
}

func (j *journal) written() []storage.AuditEvent {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]storage.AuditEvent(nil), j.events...)
}

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// event is a successful introspection at t0 plus sec seconds.
func event(sec int) storage.AuditEvent {
	return storage.AuditEvent{
		Time: t0.Add(time.Duration(sec) * time.Second), Action: "token.introspect", Outcome: storage.OutcomeSuccess,
		AccountID: "client-1", Actor: "api-1", Source: "10.0.0.1",
		Data: map[string]string{"auth_method": "client_secret_basic", "token_id": "tok-1", "active": "true"},
	}
}

// await waits for ch, and fails the test with what after 30 seconds: a
// hang, not a slow machine.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal(what)
	}
}

// written is when newTally's summaries are written.
var written = t0.Add(time.Minute)

// newTally is a Tally that writes only when told to (or full), at time
// written.
func newTally(t *testing.T, j Journal, max int) *Tally {
	t.Helper()
	tl := New(j, Options{Interval: time.Hour, MaxPending: max, Now: func() time.Time { return written }})
	t.Cleanup(tl.Close)
	return tl
}

func TestFold(t *testing.T) {
	change := func(f func(*storage.AuditEvent)) storage.AuditEvent {
		ev := event(5)
		f(&ev)
		return ev
	}
	tests := []struct {
		name   string
		second storage.AuditEvent
		folds  bool
	}{
		{"equal but for the time", event(5), true},
		{"another action", change(func(e *storage.AuditEvent) { e.Action = "token.revoke" }), false},
		{"another outcome", change(func(e *storage.AuditEvent) { e.Outcome = storage.OutcomeFailure }), false},
		{"another account", change(func(e *storage.AuditEvent) { e.AccountID = "client-2" }), false},
		{"another actor", change(func(e *storage.AuditEvent) { e.Actor = "api-2" }), false},
		{"another source", change(func(e *storage.AuditEvent) { e.Source = "10.0.0.2" }), false},
		{"another data value", change(func(e *storage.AuditEvent) { e.Data["active"] = "false" }), false},
		{"one more data key", change(func(e *storage.AuditEvent) { e.Data["reason"] = "revoked" }), false},
		{"one data key less", change(func(e *storage.AuditEvent) { delete(e.Data, "token_id") }), false},
		{"no data", change(func(e *storage.AuditEvent) { e.Data = nil }), false},
		// Fields are not simply concatenated: "api-1"+"10.0.0.1" must not
		// equal "api-110.0.0"+".1".
		{"text moved between fields", change(func(e *storage.AuditEvent) { e.Actor, e.Source = "api-110.0.0", ".1" }), false},
		{"text moved between a data key and its value", change(func(e *storage.AuditEvent) {
			delete(e.Data, "active")
			e.Data["activet"] = "rue"
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newJournal()
			tl := newTally(t, j, 0)
			if !tl.Add(event(0)) || !tl.Add(tt.second) || !tl.Add(event(9)) {
				t.Fatal("Add refused an event")
			}
			if n, err := tl.Flush(context.Background()); err != nil {
				t.Fatal(err)
			} else if want := map[bool]int{true: 1, false: 2}[tt.folds]; n != want {
				t.Fatalf("Flush wrote %d summaries, want %d", n, want)
			}
			evs := j.written()
			first := evs[0] // the summaries are in order of their first event
			wantCount := map[bool]string{true: "3", false: "2"}[tt.folds]
			if first.Data[CountKey] != wantCount {
				t.Errorf("count = %q, want %s", first.Data[CountKey], wantCount)
			}
			if !first.Time.Equal(written) {
				t.Errorf("time = %v, want when it was written, %v", first.Time, written)
			}
			if want := t0.Format(time.RFC3339Nano); first.Data[FirstKey] != want {
				t.Errorf("first = %q, want %q", first.Data[FirstKey], want)
			}
			if want := t0.Add(9 * time.Second).Format(time.RFC3339Nano); first.Data[LastKey] != want {
				t.Errorf("last = %q, want %q", first.Data[LastKey], want)
			}
			if first.Data["token_id"] != "tok-1" || first.Action != "token.introspect" || first.Actor != "api-1" {
				t.Errorf("the summary lost the event's content: %+v", first)
			}
			if !tt.folds && evs[1].Data[CountKey] != "1" {
				t.Errorf("the other summary's count = %q, want 1", evs[1].Data[CountKey])
			}
		})
	}
}

func TestFailedWriteIsKept(t *testing.T) {
	j := newJournal()
	tl := newTally(t, j, 0)
	tl.Add(event(5))
	tl.Add(event(-5))
	tl.Add(event(10))
	j.setFail(errors.New("disk full"), 0)
	if n, err := tl.Flush(context.Background()); err == nil || n != 0 {
		t.Fatalf("Flush = %d, %v; want 0 and the journal's error", n, err)
	}
	// Until a write succeeds, events are the caller's to write, so that
	// it meets the failure too.
	if tl.Add(event(11)) {
		t.Error("Add took an event while the journal was failing")
	}
	if _, err := tl.Flush(context.Background()); err == nil {
		t.Fatal("Flush succeeded on a failing journal")
	}
	j.setFail(nil, 0)
	if n, err := tl.Flush(context.Background()); err != nil || n != 1 {
		t.Fatalf("Flush = %d, %v; want 1 summary", n, err)
	}
	evs := j.written()
	if len(evs) != 1 {
		t.Fatalf("wrote %d events, want 1", len(evs))
	}
	if d := evs[0].Data; d[CountKey] != "3" || d[FirstKey] != t0.Add(-5*time.Second).Format(time.RFC3339Nano) || d[LastKey] != t0.Add(10*time.Second).Format(time.RFC3339Nano) {
		t.Errorf("summary = %v, want count 3 from t0-5s to t0+10s", d)
	}
	if !tl.Add(event(12)) {
		t.Error("Add refused an event after the journal recovered")
	}
}

// TestChunks: a long backlog is written in several writes; when one fails,
// the ones before it stay written and the rest are kept.
func TestChunks(t *testing.T) {
	j := newJournal()
	var (
		mu     sync.Mutex
		writes []error
	)
	tl := New(j, Options{Interval: time.Hour, MaxPending: 4 * chunk, OnWrite: func(err error) { // not full: no write but the test's
		mu.Lock()
		defer mu.Unlock()
		writes = append(writes, err)
	}})
	t.Cleanup(tl.Close)
	for i := range 2*chunk + 100 {
		ev := event(i)
		ev.Data["token_id"] = strconv.Itoa(i)
		if !tl.Add(ev) {
			t.Fatalf("Add refused event %d", i)
		}
	}
	j.setFail(errors.New("connection lost"), 1)
	if n, err := tl.Flush(context.Background()); err == nil || n != chunk {
		t.Fatalf("Flush = %d, %v; want %d and the journal's error", n, err, chunk)
	}
	if n := len(j.written()); n != chunk {
		t.Fatalf("%d summaries written, want the first chunk's %d", n, chunk)
	}
	if n := tl.Held(); n != chunk+100 {
		t.Errorf("Held = %d, want the %d kept", n, chunk+100)
	}
	mu.Lock()
	if len(writes) != 2 || writes[0] != nil || writes[1] == nil {
		t.Errorf("OnWrite saw %v, want a success and a failure", writes)
	}
	mu.Unlock()
	j.setFail(nil, 0)
	if n, err := tl.Flush(context.Background()); err != nil || n != chunk+100 {
		t.Fatalf("Flush = %d, %v; want the %d kept", n, err, chunk+100)
	}
	seen := map[string]bool{}
	for _, ev := range j.written() {
		if seen[ev.Data["token_id"]] || ev.Data[CountKey] != "1" {
			t.Fatalf("summary %v written twice or miscounted", ev.Data)
		}
		seen[ev.Data["token_id"]] = true
	}
	if len(seen) != 2*chunk+100 {
		t.Errorf("%d summaries written, want %d", len(seen), 2*chunk+100)
	}
}

func TestMaxPending(t *testing.T) {
	j := newJournal()
	j.started, j.gate = make(chan struct{}, 10), make(chan struct{})
	tl := newTally(t, j, 2)
	other := func(id string) storage.AuditEvent {
		ev := event(0)
		ev.Data["token_id"] = id
		return ev
	}
	if !tl.Add(other("a")) || !tl.Add(other("b")) {
		t.Fatal("Add refused an event below the cap")
	}
	<-j.started // the cap started a write, which waits on the gate
	if n := tl.Held(); n != 2 {
		t.Errorf("Held = %d during the write, want 2", n)
	}
	// The two being written count against the cap.
	if tl.Add(other("c")) || tl.Add(other("a")) {
		t.Error("Add took a new summary while the cap's worth was being written")
	}
	j.gate <- struct{}{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		tl.mu.Lock()
		writing := tl.writing
		tl.mu.Unlock()
		if writing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write never ended")
		}
	}
	if !tl.Add(other("c")) {
		t.Error("Add refused a new summary after the held ones were written")
	}
	close(j.gate) // no more waiting
}

// TestCloseGivesUp: a journal that does not answer holds Close up for
// closeTimeout, not for ever — neither the background write Close waits
// for nor its own last one.
func TestCloseGivesUp(t *testing.T) {
	defer func(d time.Duration) { closeTimeout = d }(closeTimeout)
	closeTimeout = 50 * time.Millisecond
	j := newJournal()
	j.started, j.gate = make(chan struct{}, 10), make(chan struct{}) // never opened
	tl := New(j, Options{Interval: time.Hour, MaxPending: 1})
	tl.Add(event(0)) // full: a background write starts, and hangs
	<-j.started
	closed := make(chan struct{})
	go func() { tl.Close(); close(closed) }()
	await(t, closed, "Close waited for ever on a journal that does not answer")
	if n := len(j.written()); n != 0 {
		t.Errorf("%d summaries written to a journal that never answered", n)
	}
}

// TestCloseGivesUpOnce: the write Close gave up waiting for may still be
// written later (a group commit's is); Close must not write its summaries
// again, counting each event twice.
func TestCloseGivesUpOnce(t *testing.T) {
	defer func(d time.Duration) { closeTimeout = d }(closeTimeout)
	closeTimeout = 50 * time.Millisecond
	tests := []struct {
		name  string
		stuck bool // the journal answers only after Close gave up
	}{
		{"the journal answers", false},
		{"the journal is stuck", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newJournal()
			j.started, j.gate, j.late = make(chan struct{}, 10), make(chan struct{}), new(sync.WaitGroup)
			var logs testkeyward.SyncBuffer
			tl := New(j, Options{Interval: time.Hour, MaxPending: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			added := 0
			for _, id := range []string{"a", "b"} { // full: a background write starts
				ev := event(0)
				ev.Data["token_id"] = id
				if tl.Add(ev) {
					added++
				}
			}
			<-j.started
			if !tt.stuck {
				close(j.gate)
			}
			tl.Close()
			if tt.stuck {
				close(j.gate)
			}
			j.late.Wait()
			total := 0
			for _, ev := range j.written() {
				n, _ := strconv.Atoi(ev.Data[CountKey])
				total += n
			}
			if total != added {
				t.Errorf("summaries count %d events, want the %d added", total, added)
			}
			// The loop, its write abandoned, ends without saying it will
			// try again; Close says what became of the summaries.
			if strings.Contains(logs.String(), "trying again") {
				t.Errorf("the log says the summaries will be tried again after Close gave up on them:\n%s", logs.String())
			}
			if tt.stuck && !strings.Contains(logs.String(), "may not have been written") {
				t.Errorf("Close gave up on the write without saying so:\n%s", logs.String())
			}
		})
	}
}

func TestFullTallyWritesAtOnce(t *testing.T) {
	j := newJournal()
	tl := newTally(t, j, 3) // an hour's interval: only the cap can start this write
	for _, id := range []string{"a", "b", "c"} {
		ev := event(0)
		ev.Data["token_id"] = id
		tl.Add(ev)
	}
	await(t, j.wrote, "a full tally was not written")
	if n := len(j.written()); n != 3 {
		t.Errorf("wrote %d summaries, want 3", n)
	}
}

func TestInterval(t *testing.T) {
	j := newJournal()
	tl := New(j, Options{Interval: 10 * time.Millisecond})
	defer tl.Close()
	tl.Add(event(0))
	tl.Add(event(1))
	await(t, j.wrote, "nothing was written after many intervals")
	if evs := j.written(); len(evs) != 1 || evs[0].Data[CountKey] != "2" {
		t.Errorf("wrote %v, want one summary of 2", evs)
	}
}

func TestClose(t *testing.T) {
	j := newJournal()
	tl := New(j, Options{Interval: time.Hour})
	tl.Add(event(0))
	tl.Add(event(1))
	tl.Close()
	if evs := j.written(); len(evs) != 1 || evs[0].Data[CountKey] != "2" {
		t.Fatalf("Close wrote %v, want one summary of 2", evs)
	}
	if tl.Add(event(2)) {
		t.Error("Add took an event after Close")
	}
	tl.Close() // twice is fine

	var none *Tally
	if none.Add(event(0)) {
		t.Error("a nil Tally took an event")
	}
	none.Close()
}

func TestConcurrentAdds(t *testing.T) {
	j := newJournal()
	tl := newTally(t, j, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				ev := event(i)
				ev.Data["token_id"] = strconv.Itoa(g % 2)
				tl.Add(ev)
			}
		})
	}
	// Writes in the middle must not lose counts.
	for range 5 {
		if _, err := tl.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if _, err := tl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, ev := range j.written() {
		n, _ := strconv.Atoi(ev.Data[CountKey])
		total += n
	}
	if total != 8*500 {
		t.Errorf("summaries count %d events, want %d", total, 8*500)
	}
}

func BenchmarkAdd(b *testing.B) {
	tl := New(newJournal(), Options{Interval: time.Hour})
	defer tl.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tl.Add(event(0))
		}
	})
}

// flakyJournal fails its first failFirst writes.
type flakyJournal struct {
	mu        sync.Mutex
	writes    int
	failFirst int
}

func (j *flakyJournal) Write(context.Context, storage.Write) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.writes++
	if j.writes <= j.failFirst {
		return errors.New("store unreachable")
	}
	return nil
}

// TestFailuresLoggedOnceAMinute: writes of the summaries that go on
// failing, one each interval, are logged at the first, then at most once
// a minute, with how many failed since; the write that succeeds after
// them says so.
func TestFailuresLoggedOnceAMinute(t *testing.T) {
	tests := []struct {
		name       string
		step       time.Duration // the clock's move at each write
		wantErrors int
	}{
		{"within a minute", 0, 1},
		{"a write each 40 s", 40 * time.Second, 3}, // at 40 s, then 120 s and 200 s of 40 … 240
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				clock = t0
				logs  testkeyward.SyncBuffer
				jlogs testkeyward.SyncBuffer
				wrote = make(chan error, 100)
			)
			j := &flakyJournal{failFirst: 6}
			log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&jlogs, nil)))
			tl := New(j, Options{Interval: 10 * time.Millisecond, Logger: log,
				Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock },
				OnWrite: func(err error) {
					mu.Lock()
					clock = clock.Add(tt.step)
					mu.Unlock()
					wrote <- err
				}})
			tl.Add(event(0))
			for i := 0; ; i++ {
				select {
				case err := <-wrote:
					if err != nil {
						continue
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("no successful write after %d", i)
				}
				break
			}
			tl.Close()
			out := logs.String()
			if n := strings.Count(out, "level=ERROR"); n != tt.wantErrors {
				t.Errorf("%d errors logged for 6 failed writes, want %d:\n%s", n, tt.wantErrors, out)
			}
			if tt.wantErrors > 1 && !strings.Contains(out, "failed_writes=2") {
				t.Errorf("log does not count the failures not logged:\n%s", out)
			}
			if !strings.Contains(out, `level=INFO msg="audit summaries written again"`) {
				t.Errorf("log does not say the summaries were written again:\n%s", out)
			}
			// In JSON, how long the writes failed is an integer of
			// nanoseconds, as slog writes every duration, not a string.
			for _, l := range strings.Split(jlogs.String(), "\n") {
				for _, k := range []string{`"failed_for":`, `"failing_for":`} {
					if i := strings.Index(l, k); i >= 0 && (len(l) == i+len(k) || l[i+len(k)] < '0' || l[i+len(k)] > '9') {
						t.Errorf("JSON line %s: %s is not a number", l, k)
					}
				}
			}
			if !strings.Contains(jlogs.String(), `"failed_for":`) {
				t.Errorf("JSON log lacks failed_for:\n%s", jlogs.String())
			}
			// The summaries held are summaries=, as the lines at
			// shutdown count them.
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "level=ERROR") && (!strings.Contains(l, " summaries=") || strings.Contains(l, " kept=")) {
					t.Errorf("failure line %q, want the summaries held as summaries=", l)
				}
			}
		})
	}
}
