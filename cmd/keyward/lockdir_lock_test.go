//go:build unix || windows

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// TestDataDirLock: a second server on the same SQLite data directory, or a
// master-key rotation beside a server, is refused with the directory and
// the holder named; read-only maintenance runs beside it; the lock goes
// with the server.
func TestDataDirLock(t *testing.T) {
	first, stop := launchServer(t)
	defer stop()
	dir := first.Config.DataDir
	second := func() error {
		cfg := DefaultConfig()
		cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		defer m.Close()
		return m.Open(context.Background())
	}
	holder := fmt.Sprintf("in use by keyward serve (process %d)", os.Getpid())
	tests := []struct {
		name string
		run  func() error
		want []string // in the error; none: it succeeds
	}{
		{"second server", second, []string{dir, holder, "--data-dir"}},
		{"master-key rotate", func() error {
			return runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", writeMasterKey(t, "d3"))
		}, []string{dir, holder, "stop it before running keyward master-key rotate"}},
		{"audit verify", func() error { return runCLIErr(t, "audit", "verify", "--data-dir", dir) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("it ran beside the server")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	stop()
	if err := second(); err != nil {
		t.Fatalf("a server after the first stopped: %v", err)
	}
}

// A server on PostgreSQL starting on a data directory holds its lock for
// a moment: an SQLite server, or a master-key rotation, refused meanwhile
// is told so and to try again, not that only one server may use the
// SQLite database and to stop that one.
func TestDataDirLockStartingServer(t *testing.T) {
	first, stop := launchServer(t)
	dir := first.Config.DataDir
	stop()
	release, err := lockDataDir(dir, startingHolder)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, tt := range []struct {
		name string
		run  func() error
	}{
		{"SQLite server", func() error {
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			defer m.Close()
			return m.Open(context.Background())
		}},
		{"master-key rotate", func() error {
			return runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", writeMasterKey(t, "d3"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil {
				t.Fatal("it ran beside the starting server")
			}
			holder := fmt.Sprintf("in use by keyward serve, starting (process %d)", os.Getpid())
			for _, w := range []string{dir, holder, "a server on PostgreSQL is starting on this directory", "try again in a moment"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, w := range []string{"only one server", "stop"} {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q says %q", err, w)
				}
			}
		})
	}
}

// A master-key rotation holds the data directory's lock until it ends (on
// PostgreSQL while it replaces master.key): an SQLite server, or an
// import, refused meanwhile is told to wait for the rotation to end, not
// that only one server may use the SQLite database and to stop that one.
func TestDataDirLockRotation(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir, rotateHolder)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, tt := range []struct {
		name string
		run  func() error
	}{
		{"SQLite server", func() error {
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			defer m.Close()
			return m.Open(context.Background())
		}},
		{"import", func() error {
			cfg := DefaultConfig()
			cfg.DataDir = dir
			_, err := lockForMaintenance(cfg, "keyward import")
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil {
				t.Fatal("it ran beside the rotation")
			}
			holder := fmt.Sprintf("in use by keyward master-key rotate (process %d)", os.Getpid())
			for _, w := range []string{dir, holder, "a master-key rotation holds its lock until the rotation ends", "wait for it to end"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, w := range []string{"only one server", "stop"} {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q says %q", err, w)
				}
			}
		})
	}
}
