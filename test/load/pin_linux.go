package load

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinThreads runs this process (the generator) on cpus, a taskset-style
// list such as "0" or "0,2-3", until the returned function puts back the
// CPUs and GOMAXPROCS it had. Every thread is moved; threads the runtime
// starts later inherit the set from the thread that starts them.
func pinThreads(cpus string) (restore func(), err error) {
	list, err := parseCPUList(cpus)
	if err != nil {
		return nil, err
	}
	var set unix.CPUSet
	for _, c := range list {
		set.Set(c)
	}
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, fmt.Errorf("load: sched_getaffinity: %w", err)
	}
	if err := setAllThreads(&set); err != nil {
		_ = setAllThreads(&old)
		return nil, err
	}
	procs := runtime.GOMAXPROCS(len(list))
	return func() {
		runtime.GOMAXPROCS(procs)
		_ = setAllThreads(&old)
	}, nil
}

// setAllThreads sets the affinity of every thread in /proc/self/task, twice
// over, so that a thread started while the first pass ran is caught.
func setAllThreads(set *unix.CPUSet) error {
	for range 2 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("load: pinning the generator: %w", err)
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("load: sched_setaffinity on thread %d: %w", tid, err)
			}
		}
	}
	return nil
}
