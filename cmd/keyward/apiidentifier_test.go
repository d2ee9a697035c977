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
