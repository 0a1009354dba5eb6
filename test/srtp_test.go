package test

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ccsbc/ccsbc/test/lab"
)

// tlsLab is ccsbc on TLS between two baresips: the caller as peer "cvp", the
// callee (user 1000 or 2000) as peer "cucm" (agent leg) or "vvb" (IVR leg).
type tlsLab struct {
	sip              int // ccsbc's TLS port
	lo, hi           int // ccsbc's media range
	caller, callee   *lab.UA
	d                *daemon
	capMedia, capSIP *lab.Capture
}

type tlsCase struct {
	model        int
	callerEnc    string // baresip mediaenc of the caller
	calleeEnc    string
	callerSRTP   bool // peers' declared capability in ccsbc's config
	calleeSRTP   bool
	user         string // 1000: agent leg to cucm; 2000: IVR leg to vvb
	callerToneHz float64
	calleeToneHz float64
	agentsG729   bool // declare the agent peer G.729-only (the whisper conflict)
	callerDTLS   bool // the caller peer keys SRTP by DTLS-SRTP (srtp_keying: dtls)
	calleeDTLS   bool
}

func startTLSLab(t *testing.T, c tlsCase) *tlsLab {
	t.Helper()
	l := &tlsLab{sip: lab.FreePort(t)}
	l.lo, l.hi = mediaRange()
	// A DTLS-SRTP peer runs rtcp-mux: ccsbc does DTLS on the RTP port only.
	l.caller = lab.Baresip(t, lab.BaresipOptions{User: "cvp", MediaEnc: c.callerEnc, ToneHz: c.callerToneHz, Codecs: []string{"pcmu"}, Name: "caller", RTCPMux: c.callerDTLS})
	l.callee = lab.Baresip(t, lab.BaresipOptions{User: c.user, MediaEnc: c.calleeEnc, ToneHz: c.calleeToneHz, Codecs: []string{"pcmu"}, Name: "callee", RTCPMux: c.calleeDTLS})
	keying := func(dtls bool) string {
		if dtls {
			return "dtls"
		}
		return "sdes"
	}
	pin := func(u *lab.UA) string { return u.Cert().Fingerprint }
	agentCodecs := "[]"
	if c.agentsG729 {
		agentCodecs = "[G729, telephone-event]"
	}
	cfg := fmt.Sprintf(`model: %d
log: {level: debug}
listeners:
  - {transport: tls, address: "127.0.0.1:%d"}
media: {bind: 127.0.0.1, ports: %d-%d}
peers:
  - {name: cvp, kind: cvp, address: "127.0.0.1:%[5]d", transport: tls, verify: fingerprint, fingerprint: "%[6]s", srtp: %[7]v, srtp_keying: %[13]s}
  - {name: cucm, kind: cucm, address: "127.0.0.1:%[8]d", transport: tls, verify: fingerprint, fingerprint: "%[9]s", srtp: %[10]v, codecs: %[12]s, srtp_keying: %[14]s}
  - {name: vvb, kind: vvb, address: "127.0.0.1:%[8]d", transport: tls, verify: fingerprint, fingerprint: "%[9]s", srtp: %[10]v}
  - {name: vxml-gw, kind: vxml-gw, address: "127.0.0.1:%[8]d", transport: tls, verify: fingerprint, fingerprint: "%[9]s"}
  - {name: vvb-mulaw, kind: vvb, address: "127.0.0.1:%[11]d", transport: tls, verify: insecure-lab, srtp: true, codecs: [PCMU]}
  - {name: vvb-g729, kind: vvb, address: "127.0.0.1:%[8]d", transport: tls, verify: fingerprint, fingerprint: "%[9]s", srtp: true, codecs: [G729]}
routes:
  - {user: 1xxx, to: cucm, leg: agent}
  - {user: 2xxx, to: vvb, leg: ivr}
  - {user: 3xxx, to: vxml-gw, leg: ivr-ios}
  - {user: 4xxx, to: cucm, leg: mobile-agent}
  - {user: 5xxx, to: vvb-mulaw, leg: whisper}
`, c.model, l.sip, l.lo, l.hi,
		l.caller.Port()+1, pin(l.caller), c.callerSRTP,
		l.callee.Port()+1, pin(l.callee), c.calleeSRTP, lab.FreePort(t), agentCodecs, keying(c.callerDTLS), keying(c.calleeDTLS))
	l.d = startCCSBC(t, cfg)
	l.capMedia = lab.StartCapture(t, "lo", fmt.Sprintf("udp portrange %d-%d", l.lo, l.hi))
	l.capSIP = lab.StartCapture(t, "lo", fmt.Sprintf("tcp port %d or tcp port %d or tcp port %d or udp port %d or tcp port %d",
		l.sip, l.callee.Port()+1, l.caller.Port()+1, l.callee.Port(), l.callee.Port()))
	return l
}

// call places a call from the caller and lets it run for talk.
func (l *tlsLab) call(t *testing.T, user string, talk time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := l.caller.Dial(fmt.Sprintf("sip:%s@127.0.0.1:%d", user, l.sip)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.caller.WaitEstablished(ctx); err != nil {
		t.Fatalf("caller: call not established: %v\n%s", err, tail(l.d.logText(), 3000))
	}
	time.Sleep(talk)
	_ = l.caller.Hangup()
	if _, err := l.callee.WaitClosed(ctx); err != nil {
		t.Fatalf("callee: no hangup: %v", err)
	}
	l.d.waitEvent("call end", 1, 5*time.Second)
	l.capMedia.Stop()
	l.capSIP.Stop()
}

// heard checks that u received the tone the other side sent.
func heard(t *testing.T, who string, u *lab.UA, hz float64) {
	t.Helper()
	a, err := u.ReceivedAudio()
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	if a.Active < 0.5 || math.Abs(a.Freq-hz) > hz*0.1 {
		t.Errorf("%s heard %v, want a %v Hz tone most of the time", who, a, hz)
	}
}

// legPayloads splits what crossed ccsbc's media ports by the peer's RTP
// ports: the caller's leg and the callee's leg.
func legEntropy(t *testing.T, c *lab.Capture, u *lab.UA) (float64, int) {
	t.Helper()
	lo, hi := u.RTPPorts()
	ps := c.Payloads(fmt.Sprintf("udp.dstport>=%d && udp.dstport<=%d", lo, hi))
	var all []byte
	for _, p := range ps {
		if len(p) > 12 && p[1]&0x7f < 64 { // RTP, not RTCP: skip the header
			all = append(all, p[12:]...)
		}
	}
	return lab.Entropy(all), len(ps)
}

// TestTLSModel2: SIP over TLS on both legs, RTP media; no cleartext SIP on
// the wire, audio both ways.
func TestTLSModel2(t *testing.T) {
	needTool(t, "baresip", "tshark")
	l := startTLSLab(t, tlsCase{model: 2, user: "1000", callerToneHz: 1000, calleeToneHz: 600})
	l.call(t, "1000", 3*time.Second)
	heard(t, "callee", l.callee, 1000)
	heard(t, "caller", l.caller, 600)
	// Every TCP payload on the SIP ports is a TLS record (0x14-0x17,
	// version 3.x): handshake, then application data.
	records := l.capSIP.Payloads("tcp.len>0")
	if len(records) < 4 {
		t.Errorf("only %d TCP payloads on the SIP ports", len(records))
	}
	for _, p := range records {
		if len(p) < 3 || p[0] < 0x14 || p[0] > 0x17 || p[1] != 3 {
			t.Errorf("non-TLS bytes on a SIP port: %q", p[:min(len(p), 40)])
			break
		}
	}
	for _, needle := range []string{"INVITE sip:", "SIP/2.0 200", "m=audio"} {
		if l.capSIP.ContainsCleartext("", needle) {
			t.Errorf("cleartext %q on the wire", needle)
		}
	}
	if n := l.capSIP.Count("sip"); n != 0 {
		t.Errorf("tshark decoded %d cleartext SIP packets", n)
	}
}

// TestSRTPPerLeg: ccsbc terminates SRTP per leg with keys of its own, and
// interworks SRTP with RTP where policy says one leg is plain.
func TestSRTPPerLeg(t *testing.T) {
	needTool(t, "baresip", "tshark")
	cases := []struct {
		name string
		tlsCase
		callerSecure, calleeSecure bool
	}{
		// Model 4: both legs SDES, each re-keyed by ccsbc.
		{"model4 SDES both legs", tlsCase{model: 4, callerEnc: "srtp-mand", calleeEnc: "srtp-mand", callerSRTP: true, calleeSRTP: true, user: "1000"}, true, true},
		// Model 3: the IVR leg stays RTP, the caller's leg is SRTP.
		{"model3 SRTP caller to RTP IVR", tlsCase{model: 3, callerEnc: "srtp-mand", calleeEnc: "", callerSRTP: true, calleeSRTP: false, user: "2000"}, true, false},
		// Model 3, the other direction of interworking: a caller not
		// declared SRTP-capable (RTP) to an SRTP agent leg.
		{"model3 RTP caller to SRTP agent", tlsCase{model: 3, callerEnc: "", calleeEnc: "srtp-mand", callerSRTP: false, calleeSRTP: true, user: "1000"}, false, true},
		// Model 4 exceptions: a mobile agent and an IOS VXML gateway stay
		// RTP (they are never offered SRTP: a plain baresip refuses
		// RTP/SAVP with 488) while the caller's leg is SRTP.
		{"model4 mobile agent stays RTP", tlsCase{model: 4, callerEnc: "srtp-mand", calleeEnc: "", callerSRTP: true, calleeSRTP: true, user: "4000"}, true, false},
		{"model4 IOS VXML gateway never SRTP", tlsCase{model: 4, callerEnc: "srtp-mand", calleeEnc: "", callerSRTP: true, calleeSRTP: true, user: "3000"}, true, false},
		// The whisper conflict: agents in G.729, the whisper route to a
		// G.711 VVB; ccsbc plays it from the G.729 VVB instead, over SRTP.
		{"model4 whisper rerouted to the G.729 VVB", tlsCase{model: 4, callerEnc: "srtp-mand", calleeEnc: "srtp-mand", callerSRTP: true, calleeSRTP: true, user: "5000", agentsG729: true}, true, true},
		// DTLS-SRTP on one leg, SDES on the other, both directions: ccsbc
		// does the handshake on its media port and re-keys by SDES.
		{"model4 DTLS-SRTP caller to SDES agent", tlsCase{model: 4, callerEnc: "dtls_srtp", calleeEnc: "srtp-mand", callerSRTP: true, calleeSRTP: true, user: "1000", callerDTLS: true}, true, true},
		{"model4 SDES caller to DTLS-SRTP agent", tlsCase{model: 4, callerEnc: "srtp-mand", calleeEnc: "dtls_srtp", callerSRTP: true, calleeSRTP: true, user: "1000", calleeDTLS: true}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.callerToneHz, tc.calleeToneHz = 1000, 600
			l := startTLSLab(t, tc.tlsCase)
			l.call(t, tc.user, 3*time.Second)
			heard(t, "callee", l.callee, 1000)
			heard(t, "caller", l.caller, 600)
			for _, side := range []struct {
				name   string
				u      *lab.UA
				secure bool
			}{{"caller leg", l.caller, tc.callerSecure}, {"callee leg", l.callee, tc.calleeSecure}} {
				h, n := legEntropy(t, l.capMedia, side.u)
				if n < 50 {
					t.Errorf("%s: only %d packets from ccsbc", side.name, n)
				}
				// SRTP looks random (~8 bits/byte); a G.711 tone does not.
				if side.secure && h < 7.5 {
					t.Errorf("%s must be SRTP but its payload entropy is %.2f bits/byte", side.name, h)
				}
				if !side.secure && h > 6 {
					t.Errorf("%s must be plain RTP but its payload entropy is %.2f bits/byte", side.name, h)
				}
			}
			if tc.callerDTLS || tc.calleeDTLS {
				// The keys came from a DTLS handshake on ccsbc's media
				// port, authenticated by the SDP's fingerprint.
				if n := len(l.d.events("DTLS-SRTP keys installed")); n != 1 {
					t.Errorf("%d DTLS-SRTP handshakes finished, want 1", n)
				}
				if n := l.capMedia.Count("dtls.handshake.type == 1"); n == 0 {
					t.Errorf("no DTLS ClientHello crossed ccsbc's media ports")
				}
			}
			if tc.user == "5000" && len(l.d.events("whisper rerouted")) != 1 {
				t.Errorf("the whisper call was not rerouted to the G.729 VVB")
			}
			if enc := strings.Join(l.callee.MediaEncryption(), ","); !tc.calleeDTLS && tc.calleeSecure != strings.Contains(enc, "AES_CM") {
				t.Errorf("callee media encryption events %q", enc)
			}
			// The audit record names each leg's TLS version, peer
			// certificate and suite, and carries no key.
			var audit map[string]any
			for _, ev := range l.d.events("call") {
				if ev["logger"] == "audit" {
					audit = ev
				}
			}
			if audit == nil {
				t.Fatal("no audit record")
			}
			// The called number is the Request-URI user, unmasked by
			// default; the calling number is the caller's From user.
			if audit["called"] != tc.user || audit["calling"] == "" || audit["calling"] == nil {
				t.Errorf("audit numbers: calling %v called %v, want called %s", audit["calling"], audit["called"], tc.user)
			}
			for _, leg := range []struct {
				key    string
				secure bool
			}{{"inbound", tc.callerSecure}, {"outbound", tc.calleeSecure}} {
				a, _ := audit[leg.key].(map[string]any)
				if v, _ := a["tls_version"].(string); !strings.HasPrefix(v, "TLS1.") {
					t.Errorf("audit %s: tls_version %v", leg.key, a["tls_version"])
				}
				if c, _ := a["peer_certificate"].(string); !strings.Contains(c, "sha256:") {
					t.Errorf("audit %s: peer_certificate %v", leg.key, a["peer_certificate"])
				}
				if suite, _ := a["srtp_suite"].(string); leg.secure != (suite == "AES_CM_128_HMAC_SHA1_80") {
					t.Errorf("audit %s: srtp_suite %q, secure %v", leg.key, suite, leg.secure)
				}
				if a["policy"] == "" || a["media"] == "" {
					t.Errorf("audit %s lacks media/policy: %v", leg.key, a)
				}
			}
			// Keys never reach ccsbc's log, even at debug level.
			logs := l.d.logText()
			for _, u := range []*lab.UA{l.caller, l.callee} {
				for _, line := range strings.Split(u.Log(), "\n") {
					if i := strings.Index(line, "inline:"); i >= 0 {
						key := strings.FieldsFunc(line[i+7:], func(r rune) bool { return r == '|' || r == ' ' || r == '\r' })[0]
						if len(key) > 16 && strings.Contains(logs, key[:16]) {
							t.Errorf("SDES key material in ccsbc's log")
						}
					}
				}
			}
		})
	}
}

// TestSRTPRequiredNotAnswered: an agent leg that must be SRTP, to a phone
// that answers without it, fails the call with the reason in a Warning;
// nothing falls back to RTP.
func TestSRTPRequiredNotAnswered(t *testing.T) {
	needTool(t, "baresip", "tshark")
	l := startTLSLab(t, tlsCase{model: 4, callerEnc: "srtp-mand", calleeEnc: "", callerSRTP: true, calleeSRTP: true, user: "1000"})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := l.caller.Dial(fmt.Sprintf("sip:1000@127.0.0.1:%d", l.sip)); err != nil {
		t.Fatal(err)
	}
	ev, err := l.caller.WaitClosed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ev.Param, "488") && !strings.Contains(ev.Param, "Not Acceptable") {
		t.Errorf("caller's call closed with %q, want 488", ev.Param)
	}
	// Either ccsbc refused the phone's RTP/AVP answer (and says why), or
	// the phone refused ccsbc's RTP/SAVP offer (baresip without mediaenc
	// does): the call fails both ways, and never falls back to RTP.
	end := l.d.waitEvent("call end", 1, 10*time.Second)[0]
	if r, _ := end["reason"].(string); !strings.Contains(r, "SRTP") && !strings.Contains(r, "488") {
		t.Errorf("call end reason %q", r)
	}
	if ests := l.d.events("call answered"); len(ests) > 0 {
		// The callee answered RTP/AVP: ccsbc must have hung it up.
		if _, err := l.callee.WaitClosed(ctx); err != nil {
			t.Errorf("callee leg not torn down: %v", err)
		}
	}
	l.capMedia.Stop()
	if n := l.capMedia.Count("udp"); n > 20 {
		t.Errorf("%d media packets crossed ccsbc on a call that must not have media", n)
	}
}

// TestForgedMediaDropped: packets injected at ccsbc's media ports during an
// SRTP call from elsewhere are dropped and counted; the call's audio is
// unharmed.
func TestForgedMediaDropped(t *testing.T) {
	needTool(t, "baresip", "tshark")
	l := startTLSLab(t, tlsCase{model: 4, callerEnc: "srtp-mand", calleeEnc: "srtp-mand", callerSRTP: true, calleeSRTP: true, user: "1000", callerToneHz: 1000, calleeToneHz: 600})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := l.caller.Dial(fmt.Sprintf("sip:1000@127.0.0.1:%d", l.sip)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.caller.WaitEstablished(ctx); err != nil {
		t.Fatal(err)
	}
	// A stranger sprays RTP-looking packets at every port of the range.
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := make([]byte, 172)
	pkt[0], pkt[1] = 0x80, 0
	for round := 0; round < 20; round++ {
		for p := l.lo; p <= l.hi; p++ {
			_, _ = c.WriteTo(pkt, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = l.caller.Hangup()
	if _, err := l.callee.WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
	end := l.d.waitEvent("call end", 1, 5*time.Second)[0]
	dropped := legStats(end, "a", "drop_wrong_source") + legStats(end, "b", "drop_wrong_source")
	if dropped < 40 {
		t.Errorf("forged packets dropped: %v, want them counted", dropped)
	}
	heard(t, "callee", l.callee, 1000)
	heard(t, "caller", l.caller, 600)
}
