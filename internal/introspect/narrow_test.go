package introspect

import (
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/catalog"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

func TestNarrow(t *testing.T) {
	const orders, billing, ledger = "https://orders.internal", "https://billing.internal", "https://ledger.internal"
	ix := catalog.New([]storage.API{
		{Identifier: orders, Scopes: []string{"orders.read", "orders.write"}},
		{Identifier: billing, Scopes: []string{"billing.read"}},
		{Identifier: ledger, Scopes: []string{"ledger.read"}},
	})
	tests := []struct {
		name      string
		allowed   []string
		aud       oauth2.Audience
		scope     string
		wantAud   oauth2.Audience
		wantScope string
	}{
		{"one audience, the caller's", []string{orders}, oauth2.Audience{orders}, "orders.read orders.write", oauth2.Audience{orders}, "orders.read orders.write"},
		{"every audience the caller's", []string{billing, orders}, oauth2.Audience{orders, billing}, "billing.read orders.read", oauth2.Audience{orders, billing}, "billing.read orders.read"},
		{"the caller's of two", []string{orders}, oauth2.Audience{billing, orders}, "billing.read orders.read orders.write", oauth2.Audience{orders}, "orders.read orders.write"},
		{"the other of two", []string{billing}, oauth2.Audience{billing, orders}, "orders.read billing.read orders.write", oauth2.Audience{billing}, "billing.read"},
		{"two of three, in the token's order", []string{orders, ledger}, oauth2.Audience{ledger, billing, orders}, "ledger.read billing.read orders.read", oauth2.Audience{ledger, orders}, "ledger.read orders.read"},
		{"a scope no API defines now", []string{orders}, oauth2.Audience{orders, billing}, "orders.gone orders.read billing.read", oauth2.Audience{orders}, "orders.read"},
		{"none of the scopes the caller's", []string{orders}, oauth2.Audience{orders, billing}, "billing.read", oauth2.Audience{orders}, ""},
		// As documented (README "Introspection", verify.Claims): a token all
		// of whose APIs are the caller's is answered whole, with a scope
		// since deleted or moved off its API; of a narrowed one it is dropped.
		{"one audience, a scope since deleted", []string{orders}, oauth2.Audience{orders}, "orders.gone orders.read", oauth2.Audience{orders}, "orders.gone orders.read"},
		{"one audience, a scope since moved to another API", []string{orders}, oauth2.Audience{orders}, "ledger.read orders.read", oauth2.Audience{orders}, "ledger.read orders.read"},
		{"two audiences, a scope since moved to a third API", []string{orders}, oauth2.Audience{orders, billing}, "ledger.read orders.read billing.read", oauth2.Audience{orders}, "orders.read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aud, scope := narrow(ix, tt.allowed, tt.aud, tt.scope)
			if !slices.Equal(aud, tt.wantAud) || scope != tt.wantScope {
				t.Errorf("narrow = %q, %q; want %q, %q", aud, scope, tt.wantAud, tt.wantScope)
			}
		})
	}
	// The common token, of the caller's API only, costs nothing.
	aud := oauth2.Audience{orders}
	if n := testing.AllocsPerRun(100, func() { narrow(ix, []string{billing, orders}, aud, "orders.read") }); n != 0 {
		t.Errorf("narrow of a token of the caller's one API allocates %v times, want 0", n)
	}
}
