package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A run's start removes the user data directories of ours that ended runs
// left more than an hour ago, and nothing else: not a younger one, which a
// run going on at the same time may be using, and not what another
// program (chromedp's own chromedp-runner…) made.
func TestRemoveStaleBrowserDirs(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	tests := []struct {
		name  string
		isDir bool
		age   time.Duration
		kept  bool
	}{
		{browserDirPrefix + "old", true, 2 * time.Hour, false},
		{browserDirPrefix + "young", true, 10 * time.Minute, true},
		{"chromedp-runner123", true, 2 * time.Hour, true},
		{"other-" + browserDirPrefix + "old", true, 2 * time.Hour, true},
		{browserDirPrefix + "file", false, 2 * time.Hour, true},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name)
		if tt.isDir {
			// With content, as Chromium leaves it.
			if err := os.MkdirAll(filepath.Join(p, "Default"), 0o700); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-tt.age), now.Add(-tt.age)); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleBrowserDirs(dir, now)
	for _, tt := range tests {
		_, err := os.Stat(filepath.Join(dir, tt.name))
		if kept := err == nil; kept != tt.kept {
			t.Errorf("%s: kept %v (%v), want %v", tt.name, kept, err, tt.kept)
		}
	}
}

// The shared browser's user data directory is one of ours, and stopping
// the browser removes it (TestMain stops it when the tests end, failed or
// not), leaving no Chromium process using it.
func TestBrowserDirRemoved(t *testing.T) {
	sharedChromium(t)
	sharedBrowser.mu.Lock()
	dir := sharedBrowser.dir
	sharedBrowser.mu.Unlock()
	if !strings.HasPrefix(filepath.Base(dir), browserDirPrefix) || filepath.Dir(dir) != filepath.Clean(os.TempDir()) {
		t.Fatalf("the browser's user data directory is %q, want %s… in %s", dir, browserDirPrefix, os.TempDir())
	}
	if _, err := os.Stat(filepath.Join(dir, "Local State")); err != nil {
		t.Fatalf("Chromium does not use %s: %v", dir, err)
	}
	stopBrowser() // the next test starts another
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("after the browser stopped, its user data directory %s: %v, want it removed", dir, err)
	}
	if runtime.GOOS != "linux" {
		return
	}
	// Chromium's helpers end with it; give them a moment.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left := processesUsing(dir)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Chromium processes still use %s after the browser stopped: %v", dir, left)
		}
	}
}

// processesUsing returns the IDs of the processes whose command line has
// --user-data-dir=dir, read from /proc.
func processesUsing(dir string) []string {
	want := []byte("--user-data-dir=" + dir + "\x00")
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), string(want)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
