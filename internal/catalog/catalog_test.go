package catalog_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/catalog"
	"github.com/keyward/keyward/internal/storage"
)

func apis() []storage.API {
	return []storage.API{
		{Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}, Introspectors: []string{"sa-1", "sa-2"}},
		{Identifier: "https://billing.internal", Scopes: []string{"billing.read"}, Introspectors: []string{"sa-2"}},
		{Identifier: "https://empty.internal"},
	}
}

func TestIndex(t *testing.T) {
	list := apis()
	ix := catalog.New(list)
	for scope, want := range map[string]string{"orders.read": "https://orders.internal", "orders.write": "https://orders.internal", "billing.read": "https://billing.internal", "nope": ""} {
		got := ix.Owner(scope)
		if want == "" && got != nil || want != "" && (got == nil || got.Identifier != want) {
			t.Errorf("Owner(%q) = %v, want %q", scope, got, want)
		}
	}
	if a := ix.API("https://billing.internal"); a != &list[1] {
		t.Errorf("API(billing) = %p, want the list's element %p", a, &list[1])
	}
	if a := ix.API("https://nope.internal"); a != nil {
		t.Errorf("API(unknown) = %v", a)
	}
	for id, want := range map[string][]string{
		"sa-1": {"https://orders.internal"},
		"sa-2": {"https://orders.internal", "https://billing.internal"},
		"sa-3": nil,
	} {
		if got := ix.IntrospectableBy(id); !slices.Equal(got, want) {
			t.Errorf("IntrospectableBy(%s) = %q, want %q", id, got, want)
		}
	}
}

// The cache keeps its index while it is given the same list, and indexes a
// new list — even an equal one, or one of the same length — afresh.
func TestCacheFollowsTheList(t *testing.T) {
	var c catalog.Cache
	list := apis()
	first := c.Of(list)
	if c.Of(list) != first {
		t.Error("the same list was indexed again")
	}
	changed := apis()
	changed[0].Scopes = []string{"orders.admin"}
	ix := c.Of(changed)
	if ix == first {
		t.Fatal("a new list of the same length reused the old index")
	}
	if ix.Owner("orders.read") != nil || ix.Owner("orders.admin") == nil {
		t.Error("the new index does not reflect the new list")
	}
	if c.Of(nil).Owner("orders.admin") != nil {
		t.Error("the index of an empty list found a scope")
	}
}

// BenchmarkLookup shows a token request's scope lookup cost does not grow
// with the number of registered APIs once the list is indexed.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 1000} {
		list := make([]storage.API, n)
		for i := range list {
			list[i] = storage.API{Identifier: fmt.Sprintf("https://api%d.internal", i), Scopes: []string{fmt.Sprintf("api%d.read", i), fmt.Sprintf("api%d.write", i)}}
		}
		b.Run(fmt.Sprintf("apis=%d", n), func(b *testing.B) {
			var c catalog.Cache
			b.ReportAllocs()
			for b.Loop() {
				ix := c.Of(list)
				if ix.Owner("api3.read") == nil || ix.API("https://api5.internal") == nil {
					b.Fatal("not found")
				}
			}
		})
	}
}

// Requests share one Cache while the list changes under them: each gets
// the index of the list it passed.
func TestCacheConcurrent(t *testing.T) {
	var c catalog.Cache
	lists := [][]storage.API{apis(), apis()[:1], nil}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				list := lists[(g+i)%len(lists)]
				got := c.Of(list).Owner("billing.read") != nil
				if want := len(list) > 1; got != want {
					t.Errorf("list of %d APIs: billing.read found = %v", len(list), got)
					return
				}
			}
		}()
	}
	wg.Wait()
}
