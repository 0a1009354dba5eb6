package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// CCSBCBinary is the ccsbc binary the tests run: $CCSBC_BIN when set, else
// `go build ./cmd/ccsbc` from the module root, once per test process (with
// -race when $CCSBC_RACE is set), into a temp dir.
func CCSBCBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("CCSBC_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ccsbc-lab-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "ccsbc")
		args := []string{"build", "-o", buildPath}
		if os.Getenv("CCSBC_RACE") != "" {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/ccsbc")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("lab: go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// DaemonOptions configures StartCCSBCWith. Zero values have lab defaults.
type DaemonOptions struct {
	// Config is the YAML configuration, written to ccsbc.yaml.
	Config string
	// Binary is the program to run; default CCSBCBinary(t).
	Binary string
	// Args come after "run --config FILE".
	Args []string
	// Env is added to the environment. STATE_DIRECTORY is set to a temp
	// dir (where ccsbc keeps its generated certificate) unless Env sets it.
	Env []string
	// ReadyTimeout bounds the wait for readiness (default 15 s).
	ReadyTimeout time.Duration
	// Ready, when set, replaces the readiness check: it is polled until it
	// returns nil. By default each listener of the configuration must
	// answer (UDP: any SIP response to an OPTIONS; TCP and TLS: a TCP
	// connection) or be announced by a "listening" log line.
	Ready func(ctx context.Context) error
	// StopTimeout is how long SIGTERM may take (draining) before SIGKILL.
	// Default 15 s.
	StopTimeout time.Duration
	// Timeout bounds the daemon's life (default 10 min, within the test
	// binary's deadline).
	Timeout time.Duration
}

// Daemon is a running ccsbc.
type Daemon struct {
	t         testing.TB
	opts      DaemonOptions
	p         *proc
	dir       string
	config    string
	state     string
	listeners []ConfigListener
	stopped   bool
}

// ConfigListener is a listener read from the daemon's configuration.
type ConfigListener struct {
	Transport string `yaml:"transport"`
	Address   string `yaml:"address"`
}

// StartCCSBC writes configYAML to a temp file, runs `ccsbc run --config
// FILE` until the test ends (SIGTERM, then SIGKILL) and returns once it is
// ready. Its stdout and stderr go to files (Logs); a panic or data race in
// them fails the test.
func StartCCSBC(t testing.TB, configYAML string) *Daemon {
	t.Helper()
	return StartCCSBCWith(t, DaemonOptions{Config: configYAML})
}

// StartCCSBCWith is StartCCSBC with options.
func StartCCSBCWith(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = CCSBCBinary(t)
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 15 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 15 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Minute
	}
	d := &Daemon{t: t, opts: opts, dir: t.TempDir()}
	d.config = filepath.Join(d.dir, "ccsbc.yaml")
	if err := os.WriteFile(d.config, []byte(opts.Config), 0o600); err != nil {
		t.Fatal(err)
	}
	d.listeners = parseListeners(opts.Config)
	env := append([]string{}, opts.Env...)
	if !hasEnv(env, "STATE_DIRECTORY") {
		d.state = filepath.Join(d.dir, "state")
		if err := os.MkdirAll(d.state, 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, "STATE_DIRECTORY="+d.state)
	}
	argv := append([]string{opts.Binary, "run", "--config", d.config}, opts.Args...)
	p, err := startProc(t, procSpec{
		name:       "ccsbc",
		argv:       argv,
		dir:        d.dir,
		env:        env,
		timeout:    opts.Timeout,
		stopSignal: syscall.SIGTERM,
		grace:      opts.StopTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.p = p
	logOnFailure(t, "ccsbc", d.config, p.stdout, p.stderr)
	t.Cleanup(d.cleanup)
	d.waitReady()
	return d
}

func hasEnv(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// parseListeners reads listeners[].transport and .address from a YAML
// configuration; nothing if it cannot.
func parseListeners(config string) []ConfigListener {
	var c struct {
		Listeners []ConfigListener `yaml:"listeners"`
	}
	if yaml.Unmarshal([]byte(config), &c) != nil {
		return nil
	}
	return c.Listeners
}

// cleanup stops the daemon (if the test has not) and fails the test if it
// panicked, raced or did not exit cleanly.
func (d *Daemon) cleanup() {
	if !d.stopped {
		d.stopped = true
		if d.p.exited() {
			code, _ := d.p.status()
			d.t.Errorf("lab: ccsbc exited by itself during the test (exit %d)", code)
		} else {
			d.p.stop(syscall.SIGTERM, d.opts.StopTimeout)
			if code, killed := d.p.status(); killed != "" {
				d.t.Errorf("lab: ccsbc %s", killed)
			} else if code != 0 {
				d.t.Errorf("lab: ccsbc exited %d after SIGTERM, want 0", code)
			}
		}
	}
	logs := d.Logs()
	if strings.Contains(logs, "WARNING: DATA RACE") || strings.Contains(logs, "panic:") {
		d.t.Errorf("lab: ccsbc reported a data race or a panic:\n%s", tail(logs, 8000))
	} else if d.t.Failed() {
		d.t.Logf("lab: ccsbc log:\n%s", tail(logs, 6000))
	}
}

// waitReady polls the readiness check; the test fails if ccsbc exits or
// is not ready in time.
func (d *Daemon) waitReady() {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.ReadyTimeout)
	defer cancel()
	ready := d.opts.Ready
	if ready == nil {
		ready = d.listenersReady
	}
	var last error
	for {
		if d.p.exited() {
			code, _ := d.p.status()
			d.stopped = true
			d.t.Fatalf("lab: ccsbc exited at start (exit %d):\n%s", code, tail(d.Logs(), 6000))
		}
		probe, cancelProbe := context.WithTimeout(ctx, time.Second)
		last = ready(probe)
		cancelProbe()
		if last == nil {
			return
		}
		select {
		case <-ctx.Done():
			d.t.Fatalf("lab: ccsbc not ready within %v: %v\n%s", d.opts.ReadyTimeout, last, tail(d.Logs(), 6000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// listenersReady is the default readiness check.
func (d *Daemon) listenersReady(ctx context.Context) error {
	if len(d.listeners) == 0 {
		if len(d.Events("listening")) > 0 {
			return nil
		}
		return fmt.Errorf("no listener in the configuration and no \"listening\" log line yet")
	}
	announced := map[string]bool{}
	for _, ev := range d.Events("listening") {
		announced[fmt.Sprint(ev["transport"])+" "+fmt.Sprint(ev["address"])] = true
	}
	for _, l := range d.listeners {
		if announced[l.Transport+" "+l.Address] {
			continue
		}
		addr := dialable(l.Address)
		switch l.Transport {
		case "udp":
			if _, err := SIPOptions(ctx, "udp", addr, nil); err != nil {
				return fmt.Errorf("udp %s: %w", l.Address, err)
			}
		default:
			var nd net.Dialer
			c, err := nd.DialContext(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("%s %s: %w", l.Transport, l.Address, err)
			}
			c.Close()
		}
	}
	return nil
}

// dialable turns a wildcard listen address into a loopback one.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// Logs is everything ccsbc wrote so far (stderr, then stdout).
func (d *Daemon) Logs() string {
	return readFile(d.p.stderr) + readFile(d.p.stdout)
}

// LogFile is the file of ccsbc's stderr (its JSON log).
func (d *Daemon) LogFile() string { return d.p.stderr }

// ConfigFile is the configuration file ccsbc runs on.
func (d *Daemon) ConfigFile() string { return d.config }

// StateDir is the STATE_DIRECTORY given to ccsbc ("" if Env set its own).
func (d *Daemon) StateDir() string { return d.state }

// Listeners are the listeners read from the configuration.
func (d *Daemon) Listeners() []ConfigListener { return d.listeners }

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.p.pid() }

// Signal sends sig to the daemon (SIGHUP: reload).
func (d *Daemon) Signal(sig syscall.Signal) error { return d.p.signal(sig) }

// Exited reports whether the daemon has exited.
func (d *Daemon) Exited() bool { return d.p.exited() }

// Stop sends SIGTERM, waits up to StopTimeout for ccsbc to drain and exit
// (then kills it) and returns its exit code (-1 if it had to be killed).
// After Stop the test's cleanup no longer expects it to run.
func (d *Daemon) Stop() int {
	d.stopped = true
	d.p.stop(syscall.SIGTERM, d.opts.StopTimeout)
	code, killed := d.p.status()
	if killed != "" {
		return -1
	}
	return code
}

// Wait waits for the daemon to exit by itself (a test that expects it to)
// and returns its exit code; the test's cleanup then no longer expects it
// to run.
func (d *Daemon) Wait(ctx context.Context) (int, error) {
	select {
	case <-d.p.done:
		d.stopped = true
		code, _ := d.p.status()
		return code, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("lab: ccsbc still running: %w", ctx.Err())
	}
}

// Events are ccsbc's JSON log lines whose "msg" is msg (all of them when
// msg is ""), decoded, in order.
func (d *Daemon) Events(msg string) []map[string]any {
	var out []map[string]any
	for _, path := range []string{d.p.stderr, d.p.stdout} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 || line[0] != '{' {
				continue
			}
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && (msg == "" || m["msg"] == msg) {
				out = append(out, m)
			}
		}
	}
	return out
}

// WaitEvent waits until ccsbc has logged n lines with msg and returns them
// all.
func (d *Daemon) WaitEvent(ctx context.Context, msg string, n int) ([]map[string]any, error) {
	for {
		ev := d.Events(msg)
		if len(ev) >= n {
			return ev, nil
		}
		select {
		case <-ctx.Done():
			return ev, fmt.Errorf("lab: ccsbc logged %d %q lines, want %d: %w", len(ev), msg, n, ctx.Err())
		case <-d.p.done:
			if ev = d.Events(msg); len(ev) >= n {
				return ev, nil
			}
			return ev, fmt.Errorf("lab: ccsbc exited after %d %q lines, want %d", len(ev), msg, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
