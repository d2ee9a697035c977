package postgres

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/keyward/keyward/internal/testkeyward"
)

// Open warns when this server's clock is more than a second from the
// database's, either way, and only then.
func TestWarnClockOffset(t *testing.T) {
	// pgtest would import this package; the query needs no schema.
	dsn := os.Getenv("KEYWARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("KEYWARD_TEST_POSTGRES_DSN is not set; skipping PostgreSQL tests (e.g. KEYWARD_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tt := range []struct {
		name   string
		skew   time.Duration // added to this server's clock
		warned bool
	}{
		{"in sync", 0, false},
		{"ahead", 5 * time.Second, true},
		{"behind", -5 * time.Second, true},
		{"half a second behind", -500 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out testkeyward.SyncBuffer
			log := slog.New(slog.NewTextHandler(&out, nil))
			warnClockOffset(context.Background(), db, log, func() time.Time { return time.Now().Add(tt.skew) })
			if warned := strings.Contains(out.String(), "clock differs from PostgreSQL's"); warned != tt.warned {
				t.Fatalf("warned %v, want %v; the log: %s", warned, tt.warned, out.String())
			}
		})
	}
}
