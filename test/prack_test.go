package test

import (
	"strings"
	"testing"
	"time"
)

// TestReliableProvisionals: 100rel (RFC 3262) on each leg independently. A
// caller that requires it gets every 18x reliably and its PRACK answered;
// a callee that sends a reliable 183 gets ccsbc's PRACK; the call is then
// answered and carries media both ways.
func TestReliableProvisionals(t *testing.T) {
	needTool(t, "sipp")
	for _, tc := range []struct {
		name, uac, uas string
	}{
		{"both legs 100rel, early media", "uac_100rel.xml", "uas_100rel.xml"},
		{"caller requires 100rel, callee plain", "uac_100rel.xml", "uas.xml"},
		{"caller plain, callee sends reliable 183", "uac.xml", "uas_100rel.xml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, "udp")
			d := startCCSBC(t, l.config())
			uas := l.uas(t, tc.uas, keys("-rtp_echo")...)
			uac := l.uac(t, tc.uac, "1000", keys("-d", "2000", "-key", "pcap", g711a)...)
			if code := uac.wait(t, 30*time.Second); code != 0 {
				t.Fatalf("caller: SIPp exit %d\n%s", code, tail(d.logText(), 3000))
			}
			if code := uas.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("callee: SIPp exit %d\n%s", code, tail(d.logText(), 3000))
			}
			end := d.waitEvent("call end", 1, 5*time.Second)[0]
			if r := end["reason"]; r != "BYE from cvp" {
				t.Errorf("call end reason %q, want BYE from cvp", r)
			}
			for _, k := range []struct{ side, key string }{{"a", "packets_in"}, {"b", "packets_out"}, {"b", "packets_in"}, {"a", "packets_out"}} {
				if n := legStats(end, k.side, k.key); n < 40 {
					t.Errorf("leg %s %s = %v, want RTP flowing (>= 40)", k.side, k.key, n)
				}
			}
		})
	}
}

// TestNoPRACK: a caller that requires 100rel and never sends PRACK gets the
// 18x retransmitted, then 504 after 64*T1 (RFC 3262 §3); the callee, still
// ringing, is cancelled. Takes about 33 s; it also shows that a call that
// rings without media longer than the inactivity timeout (30 s in the lab)
// is not torn down: that timeout runs from the answer.
func TestNoPRACK(t *testing.T) {
	needTool(t, "sipp")
	if testing.Short() {
		t.Skip("64*T1 wait")
	}
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config())
	uas := l.uas(t, "uas_ring.xml")
	uac := l.uac(t, "uac_100rel_noprack.xml", "1000", keys()...)
	if code := uac.wait(t, 45*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d", code)
	}
	if code := uas.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("callee was not cancelled: SIPp exit %d", code)
	}
	end := d.waitEvent("call end", 1, 5*time.Second)[0]
	if r, _ := end["reason"].(string); !strings.Contains(r, "no PRACK") {
		t.Errorf("call end reason %q, want no PRACK", r)
	}
	// The reliable 180 was retransmitted (T1, 2*T1, ...) while unacknowledged.
	if n := strings.Count(uac.messages(), "SIP/2.0 180 "); n < 4 {
		t.Errorf("the caller received %d copies of the reliable 180, want retransmissions (>= 4)", n)
	}
}
