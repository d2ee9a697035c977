package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testkeyward"
)

// TestServeFailureLogged: with --log-format json, the error that keeps
// serve from starting is a JSON line at error in its log, and main does
// not print it again as a plain line a collector could not parse; in a
// text log it is left for main to print, as every command's error is.
func TestServeFailureLogged(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		format string
		logged bool
	}{
		{"json", true},
		{"text", false},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var stderr testkeyward.SyncBuffer
			cmd := newRootCommand()
			cmd.SetArgs([]string{"serve", "--data-dir", t.TempDir(), "--listen", busy.Addr().String(), "--log-format", tt.format})
			cmd.SetOut(new(strings.Builder))
			cmd.SetErr(&stderr)
			err := execute(context.Background(), cmd)
			if err == nil {
				t.Fatal("serve started on a port in use")
			}
			if got := errors.As(err, new(loggedError)); got != tt.logged {
				t.Errorf("error %v: logged %v, want %v", err, got, tt.logged)
			}
			if !tt.logged {
				if strings.Contains(stderr.String(), "could not start") {
					t.Errorf("text log %q logs the failure main prints", stderr.String())
				}
				return
			}
			var found bool
			for line := range strings.Lines(stderr.String()) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q is not JSON: %v", line, err)
				}
				if rec["level"] == "ERROR" && rec["msg"] == "keyward serve could not start" && rec["err"] == err.Error() {
					found = true
				}
			}
			if !found {
				t.Errorf("log %q, want an ERROR line with the error %q", stderr.String(), err)
			}
		})
	}
}
