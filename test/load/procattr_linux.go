package load

import "syscall"

// procAttr puts a child in a process group of its own (so that ending it
// ends what it started, and nothing else) and has the kernel kill it if
// this process dies first: a crashed benchmark leaves no relay behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
