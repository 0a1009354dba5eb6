package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// SuiteConfig configures RunSuite: every figure of issue 5, each measured
// Reps times.
type SuiteConfig struct {
	Reps       int
	MediaCalls int   // calls of the per-packet comparison (500)
	Levels     []int // call counts of the capacity search
	// MediaRelayCPUs and MediaGenCPUs pin the relay and the generator to
	// CPUs of their own in the media phases (comparison and capacity
	// search), so that the figures are the relay's and not the machine's
	// (in production no load generator shares the relay's CPUs); "" runs
	// both unpinned. SIPp and the signaling runs are never pinned.
	MediaRelayCPUs, MediaGenCPUs string
	Warmup                       time.Duration // media
	Measure                      time.Duration // media window of the comparison
	SearchWin                    time.Duration // media window of each search level
	Modes                        []Mode
	CPSRate                      int           // calls per second (1000)
	CPSFor                       time.Duration // how long the rate is held (60s)
	CPSHold                      time.Duration // call duration in the cps runs
	Transports                   []string      // cps transports: udp, tcp, tls
	HoldCalls                    int           // concurrent calls of the long hold
	HoldRate                     int           // their arrival rate
	CCSBC                        string        // binary
	Dir                          string
	Log                          func(format string, args ...any) `json:"-"`
	Command                      string                           // the command line, for the report
	// Phases run: "media", "search", "cps", "hold"; empty: all.
	Phases []string
	// HoldLimitedBy says why the long hold held fewer calls than asked.
	HoldLimitedBy string
}

func (c SuiteConfig) runs(phase string) bool {
	if len(c.Phases) == 0 {
		return true
	}
	for _, p := range c.Phases {
		if p == phase {
			return true
		}
	}
	return false
}

// DefaultSuite is the suite of issue 5 as README documents it.
func DefaultSuite() SuiteConfig {
	c := SuiteConfig{
		Reps: 3, MediaCalls: 500,
		Levels: []int{300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1600, 1800, 2000, 2500, 3000},
		Warmup: 3 * time.Second, Measure: 10 * time.Second, SearchWin: 5 * time.Second,
		Modes:   Modes,
		CPSRate: 1000, CPSFor: 60 * time.Second, CPSHold: time.Second,
		Transports: []string{"udp", "tcp", "tls"},
		HoldCalls:  8000, HoldRate: 500,
	}
	if runtime.NumCPU() >= 2 {
		c.MediaRelayCPUs, c.MediaGenCPUs = "1", "0"
	}
	return c
}

// Suite is everything RunSuite measured.
type Suite struct {
	Config   SuiteConfig
	Start    time.Time
	Elapsed  time.Duration
	Machine  []string
	Media    map[Mode]map[string][]MediaResult   // relay -> one result per repetition
	Search   map[Mode]map[string][][]MediaResult // relay -> per repetition, per level
	CPS      map[string][]SignalingResult        // transport -> repetitions
	Hold     []SignalingResult
	Problems []string
}

// media port ranges of the suite: apart from each other, from the lab's
// (5060-5096, 40000-40999) and below the kernel's ephemeral ports.
const (
	ccsbcMediaLo, ccsbcMediaHi = 8000, 19999  // 3000 calls
	rtpeMediaLo, rtpeMediaHi   = 20000, 31999 // 3000 calls
)

// RunSuite runs the suite's phases. With prev, the phases not run keep
// prev's results (a phase measured again, the rest as it was).
func RunSuite(ctx context.Context, cfg SuiteConfig, prev *Suite) *Suite {
	s := &Suite{Config: cfg, Start: time.Now(), Machine: machineFacts(cfg.CCSBC),
		Media: map[Mode]map[string][]MediaResult{}, Search: map[Mode]map[string][][]MediaResult{}, CPS: map[string][]SignalingResult{}}
	if prev != nil {
		s.Media, s.Search, s.CPS, s.Hold, s.Problems = prev.Media, prev.Search, prev.CPS, prev.Hold, prev.Problems
		s.Start, s.Machine = prev.Start, prev.Machine
		keep := prev.Config
		keep.Phases, keep.Command = cfg.Phases, prev.Config.Command+"; then "+cfg.Command
		if cfg.runs("hold") {
			keep.HoldCalls, keep.HoldRate = cfg.HoldCalls, cfg.HoldRate
		}
		// A phase measured again is described by the settings it ran with.
		if cfg.runs("media") || cfg.runs("search") {
			keep.MediaRelayCPUs, keep.MediaGenCPUs, keep.Warmup = cfg.MediaRelayCPUs, cfg.MediaGenCPUs, cfg.Warmup
		}
		if cfg.runs("media") {
			keep.MediaCalls, keep.Measure = cfg.MediaCalls, cfg.Measure
		}
		if cfg.runs("search") {
			keep.Levels, keep.SearchWin = cfg.Levels, cfg.SearchWin
		}
		if cfg.runs("cps") {
			keep.CPSRate, keep.CPSFor, keep.CPSHold, keep.Transports = cfg.CPSRate, cfg.CPSFor, cfg.CPSHold, cfg.Transports
		}
		s.Config = keep
		cfg.Reps = keep.Reps
	}
	started, base := time.Now(), time.Duration(0)
	if prev != nil {
		base = prev.Elapsed
	}
	defer func() { s.Elapsed = base + time.Since(started) }()
	if cfg.runs("media") {
		s.Media = map[Mode]map[string][]MediaResult{}
	}
	if cfg.runs("search") {
		s.Search = map[Mode]map[string][][]MediaResult{}
	}
	if cfg.runs("cps") {
		s.CPS = map[string][]SignalingResult{}
	}
	if cfg.runs("hold") {
		s.Hold = nil
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	problem := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.Problems = append(s.Problems, msg)
		logf("PROBLEM: %s", msg)
	}
	mediaCfg := func(relay string, mode Mode, levels []int, win time.Duration, dir string) MediaConfig {
		c := MediaConfig{Relay: relay, Mode: mode, Levels: levels, Warmup: cfg.Warmup, Measure: win, Dir: dir, Log: logf,
			CCSBC:     CCSBCConfig{Binary: cfg.CCSBC, PortMin: ccsbcMediaLo, PortMax: ccsbcMediaHi},
			Rtpengine: RtpengineConfig{PortMin: rtpeMediaLo, PortMax: rtpeMediaHi},
			RelayCPUs: cfg.MediaRelayCPUs, GenCPUs: cfg.MediaGenCPUs}
		return c
	}
	relays := []string{"ccsbc", "rtpengine"}
	for _, mode := range cfg.Modes {
		if !cfg.runs("media") && !cfg.runs("search") {
			break
		}
		if cfg.runs("media") {
			s.Media[mode] = map[string][]MediaResult{}
		}
		if cfg.runs("search") {
			s.Search[mode] = map[string][][]MediaResult{}
		}
		for rep := range cfg.Reps {
			if !cfg.runs("media") {
				break
			}
			rs := relays
			if mode == RTPtoRTP {
				// The measuring stick of analysis.md: what the design it
				// suggests costs, RTP only.
				rs = append(rs[:len(rs):len(rs)], "epollrelay")
			}
			for _, relay := range rs { // interleaved, so that drift hits all
				if ctx.Err() != nil {
					return s
				}
				dir := mkdir(cfg.Dir, fmt.Sprintf("media-%s-%s-%d", string(mode), relay, rep))
				res, err := RunMedia(ctx, mediaCfg(relay, mode, []int{cfg.MediaCalls}, cfg.Measure, dir))
				if err != nil {
					problem("%s %s at %d calls, run %d: %v", relay, mode, cfg.MediaCalls, rep+1, err)
					continue
				}
				s.Media[mode][relay] = append(s.Media[mode][relay], res...)
			}
		}
		for rep := range cfg.Reps {
			if !cfg.runs("search") {
				break
			}
			for _, relay := range relays {
				if ctx.Err() != nil {
					return s
				}
				if r := s.Media[mode][relay]; len(r) > 0 && r[0].Err != "" {
					continue // not available: no search
				}
				c := mediaCfg(relay, mode, cfg.Levels, cfg.SearchWin, mkdir(cfg.Dir, fmt.Sprintf("search-%s-%s-%d", string(mode), relay, rep)))
				c.Warmup = 2 * time.Second
				c.Stop = func(r MediaResult) bool { return !r.Meets(0.001, 20*time.Millisecond) }
				res, err := RunMedia(ctx, c)
				if err != nil {
					problem("%s %s capacity search, run %d: %v", relay, mode, rep+1, err)
				}
				s.Search[mode][relay] = append(s.Search[mode][relay], res)
			}
		}
	}
	calls := int(float64(cfg.CPSRate) * cfg.CPSFor.Seconds())
	for rep := range cfg.Reps {
		if !cfg.runs("cps") {
			break
		}
		for _, t := range cfg.Transports {
			if ctx.Err() != nil {
				return s
			}
			r, err := RunSignaling(ctx, SignalingConfig{Transport: t, Rate: cfg.CPSRate, Calls: calls, Hold: cfg.CPSHold,
				Dir: mkdir(cfg.Dir, fmt.Sprintf("cps-%s-%d", t, rep)), Log: logf, CCSBC: CCSBCConfig{Binary: cfg.CCSBC, LogLevel: "info"}})
			if err != nil {
				problem("cps over %s, run %d: %v", t, rep+1, err)
				continue
			}
			logf("%s", FormatSignaling(r))
			s.CPS[t] = append(s.CPS[t], r)
		}
	}
	// 4 descriptors per call (media sockets) and some to spare: past the
	// open-file limit ccsbc refuses calls, which would measure the limit.
	if lim := fileLimit(); lim > 0 && cfg.HoldCalls > (lim-500)/4 {
		logf("long hold: %d calls asked, the open-file limit %d allows %d", cfg.HoldCalls, lim, (lim-500)/4)
		cfg.HoldCalls = int(lim-500) / 4
		s.Config.HoldCalls = cfg.HoldCalls
		s.Config.HoldLimitedBy = fmt.Sprintf("the open-file limit (%d, not raisable here)", lim)
	}
	ramp := time.Duration(float64(cfg.HoldCalls) / float64(cfg.HoldRate) * float64(time.Second))
	for rep := range cfg.Reps {
		if !cfg.runs("hold") {
			break
		}
		if ctx.Err() != nil {
			return s
		}
		r, err := RunSignaling(ctx, SignalingConfig{Transport: "udp", Rate: cfg.HoldRate, Calls: cfg.HoldCalls,
			Hold: ramp + 15*time.Second, SampleAt: ramp + 5*time.Second, Limit: cfg.HoldCalls + 100,
			Dir: mkdir(cfg.Dir, fmt.Sprintf("hold-%d", rep)), Log: logf,
			CCSBC: CCSBCConfig{Binary: cfg.CCSBC, PortMin: 6000, PortMax: 39999}})
		if err != nil {
			problem("long hold, run %d: %v", rep+1, err)
			continue
		}
		logf("%s", FormatSignaling(r))
		s.Hold = append(s.Hold, r)
	}
	return s
}

// fileLimit is this process's open-file limit, which the relays inherit.
func fileLimit() int {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return int(rl.Cur)
}

func mkdir(base, name string) string {
	d := filepath.Join(base, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}

// machineFacts describes the machine and the software measured.
func machineFacts(ccsbc string) []string {
	var out []string
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				out = append(out, "CPU: "+strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))+fmt.Sprintf(", %d logical CPUs", runtime.NumCPU()))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		out = append(out, "Memory: "+strings.Join(strings.Fields(l)[1:], " "))
	}
	if b, err := exec.Command("uname", "-srm").Output(); err == nil {
		out = append(out, "Kernel: "+strings.TrimSpace(string(b)))
	}
	out = append(out, "Go: "+runtime.Version())
	if root, err := ModuleRoot(); err == nil {
		if b, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
			rev := strings.TrimSpace(string(b))
			if st, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); len(bytes.TrimSpace(st)) > 0 {
				rev += " with uncommitted changes"
			}
			out = append(out, "ccsbc: commit "+rev)
		}
	}
	if b, err := exec.Command("rtpengine", "--version").CombinedOutput(); err == nil {
		out = append(out, "rtpengine: "+strings.TrimSpace(string(b))+" (Debian rtpengine-daemon, userspace forwarding, table = -1)")
	}
	// sipp -v exits non-zero after printing its version.
	if b, _ := exec.Command("sipp", "-v").CombinedOutput(); len(b) > 0 {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "SIPp v") {
				out = append(out, "SIPp: "+strings.TrimSpace(l))
				break
			}
		}
	}
	return out
}

// maxMeeting is the largest level of one search run that met the limits,
// counted only up to the first miss; 0 if the first missed.
func maxMeeting(run []MediaResult) float64 {
	best := 0
	for _, r := range run {
		if !r.Meets(0.001, 20*time.Millisecond) {
			break
		}
		best = r.Calls
	}
	if len(run) == 0 {
		return math.NaN()
	}
	return float64(best)
}

// WriteMarkdown writes the report.
func (s *Suite) WriteMarkdown(w io.Writer, notes string) {
	c := s.Config
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# ccsbc benchmarks\n\n")
	p("Measured by `%s` on %s (the suite took %v).\n", c.Command, s.Start.UTC().Format("2006-01-02 15:04 MST"), s.Elapsed.Round(time.Second))
	p("Regenerate it with `go run ./test/load/cmd/bench -out BENCHMARKS.md` (see README, *Benchmarks*);\n")
	p("the tools are in `test/load`.\n\n")
	p("## Machine\n\n")
	for _, m := range s.Machine {
		p("- %s\n", m)
	}
	if c.MediaRelayCPUs != "" {
		p("- Everything on loopback (127.0.0.1). In the media runs the relay is pinned to CPU %s and the generator\n  to CPU %s (taskset, sched_setaffinity); SIPp, the signaling client and ccsbc in the signaling runs are unpinned.\n", c.MediaRelayCPUs, c.MediaGenCPUs)
	} else {
		p("- Everything on loopback (127.0.0.1); relays and load tools unpinned, sharing the CPUs.\n")
	}
	p("\nEach figure is the median of %d runs, with the lowest and highest in parentheses. Media\n", c.Reps)
	p("figures are measured by one tool, in one run, on ccsbc and on rtpengine alternately;\n")
	p("*ratio* is ccsbc's figure over rtpengine's. *Other CPU* is the CPU time (in cores) used\n")
	p("during the window by anything but the relay and the generator (other processes, softirq\n")
	p("threads): a busy machine shows there.\n\n")

	p("## Targets\n\n| target | measured | verdict |\n|---|---|---|\n")
	for _, mode := range c.Modes {
		cc, re := spreadMedia(s.Media[mode]["ccsbc"], cpuPerPkt), spreadMedia(s.Media[mode]["rtpengine"], cpuPerPkt)
		target := fmt.Sprintf("%s: CPU per packet ≤ ⅓ of rtpengine's at %d calls, loss < 0.1 %%, p99 < 5 ms", mode, c.MediaCalls)
		if na := notAvailable(s.Media[mode]); na != "" {
			p("| %s | %s | not measured |\n", target, na)
			continue
		}
		if !cc.OK() || !re.OK() {
			p("| %s | — | not measured |\n", target)
			continue
		}
		ratio := cc.Median / re.Median
		loss, p99 := spreadMedia(s.Media[mode]["ccsbc"], lossPct), spreadMedia(s.Media[mode]["ccsbc"], p99ms)
		ok := ratio <= 1.0/3 && loss.Median < 0.1 && p99.Median < 5
		p("| %s | %.2f µs vs %.2f µs: ratio %.2f; loss %.3f %%, p99 %.2f ms | %s |\n", target, cc.Median, re.Median, ratio, loss.Median, p99.Median,
			verdict(ok, fmt.Sprintf("missed: CPU ratio %.2f is %.1f× the ⅓ allowed%s", ratio, ratio*3, latencyMiss(loss.Median, p99.Median, 5))))
	}
	for _, mode := range c.Modes {
		cc, re := spreadSearch(s.Search[mode]["ccsbc"]), spreadSearch(s.Search[mode]["rtpengine"])
		target := fmt.Sprintf("%s: largest call count with loss < 0.1 %% and p99 < 20 ms ≥ 2× rtpengine's", mode)
		if !cc.OK() || !re.OK() || re.Median == 0 {
			p("| %s | — | not measured |\n", target)
			continue
		}
		ratio := cc.Median / re.Median
		atLeast := ""
		if genBound(s.Search[mode]["ccsbc"]) {
			atLeast = "≥ " // ccsbc's figure is the generator's limit
		}
		p("| %s | %s%.0f vs %.0f calls: ratio %s%.2f | %s |\n", target, atLeast, cc.Median, re.Median, atLeast, ratio,
			verdict(ratio >= 2, fmt.Sprintf("missed: %s%.2f× of the 2× asked", atLeast, ratio)))
	}
	for _, t := range []string{"udp", "tls"} {
		rs := s.CPS[t]
		target := fmt.Sprintf("%d calls/s for %v over %s, 0 failed", c.CPSRate, c.CPSFor, strings.ToUpper(t))
		if len(rs) == 0 {
			p("| %s | — | not measured |\n", target)
			continue
		}
		failed := spreadSig(rs, func(r SignalingResult) float64 { return float64(r.Failed) })
		cps := spreadSig(rs, func(r SignalingResult) float64 { return r.CPS })
		worst := 0
		for _, r := range rs {
			worst = max(worst, r.Failed)
		}
		ok := worst == 0 && cps.Min >= 0.97*float64(c.CPSRate)
		p("| %s | %s calls/s achieved, failed calls %s | %s |\n", target, cps.format(fmtInt), failed.format(fmtInt),
			verdict(ok, fmt.Sprintf("missed: worst run %d failed, slowest %.0f calls/s", worst, cps.Min)))
	}
	if len(s.Hold) > 0 {
		up := spreadSig(s.Hold, func(r SignalingResult) float64 { return float64(r.UpAtSample) })
		rss := spreadSig(s.Hold, func(r SignalingResult) float64 { return float64(r.RSSAtSample) / (1 << 20) })
		per := spreadSig(s.Hold, perCallKiB)
		est := per.Median * 20000 / 1024
		p("| 20,000 concurrent calls held, RSS < 2 GiB | %s calls held: %s RSS, %s per call → %.0f MiB for 20,000 | %s |\n",
			up.format(fmtInt), rss.format(fmtMiB), per.format(fmtKiB), est,
			verdict(up.Min >= 20000 && rss.Max < 2048, holdMiss(c, est)))
	}

	p("\n## Media: CPU time per forwarded packet at %d calls\n\n", c.MediaCalls)
	p("G.711 µ-law, 20 ms (50 packets/s each way per call: %d packets/s through the relay).\n", 100*c.MediaCalls)
	p("CPU time is utime + stime of the relay process from /proc/PID/stat over a %v window,\n", c.Measure)
	p("divided by the packets it forwarded in that window. *epollrelay* is not a product: it is\n")
	p("`test/load/cmd/epollrelay`, the smallest Go relay built as *What the profiles show* suggests\n")
	p("ccsbc's media path could be, measured to put a number on that suggestion.\n\n")
	p("| mode | relay | CPU/packet | ratio | relay CPU (cores) | loss | p50 | p99 | achieved pkt/s | SRTP auth failures | other CPU |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, mode := range c.Modes {
		re := spreadMedia(s.Media[mode]["rtpengine"], cpuPerPkt)
		for _, relay := range []string{"ccsbc", "rtpengine", "epollrelay"} {
			rs := s.Media[mode][relay]
			if len(rs) == 0 && relay == "epollrelay" {
				continue
			}
			if len(rs) > 0 && rs[0].Err != "" {
				p("| %s | %s | %s | | | | | | | | |\n", mode, relay, rs[0].Err)
				continue
			}
			cpu := spreadMedia(rs, cpuPerPkt)
			ratio := "1"
			if relay != "rtpengine" {
				ratio = ratioStr(cpu, re)
			}
			name := relay
			if relay == "epollrelay" {
				name = "epollrelay (reference, see below)"
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mode, name, cpu.format(fmtMicros), ratio,
				spreadMedia(rs, func(r MediaResult) float64 { return r.RelayUtil }).format(func(x float64) string { return fmt.Sprintf("%.2f", x) }),
				spreadMedia(rs, lossPct).format(fmtPct), spreadMedia(rs, p50ms).format(fmtMillis), spreadMedia(rs, p99ms).format(fmtMillis),
				spreadMedia(rs, func(r MediaResult) float64 { return r.RecvPPS }).format(fmtInt),
				spreadMedia(rs, func(r MediaResult) float64 { return float64(r.SRTPFail) }).format(fmtInt),
				spreadMedia(rs, func(r MediaResult) float64 { return r.OtherUtil }).format(func(x float64) string { return fmt.Sprintf("%.2f", x) }))
		}
	}

	p("\n## Media: capacity\n\n")
	p("Calls are added in steps (%s); after each step the media runs %v before a %v window.\n", joinInts(c.Levels), 2*time.Second, c.SearchWin)
	p("The figure is the last step that still had loss < 0.1 %% and p99 < 20 ms, before the first\n")
	if c.MediaRelayCPUs != "" {
		p("that did not, or whose rate the generator could not send. The relay runs on CPU %s and the\n", c.MediaRelayCPUs)
		p("generator on CPU %s, so the figure is what one core of relay carries. Where the generator\n", c.MediaGenCPUs)
		p("used 90 %% or more of its CPU at the step missed, the miss may be the generator's: the figure\n")
		p("is then a lower bound, written ≥.\n\n")
	} else {
		p("that did not. The generator runs on the same CPUs, so this is the capacity of relay\n")
		p("and generator together; both relays face the same generator.\n\n")
	}
	p("| mode | relay | calls | ratio | first step missed (median run) |\n|---|---|---|---|---|\n")
	for _, mode := range c.Modes {
		re := spreadSearch(s.Search[mode]["rtpengine"])
		for _, relay := range []string{"ccsbc", "rtpengine"} {
			runs := s.Search[mode][relay]
			if len(runs) == 0 {
				p("| %s | %s | — | | |\n", mode, relay)
				continue
			}
			sp := spreadSearch(runs)
			ratio := "1"
			if relay == "ccsbc" {
				ratio = ratioStr(sp, re)
				if genBound(s.Search[mode]["ccsbc"]) && ratio != "—" {
					ratio = "≥ " + ratio
				}
			}
			calls := sp.format(fmtInt)
			if genBound(runs) {
				calls = "≥ " + calls
			}
			p("| %s | %s | %s | %s | %s |\n", mode, relay, calls, ratio, firstMiss(runs))
		}
	}

	p("\n## Signaling: calls per second\n\n")
	p("%d calls at %d/s (%v), each held %v, through ccsbc (model 1 over UDP and TCP, TLS on both legs\n", int(float64(c.CPSRate)*c.CPSFor.Seconds()), c.CPSRate, c.CPSFor, c.CPSHold)
	p("for TLS). UDP and TCP: SIPp UAC → ccsbc → SIPp UAS (`test/load/scenarios`). TLS: Debian's SIPp\n")
	p("has no TLS, so this module's sipgo client and server (`test/load/sipua.go`) play both parts.\n")
	p("No media flows; ccsbc still binds 4 media ports per call.\n\n")
	p("| transport | tool | calls/s achieved | failed | ccsbc CPU per call | ccsbc peak RSS | setup p99 |\n|---|---|---|---|---|---|---|\n")
	for _, t := range c.Transports {
		rs := s.CPS[t]
		if len(rs) == 0 {
			p("| %s | — | not measured | | | | |\n", t)
			continue
		}
		if rs[0].Err != "" {
			p("| %s | %s | %s | | | | |\n", t, rs[0].Tool, rs[0].Err)
			continue
		}
		setup := "—"
		if rs[0].SetupP99 > 0 {
			setup = spreadSig(rs, func(r SignalingResult) float64 { return ms(r.SetupP99) }).format(fmtMillis)
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", t, rs[0].Tool,
			spreadSig(rs, func(r SignalingResult) float64 { return r.CPS }).format(fmtInt),
			spreadSig(rs, func(r SignalingResult) float64 { return float64(r.Failed) }).format(fmtInt),
			spreadSig(rs, func(r SignalingResult) float64 { return us(r.CPUPerCall) }).format(fmtMicros),
			spreadSig(rs, func(r SignalingResult) float64 { return float64(r.RSSPeak) / (1 << 20) }).format(fmtMiB), setup)
		for _, r := range rs {
			if r.FirstError != "" {
				p("\nFirst error of a %s run: `%s`\n", t, r.FirstError)
				break
			}
		}
	}

	p("\n## Signaling: concurrent calls held\n\n")
	if len(s.Hold) == 0 {
		p("Not measured.\n")
	} else {
		h := s.Hold[0]
		p("SIPp over UDP places %d calls at %d/s and holds each until all are up; ccsbc's resident\n", c.HoldCalls, c.HoldRate)
		p("memory is read 5 s after the last call started.")
		if c.HoldLimitedBy != "" {
			p(" The number of calls is bounded by %s: ccsbc holds 4 media\nsockets per call.", c.HoldLimitedBy)
		}
		p("\n\n")
		p("| calls up | ccsbc RSS idle | ccsbc RSS with the calls up | per call | failed |\n|---|---|---|---|---|\n")
		p("| %s | %s | %s | %s | %s |\n",
			spreadSig(s.Hold, func(r SignalingResult) float64 { return float64(r.UpAtSample) }).format(fmtInt),
			spreadSig(s.Hold, func(r SignalingResult) float64 { return float64(r.RSSIdle) / (1 << 20) }).format(fmtMiB),
			spreadSig(s.Hold, func(r SignalingResult) float64 { return float64(r.RSSAtSample) / (1 << 20) }).format(fmtMiB),
			spreadSig(s.Hold, perCallKiB).format(fmtKiB),
			spreadSig(s.Hold, func(r SignalingResult) float64 { return float64(r.Failed) }).format(fmtInt))
		_ = h
	}
	if len(s.Problems) > 0 {
		p("\n## Runs that failed\n\n")
		for _, pr := range s.Problems {
			p("- %s\n", pr)
		}
	}
	if notes != "" {
		p("\n%s\n", strings.TrimSpace(notes))
	}
}

func cpuPerPkt(r MediaResult) float64 { return us(r.CPUPerPkt) }
func lossPct(r MediaResult) float64   { return 100 * r.Loss }
func p50ms(r MediaResult) float64     { return ms(r.P50) }
func p99ms(r MediaResult) float64     { return ms(r.P99) }

func perCallKiB(r SignalingResult) float64 {
	if r.UpAtSample <= 0 {
		return math.NaN()
	}
	return float64(r.RSSAtSample-r.RSSIdle) / 1024 / float64(r.UpAtSample)
}

func spreadMedia(rs []MediaResult, f func(MediaResult) float64) Spread {
	var xs []float64
	for _, r := range rs {
		if r.Err == "" && r.Recv > 0 {
			xs = append(xs, f(r))
		}
	}
	return spreadOf(xs)
}

func spreadSig(rs []SignalingResult, f func(SignalingResult) float64) Spread {
	var xs []float64
	for _, r := range rs {
		if r.Err == "" {
			xs = append(xs, f(r))
		}
	}
	return spreadOf(xs)
}

func spreadSearch(runs [][]MediaResult) Spread {
	var xs []float64
	for _, run := range runs {
		if len(run) > 0 && run[0].Err == "" {
			xs = append(xs, maxMeeting(run))
		}
	}
	return spreadOf(xs)
}

func notAvailable(m map[string][]MediaResult) string {
	for _, relay := range []string{"ccsbc", "rtpengine"} {
		if rs := m[relay]; len(rs) > 0 && rs[0].Err != "" {
			return relay + ": " + rs[0].Err
		}
	}
	return ""
}

// firstMissOf is the first level of a search run that missed the limits.
func firstMissOf(run []MediaResult) (MediaResult, bool) {
	for _, r := range run {
		if !r.Meets(0.001, 20*time.Millisecond) {
			return r, true
		}
	}
	return MediaResult{}, false
}

// genBound reports whether most search runs stopped at a level where the
// generator, not only the relay, was saturated.
func genBound(runs [][]MediaResult) bool {
	n := 0
	for _, run := range runs {
		if r, ok := firstMissOf(run); ok && r.GenSaturated() {
			n++
		}
	}
	return len(runs) > 0 && 2*n > len(runs)
}

// firstMiss describes the first level missed in the median run: the run
// whose figure is the median of the runs' figures.
func firstMiss(runs [][]MediaResult) string {
	var ok [][]MediaResult
	for _, run := range runs {
		if len(run) > 0 && run[0].Err == "" {
			ok = append(ok, run)
		}
	}
	sort.SliceStable(ok, func(i, j int) bool { return maxMeeting(ok[i]) < maxMeeting(ok[j]) })
	if len(ok) == 0 {
		return "—"
	}
	r, missed := firstMissOf(ok[len(ok)/2])
	if !missed {
		return "none up to the last step"
	}
	m := fmt.Sprintf("%d calls: loss %.3f %%, p99 %.1f ms, relay %.2f core", r.Calls, 100*r.Loss, ms(r.P99), r.RelayUtil)
	if r.GenSaturated() {
		m += fmt.Sprintf(", generator saturated (%.2f of %d)", r.GenUtil, r.GenCPUs)
	}
	return m
}

// holdMiss says why the long hold fell short of 20,000 calls.
func holdMiss(c SuiteConfig, estMiB float64) string {
	why := "fewer calls held than asked"
	if c.HoldLimitedBy != "" {
		why = "held only what " + c.HoldLimitedBy + " allows: 20,000 calls need 80,000 open files (4 media sockets each)"
	}
	return fmt.Sprintf("not reached: %s; the ports are there (media.extra_addresses: about 16,000 calls per address); memory extrapolates to %.0f MiB", why, estMiB)
}

func ratioStr(a, b Spread) string {
	if !a.OK() || !b.OK() || b.Median == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a.Median/b.Median)
}

func verdict(ok bool, miss string) string {
	if ok {
		return "met"
	}
	return miss
}

func latencyMiss(lossPct, p99ms, limit float64) string {
	var s []string
	if lossPct >= 0.1 {
		s = append(s, fmt.Sprintf("loss %.3f %%", lossPct))
	}
	if p99ms >= limit {
		s = append(s, fmt.Sprintf("p99 %.1f ms is %.1f× the %.0f ms allowed", p99ms, p99ms/limit, limit))
	}
	if len(s) == 0 {
		return ""
	}
	return "; " + strings.Join(s, ", ")
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
