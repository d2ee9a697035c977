package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/transfer"
)

// sawWriter is a writer, safe for concurrent use, that closes saw once
// what was written holds want.
type sawWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	saw  chan struct{}
}

func (w *sawWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.want)
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.want) {
		close(w.saw)
	}
	return len(p), nil
}

// TestImportWaitsForServerStart: on PostgreSQL, an import into a store
// on which a server is starting (holding the first-start lock) says that
// it waits, as the server says when it waits for an import, and waits
// until the start ends, or until it is interrupted (its context
// cancelled, as SIGINT does). Before, it waited silently.
func TestImportWaitsForServerStart(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	server, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	b, err := json.Marshal(transfer.Dump{Format: transfer.Format, ExportedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(t.TempDir(), "export.json")
	mustWriteFile(t, dump, b)
	unlock, err := server.LockFirstStart(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	// The holder may be a rotation or another import too (both hold
	// the lock): it said a server's start alone.
	const want = "waiting for a server's start on this store, a master-key rotate of it or another import into it, to end"
	for _, interrupt := range []bool{true, false} {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stderr := &sawWriter{want: want, saw: make(chan struct{})}
		var out bytes.Buffer
		cmd := newRootCommand()
		cmd.SetArgs([]string{"import", "--db", dsn, dump})
		cmd.SetOut(&out)
		cmd.SetErr(stderr)
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(cctx) }()
		// Not a measure: a bound on a wait that must end.
		select {
		case <-stderr.saw:
		case err := <-done:
			t.Fatalf("import while a server starts: %v, before it said %q", err, want)
		case <-time.After(30 * time.Second):
			t.Fatalf("import did not say %q while a server started", want)
		}
		if interrupt {
			cancel()
			if err := <-done; err == nil || err.Error() != "import interrupted: nothing was imported" {
				t.Fatalf("import interrupted while it waited: %v, want it stopped", err)
			}
			continue
		}
		unlock()
		if err := <-done; err != nil {
			t.Fatalf("import once the server's start ended: %v", err)
		}
		if !strings.HasPrefix(out.String(), "imported ") {
			t.Fatalf("import said %q", out.String())
		}
	}
}
