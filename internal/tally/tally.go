// Package tally folds repeated audit events into summaries: events equal but
// for their time become one event per interval, carrying how many there were
// and when the last one happened, written to the journal in the background.
//
// It is for events that need not be durable before the answer is sent and
// that a busy caller repeats many times a second — a successful
// introspection is a read, and an API introspects the same token on every
// request it serves. Written one by one, they would make the audit log grow
// by thousands of rows a second and make every answer wait for an fsync.
package tally

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/failurelog"
	"github.com/keyward/keyward/internal/storage"
)

// Data keys a summary adds to the events it folds. The summary's own time
// is when it was written, so that the log's times follow its order.
const (
	// CountKey is the number of events the summary stands for.
	CountKey = "count"
	// FirstKey and LastKey are the times of the first and the last of them
	// (RFC 3339, UTC).
	FirstKey = "first"
	LastKey  = "last"
)

// chunk is the most events one journal write carries: a long backlog goes
// in several transactions, not one that holds the audit log's lock long.
const chunk = 512

// CloseTimeout is the longest Close waits for the journal.
const CloseTimeout = 30 * time.Second

// closeTimeout is CloseTimeout, but for the tests.
var closeTimeout = CloseTimeout

// Journal makes events durable.
type Journal interface {
	Write(ctx context.Context, w storage.Write) error
}

// Options tune a Tally.
type Options struct {
	// Interval is how often the summaries are written; it must be positive.
	Interval time.Duration
	// MaxPending caps the summaries held, those being written included; 0
	// means 10,000. At the cap they are written at once, and until then Add
	// refuses the events that would start a new summary.
	MaxPending int
	// Logger reports summaries that could not be written; nil discards.
	Logger *slog.Logger
	// Now gives the summaries' time; nil means time.Now.
	Now func() time.Time
	// OnWrite, if set, is called after each write to the journal with its
	// error.
	OnWrite func(err error)
}

// Tally holds the summaries of the current interval. Its zero value is not
// usable; call New. A nil *Tally takes no events.
type Tally struct {
	journal Journal
	max     int
	log     *slog.Logger
	now     func() time.Time
	onWrite func(error)

	mu       sync.Mutex
	pending  map[string]*summary
	writing  int  // summaries taken by a Flush not yet done
	failing  bool // the last write failed: take nothing until one succeeds
	closed   bool
	finished chan struct{} // closed when Close has written the last ones

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	// abandon ends the background write that Close gave up waiting for.
	abandon context.CancelFunc
	ctx     context.Context
}

type summary struct {
	key   string
	first storage.AuditEvent
	count int64
	last  time.Time
}

// New starts a Tally writing to journal every opts.Interval.
func New(journal Journal, opts Options) *Tally {
	if opts.MaxPending <= 0 {
		opts.MaxPending = 10_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnWrite == nil {
		opts.OnWrite = func(error) {}
	}
	t := &Tally{
		journal:  journal,
		max:      opts.MaxPending,
		log:      opts.Logger,
		now:      opts.Now,
		onWrite:  opts.OnWrite,
		pending:  make(map[string]*summary),
		finished: make(chan struct{}),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	t.ctx, t.abandon = context.WithCancel(context.Background())
	go t.run(opts.Interval)
	return t
}

var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// Add counts ev into the summary of the events equal to it but for their
// time, and reports whether it did. It does not when t is nil or closed,
// while the last write to the journal failed (so that the caller, writing
// ev itself, meets the failure), or when ev would start a summary while
// MaxPending are held; the caller then records ev itself. Add takes
// ownership of ev.Data.
func (t *Tally) Add(ev storage.AuditEvent) bool {
	if t == nil {
		return false
	}
	buf := keyBufs.Get().(*[]byte)
	defer keyBufs.Put(buf)
	*buf = appendKey((*buf)[:0], &ev)

	t.mu.Lock()
	if t.closed || t.failing {
		t.mu.Unlock()
		return false
	}
	if s := t.pending[string(*buf)]; s != nil {
		s.add(ev.Time, ev.Time, 1)
		t.mu.Unlock()
		return true
	}
	if len(t.pending)+t.writing >= t.max {
		t.mu.Unlock()
		t.flushSoon()
		return false
	}
	key := string(*buf)
	t.pending[key] = &summary{key: key, first: ev, count: 1, last: ev.Time}
	full := len(t.pending)+t.writing >= t.max
	t.mu.Unlock()
	if full {
		t.flushSoon()
	}
	return true
}

func (s *summary) add(first, last time.Time, n int64) {
	s.count += n
	if first.Before(s.first.Time) {
		s.first.Time = first
	}
	if last.After(s.last) {
		s.last = last
	}
}

// event is the summary as an audit event at now.
func (s *summary) event(now time.Time) storage.AuditEvent {
	ev := storage.AuditEvent{
		Time: now, Action: s.first.Action, Outcome: s.first.Outcome,
		AccountID: s.first.AccountID, Actor: s.first.Actor, Source: s.first.Source,
		Data: maps.Clone(s.first.Data),
	}
	if ev.Data == nil {
		ev.Data = make(map[string]string, 3)
	}
	ev.Data[CountKey] = strconv.FormatInt(s.count, 10)
	ev.Data[FirstKey] = s.first.Time.UTC().Format(time.RFC3339Nano)
	ev.Data[LastKey] = s.last.UTC().Format(time.RFC3339Nano)
	return ev
}

// appendKey appends what identifies ev's summary: every field but the time
// (and the chain's, which the store fills), each prefixed by its length.
func appendKey(b []byte, ev *storage.AuditEvent) []byte {
	str := func(b []byte, s string) []byte {
		return append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	for _, s := range [...]string{ev.Action, ev.Outcome, ev.AccountID, ev.Actor, ev.Source} {
		b = str(b, s)
	}
	var arr [8]string
	keys := arr[:0]
	for k := range ev.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = str(str(b, k), ev.Data[k])
	}
	return b
}

func (t *Tally) flushSoon() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *Tally) run(interval time.Duration) {
	defer close(t.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// Failed writes are logged at the first, then at most once each
	// failurelog.Every, then at the first success: a line each interval
	// (a second by default) would bury the log while the store is down.
	var failures failurelog.Spell
	for {
		select {
		case <-tick.C:
		case <-t.kick:
		case <-t.stop:
			return
		}
		if _, err := t.Flush(t.ctx); err != nil {
			if t.ctx.Err() != nil {
				return // Close gave up on this write, and says so itself
			}
			switch n := failures.Failed(t.now()); {
			case n.First:
				t.log.Error("audit summaries not written; trying again at the next interval, and until then each event is written before its answer (while writes fail, this is logged at most once a minute)", "summaries", t.Held(), "err", err)
			case n.Again:
				t.log.Error("audit summaries still not written; until they are, each event is written before its answer", "summaries", t.Held(), "err", err,
					"failing_for", n.For.Round(time.Second), "failed_writes", n.Failures)
			}
			select { // a kick from before the failure must not retry at once
			case <-t.kick:
			default:
			}
		} else if d, ok := failures.Succeeded(t.now()); ok {
			t.log.Info("audit summaries written again", "failed_for", d.Round(time.Second))
		}
	}
}

// Flush writes the summaries held now, in chunks, and returns how many it
// wrote. The ones a failed write leaves are kept for the next Flush, and
// until one succeeds Add takes nothing.
func (t *Tally) Flush(ctx context.Context) (int, error) {
	t.mu.Lock()
	held := t.pending
	if len(held) == 0 {
		t.failing = false
		t.mu.Unlock()
		return 0, nil
	}
	t.pending = make(map[string]*summary, len(held))
	t.writing += len(held)
	t.mu.Unlock()

	sums := slices.SortedFunc(maps.Values(held), func(a, b *summary) int {
		return cmp.Or(a.first.Time.Compare(b.first.Time), cmp.Compare(a.key, b.key))
	})
	now := t.now()
	written := 0
	var err error
	for len(sums) > written && err == nil {
		part := sums[written:min(len(sums), written+chunk)]
		evs := make([]storage.AuditEvent, len(part))
		for i, s := range part {
			evs[i] = s.event(now)
		}
		err = t.journal.Write(ctx, storage.Write{Events: evs})
		t.onWrite(err)
		if err == nil {
			written += len(part)
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.writing -= len(sums)
	t.failing = err != nil
	for _, s := range sums[written:] {
		if p := t.pending[s.key]; p != nil {
			p.add(s.first.Time, s.last, s.count)
		} else {
			t.pending[s.key] = s
		}
	}
	return written, err
}

// Close stops taking events and writes the summaries held. It waits for
// the journal at most 30 seconds in all, then gives up; a later Close
// waits for the first.
func (t *Tally) Close() {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	t.Shutdown(ctx)
}

// Shutdown is Close, waiting for the journal only until ctx ends: a
// caller with more to close before its own deadline shares that bound
// with it. A later Close or Shutdown waits for the first.
func (t *Tally) Shutdown(ctx context.Context) {
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.finished
		return
	}
	t.closed = true
	t.mu.Unlock()
	defer close(t.finished)
	defer t.abandon()
	close(t.stop)
	select {
	case <-t.done:
	case <-ctx.Done():
		// The loop's write, stuck on the journal, may still be written
		// (a group commit's is): writing its summaries again could count
		// them twice, and there is no time left for the others.
		t.abandon()
		<-t.done
		t.log.Error("audit summaries may not have been written at shutdown: the audit log did not answer in time", "summaries", t.Held())
		return
	}
	if _, err := t.Flush(ctx); errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.log.Error("audit summaries may not have been written at shutdown: the audit log did not answer in time", "summaries", t.Held(), "err", err)
	} else if err != nil {
		t.log.Error("audit summaries lost at shutdown: they could not be written", "summaries", t.Held(), "err", err)
	}
}

// Held returns the number of summaries not yet written, those being
// written included.
func (t *Tally) Held() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) + t.writing
}
