package load

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// SignalingConfig configures a calls-per-second or long-hold run through
// ccsbc: SIPp (UDP, TCP) or this package's sipgo client (TLS) as the
// caller, SIPp or the sipgo callee as the callee. No media flows; ccsbc
// still allocates and binds its media ports for every call.
type SignalingConfig struct {
	Transport string        // udp, tcp or tls
	Rate      int           // calls per second
	Calls     int           // calls placed in all
	Hold      time.Duration // from ACK to BYE
	// Limit bounds the calls up at once (SIPp -l); default 2×Rate×Hold +
	// Rate, at least 100.
	Limit int
	// SampleAt, if not zero, is when (after the first call) ccsbc's memory
	// is read as "at full load": the long-hold run sets it to after the
	// ramp.
	SampleAt time.Duration
	Timeout  time.Duration // bound on the whole run; default calls/rate + hold + 60s
	CCSBC    CCSBCConfig
	Dir      string
	Log      func(format string, args ...any)
}

// SignalingResult is one signaling run.
type SignalingResult struct {
	Tool       string // "sipp" or "sipgo"
	Transport  string
	Rate       int
	Calls      int // placed
	Successful int
	Failed     int
	// Elapsed is from the first INVITE to the last call's end.
	Elapsed time.Duration
	// CPS is the rate the calls actually started at (calls / time to place
	// them).
	CPS float64
	// SetupP50, SetupP99: INVITE to 200 (sipgo client only).
	SetupP50, SetupP99 time.Duration
	CCSBCCPU           time.Duration // during the run
	CPUPerCall         time.Duration
	RSSIdle            int64 // before the first call
	RSSPeak            int64 // VmHWM at the end
	RSSAtSample        int64 // at SampleAt
	UpAtSample         int   // calls up at SampleAt (ccsbc's view: start - end events)
	FirstError         string
	Err                string // not run ("not available: ...")
}

func (c *SignalingConfig) defaults() error {
	if c.Rate <= 0 || c.Calls <= 0 {
		return errors.New("load: signaling run needs a rate and a call count")
	}
	if c.Limit == 0 {
		c.Limit = max(100, int(2*float64(c.Rate)*c.Hold.Seconds())+c.Rate)
	}
	if c.Timeout == 0 {
		c.Timeout = time.Duration(float64(c.Calls)/float64(c.Rate)*float64(time.Second)) + c.Hold + 60*time.Second
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	if c.Dir == "" {
		return errors.New("load: no directory")
	}
	cc := &c.CCSBC
	cc.Dir = c.Dir
	cc.Transport = c.Transport
	if cc.PortMin == 0 {
		cc.PortMin, cc.PortMax = 6000, 39999
	}
	return cc.defaults(RTPtoRTP)
}

// scenarioPath is a SIPp scenario of test/load/scenarios.
func scenarioPath(name string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "test", "load", "scenarios", name), nil
}

// SIPpAvailable reports why SIPp cannot run here, or nil.
func SIPpAvailable() error {
	if _, err := exec.LookPath("sipp"); err != nil {
		return &ErrNotAvailable{Reason: "sipp is not installed (apt-get install sip-tester)"}
	}
	return nil
}

// RunSignaling runs one signaling load: SIPp over UDP or TCP, the sipgo
// client over TLS.
func RunSignaling(ctx context.Context, cfg SignalingConfig) (SignalingResult, error) {
	if err := cfg.defaults(); err != nil {
		return SignalingResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if cfg.Transport == "tls" {
		return runSipgoLoad(ctx, cfg)
	}
	return runSIPp(ctx, cfg)
}

// ccsbcWatch reads ccsbc's CPU and memory around a run.
type ccsbcWatch struct {
	pid  int
	p0   ProcSample
	idle int64
}

func watch(pid int) ccsbcWatch {
	s, _ := ReadProc(pid)
	return ccsbcWatch{pid: pid, p0: s, idle: s.RSS}
}

func (w ccsbcWatch) finish(r *SignalingResult) {
	// CPU and memory are read when the run is over; the per-call figure
	// needs the call count, which the caller fills in first.
	s, err := ReadProc(w.pid)
	if err != nil {
		return
	}
	r.CCSBCCPU = s.CPU - w.p0.CPU
	r.RSSIdle = w.idle
	if r.Successful > 0 {
		r.CPUPerCall = r.CCSBCCPU / time.Duration(r.Successful)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				r.RSSPeak = kb << 10
			}
		}
	}
}

// callsUp counts the calls ccsbc has started and not ended, from its log.
func callsUp(logPath string) int {
	b, _ := os.ReadFile(logPath)
	s := string(b)
	return strings.Count(s, `"msg":"call start"`) - strings.Count(s, `"msg":"call end"`)
}

func runSIPp(ctx context.Context, cfg SignalingConfig) (res SignalingResult, err error) {
	res = SignalingResult{Tool: "sipp", Transport: cfg.Transport, Rate: cfg.Rate, Calls: cfg.Calls}
	if err := SIPpAvailable(); err != nil {
		res.Err = err.Error()
		return res, nil
	}
	ip := cfg.CCSBC.IP
	ports := make([]int, 5)
	var w ccsbcWatch
	for i := range ports {
		var p int
		var err error
		if i < 3 {
			p, err = FreePort(ip)
		} else {
			p, err = FreePortBlock(ip)
		}
		if err != nil {
			return res, err
		}
		ports[i] = p
	}
	sbcPort, uacPort, uasPort, uacMedia, uasMedia := ports[0], ports[1], ports[2], ports[3], ports[4]
	a := netip.MustParseAddr(ip)
	yaml := CCSBCYAML(cfg.CCSBC, netip.AddrPortFrom(a, uint16(sbcPort)), CCSBCPeers{
		Caller: netip.AddrPortFrom(a, uint16(uacPort)), Callee: netip.AddrPortFrom(a, uint16(uasPort)),
	})
	proc, err := StartCCSBC(cfg.CCSBC, yaml, 1)
	if err != nil {
		return res, err
	}
	defer proc.Stop(20 * time.Second)
	uasScen, err := scenarioPath("uas_load.xml")
	if err != nil {
		return res, err
	}
	uacScen, _ := scenarioPath("uac_load.xml")
	t := "u1"
	if cfg.Transport == "tcp" {
		t = "t1"
	}
	common := []string{"-i", ip, "-t", t, "-buff_size", "4194304", "-nostdin", "-mi", ip,
		"-max_recv_loops", "10000", "-max_sched_loops", "10000"}
	uasArgs := append([]string{"sipp", "-sf", uasScen, "-p", strconv.Itoa(uasPort), "-mp", strconv.Itoa(uasMedia),
		"-trace_err", "-error_file", "uas_err.log"}, common...)
	uas, err := startProcess("sipp-uas", uasArgs, "", cfg.Dir, filepath.Join(cfg.Dir, "sipp-uas.log"), nil)
	if err != nil {
		return res, err
	}
	defer stopSIPp(uas)
	time.Sleep(300 * time.Millisecond)
	w = watch(proc.PID())
	stats := filepath.Join(cfg.Dir, "uac_stats.csv")
	uacArgs := append([]string{"sipp", hostPort(ip, sbcPort), "-sf", uacScen, "-p", strconv.Itoa(uacPort), "-s", "1000",
		"-r", strconv.Itoa(cfg.Rate), "-rp", "1000", "-m", strconv.Itoa(cfg.Calls), "-l", strconv.Itoa(cfg.Limit),
		"-d", strconv.FormatInt(cfg.Hold.Milliseconds(), 10),
		"-timeout", strconv.Itoa(int(cfg.Timeout.Seconds())) + "s", "-timeout_error",
		"-mp", strconv.Itoa(uacMedia), "-trace_stat", "-stf", stats, "-fd", "1", "-trace_err", "-error_file", "uac_err.log"}, common...)
	cfg.Log("sipp %s: %d calls at %d/s, hold %v, through ccsbc", cfg.Transport, cfg.Calls, cfg.Rate, cfg.Hold)
	start := time.Now()
	uac, err := startProcess("sipp-uac", uacArgs, "", cfg.Dir, filepath.Join(cfg.Dir, "sipp-uac.log"), nil)
	if err != nil {
		return res, err
	}
	defer stopSIPp(uac)
	if cfg.SampleAt > 0 {
		select {
		case <-time.After(cfg.SampleAt):
			s, _ := ReadProc(proc.PID())
			res.RSSAtSample = s.RSS
			res.UpAtSample = callsUp(proc.Log)
		case <-ctx.Done():
		}
	}
	select {
	case <-uac.done:
	case <-ctx.Done():
		stopSIPp(uac)
		res.FirstError = "timed out"
	}
	res.Elapsed = time.Since(start)
	defer w.finish(&res)
	st, err := readSIPpStats(stats)
	if err != nil {
		return res, fmt.Errorf("load: SIPp statistics: %w\n%s", err, uac.LogTail(2000))
	}
	res.Successful, res.Failed = st["SuccessfulCall(C)"], st["FailedCall(C)"]
	placed := st["OutgoingCall(C)"]
	if placed > 0 {
		res.Calls = placed
	}
	ramp := time.Duration(float64(res.Calls) / float64(cfg.Rate) * float64(time.Second))
	if el := res.Elapsed - cfg.Hold; el > 0 && el < 2*ramp+10*time.Second {
		ramp = el
	}
	res.CPS = float64(res.Calls) / ramp.Seconds()
	if res.Failed > 0 {
		b, _ := os.ReadFile(filepath.Join(cfg.Dir, "uac_err.log"))
		res.FirstError = firstNonEmpty(string(b))
	}
	return res, nil
}

func hostPort(ip string, port int) string { return ip + ":" + strconv.Itoa(port) }

func firstNonEmpty(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// stopSIPp ends a SIPp run: SIGUSR1 makes it stop placing calls and exit
// once the calls up have ended; SIGTERM then SIGKILL if it does not.
func stopSIPp(p *Process) {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGUSR1)
	if p.Wait(5 * time.Second) {
		return
	}
	p.Stop(3 * time.Second)
}

// readSIPpStats reads the cumulative counters of the last line of a SIPp
// -trace_stat file.
func readSIPpStats(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return nil, errors.New("no statistics written")
	}
	head := strings.Split(lines[0], ";")
	last := strings.Split(lines[len(lines)-1], ";")
	out := map[string]int{}
	for i, h := range head {
		if i < len(last) {
			if n, err := strconv.Atoi(strings.TrimSpace(last[i])); err == nil {
				out[strings.TrimSpace(h)] = n
			}
		}
	}
	return out, nil
}

// runSipgoLoad places calls over TLS with this package's user agents on
// both sides of ccsbc (Debian's SIPp has no TLS).
func runSipgoLoad(ctx context.Context, cfg SignalingConfig) (SignalingResult, error) {
	res := SignalingResult{Tool: "sipgo", Transport: cfg.Transport, Rate: cfg.Rate, Calls: cfg.Calls}
	ip := netip.MustParseAddr(cfg.CCSBC.IP)
	callerCert, calleeCert := mustCert(), mustCert()
	caller, err := NewUA(UAConfig{Transport: cfg.Transport, Addr: netip.AddrPortFrom(ip, 0), Certificate: &callerCert})
	if err != nil {
		return res, err
	}
	defer caller.Close()
	// The callee answers every call with the same SDP: no media flows.
	ans := SDP{Addr: netip.AddrPortFrom(ip, 9)}.Marshal(2)
	callee, err := NewUA(UAConfig{Transport: cfg.Transport, Addr: netip.AddrPortFrom(ip, 0), Certificate: &calleeCert,
		OnInvite: func(string, []byte) ([]byte, error) { return ans, nil }})
	if err != nil {
		return res, err
	}
	defer callee.Close()
	offer := SDP{Addr: netip.AddrPortFrom(ip, 9)}.Marshal(1)
	sbcPort, err := FreePort(cfg.CCSBC.IP)
	if err != nil {
		return res, err
	}
	sbc := netip.AddrPortFrom(ip, uint16(sbcPort))
	yaml := CCSBCYAML(cfg.CCSBC, sbc, CCSBCPeers{Caller: caller.Addr(), Callee: callee.Addr(),
		CallerPrint: Fingerprint(callerCert), CalleePrint: Fingerprint(calleeCert)})
	proc, err := StartCCSBC(cfg.CCSBC, yaml, 1)
	if err != nil {
		return res, err
	}
	defer proc.Stop(20 * time.Second)
	w := watch(proc.PID())
	cfg.Log("sipgo %s: %d calls at %d/s, hold %v, through ccsbc", cfg.Transport, cfg.Calls, cfg.Rate, cfg.Hold)

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	setups := make([]time.Duration, 0, cfg.Calls)
	sem := make(chan struct{}, cfg.Limit)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(cfg.Rate)
	start := time.Now()
	var sampled sync.Once
	placed := 0
	for i := 0; i < cfg.Calls && ctx.Err() == nil; i++ {
		next := start.Add(time.Duration(i) * interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		if cfg.SampleAt > 0 && time.Since(start) >= cfg.SampleAt {
			sampled.Do(func() {
				s, _ := ReadProc(proc.PID())
				res.RSSAtSample, res.UpAtSample = s.RSS, callsUp(proc.Log)
			})
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		placed++
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			fail := func(err error) {
				failed.Add(1)
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("call %d: %w", i, err)
				}
				mu.Unlock()
			}
			cctx, cancel := context.WithTimeout(ctx, cfg.Hold+40*time.Second)
			defer cancel()
			d, err := caller.Invite(cctx, sbc, "1000", fmt.Sprintf("load%d", i), offer)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			setups = append(setups, d.Setup)
			mu.Unlock()
			select {
			case <-time.After(cfg.Hold):
			case <-cctx.Done():
			}
			if err := caller.Bye(cctx, d); err != nil {
				fail(err)
				return
			}
			ok.Add(1)
		}(i)
	}
	ramp := time.Since(start)
	if cfg.SampleAt > 0 {
		if d := cfg.SampleAt - time.Since(start); d > 0 {
			time.Sleep(d)
		}
		sampled.Do(func() {
			s, _ := ReadProc(proc.PID())
			res.RSSAtSample, res.UpAtSample = s.RSS, callsUp(proc.Log)
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Calls, res.Successful, res.Failed = placed, int(ok.Load()), int(failed.Load())
	res.CPS = float64(placed) / ramp.Seconds()
	sort.Slice(setups, func(a, b int) bool { return setups[a] < setups[b] })
	if n := len(setups); n > 0 {
		res.SetupP50, res.SetupP99 = setups[n/2], setups[min(n-1, n*99/100)]
	}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	w.finish(&res)
	return res, nil
}

// FormatSignaling is one result on one line.
func FormatSignaling(r SignalingResult) string {
	if r.Err != "" {
		return fmt.Sprintf("%s %s: %s", r.Tool, r.Transport, r.Err)
	}
	s := fmt.Sprintf("%-5s %-3s %d calls at %d/s: %d ok, %d failed, %.0f cps achieved, %v elapsed | ccsbc cpu %v (%v/call), rss idle %d MiB peak %d MiB",
		r.Tool, r.Transport, r.Calls, r.Rate, r.Successful, r.Failed, r.CPS, r.Elapsed.Round(time.Millisecond),
		r.CCSBCCPU, r.CPUPerCall, r.RSSIdle>>20, r.RSSPeak>>20)
	if r.SetupP50 > 0 {
		s += fmt.Sprintf(" | setup p50 %v p99 %v", round(r.SetupP50), round(r.SetupP99))
	}
	if r.UpAtSample > 0 {
		s += fmt.Sprintf(" | %d calls up: rss %d MiB (%.1f KiB/call)", r.UpAtSample, r.RSSAtSample>>20, float64(r.RSSAtSample-r.RSSIdle)/1024/float64(r.UpAtSample))
	}
	if r.FirstError != "" {
		s += " | first error: " + r.FirstError
	}
	return s
}
