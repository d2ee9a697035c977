package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A group-commit transaction that fails or times out counts in
// keyward_store_commit_failures_total; the batch histograms observe only
// the ones that commit, as before.
func TestObserveBatch(t *testing.T) {
	m := New(func() float64 { return 0 })
	m.ObserveBatch(3, time.Millisecond, nil)
	m.ObserveBatch(5, 20*time.Second, errors.New("context deadline exceeded"))
	m.ObserveBatch(1, time.Millisecond, errors.New("disk full"))
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		"\nkeyward_store_commit_failures_total 2\n",
		"\nkeyward_audit_batch_size_count 1\n",
		"\nkeyward_store_commit_duration_seconds_count 1\n",
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %q", strings.TrimSpace(want))
		}
	}
}
