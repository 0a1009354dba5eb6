package media

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestNewManagerConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string // substring of the error
	}{
		{"no bind", Config{PortMin: 40000, PortMax: 40999}, "Bind"},
		{"bind not on this host", Config{Bind: netip.MustParseAddr("192.0.2.1"), PortMin: 40000, PortMax: 40999}, "Bind 192.0.2.1"},
		{"negative timeout", Config{Bind: lo, PortMin: 40000, PortMax: 40999, InactivityTimeout: -time.Second}, "InactivityTimeout"},
		{"negative workers", Config{Bind: lo, PortMin: 40000, PortMax: 40999, Workers: -1}, "Workers"},
		{"unknown zone", Config{Bind: netip.MustParseAddr("fe80::1%nosuchif0"), PortMin: 40000, PortMax: 40999}, "Bind"},
		{"inverted range", Config{Bind: lo, PortMin: 40999, PortMax: 40000}, "40999-40000"},
		{"port 0", Config{Bind: lo, PortMin: 0, PortMax: 100}, "0-100"},
		{"beyond 65535", Config{Bind: lo, PortMin: 65000, PortMax: 70000}, "65000-70000"},
		{"one pair", Config{Bind: lo, PortMin: 40000, PortMax: 40002}, "holds 1 usable"},
		{"odd start leaves one pair", Config{Bind: lo, PortMin: 40001, PortMax: 40004}, "holds 1 usable"},
		{"only blocked ports", Config{Bind: lo, PortMin: 134, PortMax: 139}, "holds 0 usable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewManager(c.cfg, nil)
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q: want ErrInvalidConfig mentioning %q", err, c.want)
			}
		})
	}
}

func TestPortPool(t *testing.T) {
	take := func(p *portPool) int {
		pr, ok := p.take()
		if !ok {
			return -1
		}
		return pr.port
	}
	t.Run("next fit with wraparound", func(t *testing.T) {
		p, err := newPortPool(40000, 40007, 1)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		got = append(got, take(p), take(p))
		p.put(pair{port: 40000})
		got = append(got, take(p), take(p), take(p), take(p))
		want := []int{40000, 40002, 40004, 40006, 40000, -1}
		if !equal(got, want) {
			t.Fatalf("took %v, want %v", got, want)
		}
	})
	t.Run("odd bounds", func(t *testing.T) {
		p, err := newPortPool(40001, 40006, 1)
		if err != nil {
			t.Fatal(err)
		}
		// 40002/40003 and 40004/40005; 40006 has no RTCP port in range.
		if got, want := []int{take(p), take(p), take(p)}, []int{40002, 40004, -1}; !equal(got, want) {
			t.Fatalf("took %v, want %v", got, want)
		}
	})
	t.Run("blocked ports skipped", func(t *testing.T) {
		p, err := newPortPool(130, 141, 1)
		if err != nil {
			t.Fatal(err)
		}
		// 134/135, 136/137 and 138/139 touch UDP 135, 137 and 138.
		if got, want := []int{take(p), take(p), take(p), take(p)}, []int{130, 132, 140, -1}; !equal(got, want) {
			t.Fatalf("took %v, want %v", got, want)
		}
	})
	t.Run("addresses take turns", func(t *testing.T) {
		p, err := newPortPool(40000, 40003, 2)
		if err != nil {
			t.Fatal(err)
		}
		var got []pair
		for range 5 {
			pr, ok := p.take()
			if !ok {
				pr = pair{-1, -1}
			}
			got = append(got, pr)
		}
		want := []pair{{0, 40000}, {1, 40000}, {0, 40002}, {1, 40002}, {-1, -1}}
		if len(got) != len(want) {
			t.Fatalf("took %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("took %v, want %v", got, want)
			}
		}
		p.put(pair{1, 40002})
		if pr, ok := p.take(); !ok || pr != (pair{1, 40002}) {
			t.Fatalf("after putting back address 1's 40002, took %v %v", pr, ok)
		}
	})
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNoPortsAndReuse(t *testing.T) {
	m := newTestManager(t, 2, false, 0, true)
	s1, err := m.NewStream("first", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.NewStream("second", nil); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("NewStream on a full range: %v, want ErrNoPorts", err)
	}
	a1, _ := s1.Local(A)
	b1, _ := s1.Local(B)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := m.NewStream("third", nil)
	if err != nil {
		t.Fatalf("NewStream after Close: %v", err)
	}
	a2, _ := s2.Local(A)
	b2, _ := s2.Local(B)
	if a1 != a2 || b1 != b2 {
		t.Fatalf("ports %v/%v, then %v/%v: want the same pairs again", a1, b1, a2, b2)
	}
}

// TestBusyPortSkipped: a port another process holds is skipped, not fatal.
func TestBusyPortSkipped(t *testing.T) {
	pmin, pmax := freeRange(t, 3)
	busy, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, uint16(pmin+1))))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	m, err := NewManager(Config{Bind: lo, PortMin: pmin, PortMax: pmax}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.NewStream("busy", nil)
	if err != nil {
		t.Fatalf("NewStream with pair 0 busy: %v", err)
	}
	a, _ := s.Local(A)
	b, _ := s.Local(B)
	if int(a.Port()) != pmin+2 || int(b.Port()) != pmin+4 {
		t.Fatalf("got RTP ports %d and %d, want %d and %d", a.Port(), b.Port(), pmin+2, pmin+4)
	}
	if _, err := m.NewStream("none left", nil); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("got %v, want ErrNoPorts", err)
	}
}

// TestExtraBinds: with a second bind address, streams take their port
// pairs from both addresses in turn, each address has the whole range, and
// media relays on either.
func TestExtraBinds(t *testing.T) {
	lo2 := netip.MustParseAddr("127.0.0.2")
	pmin, pmax := freeRange(t, 2)
	m := startTestManager(t, Config{Bind: lo, ExtraBinds: []netip.Addr{lo2}, PortMin: pmin, PortMax: pmax}, false)
	if c := m.Capacity(); c.Ports != 2 {
		t.Errorf("2 pairs on 2 addresses: capacity %d streams, want 2", c.Ports)
	}
	var streams []*Stream
	for i := range 2 {
		s, err := m.NewStream("extra", nil)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		defer s.Close()
		streams = append(streams, s)
	}
	if _, err := m.NewStream("over", nil); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("a third stream: %v, want ErrNoPorts", err)
	}
	used := map[netip.Addr]int{}
	for _, s := range streams {
		for _, side := range []Side{A, B} {
			rtp, rtcp := s.Local(side)
			used[rtp.Addr()]++
			if rtcp.Addr() != rtp.Addr() || rtcp.Port() != rtp.Port()+1 {
				t.Errorf("side %v: RTP %v, RTCP %v: want RTCP on the next port of the same address", side, rtp, rtcp)
			}
		}
	}
	if used[lo] != 2 || used[lo2] != 2 {
		t.Errorf("legs per address %v: want 2 on each", used)
	}
	// Relay through the stream whose legs are on both addresses.
	s := streams[0]
	pa, pb := newPeer(t), newPeer(t)
	s.SetRemote(A, pa.addr(), netip.AddrPort{}, true, lo)
	s.SetRemote(B, pb.addr(), netip.AddrPort{}, true, lo)
	aRTP, _ := s.Local(A)
	bRTP, _ := s.Local(B)
	pkt := rtpPacket(0, 1, "hello")
	pa.send(aRTP, pkt)
	pb.recv(bRTP, pkt)
	pb.send(bRTP, pkt)
	pa.recv(aRTP, pkt)
}

func TestExtraBindsConfig(t *testing.T) {
	pmin, pmax := freeRange(t, 2)
	for _, c := range []struct {
		name  string
		bind  netip.Addr
		extra []netip.Addr
		want  string
	}{
		{"repeated", lo, []netip.Addr{lo}, "given twice"},
		{"unspecified with several", netip.IPv4Unspecified(), []netip.Addr{lo}, "unspecified"},
		{"other family", lo, []netip.Addr{netip.IPv6Loopback()}, "family"},
		{"not on this host", lo, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, "Bind 192.0.2.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewManager(Config{Bind: c.bind, ExtraBinds: c.extra, PortMin: pmin, PortMax: pmax}, nil)
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q: want ErrInvalidConfig mentioning %q", err, c.want)
			}
		})
	}
}
