package tally

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// journal records what is written to it and fails while fail is set.
type journal struct {
	mu     sync.Mutex
	fail   error
	events []storage.AuditEvent
	wrote  chan struct{}
}

func newJournal() *journal { return &journal{wrote: make(chan struct{}, 100)} }

func (j *journal) Write(_ context.Context, w storage.Write) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
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

// newTally is a Tally that writes only when told to.
func newTally(t *testing.T, j Journal, max int) *Tally {
	t.Helper()
	tl := New(j, Options{Interval: time.Hour, MaxPending: max})
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
			if !first.Time.Equal(t0) {
				t.Errorf("time = %v, want the first event's, %v", first.Time, t0)
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
	for i := range 3 {
		tl.Add(event(i))
	}
	j.fail = errors.New("disk full")
	if n, err := tl.Flush(context.Background()); err == nil || n != 1 {
		t.Fatalf("Flush = %d, %v; want 1 and the journal's error", n, err)
	}
	// Two more, one of them earlier than the kept summary's first event.
	tl.Add(event(10))
	tl.Add(event(-5))
	j.fail = nil
	if n, err := tl.Flush(context.Background()); err != nil || n != 1 {
		t.Fatalf("Flush = %d, %v; want 1 summary", n, err)
	}
	evs := j.written()
	if len(evs) != 1 {
		t.Fatalf("wrote %d events, want 1", len(evs))
	}
	if evs[0].Data[CountKey] != "5" || !evs[0].Time.Equal(t0.Add(-5*time.Second)) || evs[0].Data[LastKey] != t0.Add(10*time.Second).Format(time.RFC3339Nano) {
		t.Errorf("summary = %v at %v, want count 5 from t0-5s to t0+10s", evs[0].Data, evs[0].Time)
	}
}

func TestMaxPending(t *testing.T) {
	j := newJournal()
	j.fail = errors.New("store down") // keep the background write from emptying the tally
	tl := newTally(t, j, 2)
	other := func(id string) storage.AuditEvent {
		ev := event(0)
		ev.Data["token_id"] = id
		return ev
	}
	if !tl.Add(other("a")) || !tl.Add(other("b")) {
		t.Fatal("Add refused an event below the cap")
	}
	if tl.Add(other("c")) {
		t.Error("Add took a third summary with MaxPending 2")
	}
	if !tl.Add(other("a")) {
		t.Error("Add refused an event of a summary already held")
	}
	j.mu.Lock()
	j.fail = nil
	j.mu.Unlock()
	if _, err := tl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !tl.Add(other("c")) {
		t.Error("Add refused a new summary after the held ones were written")
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
	select {
	case <-j.wrote:
	case <-time.After(30 * time.Second):
		t.Fatal("a full tally was not written")
	}
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
	select {
	case <-j.wrote:
	case <-time.After(30 * time.Second):
		t.Fatal("nothing was written after many intervals")
	}
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
