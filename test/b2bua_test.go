package test

import (
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const g711a = "/usr/share/sip-tester/g711a.pcap" // 7 s of PCMA, shipped by sip-tester

// sippLab is one loopback lab: ccsbc between a caller (CVP) and a callee
// (Unified CM), each on addresses of their own.
type sippLab struct {
	transport  string // udp or tcp
	sbcIP      string
	callerIP   string
	calleeIP   string
	sbc        int
	caller     int
	callee     int
	dead       int // a port where no peer listens
	inactivity string
}

func newLab(t *testing.T, transport string) *sippLab {
	return &sippLab{
		transport: transport, sbcIP: "127.0.0.1", callerIP: "127.0.0.1", calleeIP: "127.0.0.1",
		sbc: freePort(t), caller: freePort(t), callee: freePort(t), dead: freePort(t),
		inactivity: "30s",
	}
}

func (l *sippLab) config() string {
	lo, hi := mediaRange()
	return fmt.Sprintf(`model: 1
log: {level: debug}
listeners:
  - {transport: %[1]s, address: "%[2]s:%[3]d", allow: [127.0.0.0/8]}
media:
  bind: 127.0.0.1
  ports: %[4]d-%[5]d
  inactivity_timeout: %[6]s
peers:
  - {name: cvp, kind: cvp, address: "%[7]s:%[8]d", transport: %[1]s}
  - {name: cucm, kind: cucm, address: "%[9]s:%[10]d", transport: %[1]s}
  - {name: dead, kind: cucm, address: "127.0.0.1:%[11]d", transport: %[1]s}
routes:
  - {name: agents, user: 1xxx, to: cucm, leg: agent}
  - {name: nowhere, user: 7xxx, to: dead, leg: agent}
`, l.transport, l.sbcIP, l.sbc, lo, hi, l.inactivity, l.callerIP, l.caller, l.calleeIP, l.callee, l.dead)
}

// sippTransport is SIPp's flag for the lab's transport.
func (l *sippLab) sippTransport() []string {
	if l.transport == "tcp" {
		return []string{"-t", "t1"}
	}
	return []string{"-t", "u1"}
}

// uas starts SIPp as Unified CM with the given scenario, echoing RTP.
func (l *sippLab) uas(t *testing.T, scen string, extra ...string) *sipp {
	args := []string{"-sf", scenario(scen), "-i", l.calleeIP, "-p", strconv.Itoa(l.callee),
		"-mi", l.calleeIP, "-mp", strconv.Itoa(sippMediaPort(t)), "-m", "1", "-timeout", "40s"}
	args = append(args, l.sippTransport()...)
	p := startSIPp(t, "uas", append(args, extra...)...)
	time.Sleep(200 * time.Millisecond) // let it bind
	return p
}

// uac starts SIPp as CVP calling user through ccsbc.
func (l *sippLab) uac(t *testing.T, scen, user string, extra ...string) *sipp {
	args := []string{fmt.Sprintf("%s:%d", l.sbcIP, l.sbc), "-sf", scenario(scen), "-i", l.callerIP,
		"-p", strconv.Itoa(l.caller), "-mi", l.callerIP, "-mp", strconv.Itoa(sippMediaPort(t)),
		"-s", user, "-m", "1", "-timeout", "40s", "-timeout_error"}
	args = append(args, l.sippTransport()...)
	return startSIPp(t, "uac", append(args, extra...)...)
}

var pcma = []string{"-key", "pt", "8", "-key", "codec", "PCMA"}

func keys(extra ...string) []string { return append(append([]string{}, pcma...), extra...) }

// TestAnsweredCall places a call over UDP and over TCP: CVP plays audio,
// Unified CM echoes it, CVP hangs up. Both legs must carry RTP both ways.
func TestAnsweredCall(t *testing.T) {
	needTool(t, "sipp")
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			l := newLab(t, tr)
			d := startCCSBC(t, l.config())
			uas := l.uas(t, "uas.xml", keys("-rtp_echo")...)
			uac := l.uac(t, "uac.xml", "1000", keys("-d", "3000", "-key", "pcap", g711a)...)
			if code := uac.wait(t, 30*time.Second); code != 0 {
				t.Fatalf("caller: SIPp exit %d", code)
			}
			if code := uas.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("callee: SIPp exit %d", code)
			}
			end := d.waitEvent("call end", 1, 5*time.Second)[0]
			if r := end["reason"]; r != "BYE from cvp" {
				t.Errorf("call end reason %q, want BYE from cvp", r)
			}
			// 3 s of 30 ms packets is ~100 each way; allow for start-up.
			for _, k := range []struct{ side, key string }{{"a", "packets_in"}, {"b", "packets_out"}, {"b", "packets_in"}, {"a", "packets_out"}} {
				if n := legStats(end, k.side, k.key); n < 60 {
					t.Errorf("leg %s %s = %v, want RTP flowing (>= 60)", k.side, k.key, n)
				}
			}
		})
	}
}

// TestByeFromCallee: the agent hangs up; the caller gets the BYE.
func TestByeFromCallee(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config())
	uas := l.uas(t, "uas_bye.xml", keys("-rtp_echo", "-d", "2000")...)
	uac := l.uac(t, "uac_wait_bye.xml", "1000", keys("-key", "pcap", g711a)...)
	if code := uac.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d", code)
	}
	if code := uas.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("callee: SIPp exit %d", code)
	}
	end := d.waitEvent("call end", 1, 5*time.Second)[0]
	if r := end["reason"]; r != "BYE from cucm" {
		t.Errorf("call end reason %q, want BYE from cucm", r)
	}
}

// TestCancelBeforeAnswer: the caller gives up while the agent phone rings;
// ccsbc answers 487 and cancels the outbound INVITE.
func TestCancelBeforeAnswer(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config())
	uas := l.uas(t, "uas_ring.xml")
	uac := l.uac(t, "uac_cancel.xml", "1000", keys("-d", "500")...)
	if code := uac.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d", code)
	}
	if code := uas.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("callee: SIPp exit %d (did it get the CANCEL?)", code)
	}
	if !strings.Contains(uas.messages(), "CANCEL sip:") {
		t.Errorf("callee never received a CANCEL")
	}
	end := d.waitEvent("call end", 1, 10*time.Second)[0]
	if r, _ := end["reason"].(string); !strings.Contains(r, "cancelled") {
		t.Errorf("call end reason %q, want cancelled", r)
	}
}

// TestReinviteHoldResume: the caller holds and resumes; both re-INVITEs
// cross ccsbc and audio flows again afterwards.
func TestReinviteHoldResume(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config())
	uas := l.uas(t, "uas_reinvite.xml", keys("-rtp_echo")...)
	uac := l.uac(t, "uac_reinvite.xml", "1000", keys("-d", "1500", "-key", "pcap", g711a)...)
	if code := uac.wait(t, 40*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d", code)
	}
	if code := uas.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("callee: SIPp exit %d", code)
	}
	re := d.waitEvent("re-INVITE", 2, 5*time.Second)
	for _, ev := range re {
		if ev["code"] != float64(200) {
			t.Errorf("re-INVITE answered %v", ev["code"])
		}
	}
	msgs := uas.messages()
	if !strings.Contains(msgs, "a=sendonly") {
		t.Errorf("callee never saw the hold (a=sendonly)")
	}
	end := d.waitEvent("call end", 1, 5*time.Second)[0]
	if n := legStats(end, "b", "packets_in"); n < 60 {
		t.Errorf("echoed packets on the callee leg = %v, want audio both ways", n)
	}
}

// TestNoRoute: a number no route matches gets 404 with a Warning.
func TestNoRoute(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config())
	uac := l.uac(t, "uac_expect.xml", "9999", keys("-key", "expect", "404")...)
	if code := uac.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d, want the 404", code)
	}
	if !strings.Contains(uac.messages(), `Warning: 399 ccsbc "no route for 9999"`) {
		t.Errorf("404 without the Warning that says why")
	}
	d.waitEvent("call rejected", 1, 2*time.Second)
}

// TestDeadPeer: a peer that does not answer at all fails the call with 503
// and a Warning, within ccsbc's peer response timeout, over UDP (silence)
// and TCP (connection refused).
func TestDeadPeer(t *testing.T) {
	needTool(t, "sipp")
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			l := newLab(t, tr)
			startCCSBC(t, l.config())
			start := time.Now()
			uac := l.uac(t, "uac_expect.xml", "7000", keys("-key", "expect", "503")...)
			if code := uac.wait(t, 20*time.Second); code != 0 {
				t.Fatalf("caller: SIPp exit %d, want 503", code)
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("503 took %v", el)
			}
			if !strings.Contains(uac.messages(), `Warning: 399 ccsbc "peer dead`) {
				t.Errorf("503 without a Warning naming the peer:\n%s", uac.messages())
			}
		})
	}
}

// sendUDP sends one datagram to addr and returns the responses that come
// back within wait.
func sendUDP(t *testing.T, addr, msg string, wait time.Duration) []string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ua, _ := net.ResolveUDPAddr("udp", addr)
	local := c.LocalAddr().String()
	if _, err := c.WriteTo([]byte(strings.ReplaceAll(msg, "LOCAL", local)), ua); err != nil {
		t.Fatal(err)
	}
	var out []string
	buf := make([]byte, 65535)
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return out
		}
		out = append(out, string(buf[:n]))
	}
}

// TestMalformedRequests: bad input gets a clear answer, never a crash, and
// calls keep working afterwards.
func TestMalformedRequests(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config())
	addr := fmt.Sprintf("127.0.0.1:%d", l.sbc)
	invite := func(branch, from, extra, body string) string {
		return "INVITE sip:1000@" + addr + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP LOCAL;rport;branch=z9hG4bK" + branch + "\r\n" +
			"From: <sip:cvp@127.0.0.1>" + from + "\r\nTo: <sip:1000@127.0.0.1>\r\n" +
			"Call-ID: bad-" + branch + "\r\nCSeq: 1 INVITE\r\nContact: <sip:cvp@LOCAL>\r\nMax-Forwards: 70\r\n" +
			extra + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	cases := []struct {
		name, msg, want, warning string
	}{
		{"no From tag", invite("a1", "", "", ""), "SIP/2.0 400 ", "From header has no tag"},
		{"CSeq method mismatch", strings.Replace(invite("a2", ";tag=1", "", ""), "CSeq: 1 INVITE", "CSeq: 1 BYE", 1), "SIP/2.0 400 ", "CSeq method"},
		{"Max-Forwards 0", strings.Replace(invite("a3", ";tag=1", "", ""), "Max-Forwards: 70", "Max-Forwards: 0", 1), "SIP/2.0 483 ", "Max-Forwards"},
		{"SDP garbage", invite("a4", ";tag=1", "Content-Type: application/sdp\r\n", "v=0\r\nthis is not sdp\r\n"), "SIP/2.0 488 ", "malformed SDP"},
		{"unsupported extension", invite("a5", ";tag=1", "Require: 100rel, precondition\r\n", ""), "SIP/2.0 420 ", "does not support precondition"},
		{"SDES over UDP", invite("a6", ";tag=1", "Content-Type: application/sdp\r\n",
			"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n"+
				"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"), "SIP/2.0 488 ", "SDES keys offered over a transport other than TLS"},
		{"in-dialog BYE for no dialog", "BYE sip:x@" + addr + " SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;rport;branch=z9hG4bKb1\r\n" +
			"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: nope\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", "SIP/2.0 481 ", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := sendUDP(t, addr, tc.msg, 2*time.Second)
			var final string
			for _, r := range got {
				if !strings.HasPrefix(r, "SIP/2.0 100 ") {
					final = r
				}
			}
			if !strings.HasPrefix(final, tc.want) {
				t.Fatalf("got %q, want %q", firstLine(final), tc.want)
			}
			if tc.warning != "" && !strings.Contains(final, "Warning: 399 ccsbc") || !strings.Contains(final, tc.warning) {
				t.Errorf("answer lacks a Warning saying %q:\n%s", tc.warning, final)
			}
		})
	}
	// Garbage that is not SIP at all is dropped; it does not kill anything.
	for _, junk := range []string{"\x00\x01\x02", "INVITE\r\n\r\n", strings.Repeat("A", 9000), "SIP/2.0 200 OK\r\n\r\n"} {
		sendUDP(t, addr, junk, 50*time.Millisecond)
	}
	if strings.Contains(d.logText(), "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz") {
		t.Errorf("an SDES key reached the log")
	}
	// The daemon still places calls.
	uas := l.uas(t, "uas.xml", keys("-rtp_echo")...)
	uac := l.uac(t, "uac.xml", "1000", keys("-d", "500", "-key", "pcap", g711a)...)
	if code := uac.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("call after bad input: SIPp exit %d", code)
	}
	uas.wait(t, 10*time.Second)
}

func firstLine(s string) string {
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// TestMediaInactivity: when RTP stops on both legs, ccsbc ends the call
// with BYE to both sides.
func TestMediaInactivity(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	l.inactivity = "2s"
	d := startCCSBC(t, l.config())
	// The callee answers and waits for a BYE; the caller plays 7 s of
	// audio, then goes quiet and waits for a BYE as well.
	uas := l.uas(t, "uas.xml", keys()...)
	uac := l.uac(t, "uac_wait_bye.xml", "1000", keys("-key", "pcap", g711a)...)
	if code := uac.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d (no BYE from ccsbc?)", code)
	}
	if code := uas.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("callee: SIPp exit %d (no BYE from ccsbc?)", code)
	}
	end := d.waitEvent("call end", 1, 5*time.Second)[0]
	if r := end["reason"]; r != "media inactivity" {
		t.Errorf("call end reason %q, want media inactivity", r)
	}
	if n := legStats(end, "a", "packets_in"); n < 150 {
		t.Errorf("caller's audio: %v packets in, want the whole pcap before the timeout", n)
	}
}

// TestTopologyHiding: the caller (127.0.0.2) and the callee (127.0.0.3)
// each see only ccsbc (127.0.0.1): no address, Call-ID or tag of one side
// appears in any SIP message or SDP the other side receives.
func TestTopologyHiding(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	l.callerIP, l.calleeIP = "127.0.0.2", "127.0.0.3"
	d := startCCSBC(t, l.config())
	uas := l.uas(t, "uas.xml", keys("-rtp_echo")...)
	uac := l.uac(t, "uac.xml", "1000", keys("-d", "1000", "-key", "pcap", g711a)...)
	if code := uac.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d", code)
	}
	uas.wait(t, 10*time.Second)
	end := d.waitEvent("call end", 1, 5*time.Second)[0]
	inCallID, _ := end["call_id"].(string)
	outCallID, _ := end["out_call_id"].(string)
	if inCallID == "" || outCallID == "" || inCallID == outCallID {
		t.Fatalf("call ids: in %q out %q", inCallID, outCallID)
	}
	calleeSaw := received(uas.messages())
	callerSaw := received(uac.messages())
	if calleeSaw == "" || callerSaw == "" {
		t.Fatal("no received messages in SIPp traces")
	}
	for _, leak := range []string{"127.0.0.2", inCallID, "lab-uac", "ccsbc-lab uac"} {
		if strings.Contains(calleeSaw, leak) {
			t.Errorf("callee received %q from the caller's side:\n%s", leak, calleeSaw)
		}
	}
	for _, leak := range []string{"127.0.0.3", outCallID, "lab-uas"} {
		if strings.Contains(callerSaw, leak) {
			t.Errorf("caller received %q from the callee's side:\n%s", leak, callerSaw)
		}
	}
}

// received keeps the messages SIPp received from its trace.
func received(trace string) string {
	var b strings.Builder
	for _, block := range strings.Split(trace, "-----------------------------------------------") {
		if strings.Contains(block, "message received") {
			b.WriteString(block)
		}
	}
	return b.String()
}

// TestTLSPeerVerificationFails: a TLS peer whose certificate does not match
// the pinned fingerprint fails the call with 503 and a Warning, nothing is
// written to it, and ccsbc does not fall back to UDP or TCP.
func TestTLSPeerVerificationFails(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	tlsPort := freePort(t)
	cert := selfSigned(t)
	ln, err := tls.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				got <- string(buf[:n])
			}()
		}
	}()
	// A downgrade would show up as SIP on UDP or plain TCP at the same port.
	udp, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", tlsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	lo, hi := mediaRange()
	cfg := fmt.Sprintf(`model: 1
listeners:
  - {transport: udp, address: "127.0.0.1:%d"}
  - {transport: tls, address: "127.0.0.1:%d"}
media: {bind: 127.0.0.1, ports: %d-%d}
peers:
  - {name: cvp, address: "127.0.0.1:%d", transport: udp}
  - {name: cucm, address: "127.0.0.1:%d", transport: tls, verify: fingerprint, fingerprint: "%s"}
routes:
  - {user: 1xxx, to: cucm, leg: agent}
`, l.sbc, freePort(t), lo, hi, l.caller, tlsPort, strings.Repeat("ab", 32))
	d := startCCSBC(t, cfg)
	uac := l.uac(t, "uac_expect.xml", "1000", keys("-key", "expect", "503")...)
	if code := uac.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d, want 503", code)
	}
	if !strings.Contains(uac.messages(), "does not match") && !strings.Contains(uac.messages(), "pinned") {
		t.Errorf("503 without a Warning about the certificate:\n%s", received(uac.messages()))
	}
	select {
	case s := <-got:
		if strings.Contains(s, "INVITE") {
			t.Errorf("ccsbc wrote the INVITE to an unverified peer")
		}
	case <-time.After(time.Second):
	}
	_ = udp.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, _, err := udp.ReadFrom(make([]byte, 2048)); err == nil {
		t.Errorf("ccsbc fell back to UDP: %d bytes arrived", n)
	}
	_ = d
}

// TestSourceNotAllowed: a source outside a listener's allow list gets no
// answer on UDP and a closed connection on TCP; allowed sources still do.
func TestSourceNotAllowed(t *testing.T) {
	needTool(t, "sipp")
	port := freePort(t)
	lo, hi := mediaRange()
	cfg := fmt.Sprintf(`model: 1
listeners:
  - {transport: udp, address: "127.0.0.1:%[1]d", allow: [127.0.0.2/32]}
  - {transport: tcp, address: "127.0.0.1:%[1]d", allow: [127.0.0.2/32]}
media: {bind: 127.0.0.1, ports: %d-%d}
peers:
  - {name: cucm, address: "127.0.0.1:%d", transport: udp}
routes:
  - {user: 1xxx, to: cucm, leg: agent}
`, port, lo, hi, freePort(t))
	startCCSBC(t, cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	options := "OPTIONS sip:ping@" + addr + " SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;rport;branch=z9hG4bKopt%s\r\n" +
		"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: opt-%s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	// From 127.0.0.1: not in the list, no answer.
	if got := sendUDP(t, addr, fmt.Sprintf(options, "a", "a"), time.Second); len(got) != 0 {
		t.Errorf("a refused source got an answer: %q", firstLine(got[0]))
	}
	// From 127.0.0.2: answered.
	c, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ua, _ := net.ResolveUDPAddr("udp", addr)
	msg := strings.ReplaceAll(fmt.Sprintf(options, "b", "b"), "LOCAL", c.LocalAddr().String())
	c.WriteTo([]byte(msg), ua)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	if n, _, err := c.ReadFrom(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
		t.Errorf("allowed source: %v %q", err, buf[:n])
	}
	// TCP from 127.0.0.1: accepted by the kernel, closed by ccsbc at once.
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.Write([]byte(strings.ReplaceAll(fmt.Sprintf(options, "c", "c"), "UDP", "TCP")))
	tc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := tc.Read(buf); err == nil {
		t.Errorf("refused TCP source got %q", buf[:n])
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("refused TCP connection left open")
	}
}

// TestExtraMediaAddress: with media.extra_addresses each address has the
// whole port range, so a range that holds one call holds two calls at once
// on two addresses. The callee is offered the second address in c= (what
// it sends to), and RTP flows both ways on both calls.
func TestExtraMediaAddress(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	lo, _ := mediaRange()
	cfg := regexp.MustCompile(`ports: \d+-\d+`).ReplaceAllString(l.config(), fmt.Sprintf("ports: %d-%d", lo, lo+3))
	cfg = strings.Replace(cfg, "  bind: 127.0.0.1\n", "  bind: 127.0.0.1\n  extra_addresses: [{bind: 127.0.0.2}]\n", 1)
	d := startCCSBC(t, cfg)
	if c := d.waitEvent("media capacity (calls with one audio stream)", 1, 5*time.Second)[0]; c["calls"] != 2.0 {
		t.Errorf("capacity logged %v, want 2 calls (one per address)", c)
	}
	two := []string{"-m", "2", "-l", "2"}
	uas := l.uas(t, "uas.xml", keys(append([]string{"-rtp_echo"}, two...)...)...)
	uac := l.uac(t, "uac.xml", "1000", keys(append([]string{"-d", "3000", "-key", "pcap", g711a}, two...)...)...)
	if code := uac.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d\n%s", code, tail(received(uac.messages()), 2000))
	}
	if code := uas.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("callee: SIPp exit %d", code)
	}
	if n := strings.Count(uas.messages(), "c=IN IP4 127.0.0.2"); n < 2 {
		t.Errorf("the callee was offered 127.0.0.2 in %d INVITEs, want 2:\n%s", n, tail(received(uas.messages()), 3000))
	}
	for _, end := range d.waitEvent("call end", 2, 5*time.Second) {
		for _, k := range []struct{ side, key string }{{"a", "packets_in"}, {"b", "packets_out"}, {"b", "packets_in"}, {"a", "packets_out"}} {
			if n := legStats(end, k.side, k.key); n < 60 {
				t.Errorf("call %v: leg %s %s = %v, want RTP flowing (>= 60)", end["call_id"], k.side, k.key, n)
			}
		}
	}
}
