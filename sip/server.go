// Package sip is ccsbc's back-to-back user agent: it terminates SIP on its
// listeners, routes each call to a peer as a new dialog, and rewrites SDP so
// that all media flows through the relay in package media.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/ccsbc/ccsbc/admin"
	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

// Timers of the B2BUA. They are constants rather than configuration until an
// operator needs to change them.
const (
	// peerResponseTimeout is how long the outbound leg waits for any
	// response to an INVITE before the call is failed with 503: a contact
	// center reroutes faster than Timer B's 32 s.
	peerResponseTimeout = 4 * time.Second
	// idleConnTimeout closes a TCP/TLS connection that carried nothing for
	// this long.
	idleConnTimeout = 10 * time.Minute
	// byeTimeout bounds a BYE (or CANCEL) ccsbc sends when a call ends.
	byeTimeout = 8 * time.Second
)

// Counters is a snapshot of the server's event counters.
type Counters struct {
	CallsStarted, CallsAnswered, CallsFailed int64
	RejectedSource                           int64 // requests or connections from outside a listener's allow list
	TLSHandshakeFailures                     int64
	Malformed                                int64
}

// Server is the B2BUA. Create it with New, start it with Run.
type Server struct {
	audit *zap.Logger                   // one security record per call ("audit" logger)
	cfg   *config.Config                // the configuration started with: listeners, TLS, media
	live  atomic.Pointer[config.Config] // peers, routes and policy: replaced by Reload
	log   *zap.Logger
	media *media.Manager

	ua           *sipgo.UserAgent
	srv          *sipgo.Server
	client       *sipgo.Client
	cert         tls.Certificate
	certFP       string
	peerVerifier *config.PeerVerifier
	dtlsFP       string // a=fingerprint of cert, presented in DTLS-SRTP handshakes

	listeners []*listener
	metrics   *admin.Metrics // nil: none
	health    peerHealth
	ended     endedTotals
	serverTLS atomic.Pointer[tls.Config]

	calls    sync.Map // dialog key (Call-ID "|" our tag) → *call
	active   sync.WaitGroup
	draining atomic.Bool

	ready chan struct{}

	nCallsStarted, nCallsAnswered, nCallsFailed atomic.Int64
	nRejectedSource, nTLSFail, nMalformed       atomic.Int64
}

// listener is one configured SIP listener once bound.
type listener struct {
	cfg       config.Listener
	transport string // sipgo spelling
	addr      netip.AddrPort
	contact   sip.ContactHeader
}

// New prepares a server from a validated configuration; nothing is bound
// until Run.
func New(cfg *config.Config, log *zap.Logger) (*Server, error) {
	s := &Server{cfg: cfg, log: log, audit: log.Named("audit"), ready: make(chan struct{})}
	s.live.Store(cfg)
	sip.SetDefaultLogger(newSlogBridge(log.Named("sipgo")))

	needTLS := false
	for _, l := range cfg.Listeners {
		needTLS = needTLS || l.Transport == policy.TLS
	}
	for _, p := range cfg.Peers {
		needTLS = needTLS || p.Transport == policy.TLS
	}
	var clientTLS *tls.Config
	if needTLS {
		cert, fp, err := config.LoadOrCreateCertificate(&cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("sip: instance certificate: %w", err)
		}
		s.cert, s.certFP = cert, fp
		s.dtlsFP = media.Fingerprint(cert)
		pv, err := config.NewPeerVerifier(&cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("sip: %w", err)
		}
		s.peerVerifier = pv
		// Outbound connections are verified against the peer they were
		// dialled for, by checkPeerConn, before any request is written on
		// them; the handshake itself only negotiates.
		clientTLS = &tls.Config{
			Certificates:       []tls.Certificate{cert},
			MinVersion:         tlsVersion(cfg.TLS.MinVersion),
			CipherSuites:       config.CipherSuites(tlsVersion(cfg.TLS.MinVersion)),
			InsecureSkipVerify: true, //nolint:gosec // verified per peer in checkPeerConn
		}
	}

	tcp := &sip.TransportTCP{ReadTimeout: idleConnTimeout, WriteTimeout: 10 * time.Second}
	tlsT := &sip.TransportTLS{TransportTCP: &sip.TransportTCP{ReadTimeout: idleConnTimeout, WriteTimeout: 10 * time.Second}}
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("ccsbc"),
		sipgo.WithUserAgenTLSConfig(clientTLS),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerTransports(sip.TransportsConfig{TCP: tcp, TLS: tlsT}),
			sip.WithTransportLayerReadFilter(s.udpFilter),
		),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerTerminateOnConnClose(),
			// A 2xx retransmitted after its INVITE transaction ended.
			sip.WithTransactionLayerUnhandledResponseHandler(s.reack),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	s.ua = ua
	if s.srv, err = sipgo.NewServer(ua); err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	if s.client, err = sipgo.NewClient(ua); err != nil {
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	s.srv.OnInvite(s.onInvite)
	s.srv.OnAck(s.onAck)
	s.srv.OnBye(s.onBye)
	s.srv.OnCancel(s.onStrayCancel)
	s.srv.OnOptions(s.onOptions)
	s.srv.OnUpdate(s.onInDialog)
	s.srv.OnInfo(s.onInDialog)
	s.srv.OnRefer(s.onRefer)
	s.srv.OnPrack(s.onPrack)
	s.srv.OnNoRoute(s.onUnknownMethod)
	return s, nil
}

// Ready is closed once every listener is bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Counters returns a snapshot of the event counters.
func (s *Server) Counters() Counters {
	return Counters{
		CallsStarted: s.nCallsStarted.Load(), CallsAnswered: s.nCallsAnswered.Load(),
		CallsFailed: s.nCallsFailed.Load(), RejectedSource: s.nRejectedSource.Load(),
		TLSHandshakeFailures: s.nTLSFail.Load(), Malformed: s.nMalformed.Load(),
	}
}

// ActiveCalls returns how many calls are in progress.
func (s *Server) ActiveCalls() int {
	seen := map[*call]bool{}
	s.calls.Range(func(_, v any) bool { seen[v.(*call)] = true; return true })
	return len(seen)
}

// extraBinds are the bind addresses of media.extra_addresses.
func extraBinds(m config.Media) []netip.Addr {
	var out []netip.Addr
	for _, a := range m.ExtraAddresses {
		out = append(out, a.Bind)
	}
	return out
}

// advertised is the address SDP gives for media ports bound on bind: its
// media address's advertise, or media.advertise.
func (s *Server) advertised(bind netip.Addr) netip.Addr {
	for _, a := range s.cfg.Media.ExtraAddresses {
		if a.Bind.Unmap() == bind {
			return a.Advertise
		}
	}
	return s.cfg.Media.Advertise
}

// logCapacity says at start how many calls the media relay can hold, and
// warns when the open-file limit, not the port range, is what bounds them:
// every call past it would get 503.
func (s *Server) logCapacity(c media.Capacity) {
	fields := []zap.Field{zap.Int("calls", c.Streams()), zap.Int("by_ports", c.Ports),
		zap.Int("open_file_limit", c.FileLimit), zap.Int("by_open_files", c.Files)}
	if c.FileBound() {
		s.log.Warn("the open-file limit bounds concurrent calls below the media port range: raise it (systemd LimitNOFILE=) to at least 4 per call", fields...)
		return
	}
	s.log.Info("media capacity (calls with one audio stream)", fields...)
}

// Run binds the listeners and the media relay and serves until ctx ends;
// then it stops accepting calls, tears down the active ones and returns.
func (s *Server) Run(ctx context.Context) error {
	mm, err := media.NewManager(media.Config{
		Bind:              s.cfg.Media.Bind,
		ExtraBinds:        extraBinds(s.cfg.Media),
		PortMin:           s.cfg.Media.PortMin,
		PortMax:           s.cfg.Media.PortMax,
		Latching:          s.cfg.Media.Latching,
		InactivityTimeout: s.cfg.Media.InactivityTimeout,
	}, s.log.Named("media"))
	if err != nil {
		return fmt.Errorf("sip: media relay: %w", err)
	}
	s.media = mm
	defer mm.Close()
	defer s.ua.Close()
	s.logCapacity(mm.Capacity())

	lctx, stop := context.WithCancel(context.Background())
	defer stop()
	// Bind everything first: the listener list is read, unlocked, by the
	// UDP filter and the handlers once serving starts.
	errc := make(chan error, len(s.cfg.Listeners))
	serves := make([]func() error, 0, len(s.cfg.Listeners))
	for _, lc := range s.cfg.Listeners {
		l, serve, err := s.bind(lctx, lc)
		if err != nil {
			return err
		}
		s.listeners = append(s.listeners, l)
		serves = append(serves, serve)
	}
	for i, serve := range serves {
		go func() { errc <- serve() }()
		l := s.listeners[i]
		s.log.Info("listening", zap.String("transport", string(l.cfg.Transport)), zap.Stringer("address", l.addr))
	}
	close(s.ready)
	s.startHealth(s.config())
	defer s.stopHealth()

	select {
	case <-ctx.Done():
	case err := <-errc:
		if lctx.Err() == nil {
			s.endAll("listener failed")
			return fmt.Errorf("sip: listener stopped: %w", err)
		}
	}
	s.draining.Store(true)
	s.endAll("shutdown")
	stop()
	return nil
}

// endAll ends every active call with BYE on both legs and waits for them.
func (s *Server) endAll(reason string) {
	s.calls.Range(func(_, v any) bool {
		go v.(*call).end(reason, true, true)
		return true
	})
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(byeTimeout + time.Second):
	}
}

// bind opens one listener and returns the function that serves it.
func (s *Server) bind(ctx context.Context, lc config.Listener) (*listener, func() error, error) {
	l := &listener{cfg: lc, transport: sipTransport(string(lc.Transport))}
	switch lc.Transport {
	case policy.UDP:
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(lc.Address))
		if err != nil {
			return nil, nil, fmt.Errorf("sip: listen udp %s: %w", lc.Address, err)
		}
		l.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		go func() { <-ctx.Done(); pc.Close() }()
		l.contact = contactFor(l)
		return l, func() error { return s.srv.ServeUDP(pc) }, nil
	case policy.TCP, policy.TLS:
		tl, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(lc.Address))
		if err != nil {
			return nil, nil, fmt.Errorf("sip: listen %s %s: %w", lc.Transport, lc.Address, err)
		}
		l.addr = tl.Addr().(*net.TCPAddr).AddrPort()
		go func() { <-ctx.Done(); tl.Close() }()
		l.contact = contactFor(l)
		fl := &filterListener{Listener: tl, allow: lc.Allow, rejected: &s.nRejectedSource}
		if lc.Transport == policy.TCP {
			return l, func() error { return s.srv.ServeTCP(fl) }, nil
		}
		// The accepted client certificates follow the peers of the live
		// configuration, rebuilt at each Reload.
		if s.serverTLS.Load() == nil {
			conf, err := config.ServerTLSConfig(&s.cfg.TLS, s.cert, s.cfg.Peers)
			if err != nil {
				tl.Close()
				return nil, nil, fmt.Errorf("sip: tls listener %s: %w", lc.Address, err)
			}
			s.serverTLS.Store(conf)
		}
		conf := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.serverTLS.Load(), nil }}
		hl := &handshakeListener{Listener: fl, conf: conf, timeout: s.cfg.TLS.HandshakeTimeout, failed: &s.nTLSFail, log: s.log,
			onFail: func() { s.metrics.TLSHandshakeFailed("") }}
		return l, func() error { return s.srv.ServeTLS(hl) }, nil
	}
	return nil, nil, fmt.Errorf("sip: listener %s: unknown transport %q", lc.Address, lc.Transport)
}

func contactFor(l *listener) sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: "ccsbc", Host: l.addr.Addr().String(), Port: int(l.addr.Port()), UriParams: sip.NewParams()}
	if l.transport != "UDP" {
		u.UriParams.Add("transport", sip.NetworkToLower(l.transport))
	}
	return sip.ContactHeader{Address: u}
}

// udpFilter drops UDP datagrams from sources outside the receiving
// listener's allow list before they are parsed: no answer, only a counter.
func (s *Server) udpFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	if info.Transport != "UDP" {
		return data, nil
	}
	la, _ := info.LocalAddr.(*net.UDPAddr)
	ra, _ := info.RemoteAddr.(*net.UDPAddr)
	if la == nil || ra == nil {
		return data, nil
	}
	lap, rap := la.AddrPort(), ra.AddrPort()
	for _, l := range s.listeners {
		if l.transport == "UDP" && l.addr == lap {
			if !allowed(l.cfg.Allow, rap.Addr()) {
				s.nRejectedSource.Add(1)
				return nil, nil
			}
			break
		}
	}
	return data, nil
}

func allowed(allow []netip.Prefix, a netip.Addr) bool {
	if len(allow) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// listenerFor finds the listener a request arrived on.
func (s *Server) listenerFor(req *sip.Request, tx sip.ServerTransaction) *listener {
	transport := req.Transport()
	var local netip.AddrPort
	if stx, ok := tx.(*sip.ServerTx); ok && stx.Connection() != nil {
		if ap, err := netip.ParseAddrPort(stx.Connection().LocalAddr().String()); err == nil {
			local = ap
		}
	}
	for _, l := range s.listeners {
		if l.transport == transport && (l.addr == local || !local.IsValid()) {
			return l
		}
	}
	for _, l := range s.listeners {
		if l.transport == transport {
			return l
		}
	}
	return nil
}

// listenerForTransport picks the listener whose address ccsbc presents on an
// outbound leg of that transport.
func (s *Server) listenerForTransport(t string) *listener {
	for _, l := range s.listeners {
		if l.transport == t {
			return l
		}
	}
	return nil
}

// identifyPeer decides which configured peer sent req. In order: a TLS
// client certificate pinned to a peer; the exact source address; on TCP/TLS
// (ephemeral source ports) a peer at the source IP whose address is the
// Via sent-by; the only peer at the source IP. Unknown sources get nil.
func (s *Server) identifyPeer(cfg *config.Config, req *sip.Request, tx sip.ServerTransaction) *config.Peer {
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return nil
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if fp := peerCertFingerprint(tx); fp != "" {
		for i := range cfg.Peers {
			p := &cfg.Peers[i]
			if p.Verify == "fingerprint" && equalFingerprint(p.Fingerprint, fp) {
				return p
			}
		}
	}
	var sameIP []*config.Peer
	for i := range cfg.Peers {
		p := &cfg.Peers[i]
		if p.Address == src {
			return p
		}
		if p.Address.Addr() == src.Addr() {
			sameIP = append(sameIP, p)
		}
	}
	if v := req.Via(); v != nil && len(sameIP) > 0 {
		for _, p := range sameIP {
			if v.Host == p.Address.Addr().String() && v.Port == int(p.Address.Port()) {
				return p
			}
		}
	}
	if len(sameIP) == 1 {
		return sameIP[0]
	}
	return nil
}

// respond answers req statelessly within its transaction, adding a Warning
// with reason when one is given (RFC 3261 §20.43, code 399).
func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, code int, phrase, reason string) {
	res := sip.NewResponseFromRequest(req, code, phrase, nil)
	if reason != "" {
		res.AppendHeader(warning(reason))
	}
	if code == 405 || code == 501 {
		res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", zap.Int("code", code), zap.Error(err))
	}
}

const allowMethods = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, PRACK, REFER"

func warning(reason string) sip.Header {
	reason = strings.TrimPrefix(reason, "sip: ")
	return sip.NewHeader("Warning", `399 ccsbc "`+sanitizeQuoted(reason)+`"`)
}

// sanitizeQuoted makes reason safe inside a quoted-string.
func sanitizeQuoted(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\'')
		case c < 0x20 || c == 0x7f:
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Supported", "100rel"))
	if s.draining.Load() {
		res = sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
		res.AppendHeader(warning("draining"))
	}
	_ = tx.Respond(res)
}

func (s *Server) onUnsupported(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(req, tx, 501, "Not Implemented", string(req.Method)+" is not supported by ccsbc yet")
}

func (s *Server) onUnknownMethod(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(req, tx, 405, "Method Not Allowed", "")
}

// onStrayCancel answers a CANCEL that matched no INVITE transaction
// (sipgo answers the ones that do, with 200 and 487 on the INVITE).
func (s *Server) onStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist", "")
}

// validateRequest checks what sipgo's parser lets through but a dialog
// needs. It returns a 4xx code, phrase and reason, or 0.
func validateRequest(req *sip.Request) (int, string, string) {
	switch {
	case req.From() == nil:
		return 400, "Bad Request", "missing From header"
	case req.To() == nil:
		return 400, "Bad Request", "missing To header"
	case req.CallID() == nil || req.CallID().Value() == "":
		return 400, "Bad Request", "missing Call-ID header"
	case req.CSeq() == nil:
		return 400, "Bad Request", "missing CSeq header"
	case req.CSeq().MethodName != req.Method:
		return 400, "Bad Request", "CSeq method does not match the request method"
	}
	if tag, _ := req.From().Params.Get("tag"); tag == "" {
		return 400, "Bad Request", "From header has no tag"
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return 483, "Too Many Hops", "Max-Forwards reached 0"
	}
	if req.IsInvite() && req.Contact() == nil {
		return 400, "Bad Request", "INVITE without Contact header"
	}
	if req.IsInvite() && req.Contact() != nil && req.Contact().Address.Host == "" {
		return 400, "Bad Request", "Contact header has no host"
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return 400, "Bad Request", "Content-Length " + strconv.Itoa(int(*cl)) + " does not match the body"
	}
	return 0, "", ""
}

// dialogKey identifies a dialog by Call-ID and ccsbc's own tag, which is
// the To tag of every in-dialog request ccsbc receives.
func dialogKey(callID, ourTag string) string { return callID + "|" + ourTag }

func (s *Server) findCall(req *sip.Request) (*call, *leg) {
	to := req.To()
	if to == nil || req.CallID() == nil {
		return nil, nil
	}
	tag, _ := to.Params.Get("tag")
	v, ok := s.calls.Load(dialogKey(req.CallID().Value(), tag))
	if !ok {
		return nil, nil
	}
	c := v.(*call)
	l := c.legOf(req.CallID().Value(), tag)
	if l == nil {
		return nil, nil // a leg a transfer has just forgotten
	}
	return c, l
}

var errNoConn = errors.New("sip: no connection")

// config is the live configuration: peers, routes and policy for new calls.
func (s *Server) config() *config.Config { return s.live.Load() }

// ErrReloadRefused wraps the reason a new configuration was not taken.
var ErrReloadRefused = errors.New("sip: reload refused")

// Reload replaces peers, routes and policy for new calls; established calls
// keep the configuration they started with. Listeners, TLS settings and the
// media relay are bound at start: a configuration that changes them is
// refused (restart to apply it), and the running one is kept.
func (s *Server) Reload(next *config.Config) error {
	if err := next.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrReloadRefused, err)
	}
	if diff := bootDiff(s.cfg, next); diff != "" {
		return fmt.Errorf("%w: %s changed; restart ccsbc to apply it", ErrReloadRefused, diff)
	}
	if s.serverTLS.Load() != nil {
		conf, err := config.ServerTLSConfig(&next.TLS, s.cert, next.Peers)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrReloadRefused, err)
		}
		s.serverTLS.Store(conf)
	}
	s.live.Store(next)
	s.startHealth(next)
	if s.metrics != nil {
		s.setPeers(next)
	}
	s.log.Info("configuration reloaded", zap.String("file", next.File), zap.Stringer("model", next.Model),
		zap.Int("peers", len(next.Peers)), zap.Int("routes", len(next.Routes)))
	return nil
}

// bootDiff names the first section that Reload cannot apply, or "".
func bootDiff(a, b *config.Config) string {
	if len(a.Listeners) != len(b.Listeners) {
		return "listeners"
	}
	for i := range a.Listeners {
		x, y := a.Listeners[i], b.Listeners[i]
		if x.Transport != y.Transport || x.Address != y.Address || fmt.Sprint(x.Allow) != fmt.Sprint(y.Allow) {
			return "listeners"
		}
	}
	if a.TLS != b.TLS {
		return "tls"
	}
	if !reflect.DeepEqual(a.Media, b.Media) {
		return "media"
	}
	return ""
}

// Drain stops taking calls (new INVITEs get 503, OPTIONS 503 so that
// peers fail over) and waits for the established calls to end, at most
// timeout; then it ends the rest with BYE on both legs.
func (s *Server) Drain(timeout time.Duration) {
	if !s.draining.CompareAndSwap(false, true) {
		return
	}
	s.log.Info("draining", zap.Int("active_calls", s.ActiveCalls()), zap.Duration("timeout", timeout))
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		s.log.Info("drained")
	case <-time.After(timeout):
		s.log.Info("drain timeout: ending the remaining calls", zap.Int("active_calls", s.ActiveCalls()))
		s.endAll("drain timeout")
	}
}
