package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ccsbc/ccsbc/test/lab"
)

// TestPeerFailover: the first peer of a route stops answering OPTIONS; new
// calls go to the second within the detection time (keepalive ×
// down_after), and return to the first once it answers again.
func TestPeerFailover(t *testing.T) {
	needTool(t, "sipp", "baresip")
	ua := func(name string, port int) *lab.UA {
		return lab.Baresip(t, lab.BaresipOptions{User: "1000", Transport: "udp", Codecs: []string{"pcma"}, Name: name, Port: port})
	}
	first, second := ua("cucm1", 0), ua("cucm2", 0)
	l := newLab(t, "udp")
	lo, hi := mediaRange()
	cfg := fmt.Sprintf(`model: 1
listeners:
  - {transport: udp, address: "127.0.0.1:%d"}
media: {bind: 127.0.0.1, ports: %d-%d}
peers:
  - {name: cvp, address: "127.0.0.1:%d", transport: udp}
  - {name: cucm1, address: "127.0.0.1:%d", transport: udp, keepalive: 300ms, down_after: 2}
  - {name: cucm2, address: "127.0.0.1:%d", transport: udp, keepalive: 300ms, down_after: 2}
routes:
  - {user: 1xxx, to: cucm1, failover: [cucm2], leg: agent}
`, l.sbc, lo, hi, l.caller, first.Port(), second.Port())
	d := startCCSBC(t, cfg)

	call := func(n int) {
		t.Helper()
		l.caller = freePort(t)
		uac := l.uac(t, "uac.xml", "1000", keys("-d", "500", "-key", "pcap", g711a)...)
		if code := uac.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("call %d: SIPp exit %d", n, code)
		}
		d.waitEvent("call end", n, 5*time.Second)
	}
	established := func(u *lab.UA, what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := u.WaitEstablished(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	call(1)
	established(first, "call 1 did not reach the first peer")

	port := first.Port()
	first.Stop()
	start := time.Now()
	d.waitEvent("peer down", 1, 5*time.Second)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("peer down detected after %v; keepalive 300ms × 2 should take about 0.6-0.9s", el)
	}
	call(2)
	established(second, "call 2 did not fail over to the second peer")

	again := ua("cucm1-again", port)
	d.waitEvent("peer up", 1, 5*time.Second)
	call(3)
	established(again, "call 3 did not return to the first peer")
}
