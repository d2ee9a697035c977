package token

import (
	"context"
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/storage"
)

// apisDir is a Directory that lists APIs and has nothing else.
type apisDir struct {
	Directory
	apis []storage.API
}

func (d apisDir) ListAPIs(context.Context) ([]storage.API, error) { return d.apis, nil }

// resolveScopes keeps the requested scopes in order, narrowed by the
// resources asked for, and allocates only the audience when no resource
// narrows them: every token request resolves its scopes.
func TestResolveScopes(t *testing.T) {
	h := &Handler{dir: apisDir{apis: []storage.API{
		{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}},
		{Name: "stock", Identifier: "https://stock.internal", Scopes: []string{"stock.read"}},
	}}}
	acct := storage.Account{ID: "1", Scopes: []string{"orders.read", "orders.write", "stock.read"}}
	ctx := context.Background()
	tests := []struct {
		scopes, resources []string
		want, wantAud     []string
	}{
		{[]string{"orders.read"}, nil, []string{"orders.read"}, []string{"https://orders.internal"}},
		{[]string{"stock.read", "orders.write", "orders.read"}, nil, []string{"stock.read", "orders.write", "orders.read"}, []string{"https://stock.internal", "https://orders.internal"}},
		{[]string{"stock.read", "orders.write", "orders.read"}, []string{"https://orders.internal"}, []string{"orders.write", "orders.read"}, []string{"https://orders.internal"}},
	}
	for _, tt := range tests {
		got, aud, _, err := h.resolveScopes(ctx, acct, acct.Scopes, tt.scopes, tt.resources)
		if err != nil || !slices.Equal(got, tt.want) || !slices.Equal(aud, tt.wantAud) {
			t.Errorf("resolveScopes(%q, %q) = %q, %q, %v; want %q, %q", tt.scopes, tt.resources, got, aud, err, tt.want, tt.wantAud)
		}
	}
	scopes := []string{"orders.read"}
	if n := testing.AllocsPerRun(100, func() {
		if _, _, _, err := h.resolveScopes(ctx, acct, acct.Scopes, scopes, nil); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("resolveScopes: %v allocations, want 1 (the audience)", n)
	}
}
