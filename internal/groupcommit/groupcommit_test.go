package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// fakeStore records batches; it fails a write whose JTI it has seen.
type fakeStore struct {
	mu        sync.Mutex
	batches   [][]storage.Write
	used      map[string]bool
	err       error
	poison    string        // when set, a batch with a write of this JTI fails
	poisonErr error         // the error it fails with; errPoison if nil
	gate      chan struct{} // when set, Commit waits on it
	gateCtx   bool          // when set, Commit waits on gate or its context, whichever ends first
	entered   chan int      // when set, Commit sends its batch size on entry
}

func (f *fakeStore) Commit(ctx context.Context, ws []storage.Write) ([]error, error) {
	if f.entered != nil {
		f.entered <- len(ws)
	}
	if f.gate != nil && f.gateCtx {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	} else if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	for _, w := range ws {
		for _, u := range w.JTIs {
			if f.poison != "" && u.JTI == f.poison {
				if f.poisonErr != nil {
					return nil, f.poisonErr
				}
				return nil, errPoison
			}
		}
	}
	f.batches = append(f.batches, append([]storage.Write(nil), ws...))
	res := make([]error, len(ws))
	for i, w := range ws {
		for _, u := range w.JTIs {
			if f.used[u.JTI] {
				res[i] = storage.ErrReplay
			}
			f.used[u.JTI] = true
		}
	}
	return res, nil
}

var errPoison = errors.New("invalid byte sequence")

func TestBatchesConcurrentWrites(t *testing.T) {
	st := &fakeStore{used: map[string]bool{}, gate: make(chan struct{}), entered: make(chan int, 100)}
	var sizes []int
	c := New(st, Options{OnBatch: func(n int, _ time.Duration, _ error) { sizes = append(sizes, n) }})
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := storage.Write{Events: []storage.AuditEvent{{Action: "e"}}}
			if i%10 == 0 {
				w.JTIs = []storage.UsedJTI{{JTI: "same"}}
			}
			errs <- c.Write(context.Background(), w)
		}()
	}
	// Hold the first commit until every other write is queued behind it.
	first := <-st.entered
	for len(c.reqs) < n-first {
		runtime.Gosched()
	}
	close(st.gate)
	wg.Wait()
	close(errs)
	c.Close()
	replays := 0
	for err := range errs {
		if errors.Is(err, storage.ErrReplay) {
			replays++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if replays != 9 {
		t.Fatalf("%d replays, want 9 (10 uses of one JTI)", replays)
	}
	if len(st.batches) > 3 {
		t.Fatalf("%d transactions for %d queued writes; want them batched", len(st.batches), n)
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != n {
		t.Fatalf("OnBatch saw %d writes, want %d", total, n)
	}
}

func TestCommitErrorReachesEveryWriter(t *testing.T) {
	boom := errors.New("disk full")
	c := New(&fakeStore{used: map[string]bool{}, err: boom}, Options{})
	defer c.Close()
	if err := c.Write(context.Background(), storage.Write{}); !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want %v", err, boom)
	}
}

// A write the store refuses (PostgreSQL refuses a NUL in a DPoP proof's
// jti) fails its batch's transaction: it alone gets the error, and the
// writes batched with it are made durable. A batch that fails because the
// store cannot be reached is not committed again write by write: each
// would wait on the store again, and the batch may have committed.
func TestRefusedWriteFailsAlone(t *testing.T) {
	lost := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tests := []struct {
		name      string
		err       error
		committed int   // writes made durable: the first, and the batch's
		commits   int   // calls of Commit
		failed    []int // writes of the batch that get err
	}{
		{"refused write", errPoison, 5, 2 + 5, []int{2}},
		{"lost connection", lost, 1, 2, []int{0, 1, 2, 3, 4}},
		{"lost connection, wrapped", fmt.Errorf("postgres: commit: %w", lost), 1, 2, []int{0, 1, 2, 3, 4}},
		// Another process holding the database (SQLite's busy_timeout,
		// PostgreSQL's lock_timeout): each write alone would wait as long.
		{"store busy", fmt.Errorf("sqlite: begin: %w", storage.ErrBusy), 1, 2, []int{0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStore{used: map[string]bool{}, poison: "bad", poisonErr: tt.err, gate: make(chan struct{}), entered: make(chan int, 20)}
			c := New(st, Options{})
			// The first write holds the loop, so the others are batched together.
			first := make(chan error, 1)
			go func() { first <- c.Write(context.Background(), storage.Write{}) }()
			<-st.entered
			const n = 5
			errs := make([]chan error, n)
			for i := range n {
				errs[i] = make(chan error, 1)
				w := storage.Write{JTIs: []storage.UsedJTI{{JTI: fmt.Sprint("j", i)}}, Events: []storage.AuditEvent{{Action: "e"}}}
				if i == 2 {
					w.JTIs[0].JTI = "bad"
				}
				go func() { errs[i] <- c.Write(context.Background(), w) }()
			}
			for len(c.reqs) < n {
				runtime.Gosched()
			}
			close(st.gate)
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			for i := range n {
				err := <-errs[i]
				if slices.Contains(tt.failed, i) {
					if !errors.Is(err, tt.err) {
						t.Errorf("write %d: Write = %v, want %v", i, err, tt.err)
					}
				} else if err != nil {
					t.Errorf("write %d, batched with a refused one: Write = %v, want nil", i, err)
				}
			}
			c.Close()
			committed := 0
			for _, b := range st.batches {
				committed += len(b)
			}
			if committed != tt.committed {
				t.Errorf("%d writes committed, want %d", committed, tt.committed)
			}
			if len(st.entered) != tt.commits-1 {
				t.Errorf("Commit called %d times, want %d", len(st.entered)+1, tt.commits)
			}
		})
	}
}

func TestCloseFlushesAndRefuses(t *testing.T) {
	st := &fakeStore{used: map[string]bool{}}
	c := New(st, Options{})
	if err := c.Write(context.Background(), storage.Write{Events: []storage.AuditEvent{{Action: "a"}}}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Write(context.Background(), storage.Write{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	if len(st.batches) != 1 {
		t.Fatalf("%d batches committed, want 1", len(st.batches))
	}
	c.Close() // idempotent
}

func TestCanceledContext(t *testing.T) {
	st := &fakeStore{used: map[string]bool{}, gate: make(chan struct{})}
	c := New(st, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The loop is blocked on nothing yet; a canceled context may still enqueue
	// or return at once, but must never hang.
	err := c.Write(ctx, storage.Write{})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v", err)
	}
	close(st.gate)
	c.Close()
}

// splitContext is a request's context as package deadline makes it: its
// end comes on either of WaitChannels' channels, and asking for its Done
// channel would arm a timer of its own.
type splitContext struct {
	context.Context
	t                 *testing.T
	canceled, expired chan struct{}
}

func (c *splitContext) Done() <-chan struct{} {
	c.t.Error("Write asked for Done, which arms a timer, instead of WaitChannels")
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (c *splitContext) Err() error {
	switch {
	case closedChan(c.canceled):
		return context.Canceled
	case closedChan(c.expired):
		return context.DeadlineExceeded
	}
	return nil
}

func (c *splitContext) WaitChannels() (done, expired <-chan struct{}) { return c.canceled, c.expired }

func closedChan(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A write whose context gives WaitChannels waits on them, not on Done,
// and ends with either: its client gone, or its deadline past.
func TestWaitChannels(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(*splitContext)
		want error
	}{
		{"committed", nil, nil},
		{"canceled", func(c *splitContext) { close(c.canceled) }, context.Canceled},
		{"expired", func(c *splitContext) { close(c.expired) }, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStore{used: map[string]bool{}}
			if tt.end != nil {
				st.gate = make(chan struct{})
			}
			c := New(st, Options{})
			ctx := &splitContext{Context: context.Background(), t: t, canceled: make(chan struct{}), expired: make(chan struct{})}
			if tt.end != nil {
				tt.end(ctx)
			}
			if err := c.Write(ctx, storage.Write{}); !errors.Is(err, tt.want) {
				t.Errorf("Write = %v, want %v", err, tt.want)
			}
			if st.gate != nil {
				close(st.gate)
			}
			c.Close()
		})
	}
}

// TestShutdownGivesUp: a store that does not answer (a hung PostgreSQL, a
// SQLite file on a stalled NFS mount) holds Shutdown only until its
// context ends; it then reports the writes left unconfirmed and cancels
// the commit, which a store that sees its context gives up at once.
func TestShutdownGivesUp(t *testing.T) {
	for _, tt := range []struct {
		name    string
		seesCtx bool
	}{
		{"store sees its context", true},
		{"store stuck for good", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStore{used: map[string]bool{}, gate: make(chan struct{}), gateCtx: tt.seesCtx}
				c := New(st, Options{})
				errs := make(chan error, 2)
				for range 2 {
					go func() {
						errs <- c.Write(context.Background(), storage.Write{Events: []storage.AuditEvent{{Action: "a"}}})
					}()
				}
				synctest.Wait()
				// Shutdown's context ends before the commit's own timeout.
				ctx, cancel := context.WithTimeout(context.Background(), DefaultCommitTimeout/2)
				defer cancel()
				start := time.Now()
				if n := c.Shutdown(ctx); n != 2 {
					t.Errorf("Shutdown = %d unconfirmed writes, want 2", n)
				}
				if d := time.Since(start); d != DefaultCommitTimeout/2 {
					t.Errorf("Shutdown took %v, want %v", d, DefaultCommitTimeout/2)
				}
				if !tt.seesCtx {
					close(st.gate) // the store answers after all
				}
				for range 2 {
					err := <-errs
					if tt.seesCtx && !errors.Is(err, context.Canceled) {
						t.Errorf("Write = %v, want context.Canceled", err)
					}
				}
				committed := 0
				for _, b := range st.batches {
					committed += len(b)
				}
				if want := map[bool]int{true: 0, false: 2}[tt.seesCtx]; committed != want {
					t.Errorf("%d writes committed, want %d", committed, want)
				}
			})
		})
	}
}

func TestShutdownInTime(t *testing.T) {
	st := &fakeStore{used: map[string]bool{}}
	c := New(st, Options{})
	if err := c.Write(context.Background(), storage.Write{Events: []storage.AuditEvent{{Action: "a"}}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n := c.Shutdown(ctx); n != 0 {
		t.Errorf("Shutdown = %d unconfirmed writes, want 0", n)
	}
}

// A commit the store never answers (a connection whose peer is gone
// without a word holds one until TCP gives up, some 15 minutes) fails
// after CommitTimeout, and the writes after it go on once the store
// answers again: it held every write behind it, with no request's context
// to end it.
func TestCommitTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{used: map[string]bool{}, gate: make(chan struct{}), gateCtx: true}
		c := New(st, Options{})
		defer c.Close()
		start := time.Now()
		err := c.Write(context.Background(), storage.Write{JTIs: []storage.UsedJTI{{JTI: "a"}}})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write on a store that does not answer = %v, want %v", err, context.DeadlineExceeded)
		}
		if d := time.Since(start); d != DefaultCommitTimeout {
			t.Errorf("Write failed after %v, want %v", d, DefaultCommitTimeout)
		}
		close(st.gate) // the store answers again
		if err := c.Write(context.Background(), storage.Write{JTIs: []storage.UsedJTI{{JTI: "b"}}}); err != nil {
			t.Fatalf("Write once the store answers: %v", err)
		}
	})
}

// fallbackStore fails every batch of more than one write as a store
// refusing one of them does, and takes each write alone after perWrite, or
// never (perWrite 0: the store hangs), unless its context ends first, or
// fails it at once with lost when set.
type fallbackStore struct {
	perWrite time.Duration
	lost     error
	mu       sync.Mutex
	singles  int // calls of Commit with one write
}

func (f *fallbackStore) Commit(ctx context.Context, ws []storage.Write) ([]error, error) {
	if len(ws) > 1 {
		return nil, errPoison
	}
	f.mu.Lock()
	f.singles++
	f.mu.Unlock()
	if f.lost != nil {
		return nil, f.lost
	}
	var done <-chan time.Time
	if f.perWrite > 0 {
		done = time.After(f.perWrite)
	}
	select {
	case <-done:
		return make([]error, len(ws)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// A failed batch committed again one write at a time is bounded as a
// whole by CommitTimeout, not each write by it: on a store that hangs, or
// one too slow to take them all in time, the writes not yet tried fail at
// once, instead of holding every write behind them for a timeout each
// (512 of them, at 20 s each, held the server for nearly 3 hours). One
// write finding the store lost or busy fails the rest as well, at once.
func TestCommitEachBounded(t *testing.T) {
	const timeout = time.Second
	tests := []struct {
		name      string
		perWrite  time.Duration // 0: the store hangs
		lost      error         // if set, each write tried alone fails with it at once
		committed int           // writes of the batch made durable
		singles   int           // of them, tried alone
		want      error         // the error of the others
	}{
		{"store hangs", 0, nil, 0, 1, context.DeadlineExceeded},
		{"store slow", 2 * timeout / 5, nil, 2, 3, context.DeadlineExceeded},
		{"store busy", 0, storage.ErrBusy, 0, 1, storage.ErrBusy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fallbackStore{perWrite: tt.perWrite, lost: tt.lost}
				c := New(st, Options{CommitTimeout: timeout})
				defer c.Close()
				const n = 8
				writes := make([]storage.Write, n)
				for i := range writes {
					writes[i] = storage.Write{JTIs: []storage.UsedJTI{{JTI: fmt.Sprint("j", i)}}}
				}
				start := time.Now()
				res := c.commitEach(writes)
				if d := time.Since(start); d > timeout {
					t.Errorf("commitEach took %v, want at most the CommitTimeout, %v", d, timeout)
				}
				committed := 0
				for i, err := range res {
					switch {
					case err == nil:
						committed++
					case !errors.Is(err, tt.want):
						t.Errorf("write %d: %v, want %v", i, err, tt.want)
					}
				}
				if committed != tt.committed {
					t.Errorf("%d writes committed, want %d", committed, tt.committed)
				}
				if st.singles != tt.singles {
					t.Errorf("%d writes tried alone, want %d (the others failed at once)", st.singles, tt.singles)
				}
			})
		})
	}
}

// OnBatch sees every transaction, the ones that fail or time out too,
// with their error: a commit metric that observed only the transactions
// that committed went quiet while the store was down.
func TestOnBatchSeesFailures(t *testing.T) {
	boom := errors.New("disk full")
	tests := []struct {
		name string
		err  error // the store's
		hang bool  // the store does not answer
		want error
	}{
		{"committed", nil, false, nil},
		{"failed", boom, false, boom},
		{"timed out", nil, true, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStore{used: map[string]bool{}, err: tt.err}
				if tt.hang {
					st.gate, st.gateCtx = make(chan struct{}), true // made in the bubble
				}
				var mu sync.Mutex
				var seen []error
				c := New(st, Options{OnBatch: func(n int, _ time.Duration, err error) {
					mu.Lock()
					defer mu.Unlock()
					if n != 1 {
						t.Errorf("OnBatch size %d, want 1", n)
					}
					seen = append(seen, err)
				}})
				defer c.Close()
				if err := c.Write(context.Background(), storage.Write{}); !errors.Is(err, tt.want) {
					t.Fatalf("Write = %v, want %v", err, tt.want)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(seen) != 1 || !errors.Is(seen[0], tt.want) {
					t.Fatalf("OnBatch saw %v, want one transaction with %v", seen, tt.want)
				}
			})
		})
	}
}

// nopStore commits every write at once, allocating nothing.
type nopStore struct{}

var nopResults = make([]error, 512)

func (nopStore) Commit(_ context.Context, ws []storage.Write) ([]error, error) {
	return nopResults[:len(ws)], nil
}

// TestWriteAllocs pins what a write costs the heap, here and in the
// committing loop, one write per batch: the request and its channel (2),
// and the batch's commit deadline (context.WithTimeout, 4). Every token
// issued and every introspection writes one.
func TestWriteAllocs(t *testing.T) {
	c := New(nopStore{}, Options{})
	defer c.Close()
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		if err := c.Write(ctx, storage.Write{}); err != nil {
			t.Fatal(err)
		}
	}); n > 6 {
		t.Errorf("Write: %v allocations, want at most 6", n)
	}
}
