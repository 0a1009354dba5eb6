package policy

import (
	"fmt"
	"strings"
	"testing"
)

// TestDecideLegTable walks every model × leg-class cell, with an
// SRTP-capable and a non-capable peer.
func TestDecideLegTable(t *testing.T) {
	type want struct {
		prot      Protection
		exception bool
		reason    string
	}
	srtp := want{SRTP, false, ""}
	rtp := want{RTP, false, ""}
	never := want{RTP, true, "does not support SRTP"}
	noMobile := want{RTP, true, "mobile agents cannot use SRTP"}
	notCapable := want{RTP, true, "not declared SRTP-capable"}
	cells := []struct {
		model   Model
		class   LegClass
		capable want // peer declared SRTP-capable
		plain   want // peer not declared SRTP-capable
	}{
		// Models 1 and 2: RTP everywhere, whatever the peer.
		{1, LegAgent, rtp, rtp}, {1, LegIVR, rtp, rtp}, {1, LegIVRIOS, rtp, rtp}, {1, LegMobileAgent, rtp, rtp},
		{1, LegDialer, rtp, rtp}, {1, LegWhisper, rtp, rtp}, {1, LegCaller, rtp, rtp},
		{2, LegAgent, rtp, rtp}, {2, LegIVR, rtp, rtp}, {2, LegIVRIOS, rtp, rtp}, {2, LegMobileAgent, rtp, rtp},
		{2, LegDialer, rtp, rtp}, {2, LegWhisper, rtp, rtp}, {2, LegCaller, rtp, rtp},
		// Model 3: agent media secure, IVR leg plain.
		{3, LegAgent, srtp, notCapable}, {3, LegIVR, rtp, rtp}, {3, LegIVRIOS, never, never},
		{3, LegMobileAgent, noMobile, noMobile}, {3, LegDialer, srtp, notCapable}, {3, LegWhisper, srtp, notCapable},
		{3, LegCaller, srtp, notCapable},
		// Model 4: end to end, with the same exceptions.
		{4, LegAgent, srtp, notCapable}, {4, LegIVR, srtp, notCapable}, {4, LegIVRIOS, never, never},
		{4, LegMobileAgent, noMobile, noMobile}, {4, LegDialer, srtp, notCapable}, {4, LegWhisper, srtp, notCapable},
		{4, LegCaller, srtp, notCapable},
	}
	seen := map[Model]map[LegClass]bool{}
	for _, c := range cells {
		if seen[c.model] == nil {
			seen[c.model] = map[LegClass]bool{}
		}
		seen[c.model][c.class] = true
		for _, capable := range []bool{true, false} {
			w := c.plain
			if capable {
				w = c.capable
			}
			d := DecideLeg(c.model, c.class, Peer{Name: "p", Transport: TLS, SRTP: capable}, CallState{})
			if d.Protection != w.prot || d.Exception != w.exception || !strings.Contains(d.Reason, w.reason) || d.Reason == "" {
				t.Errorf("model %d %s capable=%v: got %s exception=%v %q, want %s exception=%v reason ~%q",
					c.model, c.class, capable, d.Protection, d.Exception, d.Reason, w.prot, w.exception, w.reason)
			}
		}
	}
	for m := ModelUnsecured; m <= ModelEndToEnd; m++ {
		for _, class := range LegClasses {
			if !seen[m][class] {
				t.Errorf("cell model %d × %s not covered", m, class)
			}
		}
	}
}

// TestDialerState walks every model × leg-class cell, with an SRTP-capable
// and a non-capable peer, across the dialer's transfer: while the dialer is
// connected no leg is SRTP, and a leg that the model would encrypt says the
// dialer is why; once it has left (the re-INVITE after the transfer), each
// cell is what the model table says (TestDecideLegTable).
func TestDialerState(t *testing.T) {
	const why = "Outbound Option dialer is connected"
	for m := ModelUnsecured; m <= ModelEndToEnd; m++ {
		for _, class := range LegClasses {
			for _, capable := range []bool{true, false} {
				p := Peer{Name: "p", Transport: TLS, SRTP: capable}
				left := DecideLeg(m, class, p, CallState{DialerConnected: false})
				connected := DecideLeg(m, class, p, CallState{DialerConnected: true})
				name := fmt.Sprintf("model %d %s capable=%v", m, class, capable)
				if connected.Protection != RTP || connected.Reason == "" {
					t.Errorf("%s with the dialer connected: %+v, want RTP", name, connected)
				}
				// The dialer only matters where the model would encrypt.
				r := table[m][class]
				wouldEncrypt := r.srtp && !r.never
				if wouldEncrypt != strings.Contains(connected.Reason, why) || wouldEncrypt != connected.Exception && !r.never {
					t.Errorf("%s with the dialer connected: %+v; the dialer exception applies only where the model encrypts", name, connected)
				}
				if !wouldEncrypt && connected != left {
					t.Errorf("%s: the dialer changed a leg the model never encrypts: %+v vs %+v", name, connected, left)
				}
				if strings.Contains(left.Reason, why) {
					t.Errorf("%s after the dialer left: still %q", name, left.Reason)
				}
			}
		}
	}
	// The upgrade the dialer's transfer unlocks, cell by cell.
	cucm := Peer{Name: "cucm", Transport: TLS, SRTP: true}
	for _, c := range []struct {
		model Model
		class LegClass
		after Protection
	}{
		{3, LegAgent, SRTP}, {3, LegCaller, SRTP}, {3, LegDialer, SRTP}, {3, LegIVR, RTP}, {3, LegMobileAgent, RTP}, {3, LegIVRIOS, RTP},
		{4, LegAgent, SRTP}, {4, LegCaller, SRTP}, {4, LegDialer, SRTP}, {4, LegIVR, SRTP}, {4, LegMobileAgent, RTP}, {4, LegIVRIOS, RTP},
		{2, LegAgent, RTP}, {1, LegAgent, RTP},
	} {
		if d := DecideLeg(c.model, c.class, cucm, CallState{}); d.Protection != c.after {
			t.Errorf("model %d %s after the dialer left: %+v, want %s", c.model, c.class, d, c.after)
		}
	}
}

func TestTransportAllowed(t *testing.T) {
	for m := ModelUnsecured; m <= ModelEndToEnd; m++ {
		for _, tr := range Transports {
			ok, reason := TransportAllowed(m, tr)
			want := m == ModelUnsecured || tr == TLS
			if ok != want || reason == "" {
				t.Errorf("model %d %s: ok=%v %q", m, tr, ok, reason)
			}
		}
	}
}

func TestPortBlocked(t *testing.T) {
	for _, c := range []struct {
		proto string
		port  int
		want  bool
	}{{"udp", 135, true}, {"udp", 137, true}, {"udp", 138, true}, {"udp", 445, true}, {"udp", 139, false},
		{"tcp", 135, true}, {"tcp", 139, true}, {"tcp", 445, true}, {"tcp", 593, true}, {"tls", 593, true},
		{"tcp", 137, false}, {"udp", 5060, false}} {
		if got := PortBlocked(c.proto, c.port); got != c.want {
			t.Errorf("%s/%d: %v", c.proto, c.port, got)
		}
	}
	if got := BlockedPortsIn(100, 200); len(got) != 3 {
		t.Errorf("BlockedPortsIn(100,200) = %v", got)
	}
}

// TestDTLSKeying: a peer that keys by DTLS-SRTP gets DTLS-SRTP wherever the
// model gives SRTP, and nothing more: the exceptions still win.
func TestDTLSKeying(t *testing.T) {
	p := Peer{Name: "browser", Transport: TLS, SRTP: true, DTLS: true}
	for m := ModelUnsecured; m <= ModelEndToEnd; m++ {
		for _, class := range LegClasses {
			sdes := DecideLeg(m, class, Peer{Name: "browser", Transport: TLS, SRTP: true}, CallState{})
			d := DecideLeg(m, class, p, CallState{})
			want := sdes.Protection
			if want == SRTP {
				want = DTLSSRTP
			}
			if d.Protection != want || d.Exception != sdes.Exception || d.Secure() != sdes.Secure() {
				t.Errorf("model %d %s: DTLS peer got %s (exception %v), SDES peer %s", m, class, d.Protection, d.Exception, sdes.Protection)
			}
		}
		if d := DecideLeg(m, LegAgent, p, CallState{DialerConnected: true}); d.Protection != RTP {
			t.Errorf("model %d: DTLS agent with the dialer connected: %s", m, d.Protection)
		}
	}
}
