package media

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

var lo = netip.MustParseAddr("127.0.0.1")

// TestMain fails the run if any goroutine of the package outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := noLeaks(2 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// ourGoroutines are the functions the package runs goroutines in.
var ourGoroutines = []string{"media.(*worker).run", "media.(*Manager).sweeper", "media.(*Manager).fire",
	"media.(*dtlsLeg).run", "media.(*Manager).report"}

// noLeaks waits up to d for the package's goroutines to end.
func noLeaks(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var leaked []string
		for _, g := range strings.Split(stacks, "\n\n") {
			for _, f := range ourGoroutines {
				if strings.Contains(g, f) {
					leaked = append(leaked, g)
				}
			}
		}
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeRange returns a random even-based range of pairs RTP/RTCP pairs on
// 127.0.0.1 that were all free a moment ago. It stays below Linux's
// ephemeral range (32768-60999) so that port-0 sockets of parallel tests
// do not land in it.
func freeRange(t testing.TB, pairs int) (lo, hi int) {
	t.Helper()
	for range 100 {
		base := 20000 + 2*rand.IntN(5000)
		ok := true
		var conns []*net.UDPConn
		for p := base; p < base+2*pairs; p++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok {
			return base, base + 2*pairs - 1
		}
	}
	t.Fatal("no free port range found")
	return 0, 0
}

// newTestManager starts a Manager on a fresh range of pairs pairs; it is
// closed, and checked for leftover goroutines, when the test ends.
// sweeper=false leaves the sweeping to the test.
func newTestManager(t testing.TB, pairs int, latching bool, timeout time.Duration, sweeper bool) *Manager {
	t.Helper()
	pmin, pmax := freeRange(t, pairs)
	return startTestManager(t, Config{Bind: lo, PortMin: pmin, PortMax: pmax, Latching: latching, InactivityTimeout: timeout}, sweeper)
}

// startTestManager starts a Manager with cfg, closed and checked for
// leftover goroutines when the test ends.
func startTestManager(t testing.TB, cfg Config, sweeper bool) *Manager {
	t.Helper()
	m, err := newManager(cfg, nil, sweeper)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Manager.Close: %v", err)
		}
		if err := noLeaks(2 * time.Second); err != nil {
			t.Error(err)
		}
	})
	return m
}

// peer is a test endpoint: a UDP socket on 127.0.0.1.
type peer struct {
	t    testing.TB
	conn *net.UDPConn
}

func newPeer(t testing.TB) *peer {
	t.Helper()
	return newPeerOn(t, lo)
}

func newPeerOn(t testing.TB, ip netip.Addr) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c}
}

func (p *peer) addr() netip.AddrPort {
	return p.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (p *peer) send(to netip.AddrPort, pkt []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(pkt, to); err != nil {
		p.t.Fatal(err)
	}
}

// recv waits for one packet and checks what it is and where it came from.
func (p *peer) recv(wantFrom netip.AddrPort, want []byte) {
	p.t.Helper()
	buf := make([]byte, 1<<16)
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		p.t.Fatalf("%v: waiting for a packet from %v: %v", p.addr(), wantFrom, err)
	}
	if from != wantFrom {
		p.t.Errorf("%v: packet from %v, want %v (symmetric media)", p.addr(), from, wantFrom)
	}
	if !bytes.Equal(buf[:n], want) {
		p.t.Errorf("%v: got % x, want % x", p.addr(), buf[:n], want)
	}
}

// rtpPacket is a 12-byte RTP header (version 2, payload type pt) and a payload.
func rtpPacket(pt byte, seq uint16, payload string) []byte {
	b := []byte{0x80, pt, byte(seq >> 8), byte(seq), 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef}
	return append(b, payload...)
}

// rtcpPacket is an RTCP receiver report (PT 201) with no report block.
func rtcpPacket(ssrc byte) []byte {
	return []byte{0x80, 201, 0, 1, 0, 0, 0, ssrc}
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
