// Package deadline gives requests a deadline without a timer each: the
// requests that start within the same Granularity share one deadline, a
// little earlier than each one's own, and one timer that ends them all.
//
// A request's Context arms nothing more until something asks for its
// Done channel, which a request served from caches and answered after a
// group commit does not: the group commit waits on WaitChannels instead,
// its client's channel and the shared deadline's, and a refusal's audit
// event is written with Detached, the shared deadline alone.
package deadline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Granularity is how far apart the shared deadlines are: a Context ends
// at most this much before the bound it was given.
const Granularity = 100 * time.Millisecond

// Clock hands out Contexts that end a fixed time after they start. Its
// zero value is not usable; call NewClock. A Clock's shared deadlines
// are made by the goroutine that first needs them: under testing/synctest,
// make the Clock in the bubble that uses it.
type Clock struct {
	bound time.Duration
	epoch time.Time

	mu  sync.Mutex
	cur atomic.Pointer[bucket] // the latest deadline made
}

// NewClock returns a Clock whose Contexts end within bound of their
// start, and less than Granularity before it.
func NewClock(bound time.Duration) *Clock {
	return &Clock{bound: bound, epoch: time.Now()}
}

// bucket is a deadline shared by the Contexts that start within the same
// Granularity: done is closed at at.
type bucket struct {
	n    int64
	at   time.Time
	done chan struct{}
}

// bucket returns the shared deadline of a Context starting now: the last
// one at or before now+bound.
func (k *Clock) bucket() *bucket {
	n := int64((time.Since(k.epoch) + k.bound) / Granularity)
	if b := k.cur.Load(); b != nil && b.n == n {
		return b
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := k.cur.Load()
	if cur != nil && cur.n == n {
		return cur
	}
	b := &bucket{n: n, at: k.epoch.Add(time.Duration(n) * Granularity), done: make(chan struct{})}
	time.AfterFunc(time.Until(b.at), func() { close(b.done) })
	// A goroutine that computed n before another made a later deadline
	// gets one of its own: a later one would be past its bound.
	if cur == nil || n > cur.n {
		k.cur.Store(b)
	}
	return b
}

// Context is a request's context: its parent's, ending at a deadline
// shared with the requests that started about when it did. Call Close
// when the request is done.
type Context struct {
	parent context.Context
	b      *bucket
	det    detached

	mu     sync.Mutex
	std    context.Context // made on the first call of Done or Err
	cancel context.CancelFunc
	closed bool
}

// New returns parent bounded by k's bound from now.
func (k *Clock) New(parent context.Context) *Context {
	c := &Context{parent: parent, b: k.bucket()}
	c.det.c = c
	return c
}

// merged is the standard context c stands for, made when first asked:
// parent with c's deadline.
func (c *Context) merged() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.std == nil {
		c.std, c.cancel = context.WithDeadline(c.parent, c.b.at)
		if c.closed {
			c.cancel()
		}
	}
	return c.std
}

// Deadline implements context.Context.
func (c *Context) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.b.at) {
		return d, true
	}
	return c.b.at, true
}

// Done implements context.Context. It arms a timer of c's own; a waiter
// that can select on two channels should use WaitChannels.
func (c *Context) Done() <-chan struct{} { return c.merged().Done() }

// Err implements context.Context. After a wait on WaitChannels, it is
// not nil: a Done channel asked for during the wait may close a moment
// after them (its own timer for the same deadline, or the parent's end
// reaching it), and Err waits for it.
func (c *Context) Err() error {
	std := c.merged()
	if err := std.Err(); err != nil || !closed(c.b.done) && !closed(c.parent.Done()) {
		return err
	}
	<-std.Done()
	return std.Err()
}

// closed reports whether ch is closed (a nil channel never is).
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Value implements context.Context.
func (c *Context) Value(key any) any {
	c.mu.Lock()
	std := c.std
	c.mu.Unlock()
	if std != nil {
		return std.Value(key)
	}
	return c.parent.Value(key)
}

// WaitChannels returns two channels, one of which is closed when c ends:
// the parent's Done channel, and the shared deadline's; or c's Done
// channel and nil, once it has one or is closed. A wait that ends on
// either reads c.Err as its cause, as it would after Done.
func (c *Context) WaitChannels() (done, expired <-chan struct{}) {
	c.mu.Lock()
	std, closed := c.std, c.closed
	c.mu.Unlock()
	if std != nil || closed {
		return c.Done(), nil
	}
	return c.parent.Done(), c.b.done
}

// Detached returns a context with c's values and deadline that its
// parent ending does not end (context.WithoutCancel, then c's deadline),
// or nil when the parent has a deadline of its own, earlier than c's.
func (c *Context) Detached() context.Context {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.b.at) {
		return nil
	}
	return &c.det
}

// Close ends c, as a context.CancelFunc does, and releases the timer c
// armed, if any. Its Detached context still ends at the shared deadline.
// A wait already on WaitChannels' channels is not woken by Close (no
// channel of c's own was made for it): it ends with the parent, which
// net/http cancels once the handler returns, or at the shared deadline.
func (c *Context) Close() {
	c.mu.Lock()
	c.closed = true
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// detached is Context.Detached: it ends at the shared deadline only.
type detached struct{ c *Context }

func (d *detached) Deadline() (time.Time, bool) { return d.c.b.at, true }
func (d *detached) Done() <-chan struct{}       { return d.c.b.done }

func (d *detached) Err() error {
	select {
	case <-d.c.b.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// Value is the parent's, as context.WithoutCancel has it: the parent's
// cancellation, which context.Cause finds as a value, not included. It
// asks the parent itself, rather than a WithoutCancel context, whose Value
// allocates a call.
func (d *detached) Value(key any) any {
	switch {
	case cancelKey == nil:
		return context.WithoutCancel(d.c.parent).Value(key)
	case key == cancelKey:
		return nil
	}
	return d.c.parent.Value(key)
}

// cancelKey is the key context.Cause asks a context's Value for, to find
// its cancellation (the one key WithoutCancel hides), learned once from a
// probe; nil if Cause asked none.
var cancelKey = func() any {
	p := keyProbe{Context: context.Background()}
	context.Cause(&p)
	return p.key
}()

// keyProbe is an ended context that keeps the key its Value was asked.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Err() error { return context.Canceled }

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}
