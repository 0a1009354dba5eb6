package media

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// newWorkersManager is newTestManager with a bind address and a number of
// workers.
func newWorkersManager(t *testing.T, bind netip.Addr, pairs, workers int) *Manager {
	t.Helper()
	pmin, pmax := freeRange(t, pairs)
	return startTestManager(t, Config{Bind: bind, PortMin: pmin, PortMax: pmax, Workers: workers}, true)
}

// newPeerNet is newPeerOn for any network ("udp4", "udp6").
func newPeerNet(t *testing.T, network string, ip netip.Addr) *peer {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Skipf("no %s socket on %v: %v", network, ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c}
}

// TestRelayIPv6 relays over IPv6, and between IPv4 peers on a dual-stack
// (::) bind, where sources arrive v4-mapped and destinations leave so.
func TestRelayIPv6(t *testing.T) {
	for _, c := range []struct {
		name     string
		bind     netip.Addr
		network  string
		peerIP   netip.Addr
		toRelay  func(netip.AddrPort) netip.AddrPort // where the peer sends
		fromWant func(netip.AddrPort) netip.AddrPort // what the peer sees
	}{
		{"IPv6", netip.IPv6Loopback(), "udp6", netip.IPv6Loopback(),
			func(ap netip.AddrPort) netip.AddrPort { return ap },
			func(ap netip.AddrPort) netip.AddrPort { return ap }},
		{"dual-stack IPv4 peers", netip.IPv6Unspecified(), "udp4", lo,
			func(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(lo, ap.Port()) },
			func(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(lo, ap.Port()) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			pa, pb := newPeerNet(t, c.network, c.peerIP), newPeerNet(t, c.network, c.peerIP)
			m := newWorkersManager(t, c.bind, 2, 1)
			s, err := m.NewStream("v6", nil)
			if err != nil {
				t.Fatal(err)
			}
			aRTP, _ := s.Local(A)
			bRTP, _ := s.Local(B)
			s.SetRemote(A, pa.addr(), netip.AddrPort{}, true, c.peerIP)
			s.SetRemote(B, pb.addr(), netip.AddrPort{}, true, c.peerIP)
			p1, p2 := rtpPacket(0, 1, "a to b"), rtpPacket(0, 2, "b to a")
			pa.send(c.toRelay(aRTP), p1)
			pb.recv(c.fromWant(bRTP), p1)
			pb.send(c.toRelay(bRTP), p2)
			pa.recv(c.fromWant(aRTP), p2)
			if st := s.Stats(); st.A.Drops.Total()+st.B.Drops.Total() != 0 {
				t.Errorf("drops: %+v", st)
			}
		})
	}
}

// TestWorkersShareStreams: streams are spread over the workers, and leave
// them when closed.
func TestWorkersShareStreams(t *testing.T) {
	m := newWorkersManager(t, lo, 8, 2)
	var streams []*Stream
	for range 4 {
		s, err := m.NewStream("share", nil)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	for i, w := range m.workers {
		if n := w.streams.Load(); n != 2 {
			t.Errorf("worker %d has %d streams, want 2", i, n)
		}
	}
	for _, s := range streams {
		s.Close()
	}
	for i, w := range m.workers {
		if n := w.streams.Load(); n != 0 {
			t.Errorf("worker %d has %d streams after Close, want 0", i, n)
		}
	}
}

// TestCloseUnderLoad closes streams while their peers keep sending and new
// streams take the descriptors and ports freed: a long-lived stream on the
// same workers must see only its own packets, whole and in order, and the
// others' Close must not hang. Run it with -race.
func TestCloseUnderLoad(t *testing.T) {
	m := newWorkersManager(t, lo, 16, 2)
	keep, err := m.NewStream("keep", nil)
	if err != nil {
		t.Fatal(err)
	}
	ka, kb := newPeer(t), newPeer(t)
	keep.SetRemote(A, ka.addr(), netip.AddrPort{}, false, lo)
	keep.SetRemote(B, kb.addr(), netip.AddrPort{}, false, lo)
	kaRTP, _ := keep.Local(A)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // churn: streams made, flooded and closed
		defer wg.Done()
		pa, pb := newPeer(t), newPeer(t)
		flood := rtpPacket(0, 9, "churn")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s, err := m.NewStream("churn", nil)
			if err != nil {
				t.Error(err)
				return
			}
			s.SetRemote(A, pa.addr(), netip.AddrPort{}, false, lo)
			s.SetRemote(B, pb.addr(), netip.AddrPort{}, false, lo)
			aRTP, _ := s.Local(A)
			for range 20 {
				pa.conn.WriteToUDPAddrPort(flood, aRTP)
			}
			if i%2 == 0 {
				time.Sleep(time.Millisecond)
			}
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}
	}()

	buf := make([]byte, 2048)
	for seq := range uint16(300) {
		pkt := rtpPacket(0, seq, "keep")
		ka.send(kaRTP, pkt)
		kb.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := kb.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", seq, err)
		}
		if !bytes.Equal(buf[:n], pkt) {
			t.Fatalf("packet %d: got % x, want % x", seq, buf[:n], pkt)
		}
	}
	close(stop)
	wg.Wait()
}

// TestWorkerBacklog: datagrams queued on a socket before its worker sees it
// (more than one wake-up's maxBatches×recvBatch) are all relayed, in order.
func TestWorkerBacklog(t *testing.T) {
	m := newWorkersManager(t, lo, 2, 1)
	s, err := m.newStream("backlog", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pa, pb := newPeer(t), newPeer(t)
	s.SetRemote(A, pa.addr(), netip.AddrPort{}, false, lo)
	s.SetRemote(B, pb.addr(), netip.AddrPort{}, false, lo)
	aRTP, _ := s.Local(A)
	const n = 3*maxBatches*recvBatch + 5
	for seq := range uint16(n) {
		pa.send(aRTP, rtpPacket(0, seq, "queued"))
	}
	if err := m.attach(s, s.sockets()...)(); err != nil {
		t.Fatal(err)
	}
	bRTP, _ := s.Local(B)
	for seq := range uint16(n) {
		pb.recv(bRTP, rtpPacket(0, seq, "queued"))
	}
}
