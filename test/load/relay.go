package load

import (
	"context"
	"fmt"
	"net/netip"
)

// Mode is what each side of a call carries.
type Mode string

// The three media modes of issue 5.
const (
	RTPtoRTP   Mode = "rtp-rtp"   // RTP on both legs
	RTPtoSRTP  Mode = "rtp-srtp"  // RTP toward the caller, SRTP toward the callee
	SRTPtoSRTP Mode = "srtp-srtp" // SRTP on both legs, decrypted and re-encrypted
)

// Modes lists them in the order reports use.
var Modes = []Mode{RTPtoRTP, RTPtoSRTP, SRTPtoSRTP}

// ParseMode reads a Mode.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("load: mode %q: want rtp-rtp, rtp-srtp or srtp-srtp", s)
}

func (m Mode) srtpA() bool { return m == SRTPtoSRTP }
func (m Mode) srtpB() bool { return m != RTPtoRTP }

// String is the mode as reports write it.
func (m Mode) String() string {
	switch m {
	case RTPtoRTP:
		return "RTP↔RTP"
	case RTPtoSRTP:
		return "RTP↔SRTP"
	case SRTPtoSRTP:
		return "SRTP↔SRTP"
	}
	return string(m)
}

// Relay is a media relay under test, and the way calls are set up through
// it (SIP for ccsbc, the ng protocol for rtpengine).
type Relay interface {
	// Name is "ccsbc" or "rtpengine".
	Name() string
	// PID is the relay process, whose CPU time is measured.
	PID() int
	// Setup sets up call i: the caller offers offer; answer is called with
	// the offer the relay sends toward the callee and returns the callee's
	// answer. Setup returns the answer the relay sends back to the caller.
	Setup(ctx context.Context, i int, offer SDP, answer func(toB SDP) (SDP, error)) (toA SDP, err error)
	// Teardown ends call i.
	Teardown(ctx context.Context, i int) error
	// Close ends every call still up and stops the relay.
	Close() error
}

// ErrNotAvailable marks a mode a relay cannot run (yet): the report says
// "not available" with the reason instead of a figure.
type ErrNotAvailable struct{ Reason string }

func (e *ErrNotAvailable) Error() string { return "not available: " + e.Reason }

func loopback(ip string) (netip.Addr, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return a, err
	}
	if !a.Is4() || !a.IsLoopback() {
		return a, fmt.Errorf("load: %v is not an IPv4 loopback address", a)
	}
	return a, nil
}
