// Command ccsbc is the contact-center session border controller: `ccsbc run`
// runs the daemon, `ccsbc check` validates a configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ccsbc/ccsbc/admin"
	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/sip"
)

const usage = `usage:
  ccsbc run   [--config FILE] [--drain-timeout D]
                                run the daemon (embedded loopback lab default without --config)
  ccsbc check --config FILE [--format text|json] [--strict]
                                validate a configuration and print what each route does
  ccsbc calls [--admin ADDR] [--token T]
                                print the calls in progress (admin API, role read)
  ccsbc health [--admin ADDR]   exit 0 when the daemon's /healthz answers (container HEALTHCHECK)
  ccsbc admin hash-token [TOKEN]
                                print a new token (or hash TOKEN) and the sha256 for admin.tokens
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "calls":
		return cmdCalls(args[1:], stdout, stderr)
	case "admin":
		return cmdAdmin(args[1:], stdout, stderr)
	case "health":
		return cmdHealth(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ccsbc: unknown command %q\n%s", args[0], usage)
	return 2
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.Load(path)
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded loopback lab)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "on SIGTERM, how long established calls may run on before both legs get BYE")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "ccsbc: %v\n", err)
		return 2
	}
	log, level, err := newLogger(cfg.Log.Level)
	if err != nil {
		fmt.Fprintf(stderr, "ccsbc: %v\n", err)
		return 2
	}
	defer log.Sync() //nolint:errcheck
	source := cfg.File
	if source == "" {
		source = "embedded default"
	}
	log.Info("starting", zap.String("config", source), zap.Stringer("model", cfg.Model))
	for _, w := range cfg.Warnings() {
		log.Warn("config warning", zap.String("warning", w))
	}

	srv, err := sip.New(cfg, log)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	reg := admin.NewRegistry()
	metrics, err := admin.NewMetrics(reg)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	srv.SetMetrics(metrics)

	// SIGHUP reloads peers, routes and policy; SIGTERM (or Ctrl-C) drains:
	// new calls get 503, established calls run on for --drain-timeout.
	// A second SIGTERM stops at once. The admin API's /reload and /drain do
	// the same.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var adm *admin.Server
	var drainOnce sync.Once
	startDrain := func() {
		drainOnce.Do(func() {
			if adm != nil {
				adm.SetDraining()
			}
			go func() { srv.Drain(*drain); stop() }()
		})
	}
	doReload := func() error { return reload(srv, adm, *path, log) }
	if cfg.Admin.Enabled() {
		opts := admin.Options{
			Logger: log.Named("admin"), Gatherer: reg, Calls: admin.CallListerFunc(srv.ListCalls),
			Ready: func() error {
				select {
				case <-srv.Ready():
					return nil
				default:
					return errors.New("SIP listeners not bound yet")
				}
			},
			Reload: doReload, Drain: startDrain, LogLevel: &level,
		}
		if cfg.Admin.TLS {
			cert, _, err := config.LoadOrCreateCertificate(&cfg.TLS)
			if err != nil {
				log.Error("cannot start admin TLS", zap.Error(err))
				return 1
			}
			opts.Certificate = &cert
		}
		if adm, err = admin.New(cfg, opts); err != nil {
			log.Error("cannot start admin API", zap.Error(err))
			return 1
		}
		if err := adm.Listen(); err != nil {
			log.Error("cannot start admin API", zap.Error(err))
			return 1
		}
		go func() { _ = adm.Serve(ctx) }()
		log.Info("admin API listening", zap.Stringer("address", adm.Addr()), zap.Bool("tls", cfg.Admin.TLS))
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		draining := false
		for sig := range sigs {
			switch {
			case sig == syscall.SIGHUP:
				_ = doReload()
			case draining:
				stop()
			default:
				draining = true
				startDrain()
			}
		}
	}()
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped", zap.Error(err))
		return 1
	}
	log.Info("stopped")
	return 0
}

// reload re-reads the configuration file; a file that fails validation is
// refused and the running configuration kept, with the reason logged.
func reload(srv *sip.Server, adm *admin.Server, path string, log *zap.Logger) error {
	if path == "" {
		err := errors.New("running on the embedded default: start with --config FILE to reload")
		log.Warn("reload ignored", zap.Error(err))
		return err
	}
	cfg, err := config.Load(path)
	if err == nil {
		err = srv.Reload(cfg)
	}
	if err == nil && adm != nil {
		// New tokens and client pins; a changed admin listener needs a restart.
		if aerr := adm.Update(cfg); aerr != nil {
			log.Warn("admin API kept its previous settings", zap.Error(aerr))
		}
	}
	if err != nil {
		log.Error("reload refused; the running configuration stays", zap.String("file", path), zap.Error(err))
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn("config warning", zap.String("warning", w))
	}
	return nil
}

func newLogger(level string) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, zap.AtomicLevel{}, fmt.Errorf("log.level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil // every call event counts
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	l, err := zc.Build()
	return l, zc.Level, err
}
