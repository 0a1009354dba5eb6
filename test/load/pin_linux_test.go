package load

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPinThreads: pinning moves every thread of the generator to the CPUs
// asked and sizes GOMAXPROCS to them; restore puts both back.
func TestPinThreads(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: nothing to pin apart")
	}
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	procs := runtime.GOMAXPROCS(0)
	restore, err := pinThreads("1")
	if err != nil {
		t.Fatal(err)
	}
	// A goroutine locked to a thread started after pinning: the runtime
	// may make a new thread for it, which must inherit the set.
	got := make(chan unix.CPUSet)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var set unix.CPUSet
		_ = unix.SchedGetaffinity(0, &set)
		got <- set
	}()
	set := <-got
	if set.Count() != 1 || !set.IsSet(1) {
		t.Errorf("a thread of the pinned process runs on %d CPUs (CPU 1: %v), want CPU 1 only", set.Count(), set.IsSet(1))
	}
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("GOMAXPROCS %d while pinned to one CPU", n)
	}
	restore()
	var after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if after != before || runtime.GOMAXPROCS(0) != procs {
		t.Errorf("after restore: %d CPUs, GOMAXPROCS %d; want %d and %d", after.Count(), runtime.GOMAXPROCS(0), before.Count(), procs)
	}
}

func TestParseCPUList(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU")
	}
	if got, err := parseCPUList("0-1,1"); err != nil || len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Errorf(`"0-1,1": %v, %v; want [0 1]`, got, err)
	}
	for _, bad := range []string{"", "x", "1-0", "-1", "99999"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
