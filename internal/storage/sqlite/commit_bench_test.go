package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/procstat"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
)

// BenchmarkCommit measures one group-committed, fsynced transaction of
// token-issued audit events, by batch size: what the committing loop pays
// per batch and, divided by the size, per token.
// Run with: go test ./internal/storage/sqlite -run '^$' -bench Commit
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{1, 16, 23, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "keyward.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			writes := make([]storage.Write, size)
			b.ResetTimer()
			cpu0 := procstat.SelfCPU()
			for b.Loop() {
				for i := range writes {
					e := storage.AuditEvent{Time: time.Now(), Action: "token.issued", Outcome: storage.OutcomeSuccess,
						AccountID: "100000000000000000001", Actor: "100000000000000000001", Source: "127.0.0.1:53211",
						Data: map[string]string{"grant": "client_credentials", "auth": "client_secret_basic", "scope": "orders.read",
							"jti": "0123456789abcdef0123456789abcdef", "credential": "secret:abcdef"}}
					e.Prepare()
					writes[i] = storage.Write{Events: []storage.AuditEvent{e}}
				}
				if _, err := s.Commit(context.Background(), writes); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
			b.ReportMetric(float64(procstat.SelfCPU()-cpu0)/float64(b.N*size), "cpu-ns/event")
		})
	}
}
