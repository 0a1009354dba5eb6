package test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccsbc/ccsbc/admin"
	"github.com/ccsbc/ccsbc/policy"
	"github.com/ccsbc/ccsbc/test/lab"
)

// dialerLab is ccsbc in model 3 or 4 over TLS between three baresips: the
// Outbound Option dialer (peer "dialer", plain RTP: it cannot do SRTP), an
// agent phone behind Unified CM (peer "cucm", user 1000, declared
// SRTP-capable, SDES offered but optional) and a VVB (peer "vvb", user
// 2000: RTP in model 3, which leaves the IVR leg plain; SDES in model 4),
// each sending its own tone.
type dialerLab struct {
	sip                   int
	transport             string // of ccsbc's listener and the UAs: tls, or udp
	lo, hi                int
	dialer, agent, target *lab.UA
	d                     *daemon
	model                 int
	admin, token          string
	capMedia              *lab.Capture
}

const (
	dialerHz = 1000.0
	agentHz  = 600.0
	targetHz = 800.0
)

// targetAnswer is the VVB's baresip answer mode: "auto", or "manual" to
// leave the transfer ringing until the test refuses it.
func startDialerLab(t *testing.T, model int, targetAnswer string) *dialerLab {
	t.Helper()
	l := &dialerLab{sip: lab.FreePort(t), model: model, transport: "tls"}
	l.lo, l.hi = mediaRange()
	l.dialer = lab.Baresip(t, lab.BaresipOptions{User: "dialer", ToneHz: dialerHz, Name: "dialer"})
	l.agent = lab.Baresip(t, lab.BaresipOptions{User: "1000", MediaEnc: "srtp", ToneHz: agentHz, Name: "agent"})
	targetEnc := ""
	if model == 4 {
		targetEnc = "srtp-mand"
	}
	l.target = lab.Baresip(t, lab.BaresipOptions{User: "2000", MediaEnc: targetEnc, ToneHz: targetHz, Name: "target", AnswerMode: targetAnswer})
	token, _ := admin.NewToken()
	l.token = token
	pin := func(u *lab.UA) string { return u.Cert().Fingerprint }
	cfg := fmt.Sprintf(`model: %d
log: {level: debug}
listeners:
  - {transport: tls, address: "127.0.0.1:%d"}
media: {bind: 127.0.0.1, ports: %d-%d}
peers:
  - {name: dialer, kind: dialer, address: "%s", transport: tls, verify: fingerprint, fingerprint: "%s"}
  - {name: cucm, kind: cucm, address: "%s", transport: tls, verify: fingerprint, fingerprint: "%s", srtp: true}
  - {name: vvb, kind: vvb, address: "%s", transport: tls, verify: fingerprint, fingerprint: "%s", srtp: true}
routes:
  - {user: 1xxx, to: cucm, leg: agent}
  - {user: 2xxx, to: vvb, leg: ivr}
admin:
  listen: "127.0.0.1:0"
  tokens:
    - {name: test, sha256: %s, role: read}
`, model, l.sip, l.lo, l.hi, l.dialer.Addr(), pin(l.dialer), l.agent.Addr(), pin(l.agent), l.target.Addr(), pin(l.target), admin.HashToken(token))
	l.d = startCCSBC(t, cfg)
	l.admin = "http://" + l.d.adminAddr()
	l.capMedia = lab.StartCapture(t, "lo", fmt.Sprintf("udp portrange %d-%d", l.lo, l.hi))
	return l
}

// calls reads the admin API's /calls.
func (l *dialerLab) calls(t *testing.T) []admin.Call {
	t.Helper()
	code, body := get(t, l.admin+"/calls", l.token)
	var calls []admin.Call
	if err := json.Unmarshal([]byte(body), &calls); code != 200 || err != nil {
		t.Fatalf("/calls: %d %v %s", code, err, body)
	}
	return calls
}

// connect has the dialer call agent 1000 and waits until audio flows.
func (l *dialerLab) connect(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := l.dialer.Dial(fmt.Sprintf("sip:1000@127.0.0.1:%d", l.sip)); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*lab.UA{l.dialer, l.agent} {
		if _, err := u.WaitEstablished(ctx); err != nil {
			t.Fatalf("call not established: %v\n%s", err, tail(l.d.logText(), 3000))
		}
	}
}

// transfer has the dialer transfer its call to user (baresip's /transfer
// sends REFER in the dialog).
func (l *dialerLab) transfer(t *testing.T, user string) {
	t.Helper()
	if _, err := l.dialer.Command("transfer", fmt.Sprintf("sip:%s@127.0.0.1:%d;transport=%s", user, l.sip, l.transport)); err != nil {
		t.Fatal(err)
	}
}

// legPackets are one leg's relay counters from /calls.
func legPackets(c admin.Call, side string) admin.Leg {
	for _, lg := range c.Legs {
		if lg.Side == side {
			return lg
		}
	}
	return admin.Leg{}
}

// TestDialerTransferUpgradesAgentLeg is the dialer upgrade of the design
// guide: a call from the Outbound Option dialer to an agent is RTP on both
// legs while the dialer is connected; the dialer transfers it (REFER) to
// the VVB; ccsbc bridges the agent with the VVB, hangs up the dialer and
// re-INVITEs the agent leg to SRTP. Audio flows both ways before and
// after, and tshark sees the agent leg's payload turn from G.711 into SRTP.
// The VVB's new leg is RTP in model 3 and SRTP from its INVITE in model 4.
func TestDialerTransferUpgradesAgentLeg(t *testing.T) {
	needTool(t, "baresip", "tshark")
	for _, model := range []int{3, 4} {
		t.Run(fmt.Sprintf("model%d", model), func(t *testing.T) { testDialerUpgrade(t, model) })
	}
}

func testDialerUpgrade(t *testing.T, model int) {
	l := startDialerLab(t, model, "auto")
	vvbProt := policy.RTP
	if model == 4 {
		vvbProt = policy.SRTP
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.connect(t, ctx)
	time.Sleep(2 * time.Second)

	before := l.calls(t)
	if len(before) != 1 {
		t.Fatalf("/calls before the transfer: %+v", before)
	}
	in0, out0 := legPackets(before[0], admin.SideIn), legPackets(before[0], admin.SideOut)
	if in0.Peer != "dialer" || in0.Class != "dialer" || in0.Protection != "rtp" || out0.Peer != "cucm" || out0.Protection != "rtp" {
		t.Errorf("while the dialer is connected: in %+v, out %+v; want both legs RTP", in0, out0)
	}
	for _, lg := range []admin.Leg{in0, out0} {
		if lg.PacketsIn < 50 || lg.PacketsOut < 50 {
			t.Errorf("%s leg before the transfer: %d packets in, %d out: want audio both ways", lg.Side, lg.PacketsIn, lg.PacketsOut)
		}
	}

	transferAt := time.Now()
	l.transfer(t, "2000")
	if _, err := l.target.WaitEstablished(ctx); err != nil {
		t.Fatalf("target: %v\n%s", err, tail(l.d.logText(), 3000))
	}
	if _, err := l.dialer.WaitClosed(ctx); err != nil {
		t.Fatalf("dialer not hung up after its transfer: %v", err)
	}
	up := l.d.waitEvent("dialer upgrade", 1, 15*time.Second)[0]
	upgradedAt := eventTime(t, up)
	time.Sleep(3 * time.Second)

	after := l.calls(t)
	if len(after) != 1 {
		t.Fatalf("/calls after the transfer: %+v", after)
	}
	in1, out1 := legPackets(after[0], admin.SideIn), legPackets(after[0], admin.SideOut)
	if in1.Peer != "vvb" || in1.Protection != vvbProt || out1.Peer != "cucm" || out1.Protection != "srtp-sdes" || out1.Suite == "" {
		t.Errorf("after the transfer: in %+v, out %+v; want the VVB on %s and the agent on SRTP", in1, out1, vvbProt)
	}
	// Audio both ways on both legs since the first reading: three seconds
	// at 50 packets/s.
	for _, d := range []struct {
		name      string
		now, then admin.Leg
	}{{"VVB leg", in1, in0}, {"agent leg", out1, out0}} {
		if d.now.PacketsIn-d.then.PacketsIn < 100 || d.now.PacketsOut-d.then.PacketsOut < 100 {
			t.Errorf("%s after the transfer: %d packets in, %d out since before it", d.name, d.now.PacketsIn-d.then.PacketsIn, d.now.PacketsOut-d.then.PacketsOut)
		}
	}

	_ = l.agent.Hangup()
	if _, err := l.target.WaitClosed(ctx); err != nil {
		t.Fatalf("target: no hangup: %v", err)
	}
	end := l.d.waitEvent("call end", 1, 5*time.Second)[0]
	// The agent's last plain packets, in flight when the relay switched
	// to SRTP on its 200, fail authentication: a few, dropped and counted.
	if n := legStats(end, "b", "drop_auth_failed"); n > 10 {
		t.Errorf("%v SRTP authentication failures on the agent leg: %v", n, end)
	}
	var audit map[string]any
	for _, ev := range l.d.events("call") {
		if ev["logger"] == "audit" {
			audit = ev
		}
	}
	if tr := fmt.Sprint(audit["transfers"]); tr != "[dialer -> vvb]" {
		t.Errorf("audit record transfers %s, want [dialer -> vvb]", tr)
	}
	if out, _ := audit["outbound"].(map[string]any); out["media"] != "srtp-sdes" {
		t.Errorf("audit record's agent leg: %v", out)
	}
	l.agent.Stop()
	l.dialer.Stop()
	l.target.Stop()

	// What each party heard.
	heard(t, "dialer", l.dialer, agentHz)
	heard(t, "VVB", l.target, agentHz)
	agentHeard(t, l.agent, transferAt)

	if enc := strings.Join(l.agent.MediaEncryption(), ","); !strings.Contains(enc, "AES_CM") {
		t.Errorf("the agent's baresip reports no SRTP after the re-INVITE (CALL_MENC: %q)", enc)
	}

	// On the wire: the agent leg is G.711 before the transfer and SRTP
	// after the upgrade; the dialer's leg is G.711, the VVB's as policy
	// says.
	lo, hi := l.agent.RTPPorts()
	pre, post := l.entropySplit(t, fmt.Sprintf("udp.dstport>=%d && udp.dstport<=%d", lo, hi), transferAt, upgradedAt.Add(500*time.Millisecond))
	if pre.n < 50 || pre.h > 6 {
		t.Errorf("agent leg before the transfer: %d packets, entropy %.2f bits/byte: want plain RTP", pre.n, pre.h)
	}
	if post.n < 50 || post.h < 7.5 {
		t.Errorf("agent leg after the upgrade: %d packets, entropy %.2f bits/byte: want SRTP", post.n, post.h)
	}
	for _, leg := range []struct {
		name   string
		u      *lab.UA
		secure bool
	}{{"dialer", l.dialer, false}, {"VVB", l.target, model == 4}} {
		lo, hi := leg.u.RTPPorts()
		all, _ := l.entropySplit(t, fmt.Sprintf("udp.dstport>=%d && udp.dstport<=%d", lo, hi), time.Now(), time.Now())
		if all.n < 50 || (leg.secure && all.h < 7.5) || (!leg.secure && all.h > 6) {
			t.Errorf("leg to the %s: %d packets, entropy %.2f bits/byte: want SRTP=%v", leg.name, all.n, all.h, leg.secure)
		}
	}
}

// TestDialerTransferFails: while the transfer target rings the call goes on
// as it was (dialer and agent talking, RTP); when the target refuses, the
// dialer is told why in the final NOTIFY (message/sipfrag) and the agent
// leg is never touched. (baresip, as the dialer, then hangs up by itself:
// it ends its call after the final NOTIFY of its transfer, success or not.)
func TestDialerTransferFails(t *testing.T) {
	needTool(t, "baresip", "tshark")
	l := startDialerLab(t, 3, "manual")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := l.ringTarget(t, ctx)
	time.Sleep(2 * time.Second)
	during := l.calls(t)
	if len(before) != 1 || len(during) != 1 {
		t.Fatalf("/calls: before %+v during %+v", before, during)
	}
	for _, side := range []string{admin.SideIn, admin.SideOut} {
		b, a := legPackets(before[0], side), legPackets(during[0], side)
		if a.Peer != b.Peer || a.Protection != "rtp" || a.PacketsIn-b.PacketsIn < 50 || a.PacketsOut-b.PacketsOut < 50 {
			t.Errorf("%s leg while the target rings: %+v (before %+v): want the same peer, RTP, audio both ways", side, a, b)
		}
	}
	// baresip refuses an incoming call it is told to hang up with 486.
	if err := l.target.Hangup(); err != nil {
		t.Fatal(err)
	}
	failed := l.d.waitEvent("transfer failed", 1, 10*time.Second)[0]
	if code, _ := failed["code"].(float64); code != 486 {
		t.Errorf("transfer failed with %v, want the target's 486", failed)
	}
	// baresip 1.0 then hangs up (BYE) without a CALL_CLOSED event; the
	// agent sees the call end.
	if _, err := l.agent.WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
	end := l.d.waitEvent("call end", 1, 5*time.Second)[0]
	if r, _ := end["reason"].(string); r != "BYE from dialer" {
		t.Errorf("call end reason %q, want the dialer's own BYE", r)
	}
	if !strings.Contains(l.dialer.Log(), "SIP/2.0 486") {
		t.Errorf("the dialer was not told the target's 486 in a NOTIFY:\n%s", tail(l.dialer.Log(), 3000))
	}
	if strings.Contains(l.agent.Log(), "re-INVITE") || len(l.agent.MediaEncryption()) != 0 {
		t.Errorf("the agent leg was renegotiated although the transfer failed")
	}
	if len(l.d.events("transfer complete")) != 0 {
		t.Errorf("a failed transfer logged as complete")
	}
}

type entropy struct {
	h float64
	n int
}

// entropySplit measures the RTP payload entropy of the packets matching
// filter sent before t0 and after t1.
func (l *dialerLab) entropySplit(t *testing.T, filter string, t0, t1 time.Time) (pre, post entropy) {
	t.Helper()
	var a, b []byte
	for _, row := range l.capMedia.Fields(filter, "frame.time_epoch", "udp.payload") {
		if len(row) < 2 {
			continue
		}
		sec, err := strconv.ParseFloat(row[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		p := decodeHex(row[1])
		if len(p) <= 12 || p[1]&0x7f >= 64 { // RTP only; skip the header
			continue
		}
		switch {
		case at.Before(t0):
			a = append(a, p[12:]...)
			pre.n++
		case at.After(t1):
			b = append(b, p[12:]...)
			post.n++
		}
	}
	pre.h, post.h = lab.Entropy(a), lab.Entropy(b)
	return pre, post
}

func decodeHex(s string) []byte {
	s = strings.ReplaceAll(s, ":", "")
	out := make([]byte, len(s)/2)
	for i := range out {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil
		}
		out[i] = byte(v)
	}
	return out
}

// eventTime is the time of a ccsbc log event.
func eventTime(t *testing.T, ev map[string]any) time.Time {
	t.Helper()
	switch v := ev["ts"].(type) {
	case float64:
		return time.Unix(0, int64(v*1e9))
	case string:
		for _, layout := range []string{"2006-01-02T15:04:05.000Z0700", time.RFC3339Nano} {
			if at, err := time.Parse(layout, v); err == nil {
				return at
			}
		}
	}
	t.Fatalf("event without a time: %v", ev)
	return time.Time{}
}

// agentHeard checks the agent's recording: the dialer's tone before the
// transfer, the VVB's at the end.
func agentHeard(t *testing.T, agent *lab.UA, transferAt time.Time) {
	t.Helper()
	dec, _ := agent.Recordings()
	if len(dec) == 0 {
		t.Fatal("agent recorded nothing")
	}
	var all []int16
	rate := 8000
	for _, f := range dec {
		s, r, err := lab.ReadWAV(f)
		if err != nil {
			t.Fatal(err)
		}
		all, rate = append(all, s...), r
	}
	sec := func(d float64) int { return int(d * float64(rate)) }
	if len(all) < sec(4) {
		t.Fatalf("agent recorded %d samples", len(all))
	}
	first := lab.AnalyzeAudio(all[sec(0.5):sec(1.5)], rate)
	last := lab.AnalyzeAudio(all[len(all)-sec(2):len(all)-sec(0.3)], rate)
	for _, c := range []struct {
		what string
		a    lab.AudioStats
		hz   float64
	}{{"before the transfer (the dialer)", first, dialerHz}, {"after the transfer (the VVB)", last, targetHz}} {
		if c.a.Active < 0.5 || math.Abs(c.a.Freq-c.hz) > c.hz*0.1 {
			t.Errorf("agent heard %v %s, want a %v Hz tone", c.a, c.what, c.hz)
		}
	}
}

// ringTarget connects dialer and agent, has the dialer transfer the call
// to the VVB (2000) and waits until the VVB rings; it returns /calls as it
// was before the transfer.
func (l *dialerLab) ringTarget(t *testing.T, ctx context.Context) []admin.Call {
	t.Helper()
	l.connect(t, ctx)
	time.Sleep(time.Second)
	before := l.calls(t)
	l.transfer(t, "2000")
	if _, err := l.target.WaitEvent(ctx, "CALL_INCOMING"); err != nil {
		t.Fatalf("the transfer target was not called: %v\n%s", err, tail(l.d.logText(), 3000))
	}
	return before
}

// TestDialerTransferAbandoned: when the call ends while the transfer target
// still rings (here the agent hangs up), ccsbc cancels its INVITE to the
// target: the target stops ringing, and no leg is left up anywhere.
func TestDialerTransferAbandoned(t *testing.T) {
	needTool(t, "baresip", "tshark")
	l := startDialerLab(t, 3, "manual")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.ringTarget(t, ctx)
	if err := l.agent.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.target.WaitClosed(ctx); err != nil {
		t.Fatalf("the ringing target was not cancelled: %v\n%s", err, tail(l.target.Log(), 3000))
	}
	if !strings.Contains(l.target.Log(), "CANCEL") {
		t.Errorf("the target's call closed without a CANCEL:\n%s", tail(l.target.Log(), 3000))
	}
	failed := l.d.waitEvent("transfer failed", 1, 10*time.Second)[0]
	if code, _ := failed["code"].(float64); code != 487 {
		t.Errorf("transfer failed with %v, want 487 (the call ended)", failed)
	}
	if n := len(l.calls(t)); n != 0 {
		t.Errorf("/calls lists %d calls after the call ended", n)
	}
}

// TestDialerTransferAbandonedBeforeRinging: the call ends while the
// transfer target has not sent any response yet. ccsbc may not CANCEL
// before a provisional response (RFC 3261 section 9.1), so it waits for
// one and cancels then: the target is not left ringing, or answering, a
// call that has gone. Model 1 over UDP, so that SIPp can be the target and
// hold its 180 back.
func TestDialerTransferAbandonedBeforeRinging(t *testing.T) {
	needTool(t, "baresip", "sipp")
	l := &dialerLab{sip: lab.FreePort(t), model: 1, transport: "udp"}
	lo, hi := mediaRange()
	l.dialer = lab.Baresip(t, lab.BaresipOptions{User: "dialer", Transport: "udp", ToneHz: dialerHz, Name: "dialer"})
	l.agent = lab.Baresip(t, lab.BaresipOptions{User: "1000", Transport: "udp", ToneHz: agentHz, Name: "agent"})
	targetPort := freePort(t)
	// The target answers nothing for 3 s, then rings and expects a CANCEL.
	target := startSIPp(t, "target", "-sf", scenario("uas_ring.xml"), "-t", "u1", "-i", "127.0.0.1",
		"-p", strconv.Itoa(targetPort), "-d", "3000", "-m", "1", "-timeout", "30s")
	l.d = startCCSBC(t, fmt.Sprintf(`model: 1
log: {level: debug}
listeners:
  - {transport: udp, address: "127.0.0.1:%d"}
media: {bind: 127.0.0.1, ports: %d-%d}
peers:
  - {name: dialer, kind: dialer, address: "%s", transport: udp}
  - {name: cucm, kind: cucm, address: "%s", transport: udp}
  - {name: vvb, kind: vvb, address: "127.0.0.1:%d", transport: udp}
routes:
  - {user: 1xxx, to: cucm, leg: agent}
  - {user: 2xxx, to: vvb, leg: ivr}
`, l.sip, lo, hi, l.dialer.Addr(), l.agent.Addr(), targetPort))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.connect(t, ctx)
	l.transfer(t, "2000")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(target.messages(), "INVITE sip:2000") {
		if time.Now().After(deadline) {
			t.Fatalf("the transfer target was not called:\n%s", tail(l.d.logText(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := l.agent.Hangup(); err != nil {
		t.Fatal(err)
	}
	// SIPp exits 0 only once its 180 was answered by a CANCEL (and its 487
	// ACKed).
	if code := target.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("target: SIPp exit %d: the late-ringing target was not cancelled\n%s", code, tail(l.d.logText(), 3000))
	}
	failed := l.d.waitEvent("transfer failed", 1, 10*time.Second)[0]
	if code, _ := failed["code"].(float64); code != 487 {
		t.Errorf("transfer failed with %v, want 487 (the call ended)", failed)
	}
}
