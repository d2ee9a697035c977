package loadgen

import (
	"context"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	var progressed bool
	r := Run(context.Background(), 4, 300*time.Millisecond, func(ctx context.Context, w, i int) (int, bool) {
		time.Sleep(time.Millisecond)
		if i%10 == 9 {
			return 503, false
		}
		return 200, true
	}, func(done int64, _ time.Duration) { progressed = progressed || done > 0 })
	if r.Requests < 50 || r.PerSecond <= 0 {
		t.Fatalf("result = %+v", r)
	}
	if r.Errors == 0 || r.ByStatus[503] != r.Errors {
		t.Fatalf("errors = %d by status %v", r.Errors, r.ByStatus)
	}
	if !(r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) || r.P50 < time.Millisecond {
		t.Fatalf("percentiles out of order: %+v", r)
	}
	if !progressed {
		t.Fatal("no progress reported")
	}
}
