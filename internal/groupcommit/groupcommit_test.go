package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// fakeStore records batches; it fails a write whose JTI it has seen.
type fakeStore struct {
	mu      sync.Mutex
	batches [][]storage.Write
	used    map[string]bool
	err     error
	gate    chan struct{} // when set, Commit waits on it
	entered chan int      // when set, Commit sends its batch size on entry
}

func (f *fakeStore) Commit(_ context.Context, ws []storage.Write) ([]error, error) {
	if f.entered != nil {
		f.entered <- len(ws)
	}
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
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

func TestBatchesConcurrentWrites(t *testing.T) {
	st := &fakeStore{used: map[string]bool{}, gate: make(chan struct{}), entered: make(chan int, 100)}
	var sizes []int
	c := New(st, Options{OnBatch: func(n int, _ time.Duration) { sizes = append(sizes, n) }})
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
