package media

import (
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Side names one leg of a stream.
type Side uint8

const (
	A Side = 0 // faces the inbound peer (the one that sent the INVITE)
	B Side = 1 // faces the outbound peer (the one the route chose)
)

func (s Side) String() string {
	switch s {
	case A:
		return "A"
	case B:
		return "B"
	}
	return "Side(" + strconv.Itoa(int(s)) + ")"
}

func (s Side) other() Side { return s ^ 1 }

// sockKind indexes a leg's two sockets.
type sockKind uint8

const (
	sockRTP  sockKind = 0
	sockRTCP sockKind = 1
)

func (k sockKind) String() string {
	if k == sockRTP {
		return "rtp"
	}
	return "rtcp"
}

// Buffer sizes. A datagram longer than maxPacket is dropped as malformed
// rather than relayed truncated; MaxOverhead more bytes stay free after it
// for an egress Transform.
const (
	maxPacket = 8192
	bufSize   = maxPacket + MaxOverhead
)

// Stream relays one media stream of a call between side A and side B. Its
// methods are safe for concurrent use, and with packets flowing.
type Stream struct {
	m          *Manager
	callID     string
	log        *zap.Logger
	latching   bool
	onInactive func()

	legs [2]leg
	w    *worker // relays for the stream; nil until attached (set under m.mu)
	hold atomic.Bool

	setMu  sync.Mutex // serializes SetRemote (its latch carry-over reads, then writes)
	rtcpMu sync.Mutex // serializes RTCP Transform calls (see SetTransform)
	dtlsMu sync.Mutex // orders StartDTLS (storing a leg's dtls) with Close
	dtlsWG sync.WaitGroup

	closing atomic.Bool
	done    chan struct{} // closed once Close has released everything

	// Touched by Manager.sweep only (the sweeper goroutine).
	lastAlive  uint64
	lastActive time.Time
	fired      bool
}

// leg is one side of a stream.
type leg struct {
	socks [2]*socket // [sockKind]; immutable after NewStream
	local [2]netip.AddrPort
	pair  pair // the RTP/RTCP port pair, to release

	remote atomic.Pointer[remote]     // nil until SetRemote gives a usable address
	xform  atomic.Pointer[transforms] // nil: plain RTP
	dtls   atomic.Pointer[dtlsLeg]    // nil: no DTLS-SRTP on this leg (see StartDTLS)
}

// remote is where one side's peer is, from its SDP. Immutable once stored;
// SetRemote stores a new one. The latch it points to is shared with the
// remote it replaced when the SDP addresses did not change.
type remote struct {
	rtp, rtcp netip.AddrPort // rtcp == rtp with mux
	mux       bool
	signalIP  netip.Addr
	latch     *latch // nil when latching is off
}

// latch holds the source each of a side's sockets latched onto; a nil
// pointer means not latched yet. With rtcp-mux, RTCP shares the RTP latch.
type latch struct {
	rtp, rtcp atomic.Pointer[netip.AddrPort]
}

func (l *latch) slot(k sockKind) *atomic.Pointer[netip.AddrPort] {
	if k == sockRTP {
		return &l.rtp
	}
	return &l.rtcp
}

// Local returns the addresses ccsbc receives side's media on: these go into
// the SDP sent to that side's peer (with the advertised address in place of
// the bound one behind NAT).
func (s *Stream) Local(side Side) (rtp, rtcp netip.AddrPort) {
	l := &s.legs[side]
	return l.local[sockRTP], l.local[sockRTCP]
}

// SetRemote tells the stream where side's peer receives media, from its SDP:
// rtp is the connection address and port of the m= line; rtcp is the
// a=rtcp address, or invalid for the RTP port + 1 (RFC 3550 §11); with mux
// (rtcp-mux negotiated, RFC 5761) RTCP shares the RTP address and rtcp is
// ignored. signalIP is the IP the peer's SIP came from: with latching, media
// from it is accepted too. An invalid or unspecified rtp address, or port 0
// (c=0.0.0.0 hold, a rejected stream), means the peer receives nothing:
// packets toward it are dropped as Drops.NoDestination, packets from it as
// Drops.WrongSource.
//
// It is safe to call while packets flow (re-INVITE). If the SDP addresses
// are unchanged a side that latched stays latched; new addresses re-arm the
// latch.
func (s *Stream) SetRemote(side Side, rtp, rtcp netip.AddrPort, mux bool, signalIP netip.Addr) {
	rtp, rtcp, signalIP = unmap(rtp), unmap(rtcp), signalIP.Unmap()
	l := &s.legs[side]
	s.setMu.Lock()
	defer s.setMu.Unlock()
	if !usable(rtp) {
		l.remote.Store(nil)
		return
	}
	switch {
	case mux:
		rtcp = rtp
	case !usable(rtcp) && rtp.Port() < 65535:
		rtcp = netip.AddrPortFrom(rtp.Addr(), rtp.Port()+1)
	}
	r := &remote{rtp: rtp, rtcp: rtcp, mux: mux, signalIP: signalIP}
	if s.latching {
		if old := l.remote.Load(); old != nil && old.rtp == rtp && old.rtcp == rtcp {
			r.latch = old.latch
		} else {
			r.latch = new(latch)
		}
	}
	l.remote.Store(r)
	if ce := s.log.Check(zap.DebugLevel, "media remote set"); ce != nil {
		ce.Write(zap.Stringer("side", side), zap.Stringer("rtp", rtp), zap.Stringer("rtcp", rtcp),
			zap.Bool("mux", mux), zap.Stringer("signal_ip", signalIP))
	}
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func usable(ap netip.AddrPort) bool {
	return ap.Addr().IsValid() && !ap.Addr().IsUnspecified() && ap.Port() != 0
}

// SetHold tells the stream whether it is on hold (a=inactive, or sendonly
// both ways): while it is, the inactivity timeout does not run, and it
// starts afresh when the hold ends.
func (s *Stream) SetHold(inactive bool) { s.hold.Store(inactive) }

// Close stops relaying and releases the stream's ports, which are reusable
// when it returns. It is idempotent; a call that races with another returns
// once the first has finished.
func (s *Stream) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		<-s.done
		return nil
	}
	s.dtlsMu.Lock()
	for i := range s.legs {
		if d := s.legs[i].dtls.Load(); d != nil {
			d.stop()
		}
	}
	s.dtlsMu.Unlock()
	// Once the worker has let go of the sockets, nothing but a DTLS send
	// (which takes the socket's lock) can touch a descriptor: closing it
	// cannot hand its number to a new socket under the worker's feet.
	if s.w != nil {
		_ = s.w.do(&workerOp{kind: opDetach, s: s})
		s.w.streams.Add(-1)
	}
	var errs []error
	for _, k := range s.sockets() {
		if err := k.close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.dtlsWG.Wait()
	s.m.remove(s)
	for i := range s.legs {
		s.m.ports.put(s.legs[i].pair)
	}
	if ce := s.log.Check(zap.DebugLevel, "media stream closed"); ce != nil {
		ce.Write(zap.Object("stats", s.Stats()))
	}
	close(s.done)
	return errors.Join(errs...)
}

// sockets returns the stream's four sockets, side A's first.
func (s *Stream) sockets() []*socket {
	return []*socket{s.legs[A].socks[sockRTP], s.legs[A].socks[sockRTCP], s.legs[B].socks[sockRTP], s.legs[B].socks[sockRTCP]}
}

// releaseLegs closes the sockets and returns the ports of a stream that
// never started.
func (s *Stream) releaseLegs() {
	for i := range s.legs {
		l := &s.legs[i]
		if l.socks[sockRTP] == nil {
			continue
		}
		l.socks[sockRTP].close()
		l.socks[sockRTCP].close()
		s.m.ports.put(l.pair)
	}
}

// verdict is what route decided for one received packet.
type verdict struct {
	drop dropReason // dropNone to relay
	rtcp bool       // the packet is RTCP
	// latch, if not nil, is the slot the packet's source latches into once
	// it has passed the ingress Transform.
	latch *atomic.Pointer[netip.AddrPort]
	out   sockKind       // the other side's socket to send from
	dst   netip.AddrPort // where to send
}

// route decides what becomes of pkt, received from src on side in's socket
// sock: where it goes, or why it is dropped. It reads the stream's state
// and changes nothing, so the relay can still drop the packet (Transform
// failure) before anything latches.
//
// The checks, in order:
//  1. source: the side's signaled address for that socket (RTP, or RTCP
//     without mux), or with latching its latched source, or before it
//     latched any source with the signaled IP or the SIP signaling IP;
//  2. form: RTP (RFC 3550 §5.1) or RTCP (§6.4), told apart on a muxed RTP
//     socket by the payload type per RFC 5761 §4;
//  3. destination: the other side's signaled (or latched) address.
//
// A drop for NoDestination still carries latch, so that early media latches
// its source before the other side has answered.
func (s *Stream) route(in Side, sock sockKind, src netip.AddrPort, pkt []byte) verdict {
	r := s.legs[in].remote.Load()
	if r == nil {
		return verdict{drop: dropWrongSource}
	}

	want := r.rtp
	if sock == sockRTCP {
		if r.mux {
			// With rtcp-mux the peer sends nothing to our RTCP port.
			return verdict{drop: dropWrongSource}
		}
		want = r.rtcp
	}
	var v verdict
	if r.latch == nil {
		if src != want {
			return verdict{drop: dropWrongSource}
		}
	} else {
		slot := r.latch.slot(sock)
		if l := slot.Load(); l != nil {
			if src != *l {
				return verdict{drop: dropWrongSource}
			}
		} else if src.Addr() == want.Addr() || src.Addr() == r.signalIP {
			v.latch = slot
		} else {
			return verdict{drop: dropWrongSource}
		}
	}

	// Without mux on this side everything on the RTP socket is RTP: payload
	// types 64-95 are legal RTP there, and model 1 must change nothing.
	v.rtcp = sock == sockRTCP || (r.mux && len(pkt) >= 2 && isRTCP(pkt[1]))
	minLen := 12
	if v.rtcp {
		minLen = 8
	}
	if len(pkt) < minLen || pkt[0]>>6 != 2 {
		return verdict{drop: dropMalformed}
	}

	o := s.legs[in.other()].remote.Load()
	if o == nil {
		v.drop = dropNoDestination
		return v
	}
	v.out, v.dst = sockRTP, o.rtp
	if v.rtcp && !o.mux {
		v.out, v.dst = sockRTCP, o.rtcp
	}
	if o.latch != nil {
		if l := o.latch.slot(v.out).Load(); l != nil {
			v.dst = *l
		}
	}
	return v
}

// isRTCP reports whether the second byte of a packet on a muxed socket
// makes it RTCP: RTCP packet types 192-223 are payload types 64-95 once
// the marker bit is masked off (RFC 5761 §4).
func isRTCP(b1 byte) bool {
	pt := b1 & 0x7f
	return pt >= 64 && pt <= 95
}

// commitLatch latches the side onto src. It reports false if the slot
// latched onto another source meanwhile, which only an earlier packet of
// the same socket could do.
func (s *Stream) commitLatch(side Side, sock sockKind, slot *atomic.Pointer[netip.AddrPort], src netip.AddrPort) bool {
	p := new(netip.AddrPort)
	*p = src
	if !slot.CompareAndSwap(nil, p) {
		return *slot.Load() == src
	}
	if ce := s.log.Check(zap.DebugLevel, "media latched"); ce != nil {
		ce.Write(zap.Stringer("side", side), zap.Stringer("socket", sock), zap.Stringer("source", src))
	}
	return true
}

// relay handles the packet buf[:n] that k received from src: the
// per-packet path, run by the stream's worker on one of its buffers
// (len(buf) >= n+MaxOverhead, for an egress Transform). n > maxPacket means
// the datagram did not fit. It must not allocate.
func (k *socket) relay(buf []byte, n int, src netip.AddrPort) {
	c := &k.ctr
	c.packetsIn.Add(1)
	c.bytesIn.Add(uint64(n))
	if n > maxPacket {
		c.drops[dropMalformed].Add(1)
		return
	}
	s := k.s
	// RTP and RTCP start with 128-191 (RFC 7983 §7): one compare keeps
	// them off the demultiplexer.
	if n > 0 && buf[0] < 64 {
		k.demux(buf[:n], src)
		return
	}
	v := s.route(k.side, k.kind, src, buf[:n])
	if v.drop != dropNone && v.drop != dropNoDestination {
		c.drops[v.drop].Add(1)
		return
	}
	if t := s.legs[k.side].xform.Load().pick(v.rtcp); t != nil {
		var err error
		if n, err = s.unprotect(t, v.rtcp, buf, n); err != nil {
			c.drops[transformDrop(err)].Add(1)
			return
		}
	}
	if v.latch != nil && !s.commitLatch(k.side, k.kind, v.latch, src) {
		c.drops[dropWrongSource].Add(1)
		return
	}
	if v.rtcp {
		c.rtcpIn.Add(1)
	}
	if v.drop == dropNoDestination {
		c.drops[dropNoDestination].Add(1)
		return
	}
	out := &s.legs[k.side.other()]
	if t := out.xform.Load().pick(v.rtcp); t != nil {
		var err error
		if n, err = s.protect(t, v.rtcp, buf, n); err != nil {
			c.drops[transformDrop(err)].Add(1)
			return
		}
	}
	if err := out.socks[v.out].send(buf[:n], v.dst); err != nil {
		c.drops[dropSendError].Add(1)
		return
	}
	c.packetsOut.Add(1)
	c.bytesOut.Add(uint64(n))
	if v.rtcp {
		c.rtcpOut.Add(1)
	}
}

// demux handles a datagram whose first byte is below 64 (RFC 7983 §7):
// STUN (0-3) is dropped and counted, no ICE being done yet; DTLS (20-63) on
// the RTP socket of a leg with a DTLS session goes to its handshake if it
// passes the same source check as RTP (rtpSource); anything else (ZRTP, DTLS
// on a leg without DTLS or on an RTCP socket) is dropped. Not the RTP path:
// a DTLS datagram is copied once for the handshake.
func (k *socket) demux(pkt []byte, src netip.AddrPort) {
	c := &k.ctr
	switch b := pkt[0]; {
	case b <= 3:
		c.drops[dropSTUN].Add(1)
	case b >= 20 && k.kind == sockRTP:
		d := k.s.legs[k.side].dtls.Load()
		if d == nil {
			c.drops[dropDTLS].Add(1)
			return
		}
		if drop := d.accept(pkt, src); drop != dropNone {
			c.drops[drop].Add(1)
			return
		}
		c.dtlsIn.Add(1)
	case b >= 20:
		c.drops[dropDTLS].Add(1)
	default:
		c.drops[dropMalformed].Add(1)
	}
}
