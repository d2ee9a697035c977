package admin

import (
	"maps"
	"slices"
)

// RoutePatterns returns the patterns of the routes Register mounts, sorted,
// without the /v1/ catch-all.
func RoutePatterns() []string {
	var h Handler
	return slices.Sorted(maps.Keys(h.routes()))
}
