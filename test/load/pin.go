package load

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

const pinnedEnv = "CCSBC_LOAD_PINNED"

// PinSelf re-executes this program under `taskset -c cpus` so that the
// generator runs on CPUs of its own (and sizes GOMAXPROCS to them). It
// returns only when no pinning is asked or this process is the pinned one.
func PinSelf(cpus string) error {
	if cpus == "" || os.Getenv(pinnedEnv) == cpus {
		return nil
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("load: pinning to CPUs %s needs taskset (util-linux): %w", cpus, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append([]string{"taskset", "-c", cpus, self}, os.Args[1:]...)
	return syscall.Exec(taskset, argv, append(os.Environ(), pinnedEnv+"="+cpus))
}

// RaiseFileLimit raises this process's open-file limit, which the relays it
// starts inherit: ccsbc holds 4 sockets per call, rtpengine about as many.
func RaiseFileLimit(n uint64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur >= n {
		return nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(n, rl.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Not root: as far as the hard limit goes.
		rl.Cur = rl.Max
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return nil
}
