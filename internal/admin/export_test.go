package admin

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// RoutePatterns returns the patterns of the routes Register mounts, sorted,
// without the /v1/ catch-all.
func RoutePatterns() []string {
	var h Handler
	return slices.Sorted(maps.Keys(h.routes()))
}

// SetRequestTimeout sets the bound of admin requests until the test ends.
func SetRequestTimeout(t testing.TB, d time.Duration) {
	old := requestTimeout
	requestTimeout = d
	t.Cleanup(func() { requestTimeout = old })
}

// TakeAuditWaiters takes every long poll's place until the test ends: a
// request that would wait is then refused 503, one that does not wait is
// answered.
func TakeAuditWaiters(t testing.TB) {
	for range maxWaiters {
		auditWaiters <- struct{}{}
	}
	t.Cleanup(func() {
		for range maxWaiters {
			<-auditWaiters
		}
	})
}
