package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need skips the test when one of the tools is not on PATH, or when sipp
// or tshark is asked for and the test does not run as root (SIPp plays RTP
// through a raw socket; tshark captures on lo). Under CI (CI set in the
// environment) every tool is installed, so a missing one fails the test
// instead.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	root := false
	for _, name := range tools {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("lab: %s is not installed (CI installs sip-tester, baresip, tshark)", name)
			}
			t.Skipf("lab: %s is not installed: apt-get install sip-tester baresip tshark", name)
		}
		root = root || name == "sipp" || name == "tshark"
	}
	if root && os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("lab: the end-to-end tests run as root (SIPp's raw RTP socket, tshark on lo)")
		}
		t.Skip("lab: needs root (SIPp plays RTP through a raw socket, tshark captures on lo)")
	}
}

// ModuleRoot is the directory of ccsbc's go.mod.
func ModuleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			return root
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil && strings.TrimSpace(string(out)) != "" && strings.TrimSpace(string(out)) != os.DevNull {
		return filepath.Dir(strings.TrimSpace(string(out)))
	}
	panic("lab: cannot find the module root (go.mod)")
}

// Scenario is the path of a SIPp scenario of test/scenarios ("uac.xml").
// A path that exists as given is returned as it is.
func Scenario(name string) string {
	if filepath.IsAbs(name) || strings.ContainsRune(name, os.PathSeparator) {
		if _, err := os.Stat(name); err == nil {
			return name
		}
	}
	return filepath.Join(ModuleRoot(), "test", "scenarios", name)
}

// proc is a process started by a helper: its own process group, its output
// in files, a hard deadline, stopped in t.Cleanup.
type proc struct {
	name   string
	cmd    *exec.Cmd
	dir    string
	stdout string // path
	stderr string // path

	done     chan struct{}
	mu       sync.Mutex
	exitCode int
	waitErr  error
	killed   string // why we killed it, if we did
}

// procSpec says how to start a proc.
type procSpec struct {
	name    string
	argv    []string
	dir     string   // working and log directory
	env     []string // added to os.Environ()
	timeout time.Duration
	// stopSignal is sent first when the test ends with the process still
	// running; grace later it is killed.
	stopSignal syscall.Signal
	grace      time.Duration
	// combined writes stdout and stderr to one file, <name>.out.
	combined bool
}

// startProc starts spec.argv with stdout and stderr in files of spec.dir.
// The process is killed when spec.timeout has passed (or the test's own
// deadline is near) and stopped when the test ends.
func startProc(t testing.TB, spec procSpec) (*proc, error) {
	t.Helper()
	if spec.dir == "" {
		spec.dir = t.TempDir()
	}
	if spec.grace == 0 {
		spec.grace = 5 * time.Second
	}
	if spec.stopSignal == 0 {
		spec.stopSignal = syscall.SIGTERM
	}
	timeout := boundTimeout(t, spec.timeout)
	p := &proc{
		name:   spec.name,
		dir:    spec.dir,
		stdout: filepath.Join(spec.dir, spec.name+".stdout"),
		stderr: filepath.Join(spec.dir, spec.name+".stderr"),
		done:   make(chan struct{}),
	}
	if spec.combined {
		p.stdout = filepath.Join(spec.dir, spec.name+".out")
		p.stderr = p.stdout
	}
	outf, err := os.Create(p.stdout)
	if err != nil {
		return nil, err
	}
	errf := outf
	if !spec.combined {
		if errf, err = os.Create(p.stderr); err != nil {
			outf.Close()
			return nil, err
		}
	}
	cmd := exec.Command(spec.argv[0], spec.argv[1:]...)
	cmd.Dir = spec.dir
	cmd.Stdout, cmd.Stderr = outf, errf
	cmd.Stdin = nil
	cmd.Env = append(os.Environ(), spec.env...)
	// A group of its own, so that ending it ends what it started (tshark
	// runs dumpcap) and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		outf.Close()
		if errf != outf {
			errf.Close()
		}
		return nil, fmt.Errorf("lab: start %s: %w", spec.name, err)
	}
	p.cmd = cmd
	go func() {
		err := cmd.Wait()
		outf.Close()
		if errf != outf {
			errf.Close()
		}
		p.mu.Lock()
		p.waitErr = err
		p.exitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.exitCode = 128 + int(ws.Signal())
		}
		p.mu.Unlock()
		close(p.done)
	}()
	timer := time.AfterFunc(timeout, func() {
		p.kill(fmt.Sprintf("still running after %v", timeout))
	})
	t.Cleanup(func() {
		timer.Stop()
		p.stop(spec.stopSignal, spec.grace)
	})
	return p, nil
}

// boundTimeout keeps d (default 60 s) inside the test binary's deadline.
func boundTimeout(t testing.TB, d time.Duration) time.Duration {
	if d <= 0 {
		d = 60 * time.Second
	}
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := dt.Deadline(); ok {
			if left := time.Until(deadline) - 5*time.Second; left > 0 && left < d {
				d = left
			}
		}
	}
	return d
}

// signal sends sig to the process group.
func (p *proc) signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return errors.New("lab: " + p.name + " has exited")
	default:
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// kill ends the process group at once and says why in the process's log.
func (p *proc) kill(why string) {
	select {
	case <-p.done:
		return
	default:
	}
	p.mu.Lock()
	if p.killed == "" {
		p.killed = why
	}
	p.mu.Unlock()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop sends sig, waits grace for the process to exit, then kills it.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if p.signal(sig) != nil {
		<-p.done
		return
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill(fmt.Sprintf("did not exit within %v of %v", grace, sig))
	}
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit, at most d; false if it did not.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *proc) status() (code int, killed string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode, p.killed
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// readFile returns a file's content, "" when it cannot be read.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// logOnFailure prints, when the test has failed, where a helper's files are.
func logOnFailure(t testing.TB, what string, paths ...string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab: %s files: %s", what, strings.Join(paths, " "))
		}
	})
}
