// Package media relays RTP and RTCP between the two legs of a call through ports ccsbc owns.
//
// A Manager owns the media port range, the relay workers and the inactivity
// sweeper. A Stream is one media stream (one m= line) of one call: two
// RTP/RTCP port pairs, side A facing the inbound peer and side B the outbound
// peer. One of the Manager's workers (one per CPU, each with an epoll
// instance; worker.go) relays what arrives on a socket of one side out of
// the other side's matching socket:
//
//	inbound peer            ccsbc                         outbound peer
//	  RTP  ──────► A.rtp  ─┐          ┌─  B.rtp  ──────►  RTP
//	  RTP  ◄────── A.rtp  ◄┼──────────┼─► B.rtp  ◄──────  RTP
//	  RTCP ◄─────► A.rtcp ◄┘          └─► B.rtcp ◄─────►  RTCP
//	  (with rtcp-mux on a side, that side's RTCP uses its RTP socket)
//
// Media is symmetric (RFC 4961): each peer sends to, and receives from, the
// one port ccsbc advertised to it, so NATs and firewalls see a single flow.
// A packet is relayed only if it comes from the address signaled for its
// side (or, with latching, from the source the side latched onto): anything
// else is dropped and counted, which defeats RTP bleed and stream hijack.
//
// The per-packet path runs on the worker, which owns its buffers; it takes
// no lock on RTP, allocates nothing and logs nothing; it only counts. Events
// (a latch, a stream closing, an inactive stream) are logged.
package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Config configures a Manager. The config package decodes, defaults and
// validates it; NewManager checks it again, since a bad range here would
// only show up as calls failing.
type Config struct {
	// Bind is the address media sockets bind to. Required. An unspecified
	// IPv6 address (::) binds dual-stack; an IPv4 address binds IPv4 only.
	Bind netip.Addr
	// ExtraBinds are more addresses, of Bind's family, each with the whole
	// port range of its own: for more streams than one address's ports
	// hold. Pairs are handed out from the addresses in turn. Neither Bind
	// nor an extra may then be unspecified, and none may repeat.
	ExtraBinds []netip.Addr
	// PortMin and PortMax bound the media port range, inclusive. RTP uses
	// the even ports, RTCP the odd port above each; a stream takes two
	// pairs, so the range must hold at least two. Pairs that touch a port
	// the perimeter blocks (UDP 135, 137, 138, 445) are never used.
	PortMin, PortMax int
	// Latching lets a side accept media from a source other than its SDP
	// address, for peers behind NAT: until the side has latched, the first
	// packet whose source IP is the SDP IP or the peer's SIP signaling IP
	// locks the side onto that exact ip:port, and media toward the side is
	// sent there. Strangers never latch. A new SDP address (re-INVITE)
	// re-arms the latch. Default false: media is accepted only from the SDP
	// address, and sent only to it.
	Latching bool
	// InactivityTimeout is how long a stream may receive nothing on either
	// side before its onInactive callback runs. 0 disables the check (and
	// the sweeper goroutine). Streams on hold are never timed out.
	InactivityTimeout time.Duration
	// Workers is how many relay workers (goroutines, each with an epoll
	// instance) share the streams. Default 0: runtime.GOMAXPROCS(0), one
	// per CPU the process may use.
	Workers int
}

// sweepMaxInterval and sweepMinInterval bound how often the sweeper looks at
// the streams: InactivityTimeout/4, but no more than once per 50ms and no
// less than once per second.
const (
	sweepMaxInterval = time.Second
	sweepMinInterval = 50 * time.Millisecond
)

// Manager allocates Streams from the port range and times out inactive ones.
// It is safe for concurrent use.
type Manager struct {
	cfg     Config
	binds   []netip.Addr // Bind, then ExtraBinds: pair.addr indexes them
	zoneIDs []uint32     // scope of each link-local bind address, else 0
	log     *zap.Logger
	ports   *portPool // has its own lock

	mu      sync.Mutex // guards streams and closed
	streams map[*Stream]struct{}
	closed  bool

	closeOnce sync.Once
	closeErr  error

	stop        chan struct{}  // closed by Close to stop the sweeper
	sweeperDone chan struct{}  // closed by the sweeper when it exits; nil without one
	callbacks   sync.WaitGroup // onInactive goroutines

	workers  []*worker      // immutable after NewManager
	workerWG sync.WaitGroup // worker goroutines

	// sweepBuf is reused by sweep; only the sweeper goroutine touches it.
	sweepBuf []*Stream
}

// NewManager checks cfg and returns a Manager that allocates streams from its
// port range. A nil log discards logs. It starts Config.Workers relay
// workers, and with an InactivityTimeout one sweeper goroutine; Close stops
// them.
func NewManager(cfg Config, log *zap.Logger) (*Manager, error) {
	return newManager(cfg, log, true)
}

// newManager is NewManager; tests pass sweeper=false to drive sweep with a
// clock of their own.
func newManager(cfg Config, log *zap.Logger, sweeper bool) (*Manager, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.InactivityTimeout < 0 {
		return nil, fmt.Errorf("%w: InactivityTimeout %v is negative", ErrInvalidConfig, cfg.InactivityTimeout)
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("%w: Workers %d is negative", ErrInvalidConfig, cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	binds := append([]netip.Addr{cfg.Bind}, cfg.ExtraBinds...)
	zoneIDs := make([]uint32, len(binds))
	for i, b := range binds {
		b = b.Unmap()
		binds[i] = b
		if err := checkBind(b, binds[:i], len(binds) > 1); err != nil {
			return nil, err
		}
		if b.Is4() != binds[0].Is4() {
			return nil, fmt.Errorf("%w: ExtraBinds %v is not of Bind %v's address family", ErrInvalidConfig, b, binds[0])
		}
		if z := b.Zone(); z != "" {
			ifi, err := net.InterfaceByName(z)
			if err != nil {
				return nil, fmt.Errorf("%w: Bind %v: %v", ErrInvalidConfig, b, err)
			}
			zoneIDs[i] = uint32(ifi.Index)
		}
	}
	ports, err := newPortPool(cfg.PortMin, cfg.PortMax, len(binds))
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:     cfg,
		binds:   binds,
		zoneIDs: zoneIDs,
		log:     log,
		ports:   ports,
		streams: make(map[*Stream]struct{}),
		stop:    make(chan struct{}),
	}
	for range cfg.Workers {
		w, err := newWorker(m)
		if err != nil {
			m.stopWorkers()
			return nil, err
		}
		m.workers = append(m.workers, w)
		m.workerWG.Add(1)
		go w.run()
	}
	if sweeper && cfg.InactivityTimeout > 0 {
		m.sweeperDone = make(chan struct{})
		go m.sweeper(sweepInterval(cfg.InactivityTimeout))
	}
	return m, nil
}

// stopWorkers stops the workers started and releases their descriptors.
// No stream may be attached to them any more.
func (m *Manager) stopWorkers() {
	for _, w := range m.workers {
		_ = w.do(&workerOp{kind: opStop})
	}
	m.workerWG.Wait()
	for _, w := range m.workers {
		w.closeFDs()
	}
}

// pickWorker returns the worker with the fewest streams.
func (m *Manager) pickWorker() *worker {
	best := m.workers[0]
	for _, w := range m.workers[1:] {
		if w.streams.Load() < best.streams.Load() {
			best = w
		}
	}
	return best
}

func udpNetwork(bind netip.Addr) string {
	switch {
	case bind.Is4():
		return "udp4"
	case bind.IsUnspecified():
		return "udp"
	default:
		return "udp6"
	}
}

func sweepInterval(timeout time.Duration) time.Duration {
	return min(max(timeout/4, sweepMinInterval), sweepMaxInterval)
}

// Close closes every stream, stops the sweeper and the workers, and waits
// for onInactive callbacks that are running, so it must not be called from
// one. When it returns no goroutine of the Manager is left. NewStream fails with ErrClosed
// afterwards. Close is idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		streams := make([]*Stream, 0, len(m.streams))
		for s := range m.streams {
			streams = append(streams, s)
		}
		m.mu.Unlock()

		// The sweeper goes first so that no new callback starts.
		close(m.stop)
		if m.sweeperDone != nil {
			<-m.sweeperDone
		}
		var errs []error
		for _, s := range streams {
			errs = append(errs, s.Close())
		}
		m.callbacks.Wait()
		m.stopWorkers()
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// NewStream allocates the two port pairs of a new stream (side A's first,
// then side B's) and starts relaying on them. Ports in use by another
// process are skipped; when no pair is left it returns ErrNoPorts.
//
// The stream relays nothing until SetRemote has told it where each side's
// peer is. onInactive, if not nil, is called once, in a goroutine of its
// own, when the stream has received nothing on either side for the
// Manager's InactivityTimeout while not on hold; it typically ends the call,
// and may call Close on the stream (but not on the Manager). callID is used
// in logs only. The caller must Close the stream.
func (m *Manager) NewStream(callID string, onInactive func()) (*Stream, error) {
	return m.newStream(callID, onInactive, true)
}

// newStream is NewStream; tests pass start=false to drive the relay step by
// hand on a stream whose sockets nobody else reads (attach gives some of
// them to a worker).
func (m *Manager) newStream(callID string, onInactive func(), start bool) (*Stream, error) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	s := &Stream{
		m:          m,
		callID:     callID,
		log:        m.log.With(zap.String("call_id", callID)),
		latching:   m.cfg.Latching,
		onInactive: onInactive,
		done:       make(chan struct{}),
	}
	for side := range s.legs {
		if err := m.bindLeg(s, Side(side)); err != nil {
			s.releaseLegs()
			return nil, err
		}
	}
	// Only a complete stream goes into the set the sweeper reads. It is
	// given to its worker under mu, so that a Manager.Close that finds it
	// there detaches it after it was attached.
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		s.releaseLegs()
		return nil, ErrClosed
	}
	m.streams[s] = struct{}{}
	var attached func() error
	if start {
		attached = m.attach(s, s.sockets()...)
	}
	m.mu.Unlock()
	if attached != nil {
		if err := attached(); err != nil {
			s.Close()
			return nil, err
		}
	}
	if ce := s.log.Check(zap.DebugLevel, "media stream opened"); ce != nil {
		ce.Write(zap.Stringer("a", s.legs[A].local[sockRTP]), zap.Stringer("b", s.legs[B].local[sockRTP]))
	}
	return s, nil
}

// attach gives socks, sockets of s, to the worker of s (choosing one if s
// has none yet) and returns a function that waits until the worker has
// them. The caller holds m.mu, or owns s alone.
func (m *Manager) attach(s *Stream, socks ...*socket) (wait func() error) {
	if s.w == nil {
		s.w = m.pickWorker()
		s.w.streams.Add(1)
	}
	op := &workerOp{kind: opAttach, socks: socks}
	w := s.w
	if !w.enqueue(op) {
		return func() error { return ErrClosed }
	}
	if err := w.signal(); err != nil {
		return func() error { return err }
	}
	return func() error {
		<-op.done
		return op.err
	}
}

// checkBind checks a bind address: valid, present on this host (an address
// it does not have would otherwise show up as every call failing), and, with
// several addresses, specified and not in prev.
func checkBind(b netip.Addr, prev []netip.Addr, several bool) error {
	if !b.IsValid() {
		return fmt.Errorf("%w: Bind is not set", ErrInvalidConfig)
	}
	if several && b.IsUnspecified() {
		return fmt.Errorf("%w: Bind %v: with several bind addresses none may be unspecified", ErrInvalidConfig, b)
	}
	for _, p := range prev {
		if p == b {
			return fmt.Errorf("%w: Bind %v is given twice", ErrInvalidConfig, b)
		}
	}
	probe, err := net.ListenUDP(udpNetwork(b), net.UDPAddrFromAddrPort(netip.AddrPortFrom(b, 0)))
	if err != nil {
		return fmt.Errorf("%w: Bind %v: %v", ErrInvalidConfig, b, err)
	}
	probe.Close()
	return nil
}

// bindLeg binds side's RTP/RTCP socket pair, trying pairs of the range in
// next-fit order until one binds.
func (m *Manager) bindLeg(s *Stream, side Side) error {
	l := &s.legs[side]
	for range m.ports.size() {
		pr, ok := m.ports.take()
		if !ok {
			break
		}
		port := pr.port
		rtp, err := m.listen(s, side, sockRTP, pr.addr, port)
		if err == nil {
			var rtcp *socket
			if rtcp, err = m.listen(s, side, sockRTCP, pr.addr, port+1); err == nil {
				l.pair = pr
				l.socks = [2]*socket{rtp, rtcp}
				l.local = [2]netip.AddrPort{
					netip.AddrPortFrom(m.binds[pr.addr], uint16(port)),
					netip.AddrPortFrom(m.binds[pr.addr], uint16(port+1)),
				}
				return nil
			}
			rtp.close()
		}
		m.ports.put(pr)
		if !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("media: %w", err)
		}
		// Another process holds a port of this pair: try the next pair.
		if ce := m.log.Check(zap.DebugLevel, "media port busy, skipped"); ce != nil {
			ce.Write(zap.Int("port", port))
		}
	}
	return ErrNoPorts
}

func (m *Manager) listen(s *Stream, side Side, kind sockKind, addr, port int) (*socket, error) {
	fd, v6, err := openSocket(netip.AddrPortFrom(m.binds[addr], uint16(port)), m.zoneIDs[addr])
	if err != nil {
		return nil, err
	}
	return &socket{s: s, side: side, kind: kind, fd: fd, v6: v6, slot: -1}, nil
}

func (m *Manager) remove(s *Stream) {
	m.mu.Lock()
	delete(m.streams, s)
	m.mu.Unlock()
}
