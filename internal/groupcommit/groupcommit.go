// Package groupcommit makes writes durable in batches: every request that
// must record something (an audit event, a used assertion ID) hands its write
// to the Committer and waits; the Committer applies all writes waiting at
// that moment in one transaction, one fsync, and then answers each. Under
// load, batches grow by themselves; with no load, a write commits at once.
package groupcommit

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// Store is the part of storage the Committer needs.
type Store interface {
	Commit(ctx context.Context, writes []storage.Write) ([]error, error)
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("the server is shutting down")

// Committer batches writes. Its zero value is not usable; call New.
type Committer struct {
	store    Store
	maxBatch int
	onBatch  func(size int, d time.Duration, err error)
	timeout  time.Duration

	mu     sync.RWMutex
	closed bool
	reqs   chan *request
	done   chan struct{}

	// ctx is the store's Commit context: Shutdown cancels it when its own
	// ends first.
	ctx    context.Context
	cancel context.CancelFunc
	// waiting counts the writes handed over and not yet answered.
	waiting atomic.Int64
}

type request struct {
	w storage.Write
	// err is the write's outcome, set before done is closed. A channel
	// of error would cost two allocations (its buffer holds pointers, so
	// it is allocated apart), one of struct{} costs one.
	err  error
	done chan struct{}
}

// Options tune a Committer.
type Options struct {
	// MaxBatch caps the writes per transaction; 0 means 512.
	MaxBatch int
	// OnBatch, if set, is called for each transaction with its number of
	// writes, the time it took, and the error it failed with (a timeout
	// too), or nil when it committed.
	OnBatch func(size int, d time.Duration, err error)
	// CommitTimeout bounds each transaction; 0 means DefaultCommitTimeout.
	CommitTimeout time.Duration
}

// DefaultCommitTimeout bounds a transaction, which no one request's
// context ends: a connection whose peer is gone without a word (a
// database failed over, a NAT that dropped it) holds a commit until TCP
// gives up, some 15 minutes, and every write waits behind it, long after
// the database is back. It is well within the server's 30-second write
// timeout, so that the requests' 503 still reaches their clients.
const DefaultCommitTimeout = 20 * time.Second

// New starts a Committer writing to store.
func New(store Store, opts Options) *Committer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = DefaultCommitTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Committer{
		ctx:      ctx,
		cancel:   cancel,
		store:    store,
		maxBatch: opts.MaxBatch,
		onBatch:  opts.OnBatch,
		timeout:  opts.CommitTimeout,
		reqs:     make(chan *request, 4*opts.MaxBatch),
		done:     make(chan struct{}),
	}
	go c.loop()
	return c
}

// Write makes w durable and returns nil, or storage.ErrReplay when one of
// w's JTIs was already used, or the error that kept w from committing: a
// batch that fails is committed again one write at a time, so that a
// write the store refuses fails alone, not every write batched with it.
// When ctx ends first, Write returns ctx's error; the write may still
// commit.
func (c *Committer) Write(ctx context.Context, w storage.Write) error {
	// Encode the events here, in parallel, not in the one committing loop.
	for i := range w.Events {
		w.Events[i].Prepare()
	}
	r := &request{w: w, done: make(chan struct{})}
	done, expired := waitChannels(ctx)
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	c.waiting.Add(1)
	select {
	case c.reqs <- r:
	case <-done:
		c.waiting.Add(-1)
		c.mu.RUnlock()
		return ctx.Err()
	case <-expired:
		c.waiting.Add(-1)
		c.mu.RUnlock()
		return ctx.Err()
	}
	c.mu.RUnlock()
	select {
	case <-r.done:
		return r.err
	case <-done:
		return ctx.Err()
	case <-expired:
		return ctx.Err()
	}
}

// Queued returns how many writes have been handed over and wait for a
// batch: those the batch being committed has not taken. Write does no
// work for it; tests read it to know that writes are queued behind a
// commit that waits.
func (c *Committer) Queued() int { return len(c.reqs) }

// waitChannels returns channels, one of which is closed when ctx ends:
// those of a request's context (package deadline), whose own Done
// channel would cost it a timer, else ctx.Done() and nil.
func waitChannels(ctx context.Context) (done, expired <-chan struct{}) {
	if wc, ok := ctx.(interface {
		WaitChannels() (done, expired <-chan struct{})
	}); ok {
		return wc.WaitChannels()
	}
	return ctx.Done(), nil
}

// Close stops accepting writes, commits the ones already accepted and waits
// for them to be durable or failed (each transaction for at most
// Options.CommitTimeout).
func (c *Committer) Close() { c.Shutdown(context.Background()) }

// Shutdown is Close, but waits only until ctx ends. It then cancels the
// commit in progress, whose writes and those after it fail with the
// store's error (a store stuck where it cannot see the cancellation may
// still commit them), and returns how many accepted writes had not been
// answered: they may or may not be durable. It returns 0 when all were.
func (c *Committer) Shutdown(ctx context.Context) int {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	select {
	case <-c.done:
		return 0
	case <-ctx.Done():
	}
	n := int(c.waiting.Load())
	c.cancel()
	return n
}

func (c *Committer) loop() {
	defer close(c.done)
	batch := make([]*request, 0, c.maxBatch)
	writes := make([]storage.Write, 0, c.maxBatch)
	for r := range c.reqs {
		batch = append(batch[:0], r)
		// Let request goroutines that are ready to run reach Write before
		// the batch is closed: with none, this returns at once; under load
		// it makes batches larger, and every batch costs a transaction and
		// an fsync (measured at 64 clients on 2 cores: 60 % more writes per
		// batch, and 15–25 % more requests per second).
		runtime.Gosched()
	fill:
		for len(batch) < c.maxBatch {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		writes = writes[:0]
		for _, r := range batch {
			writes = append(writes, r.w)
		}
		// The batch is committed even if the requests' contexts end: what a
		// request handed over is recorded. Only CommitTimeout, or a
		// Shutdown out of time, cancels it.
		start := time.Now()
		res, err := c.commit(writes)
		if c.onBatch != nil {
			c.onBatch(len(batch), time.Since(start), err)
		}
		if err != nil && len(batch) > 1 && !lostStore(err) {
			// One write the store cannot take (PostgreSQL refuses a NUL
			// in text) fails the whole transaction: each write is then
			// committed alone, so that it fails alone, and the others,
			// which would have committed without it, do. A store that
			// cannot be reached would fail each of them too, each after
			// its own wait, and a commit whose answer was lost may have
			// committed: the batch fails as one.
			res, err = c.commitEach(writes), nil
		}
		for i, r := range batch {
			if err != nil {
				r.err = err
			} else {
				r.err = res[i]
			}
			close(r.done)
			c.waiting.Add(-1)
		}
	}
}

// lostStore reports whether err is the connection to the store failing
// (a dial, a timeout, a connection closed mid-commit) or the store busy
// (another process holding a lock until Commit gave up), not the store
// refusing what was written.
func lostStore(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, storage.ErrBusy) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// commit commits writes in one transaction, for at most c.timeout.
func (c *Committer) commit(writes []storage.Write) ([]error, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	return c.store.Commit(ctx, writes)
}

// commitEach commits each of writes in a transaction of its own, in
// order, and returns the outcome of each. All of them share one deadline,
// c.timeout from the start, not one each: on a store that hangs, a batch
// of 512 would otherwise hold every write behind it for 512 timeouts. Once
// a commit fails as lostStore says a store lost or busy does, or the
// deadline passes, the writes not yet tried fail at once with that error:
// each would only wait on the store again.
func (c *Committer) commitEach(writes []storage.Write) []error {
	ctx, cancel := context.WithTimeoutCause(c.ctx, c.timeout,
		fmt.Errorf("the writes of a failed batch, committed one at a time, took longer than %v: %w", c.timeout, context.DeadlineExceeded))
	defer cancel()
	out := make([]error, len(writes))
	var lost error
	for i, w := range writes {
		if lost == nil && ctx.Err() != nil {
			lost = context.Cause(ctx)
		}
		if lost != nil {
			out[i] = lost
			continue
		}
		start := time.Now()
		res, err := c.store.Commit(ctx, []storage.Write{w})
		if c.onBatch != nil {
			c.onBatch(1, time.Since(start), err)
		}
		if err != nil {
			out[i] = err
			if lostStore(err) {
				lost = err
			}
			continue
		}
		out[i] = res[0]
	}
	return out
}
