package transfer

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// bigDumpJSON is the file 'keyward export' writes of a store of n
// accounts, each with a key, a secret and a user.
func bigDumpJSON(tb testing.TB, n int) []byte {
	tb.Helper()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := Dump{Format: Format, ExportedAt: t0,
		APIs: []storage.API{{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read"}, CreatedAt: t0}},
		Orgs: []storage.Org{{Domain: "example.com", CreatedAt: t0}}}
	spki := bytes.Repeat([]byte{0x30, 0x82, 1, 0x22}, 74) // the size of an RSA-2048 key's
	for i := range n {
		id := strconv.Itoa(100000000000000000 + i)
		d.Accounts = append(d.Accounts, storage.Account{ID: id, Email: "svc" + id + "@pay.example", Name: "svc" + id, Project: "pay",
			Scopes: []string{"orders.read"}, TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods, CreatedAt: t0, UpdatedAt: t0})
		d.Keys = append(d.Keys, storage.Key{ID: "k" + id, AccountID: id, Algorithm: "RS256", PublicKey: spki, Origin: "generated", CreatedAt: t0})
		d.Secrets = append(d.Secrets, storage.Secret{ID: "s" + id, AccountID: id, Hash: bytes.Repeat([]byte{3}, 32), Hint: "kw_…x", CreatedAt: t0})
		d.Users = append(d.Users, storage.User{Email: "u" + id + "@example.com", Org: "example.com", CreatedAt: t0})
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkUnmarshal reads an export of 2,000 accounts as 'keyward
// import' does (json.Unmarshal into a Dump); its sub-benchmark
// repeated, the look for a name given twice that reading it takes.
func BenchmarkUnmarshal(b *testing.B) {
	data := bigDumpJSON(b, 2000)
	b.Run("whole", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var d Dump
			if err := json.Unmarshal(data, &d); err != nil || len(d.Accounts) != 2000 {
				b.Fatalf("%d accounts, %v", len(d.Accounts), err)
			}
		}
	})
	b.Run("repeated", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if at := repeated(data); at != "" {
				b.Fatalf("repeated = %q", at)
			}
		}
	})
}
