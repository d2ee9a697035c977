package oauth2

import (
	"context"
	"testing"
	"time"
)

// detachable is a request's context as package deadline makes it, whose
// Detached context is det, or none when det is nil.
type detachable struct {
	context.Context
	det context.Context
}

func (d detachable) Detached() context.Context { return d.det }

// RecordContext takes a request context's Detached context when it has
// one, which ends at the request's deadline with no timer of its own, and
// otherwise detaches the context itself, keeping its deadline.
func TestRecordContext(t *testing.T) {
	ready, stopReady := context.WithTimeout(context.Background(), time.Hour)
	defer stopReady()
	withDeadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, tt := range []struct {
		name         string
		ctx          context.Context
		want         context.Context // nil: a context of RecordContext's own
		wantDeadline bool
	}{
		{"detachable", detachable{withDeadline, ready}, ready, true},
		{"detachable without", detachable{withDeadline, nil}, nil, true},
		{"with deadline", withDeadline, nil, true},
		{"without deadline", context.Background(), nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := RecordContext(tt.ctx)
			defer cancel()
			if tt.want != nil && ctx != tt.want {
				t.Errorf("RecordContext = %v, want the request's Detached context", ctx)
			}
			if tt.want == nil && ctx == tt.ctx {
				t.Errorf("RecordContext returned the request's context itself")
			}
			d, ok := ctx.Deadline()
			if want, _ := tt.ctx.Deadline(); tt.want == nil && (ok != tt.wantDeadline || !d.Equal(want)) {
				t.Errorf("Deadline() = %v, %v, want %v, %v", d, ok, want, tt.wantDeadline)
			}
		})
	}
}
