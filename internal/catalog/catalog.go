// Package catalog indexes the registered APIs — by scope, by identifier and
// by the accounts allowed to introspect their tokens — so that a token or
// introspection request looks them up in constant time instead of walking
// every API. An index is built once per API list: the storage cache hands
// out the same list until the catalog changes, and a Cache rebuilds its
// index only when it is given a different list.
package catalog

import (
	"sync/atomic"

	"github.com/keyward/keyward/internal/storage"
)

// Index is a read-only index of one API list.
type Index struct {
	apis           []storage.API
	byScope        map[string]*storage.API
	byIdentifier   map[string]*storage.API
	byIntrospector map[string][]string
}

// New indexes apis, which must not change afterwards. A scope or identifier
// that two APIs claim (the store refuses both) resolves to the later one.
func New(apis []storage.API) *Index {
	ix := &Index{
		apis:           apis,
		byScope:        make(map[string]*storage.API),
		byIdentifier:   make(map[string]*storage.API, len(apis)),
		byIntrospector: make(map[string][]string),
	}
	for i := range apis {
		a := &apis[i]
		ix.byIdentifier[a.Identifier] = a
		for _, s := range a.Scopes {
			ix.byScope[s] = a
		}
		for _, id := range a.Introspectors {
			ix.byIntrospector[id] = append(ix.byIntrospector[id], a.Identifier)
		}
	}
	return ix
}

// Owner returns the API that defines scope, or nil.
func (ix *Index) Owner(scope string) *storage.API { return ix.byScope[scope] }

// API returns the API with the identifier, or nil.
func (ix *Index) API(identifier string) *storage.API { return ix.byIdentifier[identifier] }

// IntrospectableBy returns the identifiers of the APIs whose tokens the
// account may introspect, in the order of the list. The slice is shared:
// callers must not change it.
func (ix *Index) IntrospectableBy(accountID string) []string { return ix.byIntrospector[accountID] }

// Cache keeps the index of the last API list it was given. It is safe for
// concurrent use.
type Cache struct {
	last atomic.Pointer[Index]
}

// Of returns the index of apis, reusing the last one when apis is the list
// it was built from.
func (c *Cache) Of(apis []storage.API) *Index {
	if ix := c.last.Load(); ix != nil && sameList(ix.apis, apis) {
		return ix
	}
	ix := New(apis)
	c.last.Store(ix)
	return ix
}

// sameList reports whether a and b are the same list: the same elements of
// the same array, not merely equal ones. An index keeps its list alive, so
// a new list cannot take the old one's address.
func sameList(a, b []storage.API) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
