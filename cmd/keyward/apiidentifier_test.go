package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeyward"
)

// An API whose identifier is the server's token endpoint URL, left from
// before the admin API refused it (or imported), stays, and the server
// warns of it at each start, naming it.
func TestWarnAssertionAudienceAPI(t *testing.T) {
	dir := t.TempDir()
	start := func(logs *testkeyward.SyncBuffer) (*Main, func()) {
		return launchServer(t, func(m *Main) {
			m.Config.DataDir = dir
			m.Config.Issuer = "http://keyward.test"
			m.Logger = slog.New(slog.NewTextHandler(logs, nil))
		})
	}
	const warning = "identifier is this server's issuer or token endpoint URL"
	var first testkeyward.SyncBuffer
	m, stop := start(&first)
	if strings.Contains(first.String(), warning) {
		t.Fatalf("warned with no such API:\n%s", first.String())
	}
	now := time.Now()
	err := m.store.CreateAPI(context.Background(), storage.API{Name: "legacy", Identifier: "http://keyward.test/token/", Scopes: []string{"legacy.read"},
		TokenFormat: storage.TokenJWT, CreatedAt: now}, storage.AuditEvent{Time: now, Action: "api.create", Outcome: storage.OutcomeSuccess, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	stop()

	var second testkeyward.SyncBuffer
	_, stop = start(&second)
	defer stop()
	logs := second.String()
	if !strings.Contains(logs, warning) || !strings.Contains(logs, "api=legacy") {
		t.Fatalf("no warning naming the API at start:\n%s", logs)
	}
}

// Two APIs whose identifiers differ only in the case of the host or a
// trailing slash, stored before the admin API refused the second, accept
// each other's self-signed JWTs: the server warns at start, once, naming
// each pair, and not of two distinct identifiers.
func TestWarnSameAudienceAPIs(t *testing.T) {
	dir := t.TempDir()
	start := func(logs *testkeyward.SyncBuffer) (*Main, func()) {
		return launchServer(t, func(m *Main) {
			m.Config.DataDir = dir
			m.Config.Issuer = "http://keyward.test"
			m.Logger = slog.New(slog.NewTextHandler(logs, nil))
		})
	}
	const warning = "name the same audience"
	var first testkeyward.SyncBuffer
	m, stop := start(&first)
	if strings.Contains(first.String(), warning) {
		t.Fatalf("warned with no such APIs:\n%s", first.String())
	}
	now := time.Now()
	for _, a := range []struct{ name, id string }{
		{"orders", "https://orders.internal"},
		{"orders2", "https://orders2.internal"},
		{"billing", "https://billing.internal/v1"},
		{"billing2", "https://billing2.internal/v1"},
		{"stock", "https://stock.internal/V1"},
		{"stock2", "https://stock.internal/v1"},
	} {
		err := m.store.CreateAPI(context.Background(), storage.API{Name: a.name, Identifier: a.id, Scopes: []string{a.name + ".read"},
			TokenFormat: storage.TokenJWT, CreatedAt: now}, storage.AuditEvent{Time: now, Action: "api.create", Outcome: storage.OutcomeSuccess, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
	}
	stop()
	// As stored before the store refused them.
	tamper(t, dir, `UPDATE apis SET identifier = 'https://Orders.Internal/' WHERE name = 'orders2'`,
		`UPDATE apis SET identifier = 'https://billing.internal/v1/' WHERE name = 'billing2'`)

	var second testkeyward.SyncBuffer
	_, stop = start(&second)
	defer stop()
	logs := second.String()
	if strings.Count(logs, warning) != 1 {
		t.Fatalf("want one warning of APIs naming the same audience at start:\n%s", logs)
	}
	for _, pair := range []string{"orders (https://orders.internal) and orders2 (https://Orders.Internal/)", "billing (https://billing.internal/v1) and billing2 (https://billing.internal/v1/)"} {
		if !strings.Contains(logs, pair) {
			t.Errorf("the warning does not name %s:\n%s", pair, logs)
		}
	}
	if strings.Contains(logs, "stock") {
		t.Errorf("the warning names stock and stock2, whose paths differ in case:\n%s", logs)
	}
}
