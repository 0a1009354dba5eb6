package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// MediaConfig configures RunMedia.
type MediaConfig struct {
	Relay string // "ccsbc", "rtpengine" or "epollrelay" (the measuring stick of analysis.md)
	Mode  Mode
	// Levels are the call counts measured, in increasing order: calls are
	// added to reach each one, then a window is measured. A single run has
	// one level.
	Levels  []int
	Warmup  time.Duration // after the calls of a level are up; default 3s
	Measure time.Duration // the window; default 10s
	// Stop, if not nil, ends the run after a level whose result it
	// rejects (the search for the largest call count that holds).
	Stop func(MediaResult) bool
	// SetupRate bounds the calls set up per second (default 200);
	// SetupConcurrency the calls being set up at once (default 32).
	SetupRate        int
	SetupConcurrency int
	GenIP            string // the generator's media address, default 127.0.0.1
	Sockets          int    // generator sockets per side, default 4
	RelayCPUs        string // taskset CPU list for the relay, "" not pinned
	// GenCPUs pins this process, the generator, to a CPU list for the
	// run; "" not pinned.
	GenCPUs   string
	Dir       string // working directory (logs, configs); default a temporary one
	CCSBC     CCSBCConfig
	Rtpengine RtpengineConfig
	Log       func(format string, args ...any) // progress; default none
}

// MediaResult is one measured level.
type MediaResult struct {
	Relay string
	Mode  Mode
	Calls int // calls up during the window
	// SetupFailed counts calls of this level that could not be set up.
	SetupFailed int
	Duration    time.Duration
	// Sent and Recv are the measured packets, both directions together.
	Sent, Recv uint64
	Loss       float64
	P50, P99   time.Duration
	Max        time.Duration
	TargetPPS  float64 // what the flows should send: calls × 2 × 50
	SentPPS    float64 // what the generator achieved
	RecvPPS    float64 // what came back through the relay
	SRTPFail   uint64
	Unknown    uint64
	Misrouted  uint64
	DeadFlows  int
	LateTicks  uint64 // generator ticks that started more than 1 ms late
	RelayCPU   time.Duration
	CPUPerPkt  time.Duration // relay CPU time per forwarded packet
	RelayUtil  float64       // relay CPU time / wall time (1 = one core)
	GenUtil    float64       // the generator's own CPU / wall time
	GenCPUs    int           // the CPUs the generator could use (GOMAXPROCS)
	RelayCPUs  int           // the CPUs the relay could use
	RelayRSS   int64
	// OtherUtil is the CPU time (in cores) that neither the relay nor the
	// generator used during the window: other processes, and the kernel's
	// softirq threads. A busy machine shows here.
	OtherUtil float64
	Err       string // why there is no figure ("not available: ...")
}

// Meets reports whether r holds loss and p99 latency limits at the load
// asked: a window in which the generator sent less than 97 % of its rate
// did not put the level's load on the relay, and does not count.
func (r MediaResult) Meets(maxLoss float64, maxP99 time.Duration) bool {
	return r.Err == "" && r.SetupFailed == 0 && r.Recv > 0 && r.Loss < maxLoss && r.P99 < maxP99 && r.DeadFlows == 0 &&
		r.SentPPS >= 0.97*r.TargetPPS
}

// GenSaturated reports whether the generator used 90 % or more of the
// CPUs it had, or fell short of its rate, while the relay used less than
// 90 % of its own: a level missed then is the generator's limit, not the
// relay's.
func (r MediaResult) GenSaturated() bool {
	gen := (r.GenCPUs > 0 && r.GenUtil >= 0.9*float64(r.GenCPUs)) || r.SentPPS < 0.97*r.TargetPPS
	return gen && r.RelayCPUs > 0 && r.RelayUtil < 0.9*float64(r.RelayCPUs)
}

func (c *MediaConfig) defaults() error {
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.Measure == 0 {
		c.Measure = 10 * time.Second
	}
	if c.SetupRate == 0 {
		c.SetupRate = 200
	}
	if c.SetupConcurrency == 0 {
		c.SetupConcurrency = 32
	}
	if c.GenIP == "" {
		c.GenIP = "127.0.0.1"
	}
	if c.Sockets == 0 {
		c.Sockets = 4
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	if len(c.Levels) == 0 {
		return errors.New("load: no call count given")
	}
	if !sort.IntsAreSorted(c.Levels) || c.Levels[0] <= 0 {
		return fmt.Errorf("load: call counts %v must be positive and increasing", c.Levels)
	}
	if _, err := loopback(c.GenIP); err != nil {
		return err
	}
	return nil
}

// RunMedia starts the relay, and for each level sets up calls through it,
// runs their media and measures one window. A relay or mode that cannot run
// gives one result whose Err says why.
func RunMedia(ctx context.Context, cfg MediaConfig) ([]MediaResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "ccsbc-load-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	na := func(err error) ([]MediaResult, error) {
		var nae *ErrNotAvailable
		if errors.As(err, &nae) {
			return []MediaResult{{Relay: cfg.Relay, Mode: cfg.Mode, Calls: cfg.Levels[0], Err: nae.Error()}}, nil
		}
		return nil, err
	}
	if cfg.GenCPUs != "" {
		restore, err := pinThreads(cfg.GenCPUs)
		if err != nil {
			return nil, err
		}
		defer restore()
	}
	maxCalls := cfg.Levels[len(cfg.Levels)-1]
	var relay Relay
	var err error
	switch cfg.Relay {
	case "ccsbc":
		c := cfg.CCSBC
		c.Dir, c.CPUs = cfg.Dir, cfg.RelayCPUs
		relay, err = StartCCSBCRelay(ctx, c, cfg.Mode, maxCalls)
	case "rtpengine":
		c := cfg.Rtpengine
		c.Dir, c.CPUs = cfg.Dir, cfg.RelayCPUs
		relay, err = StartRtpengine(ctx, c, cfg.Mode)
	case "epollrelay":
		relay, err = StartEpollRelay(cfg.Dir, cfg.RelayCPUs, 36000, cfg.Mode)
	default:
		return nil, fmt.Errorf("load: relay %q: want ccsbc, rtpengine or epollrelay", cfg.Relay)
	}
	if err != nil {
		return na(err)
	}
	defer relay.Close()

	gen, err := NewGenerator(netip.MustParseAddr(cfg.GenIP), cfg.Sockets, 8<<20)
	if err != nil {
		return nil, err
	}
	defer gen.Close()

	var results []MediaResult
	up := 0
	var upCalls []int
	defer func() {
		gen.StopSending()
		teardown(relay, upCalls, cfg.SetupConcurrency)
	}()
	for li, level := range cfg.Levels {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		cfg.Log("%s %s: setting up calls %d..%d", cfg.Relay, cfg.Mode, up, level-1)
		ok, failed, firstErr := setupCalls(ctx, relay, gen, cfg, up, level)
		upCalls = append(upCalls, ok...)
		up = level
		if len(upCalls) == 0 {
			if firstErr != nil {
				return na(firstErr)
			}
			return results, errors.New("load: no call could be set up")
		}
		if firstErr != nil {
			cfg.Log("%s %s: %d calls failed to set up; first: %v", cfg.Relay, cfg.Mode, failed, firstErr)
		}
		select {
		case <-time.After(cfg.Warmup):
		case <-ctx.Done():
			return results, ctx.Err()
		}
		r := measure(ctx, relay, gen, cfg, uint32(li%250+1))
		r.Calls, r.SetupFailed = len(upCalls), failed
		r.RelayCPUs = runtime.NumCPU()
		if list, err := parseCPUList(cfg.RelayCPUs); err == nil {
			r.RelayCPUs = len(list)
		}
		cfg.Log("%s %s: %d calls: loss %.4f%% p50 %v p99 %v cpu/pkt %v relay %.0f%% gen %.0f%% (sent %.0f/%.0f pps)",
			cfg.Relay, cfg.Mode, r.Calls, 100*r.Loss, r.P50, r.P99, r.CPUPerPkt, 100*r.RelayUtil, 100*r.GenUtil, r.SentPPS, r.TargetPPS)
		results = append(results, r)
		if cfg.Stop != nil && cfg.Stop(r) {
			break
		}
	}
	return results, nil
}

// setupCalls sets up calls [from, to) at the configured rate.
func setupCalls(ctx context.Context, relay Relay, gen *Generator, cfg MediaConfig, from, to int) (ok []int, failed int, firstErr error) {
	var mu sync.Mutex
	var nFailed atomic.Int32
	sem := make(chan struct{}, cfg.SetupConcurrency)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(cfg.SetupRate)
	next := time.Now()
	for i := from; i < to; i++ {
		if ctx.Err() != nil {
			break
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			err := setupCall(cctx, relay, gen, cfg.Mode, i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				nFailed.Add(1)
				if firstErr == nil {
					firstErr = fmt.Errorf("call %d: %w", i, err)
				}
				return
			}
			ok = append(ok, i)
		}(i)
	}
	wg.Wait()
	return ok, int(nFailed.Load()), firstErr
}

func setupCall(ctx context.Context, relay Relay, gen *Generator, mode Mode, i int) error {
	a, b := gen.CallAddrs(i)
	offer := SDP{Addr: a}
	if mode.srtpA() {
		c, err := NewCrypto(1, SuiteAES80)
		if err != nil {
			return err
		}
		offer.Crypto = []Crypto{c}
	}
	// The callback runs in the callee's goroutine (ccsbc) and what it
	// settles is read here once Setup returns.
	var mu sync.Mutex
	var toB, ans SDP
	var pickB Crypto
	toA, err := relay.Setup(ctx, i, offer, func(tb SDP) (SDP, error) {
		mu.Lock()
		defer mu.Unlock()
		toB = tb
		ans = SDP{Addr: b}
		if !mode.srtpB() {
			if len(tb.Crypto) > 0 {
				return SDP{}, errors.New("the relay offered SRTP toward the callee on a plain RTP leg")
			}
			return ans, nil
		}
		// The callee takes the first suite of its own preference that is
		// offered: AES_CM_128_HMAC_SHA1_80, then _32, then the GCM ones,
		// unless the relay asks otherwise.
		prefs := []CryptoSuite{SuiteAES80, SuiteAES32, SuiteGCM128, SuiteGCM256}
		if cs, ok := relay.(interface{ CalleeSuites() []CryptoSuite }); ok && cs.CalleeSuites() != nil {
			prefs = cs.CalleeSuites()
		}
		for _, suite := range prefs {
			for _, c := range tb.Crypto {
				if c.Suite != suite {
					continue
				}
				mine, err := NewCrypto(c.Tag, c.Suite)
				if err != nil {
					return SDP{}, err
				}
				pickB, ans.Crypto = c, []Crypto{mine}
				return ans, nil
			}
		}
		return SDP{}, &ErrNotAvailable{Reason: fmt.Sprintf("%s offered no usable a=crypto toward the callee (proto %s)", relay.Name(), tb.Proto)}
	})
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	m := CallMedia{RelayA: toA.Addr, RelayB: toB.Addr}
	if mode.srtpA() {
		if len(toA.Crypto) == 0 {
			return &ErrNotAvailable{Reason: fmt.Sprintf("%s answered the caller without a=crypto (proto %s)", relay.Name(), toA.Proto)}
		}
		if m.EncA, err = offer.Crypto[0].Context(); err != nil {
			return err
		}
		if bytes.Equal(toA.Crypto[0].Key, offer.Crypto[0].Key) {
			return errors.New("the relay answered the caller with the caller's own key: SRTP passed through, not re-encrypted")
		}
		if m.DecA, err = toA.Crypto[0].Context(); err != nil {
			return err
		}
	} else if len(toA.Crypto) > 0 {
		return errors.New("the relay answered SRTP on a plain RTP leg")
	}
	if mode.srtpB() {
		if mode.srtpA() && bytes.Equal(pickB.Key, offer.Crypto[0].Key) {
			return errors.New("the relay offered the callee the caller's key: SRTP passed through, not re-encrypted")
		}
		if m.EncB, err = ans.Crypto[0].Context(); err != nil {
			return err
		}
		if m.DecB, err = pickB.Context(); err != nil {
			return err
		}
	}
	return gen.AddCall(i, m)
}

func teardown(relay Relay, calls []int, conc int) {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for _, i := range calls {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = relay.Teardown(ctx, i)
		}(i)
	}
	wg.Wait()
}

// measure runs one window and reads the relay's CPU time around it.
func measure(ctx context.Context, relay Relay, gen *Generator, cfg MediaConfig, epoch uint32) MediaResult {
	r := MediaResult{Relay: cfg.Relay, Mode: cfg.Mode}
	gen.BeginWindow(epoch)
	p0, err0 := ReadProc(relay.PID())
	m0, _ := ReadMachine()
	g0, t0 := SelfCPU(), time.Now()
	select {
	case <-time.After(cfg.Measure):
	case <-ctx.Done():
	}
	p1, err1 := ReadProc(relay.PID())
	m1, _ := ReadMachine()
	g1, t1 := SelfCPU(), time.Now()
	w := gen.EndWindow(300 * time.Millisecond)
	wall := t1.Sub(t0)
	r.Duration = wall
	r.Sent, r.Recv = w.Sent, w.Recv
	r.Loss = w.Loss()
	r.P50, r.P99, r.Max = w.Hist.quantile(0.50), w.Hist.quantile(0.99), w.Hist.max
	r.TargetPPS = float64(w.Flows) * float64(time.Second/packetInterval)
	r.SentPPS = float64(w.Sent) / wall.Seconds()
	r.RecvPPS = float64(w.Recv) / wall.Seconds()
	r.SRTPFail, r.Unknown, r.Misrouted, r.DeadFlows = w.SRTPFail, w.Unknown, w.Misrouted, w.DeadFlows
	r.LateTicks = w.LateTicks
	r.GenUtil = (g1 - g0).Seconds() / wall.Seconds()
	r.GenCPUs = runtime.GOMAXPROCS(0)
	if err := errors.Join(err0, err1); err != nil {
		r.Err = err.Error()
		return r
	}
	r.RelayCPU = p1.CPU - p0.CPU
	r.RelayUtil = r.RelayCPU.Seconds() / wall.Seconds()
	r.RelayRSS = p1.RSS
	r.OtherUtil = max(0, (m1.Busy-m0.Busy).Seconds()/wall.Seconds()-r.RelayUtil-r.GenUtil)
	if w.Recv > 0 {
		r.CPUPerPkt = r.RelayCPU / time.Duration(w.Recv)
	}
	return r
}
