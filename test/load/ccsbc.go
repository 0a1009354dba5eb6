package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CCSBCConfig says how to run ccsbc for a benchmark.
type CCSBCConfig struct {
	Binary string // a built cmd/ccsbc (BuildCCSBC); required
	IP     string // SIP and media address, default 127.0.0.1
	// Transport of SIP on both legs: udp, tcp or tls. Default udp for
	// RTP↔RTP and tls for the SRTP modes (ccsbc sends and accepts
	// a=crypto over TLS only).
	Transport string
	PortMin   int // media range, default 30000-33999; 4 ports per call
	PortMax   int
	CPUs      string // taskset CPU list, "" not pinned
	Dir       string // config, state and log (required)
	LogLevel  string // default info
	Env       []string
}

// BuildCCSBC builds cmd/ccsbc of the module this package belongs to into
// dir and returns the binary's path.
func BuildCCSBC(dir string, race bool) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ccsbc")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/ccsbc")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("load: go build ./cmd/ccsbc: %v\n%s", err, out)
	}
	return bin, nil
}

// ModuleRoot is the directory of ccsbc's go.mod.
func ModuleRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			return root, nil
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gm := strings.TrimSpace(string(out)); err == nil && gm != "" && gm != os.DevNull {
		return filepath.Dir(gm), nil
	}
	return "", errors.New("load: cannot find the module root (go.mod)")
}

// CCSBCPeers are the two peers of a benchmark configuration.
type CCSBCPeers struct {
	Caller, Callee           netip.AddrPort
	CallerSRTP, CalleeSRTP   bool
	CallerPrint, CalleePrint string // certificate fingerprints, for TLS
}

// CCSBCYAML is the configuration of a benchmark: one listener, a caller
// peer (cvp) and a callee peer (cucm, route 1xxx as agent leg), no media
// inactivity timeout. The model follows from the peers: 1 without SRTP (4
// ports per call: RTP and RTCP on each side), 3 with SRTP on the callee leg
// only, 4 with both.
func CCSBCYAML(c CCSBCConfig, sip netip.AddrPort, p CCSBCPeers) string {
	model := 1
	switch {
	case p.CallerSRTP && p.CalleeSRTP:
		model = 4
	case p.CalleeSRTP:
		model = 3
	}
	t := strings.ToLower(c.Transport)
	var b strings.Builder
	fmt.Fprintf(&b, "# ccsbc load benchmark (test/load)\nmodel: %d\nlog: {level: %s}\n", model, c.LogLevel)
	fmt.Fprintf(&b, "listeners:\n  - {transport: %s, address: \"%s\", allow: [127.0.0.0/8]}\n", t, sip)
	if t == "tls" {
		fmt.Fprintf(&b, "tls: {state_dir: %q, client_auth: request}\n", filepath.Join(c.Dir, "state"))
	}
	fmt.Fprintf(&b, "media:\n  bind: %s\n  advertise: %s\n  ports: %d-%d\n  inactivity_timeout: 0s\n", c.IP, c.IP, c.PortMin, c.PortMax)
	peer := func(name, kind string, addr netip.AddrPort, srtp bool, print string) {
		fmt.Fprintf(&b, "  - {name: %s, kind: %s, address: \"%s\", transport: %s", name, kind, addr, t)
		if srtp {
			b.WriteString(", srtp: true")
		}
		if t == "tls" && print != "" {
			fmt.Fprintf(&b, ", verify: fingerprint, fingerprint: %q", print)
		}
		b.WriteString("}\n")
	}
	b.WriteString("peers:\n")
	peer("cvp", "cvp", p.Caller, p.CallerSRTP, p.CallerPrint)
	peer("cucm", "cucm", p.Callee, p.CalleeSRTP, p.CalleePrint)
	b.WriteString("routes:\n  - {name: agents, user: 1xxx, to: cucm, leg: agent}\n")
	// Benchmarks run beside other daemons: no admin API on the default port.
	b.WriteString("admin: {listen: \"\"}\n")
	return b.String()
}

func (c *CCSBCConfig) defaults(mode Mode) error {
	if c.Binary == "" {
		return errors.New("load: no ccsbc binary (BuildCCSBC)")
	}
	if c.Dir == "" {
		return errors.New("load: no directory for ccsbc")
	}
	if c.IP == "" {
		c.IP = "127.0.0.1"
	}
	if _, err := loopback(c.IP); err != nil {
		return err
	}
	if c.Transport == "" {
		c.Transport = "udp"
		if mode.srtpA() || mode.srtpB() {
			c.Transport = "tls"
		}
	}
	if c.PortMin == 0 {
		c.PortMin, c.PortMax = 30000, 33999
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	return nil
}

// StartCCSBC writes yaml into cfg.Dir and runs `ccsbc run --config` on it,
// waiting until its listeners are bound.
func StartCCSBC(cfg CCSBCConfig, yaml string, listeners int) (*Process, error) {
	path := filepath.Join(cfg.Dir, "ccsbc.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	env := append([]string{"STATE_DIRECTORY=" + filepath.Join(cfg.Dir, "state")}, cfg.Env...)
	p, err := startProcess("ccsbc", []string{cfg.Binary, "run", "--config", path}, cfg.CPUs, cfg.Dir, filepath.Join(cfg.Dir, "ccsbc.log"), env)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(p.Log)
		if strings.Count(string(b), `"msg":"listening"`) >= listeners {
			return p, nil
		}
		if p.Exited() || time.Now().After(deadline) {
			p.Stop(2 * time.Second)
			return nil, fmt.Errorf("load: ccsbc did not start:\n%s", p.LogTail(3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CCSBCRelay is ccsbc with a caller and a callee user agent of this
// process on either side of it.
type CCSBCRelay struct {
	proc           *Process
	caller, callee *UA
	sbc            netip.AddrPort
	mode           Mode

	mu      sync.Mutex
	pending map[int]func(SDP) (SDP, error)
	dialogs map[int]*Dialog
}

// StartCCSBCRelay starts the two user agents and ccsbc between them, with a
// media range wide enough for maxCalls.
func StartCCSBCRelay(ctx context.Context, cfg CCSBCConfig, mode Mode, maxCalls int) (*CCSBCRelay, error) {
	if err := cfg.defaults(mode); err != nil {
		return nil, err
	}
	if need := 4 * maxCalls; cfg.PortMax-cfg.PortMin+1 < need {
		return nil, fmt.Errorf("load: ccsbc media range %d-%d holds %d calls, %d asked (4 ports per call)",
			cfg.PortMin, cfg.PortMax, (cfg.PortMax-cfg.PortMin+1)/4, maxCalls)
	}
	ip, _ := netip.ParseAddr(cfg.IP)
	r := &CCSBCRelay{mode: mode, pending: map[int]func(SDP) (SDP, error){}, dialogs: map[int]*Dialog{}}
	var callerCert, calleeCert = mustCert(), mustCert()
	var err error
	if r.caller, err = NewUA(UAConfig{Transport: cfg.Transport, Addr: netip.AddrPortFrom(ip, 0), Certificate: &callerCert}); err != nil {
		return nil, err
	}
	if r.callee, err = NewUA(UAConfig{Transport: cfg.Transport, Addr: netip.AddrPortFrom(ip, 0), Certificate: &calleeCert, OnInvite: r.answer}); err != nil {
		r.caller.Close()
		return nil, err
	}
	port, err := FreePort(cfg.IP)
	if err != nil {
		r.Close()
		return nil, err
	}
	r.sbc = netip.AddrPortFrom(ip, uint16(port))
	yaml := CCSBCYAML(cfg, r.sbc, CCSBCPeers{
		Caller: r.caller.Addr(), Callee: r.callee.Addr(),
		CallerSRTP: mode.srtpA(), CalleeSRTP: mode.srtpB(),
		CallerPrint: Fingerprint(callerCert), CalleePrint: Fingerprint(calleeCert),
	})
	if r.proc, err = StartCCSBC(cfg, yaml, 1); err != nil {
		r.Close()
		if mode != RTPtoRTP {
			return nil, &ErrNotAvailable{Reason: "ccsbc refused the SRTP configuration: " + firstLine(err.Error())}
		}
		return nil, err
	}
	return r, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	lines := strings.Split(s, "\n")
	for _, l := range lines[1:] {
		if strings.Contains(l, "ccsbc:") || strings.Contains(l, `"level":"error"`) {
			return strings.TrimSpace(lines[0] + " " + l)
		}
	}
	return lines[0]
}

func mustCert() tls.Certificate {
	c, err := SelfSigned()
	if err != nil {
		panic(err)
	}
	return c
}

// answer is the callee's side of call i: the From user ccsbc carries over
// ("load<i>") tells which call an INVITE belongs to.
func (r *CCSBCRelay) answer(fromUser string, offer []byte) ([]byte, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(fromUser, "load"))
	if err != nil {
		return nil, fmt.Errorf("unknown caller %q", fromUser)
	}
	r.mu.Lock()
	f := r.pending[i]
	r.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("no call %d pending", i)
	}
	toB, err := ParseSDP(offer)
	if err != nil {
		return nil, err
	}
	ans, err := f(toB)
	if err != nil {
		return nil, err
	}
	return ans.Marshal(uint64(i) + 1), nil
}

// Name implements Relay.
func (r *CCSBCRelay) Name() string { return "ccsbc" }

// PID implements Relay.
func (r *CCSBCRelay) PID() int { return r.proc.PID() }

// Process is the ccsbc process.
func (r *CCSBCRelay) Process() *Process { return r.proc }

// Setup implements Relay: the caller's INVITE through ccsbc, answered by
// the callee.
func (r *CCSBCRelay) Setup(ctx context.Context, i int, offer SDP, answer func(SDP) (SDP, error)) (SDP, error) {
	var cbMu sync.Mutex // the callback runs in the callee's goroutine
	var cbErr error
	r.mu.Lock()
	r.pending[i] = func(toB SDP) (SDP, error) {
		a, err := answer(toB)
		cbMu.Lock()
		cbErr = err
		cbMu.Unlock()
		return a, err
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pending, i)
		r.mu.Unlock()
	}()
	d, err := r.caller.Invite(ctx, r.sbc, "1000", fmt.Sprintf("load%d", i), offer.Marshal(uint64(i)+1))
	if err != nil {
		cbMu.Lock()
		defer cbMu.Unlock()
		if cbErr != nil {
			return SDP{}, cbErr
		}
		var st *ErrStatus
		if r.mode != RTPtoRTP && errors.As(err, &st) {
			return SDP{}, &ErrNotAvailable{Reason: "ccsbc answered the SRTP offer " + st.Error()}
		}
		return SDP{}, err
	}
	r.mu.Lock()
	r.dialogs[i] = d
	r.mu.Unlock()
	return ParseSDP(d.Answer)
}

// Teardown implements Relay: the caller hangs up.
func (r *CCSBCRelay) Teardown(ctx context.Context, i int) error {
	r.mu.Lock()
	d := r.dialogs[i]
	delete(r.dialogs, i)
	r.mu.Unlock()
	if d == nil {
		return nil
	}
	return r.caller.Bye(ctx, d)
}

// Close implements Relay.
func (r *CCSBCRelay) Close() error {
	if r.proc != nil {
		r.proc.Stop(10 * time.Second)
	}
	if r.caller != nil {
		r.caller.Close()
	}
	if r.callee != nil {
		r.callee.Close()
	}
	return nil
}
