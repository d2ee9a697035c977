package procstat

import (
	"crypto/sha256"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestThisProcess(t *testing.T) {
	self0, proc0 := SelfCPU(), CPU(os.Getpid())
	// Burn CPU in this goroutine until SelfCPU shows 100 ms of it: how
	// long that takes depends on what else the machine runs, so only a
	// SelfCPU that does not grow runs into the deadline.
	sum := sha256.Sum256(nil)
	deadline := time.Now().Add(time.Minute)
	for SelfCPU()-self0 < 100*time.Millisecond && time.Now().Before(deadline) {
		for range 10_000 {
			sum = sha256.Sum256(sum[:])
		}
	}
	self1, proc1 := SelfCPU(), CPU(os.Getpid())
	if d := self1 - self0; d < 100*time.Millisecond {
		t.Errorf("SelfCPU grew by %v in a minute of work", d)
	}
	if proc1 <= 0 || proc1 < proc0 {
		t.Errorf("CPU(self) = %v then %v", proc0, proc1)
	}
	if rss := PeakRSS(os.Getpid()); rss < 1<<20 {
		t.Errorf("PeakRSS = %d bytes", rss)
	}
	if CPU(-1) != 0 || PeakRSS(-1) != 0 {
		t.Error("a process that does not exist reported use")
	}
}

// After a reset the peak is that of what came after: a large allocation
// freed before the reset no longer shows.
func TestResetPeakRSS(t *testing.T) {
	pid := os.Getpid()
	big := make([]byte, 256<<20)
	for i := range big {
		if i%4096 == 0 {
			big[i] = 1 // touch every page, so it is resident
		}
	}
	withBig := PeakRSS(pid)
	big = nil
	runtime.GC()
	debug.FreeOSMemory()
	if err := ResetPeakRSS(pid); err != nil {
		t.Skipf("cannot reset the peak resident set here: %v", err)
	}
	if after := PeakRSS(pid); after <= 0 || after > withBig-128<<20 {
		t.Errorf("peak after the reset = %d MiB, before %d MiB", after>>20, withBig>>20)
	}
	if ResetPeakRSS(-1) == nil {
		t.Error("reset a process that does not exist")
	}
}
