package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

// Exit codes of `ccsbc check`, like nginx -t: 0 clean, 1 warnings (with
// --strict), 2 errors.
const (
	exitClean    = 0
	exitWarnings = 1
	exitErrors   = 2
)

// checkReport is what `ccsbc check` says of a configuration.
type checkReport struct {
	File     string        `json:"file"`
	Model    string        `json:"model"`
	Routes   []routeReport `json:"routes"`
	Capacity *capacity     `json:"capacity,omitempty"`
	Warnings []string      `json:"warnings"`
	Errors   []string      `json:"errors"`
}

// capacity is how many calls the media port range holds, and how many the
// open-file limit of the shell running check allows (the daemon's own
// limit, e.g. systemd's LimitNOFILE=, may differ: ccsbc logs it at start).
type capacity struct {
	Calls       int `json:"calls"`
	ByPorts     int `json:"by_ports"`
	FileLimit   int `json:"open_file_limit"`
	ByOpenFiles int `json:"by_open_files"`
}

type routeReport struct {
	Name  string      `json:"name"`
	User  string      `json:"user"`
	Class string      `json:"leg_class"`
	Legs  []legReport `json:"legs"`
}

type legReport struct {
	Direction  string   `json:"direction"` // inbound or outbound
	Peer       string   `json:"peer"`
	Kind       string   `json:"kind"`
	Transport  string   `json:"transport"`
	Protection string   `json:"media"`
	Suites     []string `json:"suites,omitempty"`
	Codecs     []string `json:"codecs,omitempty"`
	Exception  bool     `json:"exception,omitempty"`
	Reason     string   `json:"reason"`
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file to check (required)")
	format := fs.String("format", "text", "output format: text or json")
	strict := fs.Bool("strict", false, "exit 1 when there are warnings")
	if err := fs.Parse(args); err != nil {
		return exitErrors
	}
	if *path == "" {
		fmt.Fprintln(stderr, "ccsbc check: --config FILE is required")
		return exitErrors
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "ccsbc check: --format %q: want text or json\n", *format)
		return exitErrors
	}
	rep := buildReport(*path)
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReport(stdout, rep)
	}
	switch {
	case len(rep.Errors) > 0:
		return exitErrors
	case len(rep.Warnings) > 0 && *strict:
		return exitWarnings
	}
	return exitClean
}

// buildReport loads and validates the file and, when it is valid, works
// out every route's legs with the same policy the daemon runs.
func buildReport(path string) checkReport {
	rep := checkReport{File: path, Warnings: []string{}, Errors: []string{}}
	cfg, err := config.Load(path)
	if err != nil {
		rep.Errors = append(rep.Errors, splitErrors(err)...)
		return rep
	}
	rep.Model = cfg.Model.String()
	rep.Warnings = append(rep.Warnings, cfg.Warnings()...)
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		rr := routeReport{Name: r.Name, User: r.User, Class: string(r.Leg)}
		to, _ := cfg.Peer(r.To)
		if r.Leg == policy.LegWhisper {
			wd := cfg.WhisperDecision(r)
			switch {
			case wd.Conflict && wd.To == "":
				rep.Errors = append(rep.Errors, fmt.Sprintf("route %q: %s", r.Name, wd.Reason))
			case wd.Conflict:
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("route %q: %s", r.Name, wd.Reason))
				to, _ = cfg.Peer(wd.To)
			}
		}
		for _, in := range callers(cfg, r) {
			rr.Legs = append(rr.Legs, legFor("inbound", cfg, in, policy.LegCaller))
		}
		out := legFor("outbound", cfg, to, r.Leg)
		rr.Legs = append(rr.Legs, out)
		// A leg the model wants encrypted, left plain because its peer is
		// declared not SRTP-capable, is the operator's exception: say so.
		// (IOS VXML gateways and mobile agents are the design guide's own.)
		if to != nil && out.Exception && !to.SRTP {
			if policy.DecideLeg(cfg.Model, r.Leg, policy.Peer{SRTP: true}, policy.CallState{}).Secure() {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("route %q: exception: %s", r.Name, out.Reason))
			}
		}
		rep.Routes = append(rep.Routes, rr)
	}
	addrs := len(cfg.Media.Addresses())
	if c, err := media.PortCapacity(cfg.Media.PortMin, cfg.Media.PortMax, addrs); err == nil {
		rep.Capacity = &capacity{Calls: c.Streams(), ByPorts: c.Ports, FileLimit: c.FileLimit, ByOpenFiles: c.Files}
		if c.FileBound() {
			where := ""
			if addrs > 1 {
				where = fmt.Sprintf(" on %d addresses", addrs)
			}
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("media.ports %d-%d%s hold %d calls, but the open-file limit here (%d) allows %d: give the daemon at least %d (systemd LimitNOFILE=)",
				cfg.Media.PortMin, cfg.Media.PortMax, where, c.Ports, c.FileLimit, c.Files, 4*c.Ports+256))
		}
	}
	return rep
}

// callers are the peers a route's calls come from: its from list, else
// every peer that places calls (CVP, dialers); nil stands for any source.
func callers(cfg *config.Config, r *config.Route) []*config.Peer {
	var out []*config.Peer
	if len(r.From) > 0 {
		for _, n := range r.From {
			if p, ok := cfg.Peer(n); ok {
				out = append(out, p)
			}
		}
		return out
	}
	for i := range cfg.Peers {
		if k := cfg.Peers[i].Kind; k == "cvp" || k == "dialer" {
			out = append(out, &cfg.Peers[i])
		}
	}
	if len(out) == 0 {
		out = append(out, nil)
	}
	return out
}

func legFor(dir string, cfg *config.Config, p *config.Peer, class policy.LegClass) legReport {
	if p == nil {
		d := policy.DecideLeg(cfg.Model, class, policy.Peer{Name: "any caller"}, policy.CallState{})
		return legReport{Direction: dir, Peer: "any", Transport: "listener's", Protection: string(d.Protection), Exception: d.Exception, Reason: d.Reason}
	}
	st := policy.CallState{}
	if dir == "inbound" && p.Kind == "dialer" {
		class, st.DialerConnected = policy.LegDialer, true
	}
	d := policy.DecideLeg(cfg.Model, class, p.Policy(p.Transport), st)
	l := legReport{Direction: dir, Peer: p.Name, Kind: p.Kind, Transport: string(p.Transport),
		Protection: string(d.Protection), Codecs: p.Codecs, Exception: d.Exception, Reason: d.Reason}
	if d.Secure() {
		l.Suites = p.SRTPSuites
	}
	return l
}

func splitErrors(err error) []string {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return strings.Split(err.Error(), "\n")
}

// printReport writes the report for a person at a glance: one block per
// route, one line per leg, then warnings and errors.
func printReport(w io.Writer, rep checkReport) {
	if rep.Model != "" {
		fmt.Fprintf(w, "%s: %s\n", rep.File, rep.Model)
	}
	for _, r := range rep.Routes {
		fmt.Fprintf(w, "\nroute %q: user %s -> %s leg\n", r.Name, r.User, r.Class)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, l := range r.Legs {
			suites, codecs := "-", "any"
			if len(l.Suites) > 0 {
				suites = strings.Join(l.Suites, ",")
			}
			if len(l.Codecs) > 0 {
				codecs = strings.Join(l.Codecs, ",")
			}
			mark := ""
			if l.Exception {
				mark = " [exception]"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s%s\n", l.Direction, l.Peer, l.Transport, l.Protection, suites, codecs, l.Reason, mark)
		}
		tw.Flush()
	}
	if c := rep.Capacity; c != nil {
		fmt.Fprintf(w, "\nmedia capacity: %d calls at once (the port range holds %d; open-file limit %d allows %d)\n",
			c.Calls, c.ByPorts, c.FileLimit, c.ByOpenFiles)
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintf(w, "\nwarnings (%d):\n", len(rep.Warnings))
		for _, x := range rep.Warnings {
			fmt.Fprintf(w, "  - %s\n", x)
		}
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(w, "\nerrors (%d):\n", len(rep.Errors))
		for _, x := range rep.Errors {
			fmt.Fprintf(w, "  - %s\n", x)
		}
		fmt.Fprintln(w, "\nconfiguration NOT OK")
		return
	}
	fmt.Fprintln(w, "\nconfiguration OK")
}
