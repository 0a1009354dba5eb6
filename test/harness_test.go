// Package test holds ccsbc's end-to-end tests: they build the binary, start
// it from a configuration and place calls through it with real peers (SIPp,
// baresip) on loopback, and read what crossed the wire with tshark. The
// helpers they share with other suites live in test/lab.
package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ccsbc/ccsbc/test/lab"
)

// needTool skips a test when SIPp or another peer is missing, except under
// CI, where .ci/run installs every one of them and a missing one fails.
func needTool(t *testing.T, names ...string) {
	t.Helper()
	lab.Need(t, names...)
}

func scenario(name string) string { return lab.Scenario(name) }

func ccsbcBinary(t *testing.T) string { return lab.CCSBCBinary(t) }

// daemon is a running ccsbc (lab.Daemon) with the shorthands these tests use.
type daemon struct {
	*lab.Daemon
	t *testing.T
}

// startCCSBC runs ccsbc on cfg until the test ends, once its listeners
// answer. Daemons run side by side: without an admin section, the admin API
// takes a free port.
func startCCSBC(t *testing.T, cfg string) *daemon {
	t.Helper()
	if !strings.Contains(cfg, "\nadmin:") {
		cfg += "admin: {listen: \"127.0.0.1:0\"}\n"
	}
	d := lab.StartCCSBCWith(t, lab.DaemonOptions{Config: cfg, Args: []string{"--drain-timeout", "20s"}})
	return &daemon{Daemon: d, t: t}
}

// reload rewrites the configuration file and sends SIGHUP.
func (d *daemon) reload(cfg string) {
	d.t.Helper()
	if err := os.WriteFile(d.ConfigFile(), []byte(cfg), 0o600); err != nil {
		d.t.Fatal(err)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		d.t.Fatal(err)
	}
}

// adminAddr is where the daemon's admin API listens.
func (d *daemon) adminAddr() string {
	ev := d.waitEvent("admin API listening", 1, 5*time.Second)[0]
	a, _ := ev["address"].(string)
	return a
}

func (d *daemon) events(msg string) []map[string]any { return d.Events(msg) }
func (d *daemon) logText() string                    { return d.Logs() }

// waitEvent waits until n log lines with msg exist and returns them.
func (d *daemon) waitEvent(msg string, n int, within time.Duration) []map[string]any {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	ev, err := d.WaitEvent(ctx, msg, n)
	if err != nil {
		d.t.Fatal(err)
	}
	return ev
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// legStats reads media0.<side>.<key> from a "call end" event.
func legStats(ev map[string]any, side, key string) float64 {
	m, _ := ev["media0"].(map[string]any)
	s, _ := m[side].(map[string]any)
	v, _ := s[key].(float64)
	return v
}

// sipp is one SIPp run, started with raw arguments (the scenarios' keys are
// documented at the top of each file in test/scenarios).
type sipp struct {
	cmd      *exec.Cmd
	dir      string
	name     string
	exited   chan struct{}
	exitCode int
}

// startSIPp starts SIPp in a temp dir with its traces in files named after
// name; it is killed when the test ends.
func startSIPp(t *testing.T, name string, args ...string) *sipp {
	t.Helper()
	dir := t.TempDir()
	full := append([]string{}, args...)
	full = append(full, "-nostdin", "-trace_err", "-error_file", name+"_err.log",
		"-trace_msg", "-message_file", name+"_msg.log", "-trace_screen", "-screen_file", name+"_screen.log")
	cmd := exec.Command("sipp", full...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &sipp{cmd: cmd, dir: dir, name: name, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.exitCode = cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("sipp %s (%v) exit %d, output:\n%s\nmessages:\n%s\nerrors:\n%s", name, args, p.exitCode,
				tail(out.String(), 1500), tail(p.messages(), 5000), tail(p.file("_err.log"), 1500))
		}
	})
	return p
}

func (p *sipp) file(suffix string) string {
	b, _ := os.ReadFile(filepath.Join(p.dir, p.name+suffix))
	return string(b)
}

// messages is SIPp's message trace: every SIP message it sent and received.
func (p *sipp) messages() string { return p.file("_msg.log") }

// wait waits for SIPp to exit and returns its exit code (0: all calls
// succeeded).
func (p *sipp) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.exitCode
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("sipp %s still running after %v", p.name, within)
	}
	return -1
}

// freePort returns a port free for both UDP and TCP on 127.0.0.1.
func freePort(t *testing.T) int { return lab.FreePort(t) }

// sippMediaPort is an even port, with the next ones free, for SIPp's RTP.
func sippMediaPort(t *testing.T) int { return lab.FreeMediaPort(t) }

// mediaRange returns a fresh port range for one daemon's relay, distinct
// from every other daemon of this test process.
var (
	rangeMu   sync.Mutex
	rangeNext = 42000
)

func mediaRange() (int, int) {
	rangeMu.Lock()
	defer rangeMu.Unlock()
	lo := rangeNext
	rangeNext += 200
	if rangeNext > 60000 {
		rangeNext = 42000
	}
	return lo, lo + 199
}

// selfSigned makes a throwaway certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate { return lab.SelfSigned(t, "test peer").TLS }
