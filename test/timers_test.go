package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The session timer tests run with a 4 s interval, which config accepts
// (min_se down to 2 s, with a warning) so that refreshes and expiry show
// within seconds: ccsbc refreshes at 2 s; a session the peer should have
// refreshed expires at 4 - 4/3 ≈ 2.7 s (RFC 4028 §10).
const shortTimers = "session_timers: {session_expires: 4s, min_se: 2s}\n"

// receivedMessages splits a SIPp message trace into the messages SIPp
// received, in order.
func receivedMessages(trace string) []string {
	var out []string
	for _, block := range strings.Split(trace, "-----------------------------------------------") {
		if i := strings.Index(block, "message received"); i >= 0 {
			msg := block[i:]
			if j := strings.Index(msg, "\n"); j >= 0 {
				msg = strings.TrimSpace(msg[j+1:])
			}
			out = append(out, msg)
		}
	}
	return out
}

// startingWith keeps the messages whose first line starts with prefix.
func startingWith(msgs []string, prefix string) []string {
	var out []string
	for _, m := range msgs {
		if strings.HasPrefix(m, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// TestSessionTimerRefresh: ccsbc is the refresher on both legs and
// refreshes each on its own. The caller (SIPp without timer support) is
// given refresher=uas in the 200 and gets re-INVITEs with ccsbc's SDP,
// unchanged; the callee (SIPp with timers, refresher=uac in its 200,
// Allow: UPDATE) gets UPDATEs without a body. The caller hangs up after
// answering two refreshes, about 4 s in.
func TestSessionTimerRefresh(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config()+shortTimers)
	uas := l.uas(t, "uas_timer.xml", keys("-key", "se", "4")...)
	start := time.Now()
	uac := l.uac(t, "uac_refreshed.xml", "1000", keys("-recv_timeout", "8000")...)
	if code := uac.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d (refreshes missing or out of order?)", code)
	}
	if el := time.Since(start); el < 3*time.Second || el > 9*time.Second {
		t.Errorf("two refreshes at half of 4 s took %v, want about 4 s", el)
	}
	if code := uas.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("callee: SIPp exit %d", code)
	}

	// The caller's leg: ccsbc answered with itself as refresher, then
	// refreshed with re-INVITEs that the caller answered.
	caller := receivedMessages(uac.messages())
	ok := startingWith(caller, "SIP/2.0 200")
	if len(ok) == 0 || !strings.Contains(ok[0], "Session-Expires: 4;refresher=uas") || strings.Contains(ok[0], "Require: timer") {
		t.Errorf("caller's 200: want Session-Expires: 4;refresher=uas and no Require: timer:\n%s", first(ok))
	}
	reinvites := startingWith(caller, "INVITE ")
	if len(reinvites) != 2 {
		t.Errorf("caller received %d refresh re-INVITEs, want 2", len(reinvites))
	}
	for _, r := range reinvites {
		if !strings.Contains(r, "Session-Expires: 4;refresher=uac") || !strings.Contains(r, "o=ccsbc ") {
			t.Errorf("refresh re-INVITE without Session-Expires or ccsbc's SDP:\n%s", r)
		}
	}

	// The callee's leg: ccsbc asked for timers, was made refresher and
	// refreshed with UPDATE.
	callee := receivedMessages(uas.messages())
	invites := startingWith(callee, "INVITE ")
	if len(invites) != 1 {
		t.Fatalf("callee received %d INVITEs, want 1 (refreshes go by UPDATE)", len(invites))
	}
	for _, h := range []string{"Supported: timer", "Session-Expires: 4", "Min-SE: 2"} {
		if !strings.Contains(invites[0], h) {
			t.Errorf("ccsbc's INVITE lacks %q:\n%s", h, invites[0])
		}
	}
	updates := startingWith(callee, "UPDATE ")
	if len(updates) < 1 {
		t.Errorf("callee received no UPDATE refresh")
	}
	for _, u := range updates {
		if !strings.Contains(u, "Session-Expires: 4;refresher=uac") || strings.Contains(u, "Content-Type") {
			t.Errorf("UPDATE refresh: want Session-Expires and no body:\n%s", u)
		}
	}
	end := d.waitEvent("call end", 1, 5*time.Second)[0]
	if r := end["reason"]; r != "BYE from cvp" {
		t.Errorf("call end reason %q, want BYE from cvp", r)
	}
	if n := len(d.events("session refresh failed")) + len(d.events("session expired")); n != 0 {
		t.Errorf("%d refresh failures or expiries logged", n)
	}
}

func first(msgs []string) string {
	if len(msgs) == 0 {
		return "(none)"
	}
	return msgs[0]
}

// TestSessionTimerExpiry: the caller asks to be the refresher and then
// never refreshes. When its session runs out (4 s minus 4/3 s after the
// answer) ccsbc sends BYE on both legs, says why in the log and in the
// audit record, whose numbers are masked as configured.
func TestSessionTimerExpiry(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config()+shortTimers+"audit: {mask_numbers: true, keep_digits: 2}\n")
	uas := l.uas(t, "uas_timer.xml", keys("-key", "se", "4")...)
	start := time.Now()
	uac := l.uac(t, "uac_timer.xml", "1000", keys("-key", "se", "4", "-recv_timeout", "10000")...)
	if code := uac.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d (no BYE from ccsbc?)", code)
	}
	if el := time.Since(start); el < 2500*time.Millisecond || el > 7*time.Second {
		t.Errorf("BYE after %v, want about 2.7 s after the answer", el)
	}
	if code := uas.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("callee: SIPp exit %d (no BYE from ccsbc?)", code)
	}
	ok := startingWith(receivedMessages(uac.messages()), "SIP/2.0 200")
	if len(ok) == 0 || !strings.Contains(ok[0], "Session-Expires: 4;refresher=uac") || !strings.Contains(ok[0], "Require: timer") {
		t.Errorf("caller's 200: want Session-Expires: 4;refresher=uac with Require: timer:\n%s", first(ok))
	}
	if n := len(startingWith(receivedMessages(uac.messages()), "BYE ")); n != 1 {
		t.Errorf("caller received %d BYEs, want 1", n)
	}
	if n := len(startingWith(receivedMessages(uas.messages()), "BYE ")); n != 1 {
		t.Errorf("callee received %d BYEs, want 1", n)
	}

	const want = "session timer expired: no refresh from cvp within 4s"
	end := d.waitEvent("call end", 1, 5*time.Second)[0]
	if r := end["reason"]; r != want {
		t.Errorf("call end reason %q, want %q", r, want)
	}
	if ev := d.events("session expired"); len(ev) != 1 || ev[0]["peer"] != "cvp" {
		t.Errorf("session expired events: %v", ev)
	}
	var audit map[string]any
	for _, ev := range d.events("call") {
		if ev["logger"] == "audit" {
			audit = ev
		}
	}
	if audit == nil {
		t.Fatal("no audit record")
	}
	if audit["result"] != want {
		t.Errorf("audit result %q, want %q", audit["result"], want)
	}
	// SIPp's From user is "uac"; the called number is 1000.
	if audit["calling"] != "*ac" || audit["called"] != "**00" {
		t.Errorf("audit numbers calling %v called %v, want *ac and **00 (mask_numbers, keep_digits 2)", audit["calling"], audit["called"])
	}
	if strings.Contains(fmt.Sprint(audit), "1000") {
		t.Errorf("the audit record holds the unmasked called number: %v", audit)
	}
}

// TestSessionTimerTooSmall: an INVITE asking for less than min_se gets
// 422 with ccsbc's Min-SE, and no call starts; Require: timer is accepted.
func TestSessionTimerTooSmall(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config()+shortTimers)
	addr := fmt.Sprintf("127.0.0.1:%d", l.sbc)
	msg := "INVITE sip:1000@" + addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP LOCAL;rport;branch=z9hG4bKse1\r\n" +
		"From: <sip:cvp@127.0.0.1>;tag=1\r\nTo: <sip:1000@127.0.0.1>\r\n" +
		"Call-ID: se-small\r\nCSeq: 1 INVITE\r\nContact: <sip:cvp@LOCAL>\r\nMax-Forwards: 70\r\n" +
		"Supported: timer\r\nRequire: timer\r\nSession-Expires: 1;refresher=uac\r\nContent-Length: 0\r\n\r\n"
	var final string
	for _, r := range sendUDP(t, addr, msg, 2*time.Second) {
		if !strings.HasPrefix(r, "SIP/2.0 100 ") {
			final = r
		}
	}
	if !strings.HasPrefix(final, "SIP/2.0 422 ") || !strings.Contains(final, "Min-SE: 2\r\n") {
		t.Fatalf("want 422 with Min-SE: 2, got:\n%s", final)
	}
	if len(d.events("call start")) != 0 {
		t.Errorf("a call started")
	}
}

// TestSessionTimerPeerRefreshes: the caller is the refresher and refreshes
// with an UPDATE without body and a re-INVITE repeating its SDP, 1.5 s
// apart. Each restarts the caller leg's timer (without them the session
// would expire 2.7 s after the answer; the call lasts 4.5 s), ccsbc answers
// both itself, and neither reaches the callee: its leg has a timer of its
// own (60 s, so nothing is due there during the test).
func TestSessionTimerPeerRefreshes(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config()+shortTimers)
	uas := l.uas(t, "uas_timer.xml", keys("-key", "se", "60")...)
	uac := l.uac(t, "uac_refresher.xml", "1000", keys("-key", "se", "4")...)
	if code := uac.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d (a refresh refused, or the session expired?)", code)
	}
	if code := uas.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("callee: SIPp exit %d", code)
	}
	caller := receivedMessages(uac.messages())
	oks := startingWith(caller, "SIP/2.0 200")
	if len(oks) != 4 { // INVITE, UPDATE, re-INVITE, BYE
		t.Fatalf("caller got %d 200s, want 4", len(oks))
	}
	for i, ok := range oks[1:3] {
		if !strings.Contains(ok, "Session-Expires: 4;refresher=uac") {
			t.Errorf("200 to refresh %d lacks Session-Expires: 4;refresher=uac:\n%s", i+1, ok)
		}
	}
	if !strings.Contains(oks[2], "o=ccsbc ") || !strings.Contains(oks[0], "o=ccsbc ") ||
		sdpOrigin(oks[2]) != sdpOrigin(oks[0]) {
		t.Errorf("the re-INVITE refresh was not answered with ccsbc's unchanged SDP (o= %q, then %q)", sdpOrigin(oks[0]), sdpOrigin(oks[2]))
	}
	callee := receivedMessages(uas.messages())
	if n, u := len(startingWith(callee, "INVITE ")), len(startingWith(callee, "UPDATE ")); n != 1 || u != 0 {
		t.Errorf("callee received %d INVITEs and %d UPDATEs, want 1 and 0: refreshes are not relayed", n, u)
	}
	if end := d.waitEvent("call end", 1, 5*time.Second)[0]; end["reason"] != "BYE from cvp" {
		t.Errorf("call end reason %q, want BYE from cvp", end["reason"])
	}
	if n := len(d.events("re-INVITE")); n != 0 {
		t.Errorf("%d re-INVITEs relayed", n)
	}
}

// sdpOrigin is the o= line of a SIP message's SDP.
func sdpOrigin(msg string) string {
	for _, line := range strings.Split(msg, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "o=") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
