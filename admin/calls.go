package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ccsbc/ccsbc/policy"
)

// CallLister lists the calls in progress, for GET /calls.
//
// ListCalls is called from an HTTP handler goroutine while calls come
// and go: it must take a consistent copy under the calls' own locks and
// return it, never a view of live state, and must not block on the
// network. The admin server fills in Call.Duration.
type CallLister interface {
	ListCalls() []Call
}

// CallListerFunc adapts a function to CallLister.
type CallListerFunc func() []Call

// ListCalls implements CallLister.
func (f CallListerFunc) ListCalls() []Call { return f() }

// Call is one call in progress, as GET /calls shows it. It names no
// caller or called number: those are the contact center's customers'
// personal data, kept out of an operator's view (Secured PII in Transit).
type Call struct {
	// ID is what ccsbc's logs call the call (the inbound leg's Call-ID),
	// to find its events.
	ID string `json:"id"`
	// Route is the name of the route the call took.
	Route string `json:"route,omitempty"`
	// Start is when the INVITE arrived.
	Start time.Time `json:"start"`
	// Duration is how long the call has lasted; the admin server sets it
	// from Start. In JSON it is duration_seconds, a number.
	Duration time.Duration `json:"-"`
	// Legs are the inbound leg, then the outbound one (absent until the
	// route picked a peer).
	Legs []Leg `json:"legs"`
}

// Leg is one leg of a call in progress.
type Leg struct {
	// Side is "in" (the peer that sent the INVITE) or "out" (the peer the
	// route chose).
	Side string `json:"side"`
	// Class is the leg's class (caller on the inbound leg).
	Class policy.LegClass `json:"class,omitempty"`
	// Peer is the configured peer's name; "" for an unknown caller.
	Peer string `json:"peer,omitempty"`
	// Transport is the leg's SIP transport.
	Transport policy.Transport `json:"transport"`
	// TLSVersion is the TLS version of the leg's connection as
	// tls.VersionName spells it ("TLS 1.3"); "" when not TLS.
	TLSVersion string `json:"tls_version,omitempty"`
	// Protection is the leg's media protection.
	Protection policy.Protection `json:"protection"`
	// Suite is the SRTP crypto suite negotiated on the leg; "" for RTP.
	Suite string `json:"suite,omitempty"`
	// PacketsIn counts the media packets received from the leg's peer,
	// PacketsOut those sent to it.
	PacketsIn  uint64 `json:"packets_in"`
	PacketsOut uint64 `json:"packets_out"`
}

// Leg sides.
const (
	SideIn  = "in"
	SideOut = "out"
)

// callJSON is Call's wire form: the duration as a number of seconds.
type callJSON struct {
	ID              string    `json:"id"`
	Route           string    `json:"route,omitempty"`
	Start           time.Time `json:"start"`
	DurationSeconds float64   `json:"duration_seconds"`
	Legs            []Leg     `json:"legs"`
}

// MarshalJSON writes the duration as duration_seconds, to the
// millisecond.
func (c Call) MarshalJSON() ([]byte, error) {
	legs := c.Legs
	if legs == nil {
		legs = []Leg{}
	}
	return json.Marshal(callJSON{
		ID: c.ID, Route: c.Route, Start: c.Start, Legs: legs,
		DurationSeconds: math.Round(c.Duration.Seconds()*1000) / 1000,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Call) UnmarshalJSON(b []byte) error {
	var j callJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Call{
		ID: j.ID, Route: j.Route, Start: j.Start, Legs: j.Legs,
		Duration: time.Duration(math.Round(j.DurationSeconds * float64(time.Second))),
	}
	return nil
}

// sortCalls orders calls oldest first, then by ID, so that listings are
// stable from one run to the next.
func sortCalls(calls []Call) {
	slices.SortStableFunc(calls, func(a, b Call) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// WriteCallsTable writes calls as the aligned plain-text table that
// `ccsbc calls` prints and GET /calls?format=table serves: one row per
// leg, the call's columns on its first leg's row only.
//
//	CALL            ROUTE   STARTED               DURATION  LEG  CLASS   PEER  TRANSPORT  TLS      MEDIA      SUITE                    PKTS IN  PKTS OUT
//	a84b4c76e667@x  agents  2026-03-01T09:30:00Z  1m23s     in   caller  cvp   tls        TLS 1.3  srtp-sdes  AES_CM_128_HMAC_SHA1_80  4150     4148
//	                                                        out  agent   cucm  tls        TLS 1.3  srtp-sdes  AES_CM_128_HMAC_SHA1_80  4148     4150
//
// Empty values print as "-". With no calls it writes "no active calls".
func WriteCallsTable(w io.Writer, calls []Call) error {
	if len(calls) == 0 {
		_, err := io.WriteString(w, "no active calls\n")
		return err
	}
	calls = slices.Clone(calls)
	sortCalls(calls)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL\tROUTE\tSTARTED\tDURATION\tLEG\tCLASS\tPEER\tTRANSPORT\tTLS\tMEDIA\tSUITE\tPKTS IN\tPKTS OUT")
	for _, c := range calls {
		head := []string{cell(c.ID), cell(c.Route), c.Start.UTC().Format(time.RFC3339), c.Duration.Round(time.Second).String()}
		legs := c.Legs
		if len(legs) == 0 {
			legs = []Leg{{}}
		}
		for i, l := range legs {
			if i == 1 {
				head = []string{"", "", "", ""}
			}
			row := append(head[:4:4],
				cell(l.Side), cell(string(l.Class)), cell(l.Peer), cell(string(l.Transport)), cell(l.TLSVersion),
				cell(string(l.Protection)), cell(l.Suite),
				strconv.FormatUint(l.PacketsIn, 10), strconv.FormatUint(l.PacketsOut, 10))
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
	}
	return tw.Flush()
}

// cell makes a table cell of s: "-" when empty, and no tab, newline or
// other control character that would break the table (a Call-ID is
// whatever the caller sent).
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
