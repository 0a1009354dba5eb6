package media

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestRelayEndToEnd relays RTP and RTCP both ways through real sockets, with
// rtcp-mux on side B only, and checks that strangers are not relayed.
func TestRelayEndToEnd(t *testing.T) {
	m := newTestManager(t, 2, false, 0, true)
	s, err := m.NewStream("e2e", nil)
	if err != nil {
		t.Fatal(err)
	}
	aRTP, aRTCP := s.Local(A)
	bRTP, bRTCP := s.Local(B)
	if aRTCP.Port() != aRTP.Port()+1 || bRTCP.Port() != bRTP.Port()+1 || aRTP.Port()%2 != 0 || bRTP.Port()%2 != 0 {
		t.Fatalf("ports: A %v/%v, B %v/%v: want even RTP, RTCP on RTP+1", aRTP, aRTCP, bRTP, bRTCP)
	}

	pa, paRTCP, pb := newPeer(t), newPeer(t), newPeer(t) // pb muxes
	stranger := newPeer(t)

	// Before the answer, A's media has nowhere to go.
	s.SetRemote(A, pa.addr(), paRTCP.addr(), false, lo)
	early := rtpPacket(0, 1, "early")
	pa.send(aRTP, early)
	waitFor(t, "early media counted", func() bool { return s.Stats().A.Drops.NoDestination == 1 })

	s.SetRemote(B, pb.addr(), netip.AddrPort{}, true, lo)

	rtp1, rtp2 := rtpPacket(0, 2, "a to b"), rtpPacket(8, 7, "b to a")
	pa.send(aRTP, rtp1)
	pb.recv(bRTP, rtp1)
	pb.send(bRTP, rtp2)
	pa.recv(aRTP, rtp2)

	rtcpA, rtcpB := rtcpPacket(0xa), rtcpPacket(0xb)
	paRTCP.send(aRTCP, rtcpA)
	pb.recv(bRTP, rtcpA) // B muxes: RTCP leaves from B's RTP port
	pb.send(bRTP, rtcpB)
	paRTCP.recv(aRTCP, rtcpB) // A does not: RTCP goes to A's RTCP port

	// A stranger's packet is dropped: the next packet pb sees is pa's.
	stranger.send(aRTP, rtpPacket(0, 99, "bleed"))
	rtp3 := rtpPacket(0, 3, "a to b again")
	pa.send(aRTP, rtp3)
	pb.recv(bRTP, rtp3)

	// With mux, B's RTCP port accepts nothing.
	pb.send(bRTCP, rtcpB)
	rtp4 := rtpPacket(8, 8, "b to a again")
	pb.send(bRTP, rtp4)
	pa.recv(aRTP, rtp4)

	n := func(pkts ...[]byte) (sum uint64) {
		for _, p := range pkts {
			sum += uint64(len(p))
		}
		return sum
	}
	want := StreamStats{
		A: SideStats{
			PacketsIn: 5, BytesIn: n(early, rtp1, rtcpA, rtp3) + 12 + 5,
			PacketsOut: 3, BytesOut: n(rtp2, rtcpB, rtp4),
			RTCPIn: 1, RTCPOut: 1,
			Drops: Drops{WrongSource: 1, NoDestination: 1},
		},
		B: SideStats{
			PacketsIn: 4, BytesIn: n(rtp2, rtcpB, rtcpB, rtp4),
			PacketsOut: 3, BytesOut: n(rtp1, rtcpA, rtp3),
			RTCPIn: 1, RTCPOut: 1,
			Drops: Drops{WrongSource: 1},
		},
	}
	var got StreamStats
	waitFor(t, "counters", func() bool { got = s.Stats(); return got == want })
	for _, c := range []struct {
		in, out SideStats
	}{{got.A, got.B}, {got.B, got.A}} {
		if c.in.PacketsIn != c.in.Drops.Total()+c.out.PacketsOut {
			t.Errorf("PacketsIn %d != drops %d + relayed %d", c.in.PacketsIn, c.in.Drops.Total(), c.out.PacketsOut)
		}
	}
}

// TestRelayLatching: a peer behind NAT sends from a port other than its SDP
// one; the side latches onto it, sends there, and refuses everyone else.
func TestRelayLatching(t *testing.T) {
	m := newTestManager(t, 2, true, 0, true)
	s, err := m.NewStream("latch", nil)
	if err != nil {
		t.Fatal(err)
	}
	aRTP, _ := s.Local(A)
	bRTP, _ := s.Local(B)
	sdp, pa, mover, pb := newPeer(t), newPeer(t), newPeer(t), newPeer(t)
	s.SetRemote(A, sdp.addr(), netip.AddrPort{}, false, lo) // pa's NAT mapping is not in its SDP
	s.SetRemote(B, pb.addr(), netip.AddrPort{}, false, lo)

	pa.send(aRTP, rtpPacket(0, 1, "first"))
	pb.recv(bRTP, rtpPacket(0, 1, "first"))
	pb.send(bRTP, rtpPacket(0, 1, "back"))
	pa.recv(aRTP, rtpPacket(0, 1, "back")) // to the latched source, not the SDP address

	sdp.send(aRTP, rtpPacket(0, 2, "sdp address, too late"))
	mover.send(aRTP, rtpPacket(0, 2, "mover"))
	pa.send(aRTP, rtpPacket(0, 2, "second"))
	pb.recv(bRTP, rtpPacket(0, 2, "second"))
	waitFor(t, "drops", func() bool { return s.Stats().A.Drops.WrongSource == 2 })

	sdp.conn.SetReadDeadline(time.Now())
	if _, _, err := sdp.conn.ReadFromUDPAddrPort(make([]byte, 64)); err == nil {
		t.Error("the SDP address got media although the side latched elsewhere")
	}

	// A new SDP address re-arms the latch: the mover may now latch.
	s.SetRemote(A, netip.AddrPortFrom(lo, 9), netip.AddrPort{}, false, lo)
	mover.send(aRTP, rtpPacket(0, 3, "moved"))
	pb.recv(bRTP, rtpPacket(0, 3, "moved"))
	pb.send(bRTP, rtpPacket(0, 3, "to the mover"))
	mover.recv(aRTP, rtpPacket(0, 3, "to the mover"))
}

// TestRelaySizes: a datagram that fills the buffer is relayed whole; one
// larger is dropped rather than relayed truncated.
func TestRelaySizes(t *testing.T) {
	m := newTestManager(t, 2, false, 0, true)
	s, err := m.NewStream("sizes", nil)
	if err != nil {
		t.Fatal(err)
	}
	aRTP, _ := s.Local(A)
	bRTP, _ := s.Local(B)
	pa, pb := newPeer(t), newPeer(t)
	s.SetRemote(A, pa.addr(), netip.AddrPort{}, false, lo)
	s.SetRemote(B, pb.addr(), netip.AddrPort{}, false, lo)

	big := rtpPacket(0, 1, string(bytes.Repeat([]byte{'x'}, maxPacket-12)))
	pa.send(aRTP, append(big, 'y'))
	pa.send(aRTP, big)
	pb.recv(bRTP, big)
	waitFor(t, "oversized drop", func() bool { return s.Stats().A.Drops.Malformed == 1 })
}

// xorTransform stands in for SRTP: it "encrypts" the payload with a XOR and
// appends a 4-byte tag that Unprotect checks. It does not allocate.
type xorTransform struct {
	hdr int // bytes left in clear: 12 for RTP, 8 for RTCP
	key byte
}

var errBadTag = errors.New("bad tag")

func (x xorTransform) Protect(buf []byte, n int) (int, error) {
	if len(buf) < n+MaxOverhead {
		return 0, errors.New("no room for the tag")
	}
	for i := x.hdr; i < n; i++ {
		buf[i] ^= x.key
	}
	copy(buf[n:], "TAG!")
	return n + 4, nil
}

func (x xorTransform) Unprotect(buf []byte, n int) (int, error) {
	if n < x.hdr+4 || string(buf[n-4:n]) != "TAG!" {
		return 0, errBadTag
	}
	n -= 4
	for i := x.hdr; i < n; i++ {
		buf[i] ^= x.key
	}
	return n, nil
}

func protected(x xorTransform, pkt []byte) []byte {
	buf := make([]byte, len(pkt)+MaxOverhead)
	copy(buf, pkt)
	n, _ := x.Protect(buf, len(pkt))
	return buf[:n]
}

// TestRelayTransform: with a Transform on side A only (SRTP on one leg, RTP
// on the other), A's media is unprotected toward B and B's protected toward
// A; a packet that fails Unprotect is dropped and does not latch.
func TestRelayTransform(t *testing.T) {
	m := newTestManager(t, 2, true, 0, true)
	s, err := m.NewStream("srtp-seam", nil)
	if err != nil {
		t.Fatal(err)
	}
	rtpX, rtcpX := xorTransform{hdr: 12, key: 0x5a}, xorTransform{hdr: 8, key: 0xa5}
	s.SetTransform(A, rtpX, rtcpX)
	aRTP, aRTCP := s.Local(A)
	bRTP, bRTCP := s.Local(B)
	pa, paRTCP, forger, pb, pbRTCP := newPeer(t), newPeer(t), newPeer(t), newPeer(t), newPeer(t)
	s.SetRemote(A, pa.addr(), paRTCP.addr(), false, lo)
	s.SetRemote(B, pb.addr(), pbRTCP.addr(), false, lo)

	// The forger comes first from the signaled IP: latching alone would
	// take it, authentication does not.
	forger.send(aRTP, rtpPacket(0, 1, "forged"))
	waitFor(t, "forgery dropped", func() bool { return s.Stats().A.Drops.Transform == 1 })

	plain := rtpPacket(0, 1, "secret voice")
	pa.send(aRTP, protected(rtpX, plain))
	pb.recv(bRTP, plain)
	pb.send(bRTP, plain)
	pa.recv(aRTP, protected(rtpX, plain))

	rr := rtcpPacket(7)
	paRTCP.send(aRTCP, protected(rtcpX, rr))
	pbRTCP.recv(bRTCP, rr)
	pbRTCP.send(bRTCP, rr)
	paRTCP.recv(aRTCP, protected(rtcpX, rr))

	// pa latched: the forger is now refused before any Transform runs.
	forger.send(aRTP, protected(rtpX, plain))
	waitFor(t, "forger refused", func() bool { return s.Stats().A.Drops.WrongSource == 1 })

	// Back to plain RTP on A.
	s.SetTransform(A, nil, nil)
	pa.send(aRTP, plain)
	pb.recv(bRTP, plain)

	st := s.Stats()
	if want := uint64(len(plain) + 4 + len(rr) + 4); st.A.BytesOut != want {
		t.Errorf("A BytesOut = %d, want %d (after Protect)", st.A.BytesOut, want)
	}
}

func TestStreamClose(t *testing.T) {
	m := newTestManager(t, 4, false, 0, true)
	s1, err := m.NewStream("one", nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := m.NewStream("two", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Closed sockets: sending to them reaches nobody, and nothing panics.
	s1.SetRemote(A, netip.AddrPortFrom(lo, 9), netip.AddrPort{}, false, lo)
	_ = s1.Stats()

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatalf("Close after Manager.Close: %v", err)
	}
	if _, err := m.NewStream("late", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewStream after Close: %v, want ErrClosed", err)
	}
	if err := noLeaks(2 * time.Second); err != nil {
		t.Fatal(err)
	}
}
