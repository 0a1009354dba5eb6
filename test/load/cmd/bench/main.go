// Command bench runs ccsbc's whole load suite (media against rtpengine,
// calls per second over UDP, TCP and TLS, a long hold of concurrent calls),
// each figure repeated, and writes BENCHMARKS.md.
//
//	go run ./test/load/cmd/bench -out BENCHMARKS.md
//
// It needs sip-tester (SIPp) and rtpengine-daemon, runs for about half an
// hour with the defaults (-quick: a few minutes, figures not comparable to
// the targets), sends only to 127.0.0.1, and ends every process it starts.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ccsbc/ccsbc/test/load"
)

func main() {
	def := load.DefaultSuite()
	out := flag.String("out", "BENCHMARKS.md", "report to write")
	raw := flag.String("json", "", "also write every raw result to this JSON file")
	reps := flag.Int("reps", def.Reps, "repetitions of every figure")
	quick := flag.Bool("quick", false, "a short run of everything (minutes, not half an hour)")
	bin := flag.String("ccsbc", "", "ccsbc binary (default: built from this module)")
	notes := flag.String("notes", "", "Markdown appended to the report (default test/load/analysis.md)")
	keep := flag.Bool("keep", false, "keep the working directory (configs, logs)")
	timeout := flag.Duration("timeout", 90*time.Minute, "bound on the whole suite")
	render := flag.String("render", "", "do not measure: write the report from this -json file of an earlier run")
	merge := flag.String("merge", "", "start from this -json file of an earlier run and measure again only -phases")
	phases := flag.String("phases", "", "comma-separated phases to run: media, search, cps, hold (default all)")
	flag.Parse()
	if *render != "" {
		b, err := os.ReadFile(*render)
		if err != nil {
			fatal(err)
		}
		var suite load.Suite
		if err := json.Unmarshal(b, &suite); err != nil {
			fatal(err)
		}
		writeReport(&suite, *out, *notes)
		return
	}
	_ = load.RaiseFileLimit(1 << 18)

	cfg := def
	cfg.Reps = *reps
	cfg.Command = "go run ./test/load/cmd/bench " + strings.Join(os.Args[1:], " ")
	if *quick {
		cfg.MediaCalls, cfg.Levels = 200, []int{200, 500, 1000}
		cfg.Warmup, cfg.Measure, cfg.SearchWin = 2*time.Second, 4*time.Second, 3*time.Second
		cfg.CPSFor, cfg.HoldCalls = 10*time.Second, 2000
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, *timeout)
	defer cancel2()

	dir, err := os.MkdirTemp("", "ccsbc-bench-")
	if err != nil {
		fatal(err)
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "bench: working directory", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	cfg.Dir = dir
	if *bin == "" {
		if *bin, err = load.BuildCCSBC(dir, false); err != nil {
			fatal(err)
		}
	}
	cfg.CCSBC = *bin
	cfg.Log = func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) }
	if err := load.SIPpAvailable(); err != nil {
		fatal(err)
	}
	if err := load.RtpengineAvailable(""); err != nil {
		fatal(err)
	}

	if *phases != "" {
		cfg.Phases = strings.Split(*phases, ",")
	}
	var prev *load.Suite
	if *merge != "" {
		b, err := os.ReadFile(*merge)
		if err != nil {
			fatal(err)
		}
		prev = new(load.Suite)
		if err := json.Unmarshal(b, prev); err != nil {
			fatal(err)
		}
	}
	suite := load.RunSuite(ctx, cfg, prev)
	if *raw != "" {
		b, err := json.MarshalIndent(suite, "", "  ")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: raw results:", err)
		} else if err := os.WriteFile(*raw, b, 0o644); err != nil {
			fatal(err)
		}
	}
	writeReport(suite, *out, *notes)
	if ctx.Err() != nil {
		fatal(fmt.Errorf("stopped before the end: %w", ctx.Err()))
	}
}

// writeReport writes the report of suite to out, with the notes file
// (default test/load/analysis.md) appended.
func writeReport(suite *load.Suite, out, notes string) {
	if notes == "" {
		if root, err := load.ModuleRoot(); err == nil {
			notes = filepath.Join(root, "test", "load", "analysis.md")
		}
	}
	var noteText string
	if b, err := os.ReadFile(notes); err == nil {
		noteText = string(b)
	}
	var buf bytes.Buffer
	suite.WriteMarkdown(&buf, noteText)
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		fatal(err)
	}
	fmt.Fprintln(os.Stderr, "bench: wrote", out)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
