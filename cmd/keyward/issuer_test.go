package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/internal/transfer"
)

// issuerChangedWarning is in the message of the warning at a start whose
// issuer is not the one the store recorded.
const issuerChangedWarning = "this server's issuer is not the one recorded in the store"

// TestIssuerChangedWarns: servers sharing a store with different
// --issuer values (a typo, http for https) started in silence and issued
// tokens the others' APIs refused. The first start with --issuer records
// it in the store; a later start with another issuer warns, naming both,
// at every start while they differ; the recorded issuer stays the first.
// A start without --issuer records nothing. An export leaves the
// recorded issuer out.
func TestIssuerChangedWarns(t *testing.T) {
	const x, y = "https://keyward.test", "https://keyword.test" // a typo
	for _, backend := range crashBackends {
		t.Run(backend.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir, cfg.DB = "127.0.0.1:0", t.TempDir(), backend.db(t)
			start := func(issuer string) [][2]string {
				t.Helper()
				c := cfg
				c.Issuer = issuer
				if err := c.Validate(); err != nil {
					t.Fatal(err)
				}
				var logs testkeyward.SyncBuffer
				m := &Main{Config: c, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
				err := m.Open(context.Background())
				m.Close()
				if err != nil {
					t.Fatalf("start with issuer %q: %v", issuer, err)
				}
				var got [][2]string
				for line := range strings.Lines(logs.String()) {
					var rec struct {
						Level, Msg     string
						Issuer         string `json:"issuer"`
						RecordedIssuer string `json:"recorded_issuer"`
					}
					if err := json.Unmarshal([]byte(line), &rec); err != nil {
						t.Fatalf("log line %q: %v", line, err)
					}
					if strings.Contains(rec.Msg, issuerChangedWarning) {
						if rec.Level != "WARN" {
							t.Errorf("logged at %s: %s", rec.Level, line)
						}
						got = append(got, [2]string{rec.Issuer, rec.RecordedIssuer})
					}
				}
				return got
			}
			for i, step := range []struct {
				issuer string
				want   [][2]string
			}{
				{"", nil}, // the listener's address: not recorded
				{x, nil},  // recorded
				{x, nil},
				{y, [][2]string{{y, x}}},
				{y, [][2]string{{y, x}}}, // again: the store keeps the first
				{x, nil},
			} {
				if got := start(step.issuer); len(got) != len(step.want) || (len(got) == 1 && got[0] != step.want[0]) {
					t.Fatalf("start %d with issuer %q: warnings (issuer, recorded) %q; want %q", i, step.issuer, got, step.want)
				}
			}

			st, err := openStore(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.GetSealedValue(context.Background(), signer.IssuerName); err != nil {
				t.Fatalf("the recorded issuer: %v", err)
			}
			d, err := transfer.Export(context.Background(), st, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range d.SealedValues {
				if v.Name == signer.IssuerName {
					t.Errorf("the export holds the recorded issuer")
				}
			}
		})
	}
}
