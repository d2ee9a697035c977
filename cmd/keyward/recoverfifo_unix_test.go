//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRecoverAdminKeyFileNamedPipe: a --key-file in the way that is not a
// regular file (a named pipe, a device) is refused as in the way without
// being read. Read to see whether it was a key file left by a killed run,
// a named pipe blocked recover-admin until a writer came, and /dev/stdout
// on a terminal waited for typing.
func TestRecoverAdminKeyFileNamedPipe(t *testing.T) {
	m := startServer(t)
	fifo := filepath.Join(t.TempDir(), "admin.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipe here: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- runCLIErr(t, "recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", fifo)
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		// Let it go: a writer that opens the pipe and closes it ends the read.
		if f, oerr := os.OpenFile(fifo, os.O_WRONLY, 0); oerr == nil {
			f.Close()
		}
		<-done
		t.Fatal("recover-admin with a named pipe as --key-file waited for a writer")
	}
	if err == nil || !strings.Contains(err.Error(), "--key-file "+fifo+" already exists") {
		t.Errorf("%v, want %s refused as in the way", err, fifo)
	}
}
