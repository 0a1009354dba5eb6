package load

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// The generator's media: every call has two flows, A→B (the caller sends,
// the callee receives) and B→A. A flow is one G.711 stream: 160 bytes of
// payload every 20 ms, each packet's payload starting with
//
//	 0               8              12  13
//	+---------------+--------------+---+-------------- ... ----+
//	| sent (ns, BE) | flow id (BE) | E |  µ-law silence         |
//	+---------------+--------------+---+-------------- ... ----+
//
// sent is the send time on this process's monotonic clock (sender and
// receiver are the same process, so one-way latency is exact), E the
// measurement epoch the packet belongs to (0: not measured).
//
// Calls share the generator's sockets: call i's caller side sends from, and
// receives on, sideA[i%K], its callee side sideB[i%K]. The relay's ports are
// one per call and side, so the generator tells flows apart by the port a
// packet comes from; the flow id in the payload catches a relay that
// crosses streams.

const (
	packetInterval = 20 * time.Millisecond
	tick           = time.Millisecond
	slots          = int(packetInterval / tick)
	payloadLen     = 160 // 20 ms of G.711 at 8 kHz
	batchSize      = 32
	bufLen         = 1500
	stampLen       = 13
)

// flow is one direction of one call.
type flow struct {
	id      uint32
	out     *genSock       // the socket it is sent from
	dst     netip.AddrPort // the relay's port it is sent to
	src     netip.AddrPort // the relay's port it arrives from
	ssrc    uint32
	seq     uint16
	ts      uint32
	enc     *srtp.Context // nil: RTP
	dec     *srtp.Context // nil: RTP; used by the receiving socket's goroutine only
	sent    atomic.Uint64 // measured packets sent
	recv    atomic.Uint64 // measured packets received
	stopped atomic.Bool
}

// genSock is one of the generator's UDP sockets.
type genSock struct {
	c    *batchConn
	addr netip.AddrPort
	rx   rxStats
}

// rxStats is what one receiving goroutine counted. mu is held while a
// batch is processed and while a snapshot is taken.
type rxStats struct {
	mu        sync.Mutex
	hist      histogram
	unknown   uint64 // from a port that is no flow's
	misrouted uint64 // the flow id in the payload is another flow's
	srtpFail  uint64 // failed SRTP authentication (or decryption)
	late      uint64 // measured packets of an epoch already closed
	malformed uint64
}

// Generator sends and receives the media of many calls.
type Generator struct {
	base  time.Time
	sideA []*genSock
	sideB []*genSock

	epoch atomic.Uint32 // the epoch stamped into packets being sent; 0: none
	// counted is the epoch whose packets the receivers count: it outlives
	// epoch by the drain time, so that packets in flight when the window
	// closes still count.
	counted atomic.Uint32

	// byPort maps a relay port to the flow that arrives from it.
	byPort [65536]atomic.Pointer[flow]

	mu    sync.Mutex // guards sched and flows (the sender holds it while it sends a tick)
	sched [slots][]*flow
	flows []*flow

	sendErrs atomic.Uint64
	ticks    atomic.Uint64
	lateTick atomic.Uint64 // ticks that started more than one tick late

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewGenerator opens k sockets per side on ip (a loopback address) with
// receive and send buffers of bufBytes.
func NewGenerator(ip netip.Addr, k int, bufBytes int) (*Generator, error) {
	if !ip.IsLoopback() {
		return nil, fmt.Errorf("load: generator address %v is not on loopback", ip)
	}
	g := &Generator{base: time.Now(), stop: make(chan struct{})}
	for side := range 2 {
		for range k {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
			if err != nil {
				g.Close()
				return nil, err
			}
			setBuffers(c, bufBytes)
			bc, err := newBatchConn(c, batchSize)
			if err != nil {
				c.Close()
				g.Close()
				return nil, err
			}
			s := &genSock{c: bc, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
			if side == 0 {
				g.sideA = append(g.sideA, s)
			} else {
				g.sideB = append(g.sideB, s)
			}
		}
	}
	for _, s := range append(append([]*genSock{}, g.sideA...), g.sideB...) {
		g.wg.Add(1)
		go g.receive(s)
	}
	g.wg.Add(1)
	go g.send()
	return g, nil
}

// setBuffers asks for large socket buffers; as root SO_RCVBUFFORCE goes
// past net.core.rmem_max.
func setBuffers(c *net.UDPConn, n int) {
	_ = c.SetReadBuffer(n)
	_ = c.SetWriteBuffer(n)
	if raw, err := c.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n)
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, n)
		})
	}
}

// CallAddrs are the generator's media addresses for call i.
func (g *Generator) CallAddrs(i int) (a, b netip.AddrPort) {
	return g.sideA[i%len(g.sideA)].addr, g.sideB[i%len(g.sideB)].addr
}

// CallMedia is what the signaling of one call settled: where the relay
// receives each side's media, and the keys (nil for RTP).
type CallMedia struct {
	RelayA, RelayB netip.AddrPort // the relay's port toward the caller, toward the callee
	// EncA encrypts what the caller sends, DecA decrypts what the caller
	// receives; EncB, DecB the same for the callee.
	EncA, DecA, EncB, DecB *srtp.Context
}

// AddCall starts the two flows of call i. They start sending at the next
// tick of their slot.
func (g *Generator) AddCall(i int, m CallMedia) error {
	sa, sb := g.sideA[i%len(g.sideA)], g.sideB[i%len(g.sideB)]
	ab := &flow{id: uint32(2 * i), out: sa, dst: m.RelayA, src: m.RelayB, enc: m.EncA, dec: m.DecB}
	ba := &flow{id: uint32(2*i + 1), out: sb, dst: m.RelayB, src: m.RelayA, enc: m.EncB, dec: m.DecA}
	for _, f := range []*flow{ab, ba} {
		if !f.dst.Addr().Is4() || !f.dst.Addr().IsLoopback() {
			return fmt.Errorf("load: relay media address %v is not IPv4 loopback", f.dst)
		}
		if old := g.byPort[f.src.Port()].Load(); old != nil && !old.stopped.Load() {
			return fmt.Errorf("load: relay port %d is already flow %d's", f.src.Port(), old.id)
		}
		f.ssrc = 0x5a000000 ^ f.id*2654435761
		f.seq = uint16(f.id * 7919)
		f.ts = f.id * 104729
	}
	g.byPort[ab.src.Port()].Store(ab)
	g.byPort[ba.src.Port()].Store(ba)
	g.mu.Lock()
	// Spread the flows over the 20 slots of a packet interval so that the
	// relay sees a steady rate, not 20 ms bursts.
	for _, f := range []*flow{ab, ba} {
		s := int(f.id) % slots
		g.sched[s] = append(g.sched[s], f)
		g.flows = append(g.flows, f)
	}
	g.mu.Unlock()
	return nil
}

// StopSending stops every flow (before the calls are torn down).
func (g *Generator) StopSending() {
	g.mu.Lock()
	for i := range g.sched {
		g.sched[i] = nil
	}
	for _, f := range g.flows {
		f.stopped.Store(true)
	}
	g.mu.Unlock()
}

// Close stops the sender and the receivers and closes the sockets.
func (g *Generator) Close() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	for _, s := range append(append([]*genSock{}, g.sideA...), g.sideB...) {
		s.c.conn.Close()
	}
	g.wg.Wait()
}

func (g *Generator) now() int64 { return int64(time.Since(g.base)) }

// send is the sender goroutine: every tick it sends the packets of the
// flows in that tick's slot, batched per socket.
func (g *Generator) send() {
	defer g.wg.Done()
	type batch struct {
		pkts [][]byte
		dsts []netip.AddrPort
	}
	bufs := map[*genSock]*batch{}
	getBatch := func(s *genSock) *batch {
		b := bufs[s]
		if b == nil {
			b = &batch{}
			bufs[s] = b
		}
		return b
	}
	pool := make([][]byte, 0, 4096)
	var hdr rtp.Header
	silence := make([]byte, payloadLen)
	for i := range silence {
		silence[i] = 0xff // µ-law silence
	}
	start := time.Now()
	for k := 0; ; k++ {
		target := start.Add(time.Duration(k) * tick)
		if d := time.Until(target); d > 0 {
			select {
			case <-g.stop:
				return
			case <-time.After(d):
			}
		} else {
			select {
			case <-g.stop:
				return
			default:
			}
			if d < -tick {
				g.lateTick.Add(1)
			}
		}
		g.ticks.Add(1)
		epoch := g.epoch.Load()
		g.mu.Lock()
		flows := g.sched[k%slots]
		used := 0
		for _, f := range flows {
			if used == len(pool) {
				pool = append(pool, make([]byte, bufLen))
			}
			buf := pool[used][:bufLen]
			used++
			hdr = rtp.Header{Version: 2, PayloadType: payloadType, SequenceNumber: f.seq, Timestamp: f.ts, SSRC: f.ssrc}
			f.seq++
			f.ts += payloadLen
			n, err := hdr.MarshalTo(buf)
			if err != nil {
				continue
			}
			p := buf[n : n+payloadLen]
			copy(p, silence)
			binary.BigEndian.PutUint64(p[0:8], uint64(g.now()))
			binary.BigEndian.PutUint32(p[8:12], f.id)
			p[12] = byte(epoch)
			pkt := buf[:n+payloadLen]
			if f.enc != nil {
				out, err := f.enc.EncryptRTP(buf[:0], pkt, &hdr)
				if err != nil {
					g.sendErrs.Add(1)
					continue
				}
				pkt = out
			}
			b := getBatch(f.out)
			b.pkts = append(b.pkts, pkt)
			b.dsts = append(b.dsts, f.dst)
			if epoch != 0 {
				f.sent.Add(1)
			}
		}
		g.mu.Unlock()
		for s, b := range bufs {
			if len(b.pkts) == 0 {
				continue
			}
			if err := s.c.send(b.pkts, b.dsts); err != nil {
				g.sendErrs.Add(uint64(len(b.pkts)))
			}
			b.pkts, b.dsts = b.pkts[:0], b.dsts[:0]
		}
	}
}

// receive is the goroutine that reads socket s.
func (g *Generator) receive(s *genSock) {
	defer g.wg.Done()
	bufs := make([][]byte, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, bufLen)
	}
	sizes := make([]int, batchSize)
	srcs := make([]netip.AddrPort, batchSize)
	var hdr rtp.Header
	st := &s.rx
	for {
		n, err := s.c.recv(bufs, sizes, srcs)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-g.stop:
				return
			default:
				continue
			}
		}
		now := g.now()
		cur := g.counted.Load()
		st.mu.Lock()
		for i := range n {
			pkt := bufs[i][:sizes[i]]
			f := g.byPort[srcs[i].Port()].Load()
			if f == nil || f.src != srcs[i] {
				st.unknown++
				continue
			}
			if f.dec != nil {
				out, err := f.dec.DecryptRTP(pkt, pkt, &hdr)
				if err != nil {
					st.srtpFail++
					continue
				}
				pkt = out
			}
			hl := rtpHeaderLen(pkt)
			if hl < 0 || len(pkt)-hl < stampLen {
				st.malformed++
				continue
			}
			p := pkt[hl:]
			if binary.BigEndian.Uint32(p[8:12]) != f.id {
				st.misrouted++
				continue
			}
			e := uint32(p[12])
			if e == 0 {
				continue
			}
			if e != cur {
				st.late++
				continue
			}
			f.recv.Add(1)
			st.hist.add(time.Duration(now - int64(binary.BigEndian.Uint64(p[0:8]))))
		}
		st.mu.Unlock()
	}
}

// rtpHeaderLen is the length of the RTP header of pkt (RFC 3550 §5.1, §5.3.1),
// or -1 if pkt is shorter than its header.
func rtpHeaderLen(pkt []byte) int {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return -1
	}
	n := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < n+4 {
			return -1
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(pkt[n+2:n+4]))
	}
	if n > len(pkt) {
		return -1
	}
	return n
}

// Window is what the generator counted over one measurement window.
type Window struct {
	Epoch        uint32
	Start, End   time.Time
	Flows        int
	Sent, Recv   uint64
	DeadFlows    int // flows that sent but received nothing
	Hist         histogram
	Unknown      uint64
	Misrouted    uint64
	SRTPFail     uint64
	Late         uint64
	Malformed    uint64
	SendErrors   uint64
	LateTicks    uint64
	Ticks        uint64
	GeneratorCPU time.Duration
}

// Loss is the fraction of measured packets that did not arrive.
func (w *Window) Loss() float64 {
	if w.Sent == 0 {
		return 0
	}
	if w.Recv >= w.Sent {
		return 0
	}
	return float64(w.Sent-w.Recv) / float64(w.Sent)
}

// BeginWindow resets the counters and starts stamping packets with a new
// epoch.
func (g *Generator) BeginWindow(epoch uint32) {
	g.mu.Lock()
	for _, f := range g.flows {
		f.sent.Store(0)
		f.recv.Store(0)
	}
	g.mu.Unlock()
	for _, s := range append(append([]*genSock{}, g.sideA...), g.sideB...) {
		s.rx.mu.Lock()
		s.rx.hist = histogram{}
		s.rx.unknown, s.rx.misrouted, s.rx.srtpFail, s.rx.late, s.rx.malformed = 0, 0, 0, 0, 0
		s.rx.mu.Unlock()
	}
	g.sendErrs.Store(0)
	g.lateTick.Store(0)
	g.ticks.Store(0)
	g.counted.Store(epoch)
	g.epoch.Store(epoch)
}

// EndWindow stops stamping, waits drain for the packets still in flight,
// and returns what was counted since BeginWindow.
func (g *Generator) EndWindow(drain time.Duration) Window {
	w := Window{Epoch: g.epoch.Load()}
	g.epoch.Store(0)
	w.SendErrors, w.LateTicks, w.Ticks = g.sendErrs.Load(), g.lateTick.Load(), g.ticks.Load()
	time.Sleep(drain)
	g.mu.Lock()
	for _, f := range g.flows {
		s, r := f.sent.Load(), f.recv.Load()
		if s == 0 {
			continue
		}
		w.Flows++
		w.Sent += s
		w.Recv += r
		if r == 0 {
			w.DeadFlows++
		}
	}
	g.mu.Unlock()
	for _, s := range append(append([]*genSock{}, g.sideA...), g.sideB...) {
		s.rx.mu.Lock()
		w.Hist.merge(&s.rx.hist)
		w.Unknown += s.rx.unknown
		w.Misrouted += s.rx.misrouted
		w.SRTPFail += s.rx.srtpFail
		w.Late += s.rx.late
		w.Malformed += s.rx.malformed
		s.rx.mu.Unlock()
	}
	return w
}
