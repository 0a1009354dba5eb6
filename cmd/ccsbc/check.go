package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/policy"
)

// printCheck writes, per route, what each leg of a call on it will be.
func printCheck(w io.Writer, cfg *config.Config) {
	fmt.Fprintf(w, "%s: %s\n\n", nameOf(cfg), cfg.Model)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tUSER\tFROM\tTO\tLEG CLASS\tTRANSPORT\tMEDIA\tREASON")
	for _, r := range cfg.Routes {
		p, _ := cfg.Peer(r.To)
		d := policy.DecideLeg(cfg.Model, r.Leg, policy.Peer{Name: p.Name, Transport: p.Transport, SRTP: p.SRTP}, policy.CallState{})
		from := "any"
		if len(r.From) > 0 {
			from = strings.Join(r.From, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.User, from, r.To, r.Leg, p.Transport, d.Protection, d.Reason)
	}
	tw.Flush()
	if ws := cfg.Warnings(); len(ws) > 0 {
		fmt.Fprintln(w, "\nwarnings:")
		for _, x := range ws {
			fmt.Fprintf(w, "  - %s\n", x)
		}
	}
	fmt.Fprintln(w, "\nconfiguration OK")
}

func nameOf(cfg *config.Config) string {
	if cfg.File == "" {
		return "embedded default"
	}
	return cfg.File
}
