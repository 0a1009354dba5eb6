package media

import (
	"net/netip"
	"testing"
	"time"
)

// relayRig is a stream attached to no worker, so the test can drive one
// socket's relay step by hand, as a worker would; what it sends goes to real
// sockets.
type relayRig struct {
	s      *Stream
	k      *socket // side A's RTP socket
	buf    []byte  // bufSize bytes, as a worker's buffer
	src    netip.AddrPort
	pkt    []byte
	pb     *peer
	pbRTCP *peer
}

func newRelayRig(tb testing.TB, latching, muxA bool, pkt []byte) *relayRig {
	tb.Helper()
	m := newTestManager(tb, 2, latching, 0, false)
	s, err := m.newStream("bench", nil, false)
	if err != nil {
		tb.Fatal(err)
	}
	g := &relayRig{s: s, k: s.legs[A].socks[sockRTP], buf: make([]byte, bufSize), pkt: pkt, pb: newPeer(tb), pbRTCP: newPeer(tb)}
	// A's peer never really sends: the rig hands its packets to the relay
	// step as if they came from src.
	g.src = netip.AddrPortFrom(lo, 30000)
	s.SetRemote(A, g.src, netip.AddrPort{}, muxA, lo)
	s.SetRemote(B, g.pb.addr(), g.pbRTCP.addr(), false, lo)
	return g
}

// step runs the relay step on a fresh copy of the packet, as the worker
// does after recvmmsg.
func (g *relayRig) step() {
	n := copy(g.buf, g.pkt)
	g.k.relay(g.buf, n, g.src)
}

// voice is a 20 ms G.711 packet: 12-byte header, 160 bytes of payload.
var voice = rtpPacket(0, 1, string(make([]byte, 160)))

// TestRelayStepAllocs guards the per-packet path: receiving a packet,
// deciding, transforming and writing it with sendto allocates nothing, whatever path it takes.
func TestRelayStepAllocs(t *testing.T) {
	for _, c := range []struct {
		name     string
		latching bool
		muxA     bool
		pkt      []byte
		xform    bool
		stranger bool
		want     func(StreamStats) bool
	}{
		{name: "RTP", pkt: voice, want: func(st StreamStats) bool { return st.B.PacketsOut > 0 && st.A.Drops.Total() == 0 }},
		{name: "RTP latched", latching: true, pkt: voice, want: func(st StreamStats) bool { return st.B.PacketsOut > 0 && st.A.Drops.Total() == 0 }},
		{name: "muxed RTCP to RTCP port", muxA: true, pkt: rtcpPacket(1), want: func(st StreamStats) bool { return st.B.RTCPOut > 0 && st.A.Drops.Total() == 0 }},
		{name: "RTP through Transforms", pkt: voice, xform: true, want: func(st StreamStats) bool { return st.B.PacketsOut > 0 && st.A.Drops.Total() == 0 }},
		{name: "muxed RTCP through Transforms", muxA: true, pkt: rtcpPacket(1), xform: true, want: func(st StreamStats) bool { return st.B.RTCPOut > 0 && st.A.Drops.Total() == 0 }},
		{name: "stranger dropped", pkt: voice, stranger: true, want: func(st StreamStats) bool { return st.A.Drops.WrongSource > 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newRelayRig(t, c.latching, c.muxA, c.pkt)
			if c.xform {
				// Both legs protected with the same "keys": Unprotect on A,
				// Protect on B, and the packet arrives protected as it left.
				rtpX, rtcpX := xorTransform{hdr: 12, key: 1}, xorTransform{hdr: 8, key: 2}
				g.s.SetTransform(A, rtpX, rtcpX)
				g.s.SetTransform(B, rtpX, rtcpX)
				if c.pkt[1] == 201 {
					g.pkt = protected(rtcpX, c.pkt)
				} else {
					g.pkt = protected(rtpX, c.pkt)
				}
			}
			if c.stranger {
				g.src = netip.AddrPortFrom(lo, 30002)
			}
			g.step() // a latch allocates once, on the first packet
			if allocs := testing.AllocsPerRun(1000, g.step); allocs != 0 {
				t.Errorf("relay step: %v allocations per packet, want 0", allocs)
			}
			if st := g.s.Stats(); !c.want(st) {
				t.Errorf("the packets did not take the path under test: %+v", st)
			}
		})
	}
}

// BenchmarkRelayRTP measures the relay step for a voice packet, including
// the sendto; a goroutine drains the receiving peer.
func BenchmarkRelayRTP(b *testing.B) {
	g := newRelayRig(b, false, false, voice)
	stop := drain(g.pb)
	defer stop()
	b.ReportAllocs()
	b.SetBytes(int64(len(voice)))
	for b.Loop() {
		g.step()
	}
	if st := g.s.Stats(); st.A.Drops.Total() != 0 {
		b.Fatalf("drops: %+v", st.A.Drops)
	}
}

// BenchmarkRoute measures the decision alone.
func BenchmarkRoute(b *testing.B) {
	for _, latching := range []bool{false, true} {
		name := "signaled"
		if latching {
			name = "latched"
		}
		b.Run(name, func(b *testing.B) {
			s := detachedStream(latching)
			src := netip.AddrPortFrom(lo, 30000)
			s.SetRemote(A, src, netip.AddrPort{}, false, lo)
			s.SetRemote(B, netip.AddrPortFrom(lo, 30010), netip.AddrPort{}, false, lo)
			if v := s.route(A, sockRTP, src, voice); v.latch != nil {
				s.commitLatch(A, sockRTP, v.latch, src)
			}
			b.ReportAllocs()
			for b.Loop() {
				if v := s.route(A, sockRTP, src, voice); v.drop != dropNone {
					b.Fatal(v.drop)
				}
			}
		})
	}
}

// drain reads p until stopped, without allocating.
func drain(p *peer) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := p.conn.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	return func() {
		p.conn.Close()
		<-done
	}
}

// BenchmarkRelayLoopback sends voice packets from a peer through the relay,
// worker and all, to the other peer, and reports ns/packet:
// "pingpong" has one packet in flight (latency), "burst" 32 (throughput).
// The figure includes the test peers' own sendto and recvfrom.
func BenchmarkRelayLoopback(b *testing.B) {
	for _, window := range []int{1, 32} {
		name := "pingpong"
		if window > 1 {
			name = "burst"
		}
		b.Run(name, func(b *testing.B) {
			m := newTestManager(b, 2, false, 0, false)
			s, err := m.NewStream("loop", nil)
			if err != nil {
				b.Fatal(err)
			}
			pa, pb := newPeer(b), newPeer(b)
			s.SetRemote(A, pa.addr(), netip.AddrPort{}, false, lo)
			s.SetRemote(B, pb.addr(), netip.AddrPort{}, false, lo)
			aRTP, _ := s.Local(A)
			buf := make([]byte, 2048)
			recv := func() {
				pb.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, _, err := pb.conn.ReadFromUDPAddrPort(buf); err != nil {
					b.Fatalf("packet lost: %v (stats %+v)", err, s.Stats())
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(voice)))
			inFlight := 0
			for b.Loop() {
				if _, err := pa.conn.WriteToUDPAddrPort(voice, aRTP); err != nil {
					b.Fatal(err)
				}
				if inFlight++; inFlight == window {
					for ; inFlight > 0; inFlight-- {
						recv()
					}
				}
			}
			for ; inFlight > 0; inFlight-- {
				recv()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}
