package load

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. The
// kernel reports 100 per second on every architecture Linux runs on
// (sysconf(_SC_CLK_TCK)); Go has no sysconf, and this is what it returns.
const clockTicks = 100

// ProcSample is one reading of a process's resource use.
type ProcSample struct {
	At  time.Time
	CPU time.Duration // user + system time of all its threads
	RSS int64         // resident memory, bytes
}

// ReadProc reads /proc/PID/stat and /proc/PID/status.
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("load: read stat of %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted from the last ')'. utime and stime are fields 14
	// and 15 (proc(5)), so 12 and 13 after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("load: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("load: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("load: /proc/%d/stat: %w", pid, err)
	}
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks
	st2, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("load: read status of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(st2), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			s.RSS = kb << 10
		}
	}
	return s, nil
}

// SelfCPU is the CPU time this process has used (user + system).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Process is a program this package started: its own process group, its
// output in a file, ended by its id.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // path of its combined stdout and stderr
	done chan struct{}
	err  error
}

// startProcess starts argv with its output in logPath. With cpus (a
// taskset list such as "1"), it runs pinned to those CPUs.
func startProcess(name string, argv []string, cpus string, dir, logPath string, env []string) (*Process, error) {
	if cpus != "" {
		if _, err := exec.LookPath("taskset"); err != nil {
			return nil, fmt.Errorf("load: pinning %s to CPUs %s needs taskset (util-linux): %w", name, cpus, err)
		}
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("load: start %s: %w", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id (taskset execs the program in place, so it is the
// program's).
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits at most d for the process to exit; false if it is still
// running.
func (p *Process) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Stop sends SIGTERM to the process group, and SIGKILL grace later.
func (p *Process) Stop(grace time.Duration) {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGTERM)
	if !p.Wait(grace) {
		_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
		<-p.done
	}
}

// LogTail is the last n bytes of the process's output.
func (p *Process) LogTail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// MachineSample is one reading of the first line of /proc/stat.
type MachineSample struct {
	Busy, Total time.Duration // all CPUs together
	SoftIRQ     time.Duration
}

// ReadMachine reads /proc/stat.
func ReadMachine() (MachineSample, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineSample{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return MachineSample{}, errors.New("load: /proc/stat: no cpu line")
	}
	var m MachineSample
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		d := time.Duration(n) * time.Second / clockTicks
		if i >= 8 { // guest time is already in user time
			break
		}
		m.Total += d
		switch i {
		case 3, 4: // idle, iowait
		default:
			m.Busy += d
		}
		if i == 6 {
			m.SoftIRQ = d
		}
	}
	return m, nil
}
