package postgres

import (
	"context"
	"testing"
	"time"
)

// TestMigrationUnlockContext: the context of SessionLock's release on
// failure outlives the caller's cancellation, so the release is tried,
// but has a deadline no later than migrationUnlockWait from now, so a
// server that does not answer does not hold it without end.
func TestMigrationUnlockContext(t *testing.T) {
	for _, tt := range []struct {
		name   string
		parent func() context.Context
	}{
		{"canceled", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
		{"past its deadline", func() context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
			t.Cleanup(cancel)
			return ctx
		}},
		{"live", context.Background},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			ctx, cancel := migrationUnlockContext(tt.parent())
			defer cancel()
			if err := ctx.Err(); err != nil {
				t.Fatalf("the release's context is done before it starts: %v", err)
			}
			deadline, ok := ctx.Deadline()
			if !ok {
				t.Fatal("the release's context has no deadline")
			}
			if deadline.After(time.Now().Add(migrationUnlockWait)) || deadline.Before(before) {
				t.Errorf("the release's deadline is %v from now, want at most %v", time.Until(deadline), migrationUnlockWait)
			}
		})
	}
}
