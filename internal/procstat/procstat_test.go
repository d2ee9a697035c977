package procstat

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

func TestThisProcess(t *testing.T) {
	self0, proc0 := SelfCPU(), CPU(os.Getpid())
	// Burn CPU for a while, in this goroutine.
	sum := sha256.Sum256(nil)
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		sum = sha256.Sum256(sum[:])
	}
	self1, proc1 := SelfCPU(), CPU(os.Getpid())
	if d := self1 - self0; d < 100*time.Millisecond {
		t.Errorf("SelfCPU grew by %v over 300 ms of work", d)
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
