package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/procstat"
)

// startBenchProcess runs this test binary as `keyward bench` in a process
// group of its own, as a shell runs a job, and returns it with its stdout
// and the pid of the server it started, once that server has answered some
// token requests (the first scenario is running).
func startBenchProcess(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, int) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a child bench and its server")
	}
	cmd := exec.Command(os.Args[0], append([]string{"bench"}, args...)...)
	cmd.Env = append(os.Environ(), "KEYWARD_TEST_RUN_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if pid, metrics := childServer(cmd.Process.Pid); pid != 0 && metrics != "" {
			b := &bench{metricsURL: "http://" + metrics + "/metrics", http: http.DefaultClient}
			if m, err := b.readServerMetrics(context.Background(), "token"); err == nil && m.hist.total >= 200 {
				return cmd, &stdout, pid
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("bench's server did not start serving tokens within a minute; stderr: %s", stderr.String())
	return nil, nil, 0
}

// childServer finds the `keyward serve` child of process parent, and the
// address of its metrics listener.
func childServer(parent int) (pid int, metrics string) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ = strconv.Atoi(filepath.Base(d))
		if f := procStat(pid); len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		if metrics := serverFlag(pid, "--metrics-listen"); metrics != "" {
			return pid, metrics
		}
	}
	return 0, ""
}

// serverFlag returns the value of flag in process pid's command line.
func serverFlag(pid int, flag string) string {
	args := strings.Split(string(readFile("/proc/"+strconv.Itoa(pid)+"/cmdline")), "\x00")
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// readFile is os.ReadFile without the error: nil for a process gone.
func readFile(name string) []byte {
	b, _ := os.ReadFile(name)
	return b
}

// procStat returns the fields of /proc/PID/stat after the command name:
// state, ppid, pgrp, ...; nil when the process is gone.
func procStat(pid int) []string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	// The command name may hold spaces: split after its ")".
	return strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
}

func alive(pid int) bool {
	f := procStat(pid)
	return len(f) > 0 && f[0] != "Z" // a zombie has exited
}

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	t.Fatalf("%s (pid %d) still runs 30s later", what, pid)
}

// TestBenchCtrlC: a Ctrl-C at the terminal signals the whole foreground
// process group. It must reach bench alone: bench then reads the server's
// figures for the interrupted scenario, stops the server and reports.
func TestBenchCtrlC(t *testing.T) {
	cmd, stdout, server := startBenchProcess(t, "--duration", "1m", "--warmup", "0s", "--concurrency", "2",
		"--scenarios", "client_credentials_secret,introspect_opaque", "-o", "json")
	if f := procStat(server); len(f) < 3 || f[2] == strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("the server runs in bench's process group (state, ppid, pgrp: %v)", f[:min(3, len(f))])
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("an interrupted bench exited 0")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bench did not stop within 30s of Ctrl-C")
	}
	var r benchReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("bench printed %q: %v", stdout.String(), err)
	}
	if !r.Interrupted || len(r.Scenarios) != 1 {
		t.Fatalf("report = %+v", r)
	}
	if s := r.Scenarios[0]; s.Requests == 0 || s.ServerP99Bound <= 0 || s.ServerCPUPer1k <= 0 || strings.Contains(s.Note, "unknown") {
		t.Fatalf("the interrupted scenario lacks the server's figures: %+v", s)
	}
	waitGone(t, server, "the started server")
}

// TestBenchKilled: when bench itself is killed (SIGKILL, no chance to clean
// up), the server it started does not run on, and the next bench removes
// the data directory it left.
func TestBenchKilled(t *testing.T) {
	cmd, _, server := startBenchProcess(t, "--duration", "1m", "--warmup", "0s", "--concurrency", "2",
		"--scenarios", "client_credentials_secret")
	dir := serverFlag(server, "--data-dir")
	if dir == "" {
		t.Fatal("no --data-dir in the server's command line")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitGone(t, server, "the server of a killed bench")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed run's data directory: %v (a SIGKILLed process cannot remove it)", err)
	}

	os.Setenv("KEYWARD_TEST_RUN_MAIN", "1") // for the next bench's server only
	defer os.Unsetenv("KEYWARD_TEST_RUN_MAIN")
	runCLI(t, "bench", "--duration", "100ms", "--warmup", "0s", "--concurrency", "1", "--scenarios", "healthz")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the killed run's data directory %s is still there after the next bench: %v", dir, err)
	}
}

// TestBenchResetPeakRSS: starting the server's peak over for a scenario
// keeps the peak it replaces for the run's: a peak of the warm-up or of the
// server's start, before the reset, is still the run's. This process
// stands in for the server.
func TestBenchResetPeakRSS(t *testing.T) {
	pid := os.Getpid()
	big := make([]byte, 256<<20)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1 // touch every page, so it is resident
	}
	withBig := procstat.PeakRSS(pid)
	big = nil
	runtime.GC()
	debug.FreeOSMemory()
	b := &bench{}
	if !b.resetPeakRSS(pid) {
		t.Skip("cannot reset the peak resident set here")
	}
	if after := procstat.PeakRSS(pid); after > withBig-128<<20 {
		t.Fatalf("peak after the reset = %d MiB, before %d MiB: the reset did not take", after>>20, withBig>>20)
	}
	// Not exactly withBig: the kernel updates its high-water mark from
	// counters it syncs lazily, so a later reading may be a little lower.
	if b.peakRSS < withBig-64<<20 {
		t.Errorf("the run's peak kept = %d MiB, want the %d MiB before the reset", b.peakRSS>>20, withBig>>20)
	}
}
