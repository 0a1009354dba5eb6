package media

import (
	"net/netip"
	"testing"

	"go.uber.org/zap"
)

// detachedStream is a Stream without sockets: enough for route, which only
// reads the remote and latch state.
func detachedStream(latching bool) *Stream {
	return &Stream{latching: latching, log: zap.NewNop(), done: make(chan struct{})}
}

var (
	ap = netip.MustParseAddrPort
	ip = netip.MustParseAddr
)

type routeStep struct {
	name  string
	setup func(s *Stream) // run before the packet, if not nil

	side Side
	sock sockKind
	src  string
	pkt  []byte

	// noAuth: the packet fails the ingress Transform, so a latch it earned
	// is not committed. Otherwise a latch is committed as the relay would.
	noAuth bool

	drop  dropReason
	rtcp  bool
	latch bool // the verdict latches the source
	out   sockKind
	dst   string // checked when drop is dropNone
}

func TestRoute(t *testing.T) {
	rtp := rtpPacket(0, 1, "payload")
	rtpMarker96 := rtpPacket(0x80|96, 1, "payload")
	rtcp := rtcpPacket(1)
	rtcpSRAsRTP := rtpPacket(200, 1, "") // PT 72 with the marker bit: RTCP SR on a muxed socket
	short := rtpPacket(0, 1, "")[:11]
	v1 := append([]byte{0x40}, rtp[1:]...)

	// Without latching: A at 127.0.0.1:4000/4001 without mux, B at
	// 192.0.2.10:5000 with rtcp-mux.
	plain := func(s *Stream) {
		s.SetRemote(A, ap("127.0.0.1:4000"), netip.AddrPort{}, false, ip("10.0.0.1"))
		s.SetRemote(B, ap("192.0.2.10:5000"), ap("192.0.2.10:5999"), true, ip("192.0.2.10"))
	}
	// With latching: A behind a NAT (SDP 10.1.1.5, SIP from 198.51.100.7),
	// B at 192.0.2.10:5000/5001 without mux.
	nat := func(s *Stream) {
		s.SetRemote(A, ap("10.1.1.5:4000"), ap("10.1.1.5:4001"), false, ip("198.51.100.7"))
		s.SetRemote(B, ap("192.0.2.10:5000"), netip.AddrPort{}, false, ip("192.0.2.10"))
	}

	scenarios := []struct {
		name     string
		latching bool
		setup    func(s *Stream)
		steps    []routeStep
	}{
		{"signaled source only", false, plain, []routeStep{
			{name: "signaled RTP source accepted", side: A, sock: sockRTP, src: "127.0.0.1:4000", pkt: rtp, out: sockRTP, dst: "192.0.2.10:5000"},
			{name: "stranger port dropped", side: A, sock: sockRTP, src: "127.0.0.1:4002", pkt: rtp, drop: dropWrongSource},
			{name: "stranger IP dropped", side: A, sock: sockRTP, src: "203.0.113.9:4000", pkt: rtp, drop: dropWrongSource},
			{name: "signaling IP is not enough without latching", side: A, sock: sockRTP, src: "10.0.0.1:4000", pkt: rtp, drop: dropWrongSource},
			{name: "RTCP from RTP+1 to muxed B", side: A, sock: sockRTCP, src: "127.0.0.1:4001", pkt: rtcp, rtcp: true, out: sockRTP, dst: "192.0.2.10:5000"},
			{name: "RTCP socket refuses the RTP source", side: A, sock: sockRTCP, src: "127.0.0.1:4000", pkt: rtcp, drop: dropWrongSource},
			{name: "muxed RTCP to A's RTCP port", side: B, sock: sockRTP, src: "192.0.2.10:5000", pkt: rtcp, rtcp: true, out: sockRTCP, dst: "127.0.0.1:4001"},
			{name: "muxed RTP with marker bit stays RTP", side: B, sock: sockRTP, src: "192.0.2.10:5000", pkt: rtpMarker96, out: sockRTP, dst: "127.0.0.1:4000"},
			{name: "muxed side's RTCP socket accepts nothing", side: B, sock: sockRTCP, src: "192.0.2.10:5000", pkt: rtcp, drop: dropWrongSource},
			{name: "PT 72 without mux is RTP", side: A, sock: sockRTP, src: "127.0.0.1:4000", pkt: rtcpSRAsRTP, out: sockRTP, dst: "192.0.2.10:5000"},
			{name: "short RTP", side: A, sock: sockRTP, src: "127.0.0.1:4000", pkt: short, drop: dropMalformed},
			{name: "RTP version 1", side: A, sock: sockRTP, src: "127.0.0.1:4000", pkt: v1, drop: dropMalformed},
			{name: "empty datagram", side: A, sock: sockRTP, src: "127.0.0.1:4000", pkt: nil, drop: dropMalformed},
			{name: "short RTCP", side: A, sock: sockRTCP, src: "127.0.0.1:4001", pkt: rtcp[:7], drop: dropMalformed},
			{name: "one byte on a muxed socket", side: B, sock: sockRTP, src: "192.0.2.10:5000", pkt: []byte{0x80}, drop: dropMalformed},
			{name: "stranger's garbage counts as wrong source", side: A, sock: sockRTP, src: "203.0.113.9:1", pkt: []byte{1}, drop: dropWrongSource},
			{
				name:  "no destination while B receives nothing",
				setup: func(s *Stream) { s.SetRemote(B, ap("0.0.0.0:5000"), netip.AddrPort{}, false, ip("192.0.2.10")) },
				side:  A, sock: sockRTP, src: "127.0.0.1:4000", pkt: rtp, drop: dropNoDestination,
			},
			{name: "B unknown: nothing from it", side: B, sock: sockRTP, src: "192.0.2.10:5000", pkt: rtp, drop: dropWrongSource},
		}},
		{"before any SDP", false, nil, []routeStep{
			{name: "nothing accepted", side: A, sock: sockRTP, src: "127.0.0.1:4000", pkt: rtp, drop: dropWrongSource},
			{
				name:  "early media, B not answered",
				setup: func(s *Stream) { s.SetRemote(A, ap("127.0.0.1:4000"), netip.AddrPort{}, false, lo) },
				side:  A, sock: sockRTP, src: "127.0.0.1:4000", pkt: rtp, drop: dropNoDestination,
			},
		}},
		{"latching behind NAT", true, nat, []routeStep{
			{name: "stranger never latches", side: A, sock: sockRTP, src: "203.0.113.9:4000", pkt: rtp, drop: dropWrongSource},
			{name: "malformed packet does not latch", side: A, sock: sockRTP, src: "198.51.100.7:31000", pkt: short, drop: dropMalformed},
			{name: "signaling IP latches", side: A, sock: sockRTP, src: "198.51.100.7:31000", pkt: rtp, latch: true, out: sockRTP, dst: "192.0.2.10:5000"},
			{name: "latched source accepted", side: A, sock: sockRTP, src: "198.51.100.7:31000", pkt: rtp, out: sockRTP, dst: "192.0.2.10:5000"},
			{name: "later mover from same IP refused", side: A, sock: sockRTP, src: "198.51.100.7:31002", pkt: rtp, drop: dropWrongSource},
			{name: "even the SDP address is refused once latched", side: A, sock: sockRTP, src: "10.1.1.5:4000", pkt: rtp, drop: dropWrongSource},
			{name: "B latches to its SDP address, sends to A's latched source", side: B, sock: sockRTP, src: "192.0.2.10:5000", pkt: rtp, latch: true, out: sockRTP, dst: "198.51.100.7:31000"},
			{name: "RTCP latches apart from RTP", side: A, sock: sockRTCP, src: "198.51.100.7:31001", pkt: rtcp, rtcp: true, latch: true, out: sockRTCP, dst: "192.0.2.10:5001"},
			{name: "B's RTCP goes to A's latched RTCP source", side: B, sock: sockRTCP, src: "192.0.2.10:5001", pkt: rtcp, rtcp: true, latch: true, out: sockRTCP, dst: "198.51.100.7:31001"},
			{
				name:  "re-INVITE with the same SDP keeps the latch",
				setup: func(s *Stream) { s.SetRemote(A, ap("10.1.1.5:4000"), ap("10.1.1.5:4001"), false, ip("198.51.100.8")) },
				side:  A, sock: sockRTP, src: "198.51.100.7:31002", pkt: rtp, drop: dropWrongSource,
			},
			{
				name:  "re-INVITE with a new SDP address re-arms the latch",
				setup: func(s *Stream) { s.SetRemote(A, ap("10.1.1.6:4100"), netip.AddrPort{}, false, ip("198.51.100.7")) },
				side:  A, sock: sockRTP, src: "198.51.100.7:31002", pkt: rtp, latch: true, out: sockRTP, dst: "192.0.2.10:5000",
			},
			{name: "B now reaches the new source", side: B, sock: sockRTP, src: "192.0.2.10:5000", pkt: rtp, out: sockRTP, dst: "198.51.100.7:31002"},
			{name: "the old source is refused", side: A, sock: sockRTP, src: "198.51.100.7:31000", pkt: rtp, drop: dropWrongSource},
		}},
		{"latching waits for authentication", true, func(s *Stream) {
			s.SetRemote(A, ap("127.0.0.1:4000"), netip.AddrPort{}, false, lo)
			s.SetRemote(B, ap("192.0.2.10:5000"), netip.AddrPort{}, false, ip("192.0.2.10"))
		}, []routeStep{
			{name: "forged packet from the signaled IP", side: A, sock: sockRTP, src: "127.0.0.1:5555", pkt: rtp, noAuth: true, latch: true, out: sockRTP, dst: "192.0.2.10:5000"},
			{name: "side still unlatched", side: A, sock: sockRTP, src: "127.0.0.1:6666", pkt: rtp, latch: true, out: sockRTP, dst: "192.0.2.10:5000"},
			{name: "forger refused after the real peer latched", side: A, sock: sockRTP, src: "127.0.0.1:5555", pkt: rtp, drop: dropWrongSource},
		}},
		{"latching with rtcp-mux", true, func(s *Stream) {
			s.SetRemote(A, ap("10.1.1.5:4000"), netip.AddrPort{}, true, ip("198.51.100.7"))
		}, []routeStep{
			{name: "early media latches before B answers", side: A, sock: sockRTP, src: "198.51.100.7:31000", pkt: rtp, latch: true, drop: dropNoDestination},
			{
				name:  "muxed RTCP shares the RTP latch",
				setup: func(s *Stream) { s.SetRemote(B, ap("192.0.2.10:5000"), netip.AddrPort{}, false, ip("192.0.2.10")) },
				side:  A, sock: sockRTP, src: "198.51.100.7:31000", pkt: rtcp, rtcp: true, out: sockRTCP, dst: "192.0.2.10:5001",
			},
			{name: "muxed RTCP from another port refused", side: A, sock: sockRTP, src: "198.51.100.7:31001", pkt: rtcp, drop: dropWrongSource},
			{name: "RTCP socket refused with mux", side: A, sock: sockRTCP, src: "198.51.100.7:31001", pkt: rtcp, drop: dropWrongSource},
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			s := detachedStream(sc.latching)
			if sc.setup != nil {
				sc.setup(s)
			}
			for _, st := range sc.steps {
				if st.setup != nil {
					st.setup(s)
				}
				src := ap(st.src)
				v := s.route(st.side, st.sock, src, st.pkt)
				if v.drop != st.drop || v.rtcp != st.rtcp || (v.latch != nil) != st.latch {
					t.Fatalf("%s: got drop=%d rtcp=%v latch=%v, want drop=%d rtcp=%v latch=%v",
						st.name, v.drop, v.rtcp, v.latch != nil, st.drop, st.rtcp, st.latch)
				}
				if st.drop == dropNone && (v.out != st.out || v.dst != ap(st.dst)) {
					t.Fatalf("%s: got %v via %v socket, want %v via %v socket", st.name, v.dst, v.out, st.dst, st.out)
				}
				if v.latch != nil && !st.noAuth && !s.commitLatch(st.side, st.sock, v.latch, src) {
					t.Fatalf("%s: latch refused", st.name)
				}
			}
		})
	}
}

func TestIsRTCP(t *testing.T) {
	for _, c := range []struct {
		b1   byte
		want bool
	}{
		{0, false},          // PCMU
		{8, false},          // PCMA
		{18, false},         // G.729
		{101, false},        // telephone-event
		{0x80 | 0, false},   // PCMU with the marker bit
		{0x80 | 101, false}, // telephone-event, marker bit (start of a digit)
		{63, false},         // below the RTCP range
		{64, true},          // lowest payload type that collides with RTCP
		{95, true},          // highest
		{96, false},         // first dynamic type
		{200, true},         // SR
		{201, true},         // RR
		{202, true},         // SDES
		{203, true},         // BYE
		{205, true},         // RTPFB
		{206, true},         // PSFB
		{207, true},         // XR
		{223, true},         // last RTCP type (RFC 5761 §4)
		{224, false},        // 0x80|96: dynamic type with the marker bit
	} {
		if got := isRTCP(c.b1); got != c.want {
			t.Errorf("isRTCP(%d) = %v, want %v", c.b1, got, c.want)
		}
	}
}

// FuzzRoute: whatever arrives from wherever, route never panics and never
// relays a packet that is not from the signaled source or not RTP/RTCP.
func FuzzRoute(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1}, uint16(4000), false, rtpPacket(0, 1, "x"))
	f.Add([]byte{127, 0, 0, 1}, uint16(4000), true, rtcpPacket(1))
	f.Add([]byte{127, 0, 0, 1}, uint16(4001), true, []byte{0x80, 200})
	f.Add([]byte{10, 0, 0, 1}, uint16(4000), false, []byte{})
	f.Fuzz(func(t *testing.T, ip4 []byte, port uint16, rtcpSock bool, pkt []byte) {
		if len(ip4) != 4 {
			return
		}
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip4)), port)
		s := detachedStream(false)
		s.SetRemote(A, ap("127.0.0.1:4000"), netip.AddrPort{}, true, lo)
		s.SetRemote(B, ap("192.0.2.10:5000"), netip.AddrPort{}, false, lo)
		sock := sockRTP
		if rtcpSock {
			sock = sockRTCP
		}
		v := s.route(A, sock, src, pkt)
		if v.drop != dropNone {
			return
		}
		if src != ap("127.0.0.1:4000") || sock != sockRTP {
			t.Fatalf("relayed a packet from %v on the %v socket", src, sock)
		}
		if len(pkt) < 8 || pkt[0]>>6 != 2 || (!v.rtcp && len(pkt) < 12) {
			t.Fatalf("relayed malformed % x", pkt)
		}
		want := ap("192.0.2.10:5000")
		if v.rtcp {
			want = ap("192.0.2.10:5001")
		}
		if v.dst != want {
			t.Fatalf("sent to %v, want %v", v.dst, want)
		}
	})
}
