//go:build unix

package main

import (
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFor waits up to 5 s for the log to contain s.
func (l *syncBuffer) waitFor(t *testing.T, s string) {
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
	var logs syncBuffer
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
