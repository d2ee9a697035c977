//go:build unix

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestImportStdinSocket: import - reads a UNIX socket on its standard
// input as it reads a pipe: Node.js (libuv) gives a child process sockets
// for the stdio it pipes, and a Node script feeding keyward import - was
// refused ("it is a socket").
func TestImportStdinSocket(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	in, w := os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "writer")
	defer in.Close()
	go func() {
		defer w.Close()
		io.WriteString(w, `{"format":"keyward-export/2","orgs":[{"domain":"example.com","created_at":"2026-01-01T00:00:00Z"}]}`)
	}()
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs([]string{"import", "--data-dir", t.TempDir(), "-"})
	cmd.SetIn(in)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("import - from a socket: %v", err)
	}
	if want := "1 organization"; !strings.Contains(out.String(), want) {
		t.Fatalf("import - from a socket said %q, want %q", out.String(), want)
	}
}
