// Command loadgen sets up calls through a media relay (ccsbc by SIP, or
// rtpengine by its ng protocol), runs G.711 media on both legs and prints
// loss, latency, rate and the relay's CPU time per forwarded packet.
//
//	go run ./test/load/cmd/loadgen -relay ccsbc -mode rtp-rtp -calls 500 -measure 10s
//
// Everything stays on 127.0.0.1; the run is bounded by -calls, -warmup,
// -measure and -timeout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ccsbc/ccsbc/test/load"
)

func main() {
	relay := flag.String("relay", "ccsbc", "relay under test: ccsbc, rtpengine, or epollrelay (RTP only: the measuring stick of test/load/analysis.md)")
	mode := flag.String("mode", "rtp-rtp", "rtp-rtp, rtp-srtp or srtp-srtp")
	calls := flag.String("calls", "100", "call counts, comma-separated and increasing: calls are added to reach each, then measured")
	warmup := flag.Duration("warmup", 3*time.Second, "media time before each measurement window")
	measure := flag.Duration("measure", 10*time.Second, "measurement window")
	timeout := flag.Duration("timeout", 10*time.Minute, "bound on the whole run")
	relayCPUs := flag.String("relay-cpus", "", "taskset CPU list for the relay (e.g. 1)")
	genCPUs := flag.String("gen-cpus", "", "CPU list this generator runs on while it measures (e.g. 0)")
	bin := flag.String("ccsbc", "", "ccsbc binary (default: built from this module)")
	transport := flag.String("transport", "", "ccsbc SIP transport: udp, tcp or tls (default udp, tls for SRTP)")
	ports := flag.String("ports", "", "relay media port range lo-hi (default ccsbc 30000-33999, rtpengine 34000-37999)")
	stopOnMiss := flag.Bool("search", false, "stop at the first call count that misses loss < 0.1% and p99 < 20 ms")
	asJSON := flag.Bool("json", false, "print results as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write the generator's own CPU profile to this file")
	traceFile := flag.String("trace", "", "write the generator's execution trace to this file")
	flag.Parse()
	_ = load.RaiseFileLimit(1 << 18)

	m, err := load.ParseMode(*mode)
	if err != nil {
		fatal(err)
	}
	var levels []int
	for _, s := range strings.Split(*calls, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fatal(fmt.Errorf("-calls %q: %v", *calls, err))
		}
		levels = append(levels, n)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, *timeout)
	defer cancel2()

	dir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := load.MediaConfig{
		Relay: *relay, Mode: m, Levels: levels, Warmup: *warmup, Measure: *measure,
		RelayCPUs: *relayCPUs, GenCPUs: *genCPUs, Dir: dir,
		Log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) },
	}
	if *stopOnMiss {
		cfg.Stop = func(r load.MediaResult) bool { return !r.Meets(0.001, 20*time.Millisecond) }
	}
	lo, hi := 0, 0
	if *ports != "" {
		if _, err := fmt.Sscanf(*ports, "%d-%d", &lo, &hi); err != nil {
			fatal(fmt.Errorf("-ports %q: want lo-hi", *ports))
		}
	}
	if *relay == "ccsbc" {
		if *bin == "" {
			if *bin, err = load.BuildCCSBC(dir, false); err != nil {
				fatal(err)
			}
		}
		cfg.CCSBC = load.CCSBCConfig{Binary: *bin, Transport: *transport, PortMin: lo, PortMax: hi}
	} else {
		cfg.Rtpengine = load.RtpengineConfig{PortMin: lo, PortMax: hi}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			fatal(err)
		}
		if err := trace.Start(f); err != nil {
			fatal(err)
		}
		defer trace.Stop()
	}
	res, err := load.RunMedia(ctx, cfg)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		for _, r := range res {
			fmt.Println(load.FormatMedia(r))
		}
	}
	if err != nil {
		pprof.StopCPUProfile()
		trace.Stop()
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}
