//go:build unix

package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logBuffer is a log destination safe for concurrent writes and reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits up to 5 s for the log to contain s.
func (l *logBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(l.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", s, l)
		}
	}
}

// TestSIGHUPWithoutTLS: systemd's reload sends SIGHUP; a server without a
// certificate to reload logs that and keeps serving (a default SIGHUP
// would kill the test binary).
func TestSIGHUPWithoutTLS(t *testing.T) {
	var logs logBuffer
	m := startServer(t, func(m *Main) { m.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	logs.waitFor(t, "keyward is serving")
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "nothing to reload")
	resp, err := http.Get(m.URL() + "/healthz")
	if err != nil {
		t.Fatalf("not serving after SIGHUP: %v", err)
	}
	resp.Body.Close()
}
