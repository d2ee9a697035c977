package deadline_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyward/keyward/internal/deadline"
)

type key struct{}

// closed reports whether ch is closed (a nil channel never is).
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A Context ends within its bound, less than Granularity before it, and
// through each of the ways to wait on it alike; its parent ending ends it
// too, but not its Detached context, which ends at the same deadline.
func TestContext(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cancelAt    time.Duration // the parent's end; 0 for never
		wantErr     error         // at the bound
		detachedErr error         // at the bound
	}{
		{"deadline", 0, context.DeadlineExceeded, context.DeadlineExceeded},
		{"parent canceled", time.Second, context.Canceled, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const bound = 25 * time.Second
				clock := deadline.NewClock(bound)
				time.Sleep(1234 * time.Millisecond) // not on a Granularity
				parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
				defer cancel()
				start := time.Now()
				c := clock.New(parent)
				defer c.Close()
				viaDone := clock.New(parent) // asked for Done before it ends
				defer viaDone.Close()
				done := viaDone.Done()
				det := c.Detached()
				if d, ok := c.Deadline(); !ok || d.After(start.Add(bound)) || !d.After(start.Add(bound-deadline.Granularity)) {
					t.Errorf("Deadline() = %v, %v, want within (bound-%v, bound] of %v", d, ok, deadline.Granularity, start)
				}
				if d, _ := det.Deadline(); d != mustDeadline(c) {
					t.Errorf("Detached().Deadline() = %v, want %v", d, mustDeadline(c))
				}
				if c.Value(key{}) != "v" || det.Value(key{}) != "v" {
					t.Errorf("Value = %v, detached %v, want the parent's v", c.Value(key{}), det.Value(key{}))
				}
				if tc.cancelAt > 0 {
					time.Sleep(tc.cancelAt)
					cancel()
				}
				wd, we := c.WaitChannels()
				select {
				case <-wd:
				case <-we:
				}
				if took := time.Since(start); took > bound {
					t.Errorf("WaitChannels ended after %v, want within %v", took, bound)
				}
				synctest.Wait()
				if !closed(done) {
					t.Errorf("Done not closed when WaitChannels ended")
				}
				if err := c.Err(); !errors.Is(err, tc.wantErr) || !errors.Is(viaDone.Err(), tc.wantErr) {
					t.Errorf("Err() = %v, via Done %v, want %v", err, viaDone.Err(), tc.wantErr)
				}
				if err := context.Cause(c); !errors.Is(err, tc.wantErr) {
					t.Errorf("Cause = %v, want %v", err, tc.wantErr)
				}
				if tc.cancelAt > 0 && (closed(det.Done()) || det.Err() != nil) {
					t.Errorf("Detached ended with its parent: %v", det.Err())
				}
				time.Sleep(time.Until(mustDeadline(c)))
				synctest.Wait()
				if !closed(det.Done()) || !errors.Is(det.Err(), tc.detachedErr) || !errors.Is(context.Cause(det), tc.detachedErr) {
					t.Errorf("Detached at the deadline: closed %v, Err %v, Cause %v, want %v", closed(det.Done()), det.Err(), context.Cause(det), tc.detachedErr)
				}
			})
		})
	}
}

func mustDeadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// context.Cause reads a Context's end however it ended, also when asked
// before Done or Err, under a parent that can be canceled, as net/http's
// is: Value finds the parent's cancelCtx until Done or Err makes the
// Context's own, and the Cause of the Go go.mod requires calls Err first.
func TestCauseFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(c *deadline.Context, cancel context.CancelFunc) // nil for not ended
		want error
	}{
		{"not ended", nil, nil},
		{"deadline", func(c *deadline.Context, _ context.CancelFunc) { time.Sleep(time.Until(mustDeadline(c))) }, context.DeadlineExceeded},
		{"deadline, waited on", func(c *deadline.Context, _ context.CancelFunc) {
			done, expired := c.WaitChannels()
			select {
			case <-done:
			case <-expired:
			}
		}, context.DeadlineExceeded},
		{"closed", func(c *deadline.Context, _ context.CancelFunc) { c.Close() }, context.Canceled},
		{"parent canceled", func(_ *deadline.Context, cancel context.CancelFunc) { cancel() }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				parent, cancel := context.WithCancel(context.Background())
				defer cancel()
				c := deadline.NewClock(25 * time.Second).New(parent)
				defer c.Close()
				if tc.end != nil {
					tc.end(c, cancel)
					synctest.Wait()
				}
				if err := context.Cause(c); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Errorf("Cause before Done and Err = %v, want %v", err, tc.want)
				}
				if err := c.Err(); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Errorf("Err() = %v, want %v", err, tc.want)
				}
			})
		})
	}
}

// Close ends a Context, as a CancelFunc does, whether or not it has
// armed a timer of its own, but not its Detached context.
func TestClose(t *testing.T) {
	for _, armed := range []bool{false, true} {
		clock := deadline.NewClock(time.Hour)
		c := clock.New(context.Background())
		if armed {
			c.Done()
		}
		c.Close()
		done, expired := c.WaitChannels()
		if !closed(done) && !closed(expired) || !closed(c.Done()) || !errors.Is(c.Err(), context.Canceled) {
			t.Errorf("armed %v: after Close, WaitChannels closed %v %v, Done closed %v, Err %v, want closed and Canceled", armed, closed(done), closed(expired), closed(c.Done()), c.Err())
		}
		if det := c.Detached(); closed(det.Done()) || det.Err() != nil {
			t.Errorf("armed %v: Detached ended with Close: %v", armed, det.Err())
		}
	}
}

// A parent's earlier deadline is the Context's, and leaves it no
// Detached context of the shared deadline.
func TestParentDeadlineEarlier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c := deadline.NewClock(25 * time.Second).New(parent)
		defer c.Close()
		if d, _ := c.Deadline(); d != mustDeadline(parent) {
			t.Errorf("Deadline() = %v, want the parent's %v", d, mustDeadline(parent))
		}
		if c.Detached() != nil {
			t.Errorf("Detached() is not nil")
		}
	})
}

// Waiting on a Context through WaitChannels, and on its Detached
// context, arms no timer: the request allocates only the Context.
func TestWaitingAllocatesNoTimer(t *testing.T) {
	clock := deadline.NewClock(time.Minute)
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock.New(parent).Close() // the shared deadline
	allocs := testing.AllocsPerRun(100, func() {
		c := clock.New(parent)
		done, expired := c.WaitChannels()
		select {
		case <-done:
		case <-expired:
		default:
		}
		if det := c.Detached(); closed(det.Done()) || det.Err() != nil {
			t.Fatal("ended")
		}
		c.Close()
	})
	if allocs > 1 {
		t.Errorf("a Context waited on allocates %v times, want 1", allocs)
	}
}

// A Detached context's Value allocates nothing: it has its parent's
// values (and hides the parent's cancellation from context.Cause, as
// TestContext's "parent canceled" checks) without a WithoutCancel
// context, whose Value allocates a call.
func TestDetachedValueAllocates(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	defer cancel()
	c := deadline.NewClock(time.Minute).New(parent)
	defer c.Close()
	det := c.Detached()
	allocs := testing.AllocsPerRun(100, func() {
		if det.Value(key{}) != "v" {
			t.Fatal("Detached lost the parent's value")
		}
	})
	if allocs != 0 {
		t.Errorf("Detached().Value allocates %v times a call, want 0", allocs)
	}
}

// BenchmarkRequestContext compares a request's deadline and the context
// of its audit event made with the context package, with a timer each,
// with this package's, under a parent that can be canceled, as net/http's
// is.
func BenchmarkRequestContext(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("context", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(parent, 25*time.Second)
			closed(ctx.Done())
			d, _ := ctx.Deadline()
			rctx, rcancel := context.WithDeadline(context.WithoutCancel(ctx), d)
			closed(rctx.Done())
			rcancel()
			cancel()
		}
	})
	b.Run("deadline", func(b *testing.B) {
		clock := deadline.NewClock(25 * time.Second)
		b.ReportAllocs()
		for b.Loop() {
			c := clock.New(parent)
			done, expired := c.WaitChannels()
			closed(done)
			closed(expired)
			closed(c.Detached().Done())
			c.Close()
		}
	})
}

// slowParent is a parent context of a type the context package does not
// know, so that a context made from it hears of its end on a goroutine
// of the context package's: one that, once the parent is canceled,
// waits in Err until gate is closed.
type slowParent struct {
	context.Context // for Value and Deadline
	done, gate      chan struct{}
}

func (p *slowParent) Done() <-chan struct{} { return p.done }

func (p *slowParent) Err() error {
	if !closed(p.done) {
		return nil
	}
	<-p.gate
	return context.Canceled
}

// A wait on WaitChannels that ends reads Err as its cause, as the group
// commit does: Err is not nil then, even when something else asked for
// the Context's Done channel during the wait, whose own end follows the
// channels' (here the parent's end reaches it late).
func TestErrAfterWaitChannels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := &slowParent{Context: context.Background(), done: make(chan struct{}), gate: make(chan struct{})}
		c := deadline.NewClock(time.Hour).New(parent)
		defer c.Close()
		done, expired := c.WaitChannels()
		c.Done() // another goroutine's, during the wait: a timer of its own
		close(parent.done)
		select {
		case <-done:
		case <-expired:
		}
		synctest.Wait() // the context package's goroutine waits in parent.Err
		errc := make(chan error, 1)
		go func() { errc <- c.Err() }()
		synctest.Wait()
		select {
		case err := <-errc:
			if err == nil {
				t.Errorf("Err() = nil after WaitChannels' channel was closed")
			}
		default: // Err waits for Done, which is about to be closed
		}
		close(parent.gate)
		synctest.Wait()
		if !closed(c.Done()) || !errors.Is(c.Err(), context.Canceled) {
			t.Errorf("Done closed %v, Err %v, want closed and %v", closed(c.Done()), c.Err(), context.Canceled)
		}
	})
}

// A context made from a Detached one (WithCancel, WithTimeout, WithValue,
// AfterFunc) ends only at the shared deadline, or its own: not with the
// parent, though Value finds the parent's values above the detached
// point. Its Cause is then the deadline's, not the parent's: Value hides
// the parent's cancelCtx from context.Cause, which the context package
// also asks when it cancels a child, as WithoutCancel does.
func TestDetachedDerived(t *testing.T) {
	gone := errors.New("client gone")
	type otherKey struct{}
	for _, tc := range []struct {
		name   string
		derive func(det context.Context) (ctx context.Context, ran func() bool, stop func())
	}{
		{"WithCancel", func(det context.Context) (context.Context, func() bool, func()) {
			ctx, cancel := context.WithCancel(det)
			return ctx, nil, cancel
		}},
		{"WithCancelCause", func(det context.Context) (context.Context, func() bool, func()) {
			ctx, cancel := context.WithCancelCause(det)
			return ctx, nil, func() { cancel(nil) }
		}},
		{"WithTimeout past the deadline", func(det context.Context) (context.Context, func() bool, func()) {
			ctx, cancel := context.WithTimeout(det, time.Hour)
			return ctx, nil, cancel
		}},
		{"WithValue, then WithCancel", func(det context.Context) (context.Context, func() bool, func()) {
			ctx, cancel := context.WithCancel(context.WithValue(det, otherKey{}, 1))
			return ctx, nil, cancel
		}},
		{"AfterFunc", func(det context.Context) (context.Context, func() bool, func()) {
			ran := make(chan struct{})
			stop := context.AfterFunc(det, func() { close(ran) })
			return det, func() bool { return closed(ran) }, func() { stop() }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), key{}, "v"))
				defer cancel(nil)
				c := deadline.NewClock(25 * time.Second).New(parent)
				defer c.Close()
				child, ran, stop := tc.derive(c.Detached())
				defer stop()
				if ran == nil {
					ran = func() bool { return closed(child.Done()) }
				}
				cancel(gone)
				c.Close()
				synctest.Wait()
				if ran() || child.Err() != nil {
					t.Errorf("ended with the parent: Err %v, Cause %v", child.Err(), context.Cause(child))
				}
				if child.Value(key{}) != "v" {
					t.Errorf("Value(key) = %v, want the parent's v", child.Value(key{}))
				}
				time.Sleep(time.Until(mustDeadline(c)))
				synctest.Wait()
				if !ran() || !errors.Is(child.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(child), context.DeadlineExceeded) {
					t.Errorf("at the shared deadline: ended %v, Err %v, Cause %v, want %v", ran(), child.Err(), context.Cause(child), context.DeadlineExceeded)
				}
			})
		})
	}
}
