package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeyward"
)

// A service-account key that is an RSA key over 8192 bits, stored before
// uploads were bounded (or imported), stays, unused, and the server warns
// of it at each start, naming it; a key of 8192 bits is not warned of.
// (The moduli are random odd numbers: only their size matters.)
func TestWarnOversizedKeys(t *testing.T) {
	dir := t.TempDir()
	start := func(logs *testkeyward.SyncBuffer) (*Main, func()) {
		return launchServer(t, func(m *Main) {
			m.Config.DataDir = dir
			m.Logger = slog.New(slog.NewTextHandler(logs, nil))
		})
	}
	const warning = "a service account's key is an RSA key too big"
	var first testkeyward.SyncBuffer
	m, stop := start(&first)
	if strings.Contains(first.String(), warning) {
		t.Fatalf("warned with no such key:\n%s", first.String())
	}
	ctx := context.Background()
	accts, err := m.store.ListAccounts(ctx, storage.ListOptions{Limit: 1})
	if err != nil || len(accts) != 1 {
		t.Fatalf("accounts %v, %v; want the administrator", accts, err)
	}
	now := time.Now()
	for id, bits := range map[string]int{"huge": 8200, "at-limit": 8192} {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits-1)))
		spki, _ := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n.SetBit(n, bits-1, 1).SetBit(n, 0, 1), E: 65537})
		err := m.store.CreateKey(ctx, storage.Key{ID: id, AccountID: accts[0].ID, Algorithm: "RS256", PublicKey: spki, Origin: storage.KeyOriginUploaded, CreatedAt: now},
			nil, storage.AuditEvent{Time: now, Action: "key.upload", Outcome: storage.OutcomeSuccess, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
	}
	stop()

	var second testkeyward.SyncBuffer
	_, stop = start(&second)
	defer stop()
	logs := second.String()
	if !strings.Contains(logs, warning) || !strings.Contains(logs, "key=huge") || !strings.Contains(logs, "8200 bits, more than the 8192") {
		t.Fatalf("no warning naming the key, its size and the limit at start:\n%s", logs)
	}
	if strings.Contains(logs, "key=at-limit") {
		t.Fatalf("warned of a key of 8192 bits:\n%s", logs)
	}
}
