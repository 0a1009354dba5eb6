package media

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/logging"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/deadline"
	"go.uber.org/zap"
)

// DTLS-SRTP keying (RFC 5763, RFC 5764) for one leg of a Stream.
//
// The handshake runs over the leg's RTP socket, which then also carries
// SRTP and SRTCP (rtcp-mux is assumed on a DTLS leg: RFC 5764 §4 lets
// DTLS run per component, ccsbc runs it on the RTP one only). The stream's
// worker tells the protocols apart by the first byte of each datagram
// (RFC 7983 §7):
//
//	 0 -   3  STUN         dropped and counted (Drops.STUN): no ICE yet
//	20 -  63  DTLS         to the leg's handshake (SideStats.DTLSIn)
//	128 - 191 RTP / RTCP   the relay, as before
//
// RTP costs the worker one compare. A DTLS record passes the same source
// check as RTP (route) before it reaches the handshake: a stranger cannot
// talk to it. While the handshake runs, and for good if it fails, the leg's
// Transforms refuse every packet both ways (fail closed: no plain RTP
// leaks to or from a leg that was promised SRTP).

// DTLSRole is which end of the DTLS handshake ccsbc plays on a leg, from the
// a=setup attributes (RFC 4145 §4, RFC 5763 §5).
type DTLSRole uint8

const (
	// DTLSClient: ccsbc sends the ClientHello; its SDP says a=setup:active.
	DTLSClient DTLSRole = iota + 1
	// DTLSServer: ccsbc waits for the ClientHello; its SDP says
	// a=setup:passive (or it offered actpass and the answer said active).
	DTLSServer
)

func (r DTLSRole) String() string {
	switch r {
	case DTLSClient:
		return "client"
	case DTLSServer:
		return "server"
	}
	return fmt.Sprintf("DTLSRole(%d)", uint8(r))
}

// DefaultDTLSHandshakeTimeout is DTLSConfig.HandshakeTimeout's default.
const DefaultDTLSHandshakeTimeout = 10 * time.Second

// DTLSConfig configures the DTLS-SRTP keying of one leg.
type DTLSConfig struct {
	// Role is the end of the handshake ccsbc plays. Required.
	Role DTLSRole
	// Certificate is ccsbc's certificate and key; its SHA-256 fingerprint
	// (Fingerprint) goes in the a=fingerprint ccsbc sends. Required.
	Certificate tls.Certificate
	// RemoteFingerprint is the peer's a=fingerprint: "sha-256 AB:CD:..."
	// or just the colon-separated hex, any case. The peer's certificate
	// must hash to it, or the handshake fails. Only SHA-256 is accepted.
	// Required.
	RemoteFingerprint string
	// Profiles are the SRTP protection profiles ccsbc offers (client) or
	// accepts (server), in preference order: SRTPAESCM128HMACSHA1_80,
	// SRTPAESCM128HMACSHA1_32, SRTPAEADAES128GCM, SRTPAEADAES256GCM
	// (RFC 5764 §4.1.2, RFC 7714 §14.2). Default: SRTPAESCM128HMACSHA1_80,
	// SRTPAEADAES128GCM.
	Profiles []SRTPSuite
	// HandshakeTimeout bounds the handshake, from StartDTLS. Default
	// DefaultDTLSHandshakeTimeout.
	HandshakeTimeout time.Duration
	// SRTP tunes the SRTP Transforms installed once the handshake is done
	// (replay window); the zero value is the default, as for SDES.
	SRTP SRTPOptions
	// OnResult, if not nil, is called once with the outcome of the
	// handshake: the suite negotiated (use_srtp) and a nil error once the
	// leg's SRTP keys are installed, or a zero suite and an error
	// wrapping ErrDTLSFingerprint, ErrDTLSTimeout or ErrDTLSHandshake once
	// the leg has been failed closed. It runs in a goroutine of its own and
	// may call Stream.Close (not Manager.Close). It is not called if the
	// stream is closed before the handshake ends.
	OnResult func(side Side, suite SRTPSuite, err error)
}

// defaultDTLSProfiles: ccsbc's default SDES suite first, as Unified CM
// prefers it, then GCM.
var defaultDTLSProfiles = []SRTPSuite{SRTPAESCM128HMACSHA1_80, SRTPAEADAES128GCM}

// dtlsQueueLen is how many DTLS datagrams may wait for the handshake; a
// flight is a handful of them.
const dtlsQueueLen = 32

// Fingerprint returns the a=fingerprint value for cert (RFC 8122 §5): the
// SHA-256 of its leaf certificate as "sha-256 AB:CD:...". It returns "" if
// cert holds no certificate.
func Fingerprint(cert tls.Certificate) string {
	if len(cert.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return "sha-256 " + colonHex(sum[:])
}

func colonHex(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) * 3)
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return sb.String()
}

// ParseFingerprint reads a SHA-256 a=fingerprint value, with or without its
// hash name.
func ParseFingerprint(s string) ([sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	s = strings.TrimSpace(s)
	if name, value, ok := strings.Cut(s, " "); ok {
		if !strings.EqualFold(name, "sha-256") {
			return fp, fmt.Errorf("hash %q: only sha-256 is supported", name)
		}
		s = strings.TrimSpace(value)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil || len(b) != sha256.Size || len(s) != 3*sha256.Size-1 {
		return fp, fmt.Errorf("%q: want 32 colon-separated hex bytes", s)
	}
	copy(fp[:], b)
	return fp, nil
}

// dtlsProfile is the DTLS-SRTP protection profile of a suite: RFC 5764 and
// RFC 7714 register the suites ccsbc speaks under the numbers pion/srtp
// uses for its profiles. AES_256_CM_HMAC_SHA1_80 has no DTLS-SRTP profile.
func dtlsProfile(s SRTPSuite) (dtls.SRTPProtectionProfile, bool) {
	switch s {
	case SRTPAESCM128HMACSHA1_80, SRTPAESCM128HMACSHA1_32, SRTPAEADAES128GCM, SRTPAEADAES256GCM:
		return dtls.SRTPProtectionProfile(s.Profile()), true
	}
	return 0, false
}

// DTLS reports whether the suite can be negotiated by DTLS-SRTP.
func (s SRTPSuite) DTLS() bool {
	_, ok := dtlsProfile(s)
	return ok
}

func suiteOfDTLSProfile(p dtls.SRTPProtectionProfile) (SRTPSuite, bool) {
	for s := range srtpSuites {
		if dp, ok := dtlsProfile(SRTPSuite(s)); ok && dp == p {
			return SRTPSuite(s), true
		}
	}
	return 0, false
}

// dtlsLeg is the DTLS session of one leg. The stream's worker hands it
// datagrams through pc; its run goroutine drives the handshake, installs
// the keys and then keeps the session answering retransmissions until the
// stream closes.
type dtlsLeg struct {
	s    *Stream
	side Side
	cfg  DTLSConfig
	fp   [sha256.Size]byte
	pc   *dtlsPacketConn

	// peer is the source the handshake pinned, with latching, before the
	// side latched: DTLS records from anyone else are dropped, and the
	// handshake's replies go there. nil until then.
	peer atomic.Pointer[netip.AddrPort]

	ctx    context.Context // canceled by Stream.Close
	cancel context.CancelFunc
}

// errDTLSPending and errDTLSFailed are what a DTLS leg's Transforms return
// before the keys are installed, and after the handshake failed: the packet
// is dropped (Drops.Transform).
var (
	errDTLSPending = errors.New("media: dtls: handshake not finished, no SRTP keys yet")
	errDTLSFailed  = errors.New("media: dtls: handshake failed, leg closed")
)

// refuseTransform drops every packet with err.
type refuseTransform struct{ err error }

func (t refuseTransform) Unprotect([]byte, int) (int, error) { return 0, t.err }
func (t refuseTransform) Protect([]byte, int) (int, error)   { return 0, t.err }

// StartDTLS starts DTLS-SRTP keying on side: from now on the side relays
// nothing until the handshake has authenticated the peer against
// cfg.RemoteFingerprint and its SRTP keys are installed (with replay
// protection, as NewSRTPTransform); if it fails or times out the side stays
// closed and cfg.OnResult says why. The handshake runs on the side's RTP
// port (rtcp-mux): call SetRemote(side, ..., mux=true, ...) first; as a
// client ccsbc sends its ClientHello to that address (a ClientHello sent
// before SetRemote is retransmitted later).
//
// StartDTLS returns an error wrapping ErrDTLSConfig for a config it cannot
// use, ErrDTLSStarted if the side already has a DTLS session, ErrClosed if
// the stream is closed. Keys are never logged.
func (s *Stream) StartDTLS(side Side, cfg DTLSConfig) error {
	if side != A && side != B {
		return fmt.Errorf("%w: side %v", ErrDTLSConfig, side)
	}
	if cfg.Role != DTLSClient && cfg.Role != DTLSServer {
		return fmt.Errorf("%w: Role %v: want DTLSClient or DTLSServer", ErrDTLSConfig, cfg.Role)
	}
	if len(cfg.Certificate.Certificate) == 0 || cfg.Certificate.PrivateKey == nil {
		return fmt.Errorf("%w: Certificate has no certificate or no key", ErrDTLSConfig)
	}
	fp, err := ParseFingerprint(cfg.RemoteFingerprint)
	if err != nil {
		return fmt.Errorf("%w: RemoteFingerprint %w", ErrDTLSConfig, err)
	}
	if len(cfg.Profiles) == 0 {
		cfg.Profiles = defaultDTLSProfiles
	}
	profiles := make([]dtls.SRTPProtectionProfile, 0, len(cfg.Profiles))
	for _, p := range cfg.Profiles {
		dp, ok := dtlsProfile(p)
		if !ok {
			return fmt.Errorf("%w: Profiles: %v has no DTLS-SRTP profile", ErrDTLSConfig, p)
		}
		profiles = append(profiles, dp)
	}
	if cfg.HandshakeTimeout < 0 {
		return fmt.Errorf("%w: HandshakeTimeout %v is negative", ErrDTLSConfig, cfg.HandshakeTimeout)
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultDTLSHandshakeTimeout
	}
	if w := cfg.SRTP.ReplayWindow; w < 0 || w > maxReplayWindow {
		return fmt.Errorf("%w: SRTP.ReplayWindow %d: want 1 to %d, or 0 for %d", ErrDTLSConfig, w, maxReplayWindow, defaultReplayWindow)
	}

	l := &s.legs[side]
	d := &dtlsLeg{s: s, side: side, cfg: cfg, fp: fp}
	d.pc = newDTLSPacketConn(l.local[sockRTP], d.send)
	d.ctx, d.cancel = context.WithCancel(context.Background())

	// Registering under dtlsMu orders it with Close: either Close sees
	// this session and stops it, or StartDTLS sees the stream closing.
	s.dtlsMu.Lock()
	defer s.dtlsMu.Unlock()
	if s.closing.Load() {
		d.cancel()
		return ErrClosed
	}
	if l.dtls.Load() != nil {
		d.cancel()
		return fmt.Errorf("%w: side %v", ErrDTLSStarted, side)
	}
	// Fail closed from the first packet on.
	refuse := refuseTransform{errDTLSPending}
	s.SetTransform(side, refuse, refuse)

	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled // ccsbc logs the outcome itself
	dcfg := &dtls.Config{
		Certificates:           []tls.Certificate{cfg.Certificate},
		SRTPProtectionProfiles: profiles,
		ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
		// The peer's certificate is self-signed: it is authenticated by
		// the fingerprint its SDP carried (RFC 5763 §5), nothing else.
		InsecureSkipVerify:    true,
		ClientAuth:            dtls.RequireAnyClientCert,
		VerifyPeerCertificate: d.verify,
		LoggerFactory:         lf,
	}
	raddr := net.UDPAddrFromAddrPort(d.dst())
	var conn *dtls.Conn
	if cfg.Role == DTLSClient {
		conn, err = dtls.Client(d.pc, raddr, dcfg) //nolint:staticcheck // the options API builds the same Config
	} else {
		conn, err = dtls.Server(d.pc, raddr, dcfg) //nolint:staticcheck // as above
	}
	if err != nil {
		d.cancel()
		s.SetTransform(side, refuseTransform{errDTLSFailed}, refuseTransform{errDTLSFailed})
		return fmt.Errorf("%w: %w", ErrDTLSConfig, err)
	}
	l.dtls.Store(d)
	s.dtlsWG.Add(1)
	go d.run(conn)
	if ce := s.log.Check(zap.DebugLevel, "media dtls started"); ce != nil {
		ce.Write(zap.Stringer("side", side), zap.Stringer("role", cfg.Role))
	}
	return nil
}

// verify is the handshake's VerifyPeerCertificate: the peer's leaf
// certificate must hash to the a=fingerprint its SDP carried. Compared in
// constant time.
func (d *dtlsLeg) verify(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	if len(rawCerts) == 0 {
		return fmt.Errorf("%w: the peer sent no certificate", ErrDTLSFingerprint)
	}
	sum := sha256.Sum256(rawCerts[0])
	if subtle.ConstantTimeCompare(sum[:], d.fp[:]) != 1 {
		return fmt.Errorf("%w: the peer's certificate is sha-256 %s", ErrDTLSFingerprint, colonHex(sum[:]))
	}
	return nil
}

// run drives the handshake, installs the keys or fails the leg closed,
// reports, and then serves the session (retransmitted flights, alerts)
// until the stream closes.
func (d *dtlsLeg) run(conn *dtls.Conn) {
	s := d.s
	defer s.dtlsWG.Done()
	defer conn.Close()

	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.HandshakeTimeout)
	err := conn.HandshakeContext(ctx)
	cancel()
	if d.ctx.Err() != nil {
		return // Close: nobody to report to
	}
	var suite SRTPSuite
	if err == nil {
		suite, err = d.install(conn)
	} else {
		err = d.classify(err, errors.Is(ctx.Err(), context.DeadlineExceeded))
	}
	if err != nil {
		fail := refuseTransform{errDTLSFailed}
		s.SetTransform(d.side, fail, fail)
		s.log.Info("media dtls failed", zap.Stringer("side", d.side), zap.Stringer("role", d.cfg.Role), zap.Error(err))
	} else if ce := s.log.Check(zap.DebugLevel, "media dtls keys installed"); ce != nil {
		ce.Write(zap.Stringer("side", d.side), zap.Stringer("role", d.cfg.Role))
	}
	if d.cfg.OnResult != nil {
		s.m.callbacks.Add(1)
		go s.m.report(d.cfg.OnResult, d.side, suite, err)
	}
	if err != nil {
		return
	}
	// Keep the session alive: pion answers a retransmitted final flight
	// from its own read loop as long as the Conn is open. Reading here
	// drains whatever application data a peer might send.
	buf := make([]byte, 1500)
	for {
		if _, err := conn.Read(buf); err != nil {
			return // closed, or the peer's close_notify: the keys stay
		}
	}
}

// classify turns pion's handshake error into one of ours; timedOut says
// the HandshakeTimeout expired.
func (d *dtlsLeg) classify(err error, timedOut bool) error {
	switch {
	case errors.Is(err, ErrDTLSFingerprint):
		return fmt.Errorf("media: dtls %v handshake: %w", d.cfg.Role, err)
	case timedOut:
		return fmt.Errorf("%w after %v (as %v)", ErrDTLSTimeout, d.cfg.HandshakeTimeout, d.cfg.Role)
	}
	return fmt.Errorf("%w (as %v): %w", ErrDTLSHandshake, d.cfg.Role, err)
}

// install checks the peer's certificate once more, exports the SRTP keys
// (RFC 5764 §4.2) and installs them on the leg.
func (d *dtlsLeg) install(conn *dtls.Conn) (SRTPSuite, error) {
	state, ok := conn.ConnectionState()
	if !ok {
		return 0, fmt.Errorf("%w: no connection state", ErrDTLSHandshake)
	}
	// pion called verify during the handshake; a handshake that ended
	// without a peer certificate (resumption, a pion change) must not pass.
	if err := d.verify(state.PeerCertificates, nil); err != nil {
		return 0, err
	}
	profile, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return 0, fmt.Errorf("%w: no SRTP protection profile negotiated (use_srtp)", ErrDTLSHandshake)
	}
	suite, ok := suiteOfDTLSProfile(profile)
	if !ok {
		return 0, fmt.Errorf("%w: peer chose SRTP protection profile %#04x", ErrDTLSHandshake, uint16(profile))
	}
	sc := srtp.Config{Profile: suite.Profile()}
	if err := sc.ExtractSessionKeysFromDTLS(&state, d.cfg.Role == DTLSClient); err != nil {
		return 0, fmt.Errorf("%w: export SRTP keys: %w", ErrDTLSHandshake, err)
	}
	remote := SRTPKeys{Suite: suite, Key: sc.Keys.RemoteMasterKey, Salt: sc.Keys.RemoteMasterSalt}
	local := SRTPKeys{Suite: suite, Key: sc.Keys.LocalMasterKey, Salt: sc.Keys.LocalMasterSalt}
	rtpX, rtcpX, err := NewSRTPTransform(remote, local, d.cfg.SRTP)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrDTLSHandshake, err)
	}
	d.s.SetTransform(d.side, rtpX, rtcpX)
	return suite, nil
}

// accept takes a DTLS datagram the leg's RTP socket received from src. It
// returns why the datagram is dropped: not from the side's peer, another
// source was pinned, or the handshake's queue is full or closed.
func (d *dtlsLeg) accept(pkt []byte, src netip.AddrPort) dropReason {
	ok, mayLatch := d.s.rtpSource(d.side, src)
	if !ok {
		return dropWrongSource
	}
	if mayLatch {
		// Before the side latches, the first source that passes the
		// latching rule owns the handshake: a second one on the same IP
		// cannot barge in.
		if p := d.peer.Load(); p == nil {
			np := new(netip.AddrPort)
			*np = src
			if !d.peer.CompareAndSwap(nil, np) && *d.peer.Load() != src {
				return dropWrongSource
			}
		} else if *p != src {
			return dropWrongSource
		}
	}
	if !d.pc.deliver(pkt, src) {
		return dropDTLS
	}
	return dropNone
}

// rtpSource is route's source check (step 1) for side's RTP socket: ok if
// src is the signaled address, or the latched source, or, with latching
// before the side latched, on the signaled or SIP signaling IP (mayLatch).
// TestRTPSourceMatchesRoute keeps the two in step.
func (s *Stream) rtpSource(side Side, src netip.AddrPort) (ok, mayLatch bool) {
	r := s.legs[side].remote.Load()
	switch {
	case r == nil:
		return false, false
	case r.latch == nil:
		return src == r.rtp, false
	}
	if l := r.latch.rtp.Load(); l != nil {
		return src == *l, false
	}
	ok = src.Addr() == r.rtp.Addr() || src.Addr() == r.signalIP
	return ok, ok
}

// dst is where the handshake sends: the pinned source, else the address
// the side latched onto, else its signaled RTP address. Invalid while the
// side's address is unknown.
func (d *dtlsLeg) dst() netip.AddrPort {
	if p := d.peer.Load(); p != nil {
		return *p
	}
	r := d.s.legs[d.side].remote.Load()
	if r == nil {
		return netip.AddrPort{}
	}
	if r.latch != nil {
		if p := r.latch.rtp.Load(); p != nil {
			return *p
		}
	}
	return r.rtp
}

var errDTLSNoRemote = errors.New("media: dtls: the side's address is not known yet")

// send writes one DTLS datagram to the peer from the leg's RTP socket.
func (d *dtlsLeg) send(b []byte) (int, error) {
	dst := d.dst()
	if !dst.IsValid() {
		return 0, errDTLSNoRemote
	}
	if err := d.s.legs[d.side].socks[sockRTP].sendLocked(b, dst); err != nil {
		return 0, err
	}
	return len(b), nil
}

// stop ends the session: the handshake or the read loop returns.
func (d *dtlsLeg) stop() {
	d.cancel()
	d.pc.Close()
}

// report runs a DTLSConfig.OnResult callback, outside any lock.
func (m *Manager) report(f func(Side, SRTPSuite, error), side Side, suite SRTPSuite, err error) {
	defer m.callbacks.Done()
	f(side, suite, err)
}

// dtlsPacketConn is the net.PacketConn pion's DTLS runs on: it reads the
// datagrams the stream's worker demultiplexed to it, and writes through a send
// function (the leg's RTP socket, toward the peer). Read deadlines are
// honoured, as pion cancels its reads with them. Close does not close the
// socket underneath, which the relay owns.
type dtlsPacketConn struct {
	local net.Addr
	write func([]byte) (int, error)
	in    chan dtlsDatagram
	rd    *deadline.Deadline

	closeOnce sync.Once
	closed    chan struct{}
}

type dtlsDatagram struct {
	b   []byte
	src netip.AddrPort
}

func newDTLSPacketConn(local netip.AddrPort, write func([]byte) (int, error)) *dtlsPacketConn {
	return &dtlsPacketConn{
		local:  net.UDPAddrFromAddrPort(local),
		write:  write,
		in:     make(chan dtlsDatagram, dtlsQueueLen),
		rd:     deadline.New(),
		closed: make(chan struct{}),
	}
}

// deliver queues a copy of pkt without blocking the worker; false if the
// queue is full or the conn closed.
func (c *dtlsPacketConn) deliver(pkt []byte, src netip.AddrPort) bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	select {
	case c.in <- dtlsDatagram{b: append([]byte(nil), pkt...), src: src}:
		return true
	default:
		return false
	}
}

func (c *dtlsPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case <-c.closed:
		return 0, nil, net.ErrClosed
	case <-c.rd.Done():
		return 0, nil, os.ErrDeadlineExceeded
	case p := <-c.in:
		return copy(b, p.b), net.UDPAddrFromAddrPort(p.src), nil
	}
}

// WriteTo ignores addr: the leg decides where its peer is.
func (c *dtlsPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.write(b)
}

func (c *dtlsPacketConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *dtlsPacketConn) LocalAddr() net.Addr { return c.local }

func (c *dtlsPacketConn) SetDeadline(t time.Time) error {
	c.rd.Set(t)
	return nil
}

func (c *dtlsPacketConn) SetReadDeadline(t time.Time) error {
	c.rd.Set(t)
	return nil
}

// SetWriteDeadline is a no-op: a UDP write does not block.
func (c *dtlsPacketConn) SetWriteDeadline(time.Time) error { return nil }
