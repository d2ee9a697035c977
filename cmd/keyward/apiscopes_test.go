package main

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// keyward api update --scopes changes an API's scopes to the list given,
// in its order; an account granted a new scope gets a token for it at
// once, from a running server that has cached the catalog; a scope still
// granted is not removed, and the error names who holds it.
func TestAPIUpdateScopes(t *testing.T) {
	m := startServer(t)
	l := &lifecycle{t: t, m: m, admin: []string{"--credentials", m.AdminKeyFile}, issuer: m.Issuer}
	cli := func(args ...string) string { return runCLI(t, append(args, l.admin...)...) }
	cli("api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read")
	id, email, secret := l.account("job", "orders.read")
	l.token(id, secret, "orders.read") // the server caches the catalog

	var a struct {
		Scopes []string `json:"scopes"`
	}
	if err := json.Unmarshal([]byte(cli("api", "update", "orders", "--scopes", "orders.refund, orders.read", "-o", "json")), &a); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Scopes, []string{"orders.refund", "orders.read"}) {
		t.Fatalf("api update --scopes: scopes %v, want [orders.refund orders.read]", a.Scopes)
	}
	cli("sa", "update", email, "--scopes", "orders.read,orders.refund")
	if status, body := l.post("/token", id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.refund"}}); status != 200 || body["scope"] != "orders.refund" {
		t.Fatalf("token for the added scope: %d %v", status, body)
	}

	err := runCLIErr(t, append([]string{"api", "update", "orders", "--scopes", "orders.read"}, l.admin...)...)
	if err == nil || !strings.Contains(err.Error(), "orders.refund cannot be removed") || !strings.Contains(err.Error(), email) {
		t.Fatalf("removing a granted scope: %v, want a refusal naming %s", err, email)
	}
	if err := runCLIErr(t, append([]string{"api", "update", "orders"}, l.admin...)...); err == nil || !strings.Contains(err.Error(), "give --scopes") {
		t.Fatalf("api update without a change: %v, want the usage error to offer --scopes", err)
	}
	if help := runCLI(t, "api", "update", "--help"); !strings.Contains(help, "--scopes") || !strings.Contains(help, "new full list, in order") {
		t.Fatalf("api update --help does not explain --scopes:\n%s", help)
	}
}
