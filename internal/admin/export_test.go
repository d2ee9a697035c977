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

// SetChangeTimeout sets the bound of admin changes until the test ends.
func SetChangeTimeout(t testing.TB, d time.Duration) {
	old := changeTimeout
	changeTimeout = d
	t.Cleanup(func() { changeTimeout = old })
}
