package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/exportfile"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeys"
	"github.com/keyward/keyward/internal/transfer"
)

// bigExport is the file of an export of n accounts, each with a key, a
// secret and a user.
func bigExport(tb testing.TB, n int) []byte {
	tb.Helper()
	spki, err := x509.MarshalPKIXPublicKey(testkeys.RSAPublic(2048))
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := transfer.Dump{Format: transfer.Format, ExportedAt: t0,
		APIs: []storage.API{{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read"}, CreatedAt: t0}},
		Orgs: []storage.Org{{Domain: "example.com", CreatedAt: t0}}}
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

// peakHeap runs f and returns the most heap its objects took meanwhile,
// above what they took before, sampled every 200 µs.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > base && v-base > peak.Load() {
				peak.Store(v - base)
			}
			select {
			case <-done:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	f()
	close(done)
	<-stopped
	return peak.Load()
}

// BenchmarkImportMemory reports the heap an import's reading and parsing
// of a large export takes at its peak, as a multiple of the file's size
// (peak/file), and the whole of keyward import's into SQLite
// (import-peak/file): a measure, not a test.
func BenchmarkImportMemory(b *testing.B) {
	data := bigExport(b, 20000)
	path := filepath.Join(b.TempDir(), "export.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	var peak uint64
	for b.Loop() {
		peak = max(peak, peakHeap(func() {
			raw, err := readExportFile(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := exportfile.Parse(raw); err != nil {
				b.Fatal(err)
			}
		}))
	}
	b.ReportMetric(float64(len(data))/(1<<20), "file-MiB")
	b.ReportMetric(float64(peak)/float64(len(data)), "peak/file")
	whole := peakHeap(func() {
		cmd := newRootCommand()
		cmd.SetArgs([]string{"import", "--data-dir", b.TempDir(), path})
		cmd.SetOut(new(bytes.Buffer))
		cmd.SetErr(new(bytes.Buffer))
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
	b.ReportMetric(float64(whole)/float64(len(data)), "import-peak/file")
}

// BenchmarkParseExport: import's reading of an export of 2,000 accounts,
// once the file is read (exportfile.Parse).
func BenchmarkParseExport(b *testing.B) {
	data := bigExport(b, 2000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if d, err := exportfile.Parse(data); err != nil || len(d.Accounts) != 2000 {
			b.Fatalf("%d accounts, %v", len(d.Accounts), err)
		}
	}
}
