// Command sigload places calls through ccsbc at a given rate, without
// media: SIPp over UDP or TCP, this module's sipgo client over TLS.
//
//	go run ./test/load/cmd/sigload -transport udp -rate 1000 -calls 60000 -hold 1s
//
// Everything stays on 127.0.0.1; the run is bounded by -calls and -timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ccsbc/ccsbc/test/load"
)

func main() {
	transport := flag.String("transport", "udp", "udp, tcp (SIPp) or tls (sipgo client)")
	rate := flag.Int("rate", 100, "calls per second")
	calls := flag.Int("calls", 1000, "calls in all")
	hold := flag.Duration("hold", time.Second, "call duration (ACK to BYE)")
	sample := flag.Duration("sample-at", 0, "read ccsbc's memory this long after the first call (long-hold runs)")
	timeout := flag.Duration("timeout", 0, "bound on the run (default calls/rate + hold + 60s)")
	bin := flag.String("ccsbc", "", "ccsbc binary (default: built from this module)")
	ports := flag.String("ports", "6000-39999", "ccsbc media port range lo-hi (4 ports per call up)")
	cpus := flag.String("ccsbc-cpus", "", "taskset CPU list for ccsbc")
	flag.Parse()
	_ = load.RaiseFileLimit(1 << 18)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	dir, err := os.MkdirTemp("", "sigload-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	if *bin == "" {
		if *bin, err = load.BuildCCSBC(dir, false); err != nil {
			fatal(err)
		}
	}
	var lo, hi int
	if _, err := fmt.Sscanf(*ports, "%d-%d", &lo, &hi); err != nil {
		fatal(fmt.Errorf("-ports %q: want lo-hi", *ports))
	}
	res, err := load.RunSignaling(ctx, load.SignalingConfig{
		Transport: *transport, Rate: *rate, Calls: *calls, Hold: *hold, SampleAt: *sample, Timeout: *timeout, Dir: dir,
		CCSBC: load.CCSBCConfig{Binary: *bin, PortMin: lo, PortMax: hi, CPUs: *cpus},
		Log:   func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) },
	})
	if err != nil {
		fatal(err)
	}
	fmt.Println(load.FormatSignaling(res))
	if res.Failed > 0 || res.Err != "" {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "sigload:", err)
	os.Exit(1)
}
