package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestReloadKeepsCalls: a SIGHUP that changes a route leaves the call in
// progress untouched (audio both ways, normal end), sends new calls the new
// way, and a reload with an invalid file keeps the running configuration.
func TestReloadKeepsCalls(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	cfg1 := l.config()
	d := startCCSBC(t, cfg1)
	second := freePort(t)
	cfg2 := strings.Replace(cfg1, "{name: agents, user: 1xxx, to: cucm, leg: agent}", "{name: agents, user: 1xxx, to: cucm2, leg: agent}", 1)
	cfg2 = strings.Replace(cfg2, "routes:", fmt.Sprintf("  - {name: cucm2, kind: cucm, address: \"127.0.0.1:%d\", transport: udp}\nroutes:", second), 1)
	if cfg2 == cfg1 {
		t.Fatal("test config did not change")
	}

	first := l.uas(t, "uas.xml", keys("-rtp_echo")...)
	long := l.uac(t, "uac.xml", "1000", keys("-d", "5000", "-key", "pcap", g711a)...)
	d.waitEvent("call answered", 1, 10*time.Second)

	d.reload(cfg2)
	d.waitEvent("configuration reloaded", 1, 5*time.Second)

	// New calls take the new route.
	l2 := *l
	l2.callee, l2.caller = second, freePort(t)
	uas2 := l2.uas(t, "uas.xml", keys("-rtp_echo", "-m", "2")...)
	short := l2.uac(t, "uac.xml", "1001", keys("-d", "500", "-key", "pcap", g711a)...)
	if code := short.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("call after reload: SIPp exit %d", code)
	}

	// An invalid file is refused; the running configuration stays.
	d.reload(cfg2 + "bogus_key: 1\n")
	d.waitEvent("reload refused; the running configuration stays", 1, 5*time.Second)
	l3 := l2
	l3.caller = freePort(t)
	third := l3.uac(t, "uac.xml", "1002", keys("-d", "300", "-key", "pcap", g711a)...)
	if code := third.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("call after a refused reload: SIPp exit %d", code)
	}
	if code := uas2.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("the new route's callee: SIPp exit %d", code)
	}

	// The call that was up during the reload ends normally, with audio.
	if code := long.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("call across the reload: SIPp exit %d", code)
	}
	if code := first.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("the old route's callee: SIPp exit %d", code)
	}
	for _, ev := range d.waitEvent("call end", 3, 5*time.Second) {
		if r, _ := ev["reason"].(string); !strings.HasPrefix(r, "BYE from ") {
			t.Errorf("call ended with %q", ev["reason"])
		}
		if legStats(ev, "b", "packets_in") < 5 {
			t.Errorf("call %v: no echoed audio", ev["call_id"])
		}
	}
}

// TestDrain: SIGTERM stops new calls (503) while the established call runs
// on to its normal end; then ccsbc exits.
func TestDrain(t *testing.T) {
	needTool(t, "sipp")
	l := newLab(t, "udp")
	d := startCCSBC(t, l.config())
	uas := l.uas(t, "uas.xml", keys("-rtp_echo")...)
	call := l.uac(t, "uac.xml", "1000", keys("-d", "3000", "-key", "pcap", g711a)...)
	d.waitEvent("call answered", 1, 10*time.Second)
	// Stop sends SIGTERM and waits for ccsbc to drain and exit.
	stopped := make(chan int, 1)
	go func() { stopped <- d.Stop() }()
	d.waitEvent("draining", 1, 5*time.Second)
	l2 := *l
	l2.caller = freePort(t)
	refused := l2.uac(t, "uac_expect.xml", "1001", keys("-key", "expect", "503")...)
	if code := refused.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("new call while draining: SIPp exit %d, want 503", code)
	}
	if code := call.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("established call during drain: SIPp exit %d", code)
	}
	uas.wait(t, 10*time.Second)
	select {
	case code := <-stopped:
		if code != 0 {
			t.Errorf("ccsbc exited %d after draining", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ccsbc did not exit once drained")
	}
	end := d.events("call end")
	if len(end) != 1 || end[0]["reason"] != "BYE from cvp" {
		t.Errorf("call end events: %v", end)
	}
}
