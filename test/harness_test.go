// Package test holds ccsbc's end-to-end tests: they build the binary, start
// it from a configuration and place calls through it with real peers (SIPp,
// baresip) on loopback, and read what crossed the wire with tshark.
package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
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

// needTool skips a test when a peer program is missing, except under CI,
// where .ci/run installs every one of them and a missing tool is a failure.
func needTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (CI must install it: see .ci/run)", n)
			}
			t.Skipf("%s not installed: apt-get install sip-tester baresip tshark", n)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end tests need root (SIPp plays RTP through a raw socket, tshark captures on lo)")
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func scenario(name string) string { return filepath.Join(repoRoot(), "test", "scenarios", name) }

// ccsbcBinary builds cmd/ccsbc once per test process.
func ccsbcBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ccsbc-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ccsbc")
		args := []string{"build", "-o", binPath}
		if os.Getenv("CCSBC_RACE") != "" {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/ccsbc")...)
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemon is a running ccsbc.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    string // path of its stderr (JSON log lines)
	dir    string
	conf   string // its configuration file
	exited chan struct{}
}

// reload rewrites the configuration file and sends SIGHUP.
func (d *daemon) reload(cfg string) {
	d.t.Helper()
	if err := os.WriteFile(d.conf, []byte(cfg), 0o600); err != nil {
		d.t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		d.t.Fatal(err)
	}
}

// startCCSBC writes cfg to a file and runs `ccsbc run --config FILE` until
// the test ends, waiting until every listener is bound.
func startCCSBC(t *testing.T, cfg string, listeners int) *daemon {
	t.Helper()
	bin := ccsbcBinary(t)
	dir := t.TempDir()
	if !strings.Contains(cfg, "\nadmin:") {
		// Tests run daemons side by side: no fixed admin port.
		cfg += "admin: {listen: \"127.0.0.1:0\"}\n"
	}
	path := filepath.Join(dir, "ccsbc.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "ccsbc.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--drain-timeout", "20s")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "STATE_DIRECTORY="+filepath.Join(dir, "state"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	d := &daemon{t: t, cmd: cmd, log: logf.Name(), dir: dir, conf: path, exited: exited}
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if text := d.logText(); strings.Contains(text, "DATA RACE") || strings.Contains(text, "panic:") {
			t.Errorf("ccsbc reported a data race or panic:\n%s", tail(text, 8000))
		}
		if t.Failed() {
			b, _ := os.ReadFile(d.log)
			t.Logf("ccsbc log (%s):\n%s", d.log, tail(string(b), 6000))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			b, _ := os.ReadFile(d.log)
			t.Fatalf("ccsbc exited at start:\n%s", b)
		default:
		}
		if len(d.events("listening")) >= listeners {
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("ccsbc did not start listening")
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// adminAddr is where the daemon's admin API listens.
func (d *daemon) adminAddr() string {
	ev := d.waitEvent("admin API listening", 1, 5*time.Second)[0]
	a, _ := ev["address"].(string)
	return a
}

// events returns the JSON log lines whose msg is msg.
func (d *daemon) events(msg string) []map[string]any {
	b, _ := os.ReadFile(d.log)
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitEvent waits until n log lines with msg exist and returns them.
func (d *daemon) waitEvent(msg string, n int, within time.Duration) []map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ev := d.events(msg)
		if len(ev) >= n {
			return ev
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no %d %q events within %v (got %d)", n, msg, within, len(ev))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) logText() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// legStats reads media0.<side>.<key> from a "call end" event.
func legStats(ev map[string]any, side, key string) float64 {
	m, _ := ev["media0"].(map[string]any)
	s, _ := m[side].(map[string]any)
	v, _ := s[key].(float64)
	return v
}

// sipp is one SIPp run.
type sipp struct {
	cmd      *exec.Cmd
	dir      string
	name     string
	exited   chan struct{}
	exitCode int
}

// startSIPp starts SIPp in dir with its traces in files named after name.
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
		err := cmd.Wait()
		p.exitCode = cmd.ProcessState.ExitCode()
		_ = err
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
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.LocalAddr().(*net.UDPAddr).Port
		l.Close()
		if tl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			tl.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// mediaRange returns a fresh even-aligned port range for one daemon.
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

// sippMediaPort picks an even port for SIPp's RTP (it also uses +2 for
// video and +1 for RTCP).
func sippMediaPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		p := freePort(t)
		if p%2 == 0 && p < 65000 {
			return p
		}
	}
	t.Fatal("no even port")
	return 0
}

func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// selfSigned makes a throwaway certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "test peer"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
