// Command ccsbcprof runs ccsbc's B2BUA and media relay like `ccsbc run`
// does, with Go's pprof handlers on a loopback HTTP port, so that a load run
// can take CPU and heap profiles of it (the daemon has no profiling
// endpoint). For measurement only: no SIGHUP reload, no drain.
//
//	ccsbcprof run --config ccsbc.yaml -pprof 127.0.0.1:6060
//	go run ./test/load/cmd/sigload -ccsbc /tmp/ccsbcprof -transport udp -rate 1000 -calls 20000
//	go tool pprof http://127.0.0.1:6060/debug/pprof/heap
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/sip"
)

func main() {
	// Accept `ccsbcprof run --config FILE` too, so that the load tools can
	// start it in place of ccsbc (-ccsbc).
	if len(os.Args) > 1 && os.Args[1] == "run" {
		os.Args = append(os.Args[:1], os.Args[2:]...)
	}
	path := flag.String("config", "", "configuration file")
	addr := flag.String("pprof", "127.0.0.1:6060", "pprof HTTP address (loopback)")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fatal(fmt.Errorf("-pprof %s: want a loopback address", *addr))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fatal(err)
	}
	lvl, err := zapcore.ParseLevel(cfg.Log.Level)
	if err != nil {
		fatal(err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	log, err := zc.Build()
	if err != nil {
		fatal(err)
	}
	go func() { fatal(http.ListenAndServe(*addr, nil)) }()
	srv, err := sip.New(cfg, log)
	if err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "ccsbcprof:", err)
	os.Exit(1)
}
