package admin_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// routeHeading is a route's section heading in docs/ADMIN-API.md:
// ### `METHOD /v1/path`, with the pattern's own wildcard names.
var routeHeading = regexp.MustCompile("^### `((?:GET|HEAD|POST|PUT|PATCH|DELETE) /v1/[^` ]*)`$")

// Every route the admin API mounts has a section in docs/ADMIN-API.md, and
// every route section there names a route that exists, so the reference
// cannot fall behind the code: a new route fails here until it is
// documented, a removed one until its section goes.
func TestAdminAPIDocumented(t *testing.T) {
	const doc = "docs/ADMIN-API.md"
	data, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(doc)))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]int{} // pattern → line
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, " \r")
		if !strings.HasPrefix(line, "### `") {
			continue
		}
		m := routeHeading.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s:%d: %q is not a route heading: ### `METHOD /v1/path`", doc, i+1, line)
			continue
		}
		if first, dup := documented[m[1]]; dup {
			t.Errorf("%s:%d: %s is documented on line %d already", doc, i+1, m[1], first)
			continue
		}
		documented[m[1]] = i + 1
	}

	routes := admin.RoutePatterns()
	if len(routes) == 0 {
		t.Fatal("RoutePatterns found no routes")
	}
	for _, p := range routes {
		if !routeHeading.MatchString("### `" + p + "`") {
			t.Errorf("the route %q has no method or is not under /v1/: register admin routes as \"METHOD /v1/path\"", p)
			continue
		}
		if _, ok := documented[p]; !ok {
			t.Errorf("the route %s is not documented: add a section headed ### `%s` to %s", p, p, doc)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(documented)) {
		if !slices.Contains(routes, p) {
			t.Errorf("%s:%d documents %s, which the admin API does not have", doc, documented[p], p)
		}
	}
}
