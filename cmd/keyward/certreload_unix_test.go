//go:build unix

package main

import (
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testkeyward"
)

// waitForLog waits up to 5 s for the log l to contain s.
func waitForLog(t *testing.T, l *testkeyward.SyncBuffer, s string) {
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
	var logs testkeyward.SyncBuffer
	m := startServer(t, func(m *Main) { m.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	waitForLog(t, &logs, "keyward is serving")
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, &logs, "nothing to reload")
	resp, err := http.Get(m.URL() + "/healthz")
	if err != nil {
		t.Fatalf("not serving after SIGHUP: %v", err)
	}
	resp.Body.Close()
}
