package test

import (
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
