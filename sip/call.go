package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/ccsbc/ccsbc/admin"
	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

// call is one B2BUA call: an inbound leg, an outbound leg and the media
// streams anchored between them.
type call struct {
	s     *Server
	log   *zap.Logger
	id    string         // the inbound Call-ID the call started with (admin API, audit)
	cfg   *config.Config // the configuration the call started with
	route *config.Route
	model policy.Model
	start time.Time
	user  string // the Request-URI user of the inbound INVITE: the called number
	from  string // the From user of the inbound INVITE: the calling number
	audit config.Audit

	// Session timers (timer.go): tpol from the call's configuration, one
	// legTimer per side, nil when timers are off; inTimer is what the
	// inbound INVITE negotiated, armed once the call is answered.
	tpol    timerPolicy
	lt      [2]*legTimer
	inTimer uasTimer
	// ctx ends with the call: what runs on its behalf (refreshes) stops.
	ctx    context.Context
	cancel context.CancelFunc

	// in and out are the call's two legs. A transfer (transfer.go) replaces
	// one of them under mu, while the call is busy: handlers that may run
	// concurrently with it read them through legs, other or findCall.
	in, out *leg
	// dec is the media decision per side (media.A = in, media.B = out),
	// read and changed under mu once the call is set up.
	dec [2]policy.Decision

	mu        sync.Mutex // guards the fields below
	streams   []*media.Stream
	srtp      [2][]legSRTP // SDES state per side and m= line
	offer     *sessionDesc // pending offer, until its answer arrives
	offerFrom *leg
	busy      bool // an INVITE/UPDATE transaction is in progress (RFC 3261 §14.1 glare → 491)
	answered  time.Time
	ackWait   map[*leg]chan *sip.Request // 2xx to INVITE sent on that leg, waiting for ACK
	held      []bool                     // per m= line: on hold by the last offer/answer
	// 100rel (prack.go): ccsbc's last reliable 18x toward the caller and
	// its RSeq, and the callee's last RSeq acknowledged.
	rel             *reliable18x
	prackLost       chan error // a reliable 18x went unacknowledged for 64*T1
	inRSeq, outRSeq uint32
	// The session descriptions of the last completed offer/answer, per
	// side: the peer's (sdpIn) and ccsbc's (sdpOut, an answer when
	// sdpOutAnswer). A refresh re-INVITE resends sdpOut; a peer's
	// re-INVITE that repeats sdpIn is answered with it (indialog.go).
	sdpIn        [2][]byte
	sdpOut       [2][]byte
	sdpOutAnswer [2]bool
	offerRaw     []byte          // the pending offer as received, and as sent on
	offerOut     []byte          // the other leg, until its answer completes them
	last         [2]*sessionDesc // per side, the description the peer gave in the last completed exchange
	xfer         transferState   // the dialer's state and its transfer (transfer.go)

	endOnce sync.Once
	ended   chan struct{}
}

func (c *call) other(l *leg) *leg {
	in, out := c.legs()
	if l == in {
		return out
	}
	return in
}

// legs returns the current inbound and outbound legs.
func (c *call) legs() (in, out *leg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in, c.out
}

func randomID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) >> 1
}

// headersCopied lists the headers of an inbound INVITE that reach the
// outbound leg. Everything else is dropped: Via, Record-Route, Route,
// Contact and Call-Info would expose the other side's addresses, and
// Supported/Require name extensions ccsbc does not implement.
var headersCopied = []string{"Cisco-Guid", "User-to-User", "Priority", "Subject", "Privacy", "Accept-Language"}

// identityHeaders carry a caller identity whose user part matters to the
// contact center (ANI, redirecting number) but whose host may be an address
// of the other side: they are copied with the host replaced by ccsbc's.
var identityHeaders = []string{"P-Asserted-Identity", "Remote-Party-ID", "Diversion"}

func copyHeaders(dst, src *sip.Request, host string) {
	for _, name := range headersCopied {
		for _, h := range src.GetHeaders(name) {
			dst.AppendHeader(sip.NewHeader(h.Name(), h.Value()))
		}
	}
	for _, name := range identityHeaders {
		for _, h := range src.GetHeaders(name) {
			if v, ok := rehost(h.Value(), host); ok {
				dst.AppendHeader(sip.NewHeader(h.Name(), v))
			}
		}
	}
}

// rehost rewrites the host of the first URI in a name-addr header value.
func rehost(v, host string) (string, bool) {
	var u sip.Uri
	params := sip.NewParams()
	name, err := sip.ParseAddressValue(v, &u, &params)
	if err != nil || u.User == "" {
		return "", false
	}
	u = sip.Uri{Scheme: u.Scheme, User: u.User, Host: host}
	out := ""
	if name != "" {
		out = `"` + sanitizeQuoted(name) + `" `
	}
	out += "<" + u.String() + ">"
	if params.Length() > 0 {
		out += ";" + params.ToString(';')
	}
	return out, true
}

// onInvite handles an INVITE: a new call when it has no To tag, a
// re-INVITE otherwise.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if code, phrase, reason := validateRequest(req); code != 0 {
		s.nMalformed.Add(1)
		s.respond(req, tx, code, phrase, reason)
		return
	}
	if tag, _ := req.To().Params.Get("tag"); tag != "" {
		s.onReInvite(req, tx)
		return
	}
	if s.draining.Load() {
		s.respond(req, tx, 503, "Service Unavailable", "ccsbc is draining")
		return
	}
	if bad := unsupportedRequire(req, s.config().SessionTimers.Enabled); bad != "" {
		res := sip.NewResponseFromRequest(req, 420, "Bad Extension", nil)
		res.AppendHeader(sip.NewHeader("Unsupported", bad))
		res.AppendHeader(warning("ccsbc does not support " + bad))
		_ = tx.Respond(res)
		return
	}
	s.newCall(req, tx)
}

// unsupportedRequire lists the option tags of req's Require headers that
// ccsbc does not implement ("" when it implements them all): only timer,
// when session timers are on.
func unsupportedRequire(req *sip.Request, timers bool) string {
	var bad []string
	for _, v := range headerValues(req, "Require", "") {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag != "" && !strings.EqualFold(tag, "100rel") && !(timers && strings.EqualFold(tag, "timer")) {
				bad = append(bad, tag)
			}
		}
	}
	return strings.Join(bad, ", ")
}

func (s *Server) newCall(req *sip.Request, tx sip.ServerTransaction) {
	cfg := s.config() // one configuration for the whole call, across reloads
	log := s.log.With(zap.String("call_id", req.CallID().Value()))
	inL := s.listenerFor(req, tx)
	if inL == nil {
		s.respond(req, tx, 500, "Server Internal Error", "no listener for "+req.Transport())
		return
	}
	inPeer := s.identifyPeer(cfg, req, tx)
	inName := req.Source()
	if inPeer != nil {
		inName = inPeer.Name
	}
	user := req.Recipient.User
	route, ok := cfg.Route(peerNameOrEmpty(inPeer), user)
	if !ok {
		log.Info("call rejected", zap.String("from_peer", inName), zap.String("user", user), zap.String("result", "404 no route"))
		s.nCallsFailed.Add(1)
		s.metrics.CallStarted()
		s.metrics.CallEnded(cfg.Model, "none", admin.CallRejected)
		s.respond(req, tx, 404, "Not Found", "no route for "+user)
		return
	}
	to := s.pickPeer(route, route.To)
	if to != route.To {
		log.Info("failover", zap.String("route", route.Name), zap.String("down", route.To), zap.String("to_peer", to))
	}
	if route.Leg == policy.LegWhisper {
		// Under SRTP Unified CM cannot transcode the announcement: play it
		// from a peer whose codec the agents speak, or refuse this call
		// alone (the customer's own call is another dialog, untouched).
		wd := cfg.WhisperDecision(route)
		if wd.Conflict && wd.To == "" {
			log.Info("call rejected", zap.String("from_peer", inName), zap.String("user", user), zap.String("result", "488 whisper conflict"), zap.String("reason", wd.Reason))
			s.nCallsFailed.Add(1)
			s.metrics.CallStarted()
			s.metrics.CallEnded(cfg.Model, route.Leg, admin.CallRejected)
			s.metrics.PolicyRejected("whisper conflict")
			s.respond(req, tx, 488, "Not Acceptable Here", wd.Reason)
			return
		}
		if wd.Conflict {
			log.Info("whisper rerouted", zap.String("route", route.Name), zap.String("to_peer", wd.To), zap.String("reason", wd.Reason))
			to = wd.To
		}
	}
	outPeer, ok := cfg.Peer(to)
	if !ok {
		s.respond(req, tx, 500, "Server Internal Error", "route "+route.Name+" names unknown peer")
		return
	}
	var inTimer uasTimer
	if cfg.SessionTimers.Enabled {
		var ok bool
		if inTimer, ok = answerTimerWith(s, newTimerPolicy(cfg.SessionTimers), req, tx, nil); !ok {
			log.Info("call rejected", zap.String("from_peer", inName), zap.String("user", user), zap.String("result", "session timer headers refused"))
			s.nCallsFailed.Add(1)
			s.metrics.CallStarted()
			s.metrics.CallEnded(cfg.Model, route.Leg, admin.CallRejected)
			return
		}
	}
	outT := sipTransport(string(outPeer.Transport))
	outL := s.listenerForTransport(outT)
	if outL == nil {
		// A peer whose transport no listener speaks: ccsbc could still dial
		// out over TCP/TLS, but would have no address to put in Contact.
		s.respond(req, tx, 503, "Service Unavailable", "no "+outT+" listener to reach peer "+outPeer.Name)
		return
	}

	in := s.inboundLeg(req, tx, inL, inPeer, inName)
	out := s.outboundLeg(req, outL, outPeer, user)
	c := &call{
		s: s, in: in, out: out, route: route, start: time.Now(), cfg: cfg, id: in.callID,
		user: user, from: req.From().Address.User, audit: cfg.Audit,
		ackWait:   map[*leg]chan *sip.Request{},
		ended:     make(chan struct{}),
		prackLost: make(chan error, 1),
		busy:      true, // until the initial INVITE completes
		inTimer:   inTimer,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.startTimers(cfg.SessionTimers)
	if h, err := parseTimerHeaders(req); err == nil {
		in.setAllowUpdate(h.allowUpdate)
	}
	// A call from the Outbound Option dialer keeps the dialer a party
	// until it is transferred away.
	inClass, st := policy.LegCaller, policy.CallState{}
	if inPeer != nil && inPeer.Kind == "dialer" {
		inClass, st.DialerConnected = policy.LegDialer, true
	}
	inTransport := policy.Transport(strings.ToLower(in.transport))
	inPolicy := policy.Peer{Name: in.peerName, Transport: inTransport}
	if inPeer != nil {
		inPolicy = inPeer.Policy(inTransport)
		inPolicy.Name = in.peerName
	}
	inDec := policy.DecideLeg(cfg.Model, inClass, inPolicy, st)
	outDec := policy.DecideLeg(cfg.Model, route.Leg, outPeer.Policy(outPeer.Transport), st)
	c.dec = [2]policy.Decision{inDec, outDec}
	c.xfer.state = st
	c.model = cfg.Model
	c.log = log.With(zap.String("out_call_id", out.callID))
	s.nCallsStarted.Add(1)
	s.metrics.CallStarted()
	s.active.Add(1)
	s.calls.Store(dialogKey(in.callID, in.localTag), c)
	s.calls.Store(dialogKey(out.callID, out.localTag), c)
	c.log.Info("call start",
		zap.String("from_peer", in.peerName), zap.String("in_transport", in.transport),
		zap.String("to_peer", out.peerName), zap.String("out_transport", out.transport),
		zap.String("route", route.Name), zap.String("leg_class", string(route.Leg)), zap.String("user", user))

	_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))
	c.runInitial(req, tx)
	c.clearOffer()
	c.notBusy()
}

func peerNameOrEmpty(p *config.Peer) string {
	if p == nil {
		return ""
	}
	return p.Name
}

// inboundLeg builds the UAS side of the call from the INVITE.
func (s *Server) inboundLeg(req *sip.Request, tx sip.ServerTransaction, l *listener, p *config.Peer, name string) *leg {
	from, to := req.From(), req.To()
	remoteTag, _ := from.Params.Get("tag")
	in := &leg{
		side: media.A, peer: p, peerName: name, transport: l.transport,
		callID: req.CallID().Value(), localTag: sip.GenerateTagN(16),
		local: *to.Address.Clone(), localName: to.DisplayName,
		remote: *from.Address.Clone(), remName: from.DisplayName,
		contact: l.contact, remoteTag: remoteTag, remoteCSeq: req.CSeq().SeqNo,
		remoteTarget: *req.Contact().Address.Clone(),
		origin:       sdpOrigin{id: randomID(), version: 1},
	}
	for _, h := range req.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			in.routeSet = append(in.routeSet, *rr.Address.Clone())
		}
	}
	in.localCSeq = randomCSeq()
	switch {
	case l.transport != "UDP":
		// Reuse the connection the INVITE came on: the peer may not accept
		// new connections, and this one is already authenticated.
		in.dest = req.Source()
	case p != nil:
		in.dest = p.Address.String()
	default:
		in.dest = req.Source()
	}
	in.laddr = sip.Addr{IP: l.addr.Addr().AsSlice(), Port: int(l.addr.Port())}
	if src, err := netip.ParseAddrPort(req.Source()); err == nil {
		in.signalIP = src.Addr().Unmap()
	}
	if st, ok := tlsState(tx); ok {
		in.setTLS(st)
	}
	return in
}

// outboundLeg builds the UAC side toward the routed peer. Nothing of the
// inbound dialog's identifiers is reused: new Call-ID, new tag, ccsbc's
// address in From's host.
func (s *Server) outboundLeg(req *sip.Request, l *listener, p *config.Peer, user string) *leg {
	from := req.From()
	return s.dialLeg(media.B, from.Address.User, from.DisplayName, l, p, user)
}

// dialLeg builds a leg on which ccsbc is the UAC, toward user at peer p,
// presenting fromUser (and fromName) at ccsbc's address.
func (s *Server) dialLeg(side media.Side, fromUser, fromName string, l *listener, p *config.Peer, user string) *leg {
	host := l.addr.Addr().String()
	peerHost := p.Address.Addr().String()
	target := sip.Uri{Scheme: "sip", User: user, Host: peerHost, Port: int(p.Address.Port()), UriParams: sip.NewParams()}
	if l.transport != "UDP" {
		target.UriParams.Add("transport", sip.NetworkToLower(l.transport))
	}
	out := &leg{
		side: side, dialed: true, peer: p, peerName: p.Name, transport: l.transport,
		callID: newCallID(host), localTag: sip.GenerateTagN(16),
		local:     sip.Uri{Scheme: "sip", User: fromUser, Host: host},
		localName: fromName,
		remote:    sip.Uri{Scheme: "sip", User: user, Host: peerHost},
		contact:   l.contact, remoteTarget: target,
		dest:   p.Address.String(),
		origin: sdpOrigin{id: randomID(), version: 1},
	}
	out.localCSeq = randomCSeq() - 1 // newRequest increments
	out.laddr = sip.Addr{IP: l.addr.Addr().AsSlice(), Port: int(l.addr.Port())}
	out.signalIP = p.Address.Addr()
	return out
}

func randomCSeq() uint32 { return uint32(randomID()%30000) + 1 }

func newCallID(host string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x@%s", b, host)
}

// runInitial drives the initial INVITE transaction on both legs until the
// call is answered or fails. It runs in the inbound INVITE's handler
// goroutine; sipgo terminates the server transaction when it returns.
func (c *call) runInitial(req *sip.Request, tx sip.ServerTransaction) {
	s := c.s
	fail := func(code int, phrase, reason string) {
		c.log.Info("call failed", zap.Int("code", code), zap.String("reason", reason))
		s.respond(req, tx, code, phrase, reason)
		c.end(fmt.Sprintf("%d %s", code, reason), false, false)
	}

	var outBody []byte
	if len(req.Body()) > 0 {
		if !isSDP(req) {
			fail(415, "Unsupported Media Type", "only application/sdp bodies are accepted")
			return
		}
		b, err := c.handleOffer(c.in, req.Body())
		if err != nil {
			code, phrase := sdpErrorStatus(err)
			c.s.metrics.PolicyRejected(rejectionReason(err))
			fail(code, phrase, err.Error())
			return
		}
		outBody = b
	}

	tpol := c.tpol
	var asked time.Duration // Session-Expires asked for; 0: timers off
	newInvite := func() *sip.Request {
		r := c.out.newRequest(sip.INVITE, outBody)
		copyHeaders(r, req, c.out.local.Host)
		r.AppendHeader(sip.NewHeader("Allow", allowMethods))
		r.AppendHeader(sip.NewHeader("Supported", "100rel"))
		if mf := req.MaxForwards(); mf != nil {
			m := sip.MaxForwardsHeader(mf.Val() - 1)
			r.ReplaceHeader(&m)
		}
		if c.timersOn() {
			var hs []sip.Header
			hs, asked = tpol.requestHeaders(sessionTerms{})
			for _, h := range hs {
				r.AppendHeader(h)
			}
		}
		return r
	}
	outReq := newInvite()

	// The caller's CANCEL (answered by sipgo with 200 and 487) ends ctx.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tx.OnCancel(func(*sip.Request) { cancel() })
	tx.OnTerminate(func(string, error) { cancel() })

	otx, err := c.s.send(ctx, c.out, outReq)
	if err != nil {
		fail(503, "Service Unavailable", c.out.sendError(err))
		return
	}
	defer func() { otx.Terminate() }()
	retried422 := false

	noAnswer := time.NewTimer(peerResponseTimeout)
	defer noAnswer.Stop()
	gotProvisional := false
	for {
		select {
		case res := <-otx.Responses():
			if res.StatusCode == 100 {
				gotProvisional = true
				noAnswer.Stop()
				continue
			}
			noAnswer.Stop()
			if res.IsProvisional() {
				reliable, duplicate, rseq := c.outboundReliable(res)
				if duplicate {
					continue
				}
				gotProvisional = true
				c.out.learnFromResponse(res)
				if reliable {
					go c.prack(res, rseq)
				}
				if err := c.relayProvisional(ctx, req, tx, res); err != nil {
					c.noPRACK(req, tx, otx, outReq, err)
					return
				}
				continue
			}
			if res.IsSuccess() {
				if err := c.awaitPRACK(ctx); err != nil {
					c.out.learnFromResponse(res)
					c.ackOutbound(res, nil)
					c.s.respond(req, tx, 504, "Server Time-out", err.Error())
					c.end(err.Error(), false, true)
					return
				}
				c.answer(req, tx, otx, res, asked)
				return
			}
			if res.StatusCode == 422 && asked > 0 && !retried422 {
				// RFC 4028 §7.3: ask again, once, with the peer's Min-SE.
				retried422 = true
				h, _ := parseTimerHeaders(res)
				if n := tpol.retryAfter422(int(asked/time.Second), h.minSE); n > 0 {
					tpol.expires, tpol.minSE = n, n
					outReq = newInvite()
					next, err := c.s.send(ctx, c.out, outReq)
					if err != nil {
						fail(503, "Service Unavailable", c.out.sendError(err))
						return
					}
					otx.Terminate()
					otx, gotProvisional = next, false
					c.log.Info("session interval raised", zap.String("by", c.out.peerName), zap.Int("session_expires", n))
					noAnswer.Reset(peerResponseTimeout)
					continue
				}
			}
			c.log.Info("call failed", zap.Int("code", res.StatusCode), zap.String("reason", res.Reason), zap.String("by", c.out.peerName))
			c.relayFailure(req, tx, res)
			c.end(fmt.Sprintf("%d %s from %s", res.StatusCode, res.Reason, c.out.peerName), false, false)
			return
		case <-noAnswer.C:
			fail(503, "Service Unavailable", fmt.Sprintf("peer %s did not respond", c.out.peerName))
			return
		case err := <-c.prackLost:
			c.noPRACK(req, tx, otx, outReq, err)
			return
		case <-otx.Done():
			err := otx.Err()
			if errors.Is(err, sip.ErrTransactionTimeout) {
				fail(408, "Request Timeout", fmt.Sprintf("peer %s did not answer", c.out.peerName))
			} else {
				fail(503, "Service Unavailable", fmt.Sprintf("peer %s unreachable: %v", c.out.peerName, shortErr(errOr(err))))
			}
			return
		case <-ctx.Done():
			c.cancelOutbound(otx, outReq, gotProvisional, "cancelled by caller")
			return
		}
	}
}

func errOr(err error) error {
	if err == nil {
		return errors.New("transaction ended")
	}
	return err
}

// cancelOutbound ends the outbound INVITE after the caller cancelled (or
// the call failed on the caller's side, why): CANCEL once a provisional
// response allows it (RFC 3261 §9.1), then wait for the final response; a
// 200 that crossed the CANCEL is acknowledged and hung up.
func (c *call) cancelOutbound(otx sip.ClientTransaction, inv *sip.Request, gotProvisional bool, why string) {
	c.log.Info("outbound INVITE cancelled", zap.String("reason", why))
	res, timedOut := c.cancelInvite(otx, inv, c.out, gotProvisional)
	switch {
	case res != nil && res.IsSuccess():
		c.end(why+"; answer crossed CANCEL", false, true)
	case timedOut:
		c.end(why+" (no final response from peer)", false, false)
	default:
		c.end(why, false, false)
	}
}

// cancelInvite cancels ccsbc's INVITE inv on leg l, whose client
// transaction is otx. The CANCEL goes only once a provisional response has
// come (RFC 3261 §9.1): at once if gotProvisional, else when one arrives.
// It waits up to byeTimeout for the INVITE's final response and returns it,
// nil if none came (timedOut: the wait ran out, rather than the
// transaction ending). A 2xx that crossed the CANCEL is ACKed on l: the
// caller hangs that leg up.
func (c *call) cancelInvite(otx sip.ClientTransaction, inv *sip.Request, l *leg, gotProvisional bool) (final *sip.Response, timedOut bool) {
	deadline := time.NewTimer(byeTimeout)
	defer deadline.Stop()
	sendCancel := func() {
		ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		defer cancel()
		if ctx2, err := c.s.client.TransactionRequest(ctx, newCancel(inv), sipgo.ClientRequestBuild); err == nil {
			go func() {
				select {
				case <-ctx2.Responses():
				case <-ctx2.Done():
				case <-time.After(byeTimeout):
				}
				ctx2.Terminate()
			}()
		}
	}
	if gotProvisional {
		sendCancel()
	}
	for {
		select {
		case res := <-otx.Responses():
			if res.IsProvisional() {
				if !gotProvisional {
					gotProvisional = true
					sendCancel()
				}
				continue
			}
			if res.IsSuccess() {
				l.learnFromResponse(res)
				c.ackLeg(l, res, nil)
			}
			return res, false
		case <-otx.Done():
			return nil, false
		case <-deadline.C:
			return nil, true
		}
	}
}

// newCancel builds the CANCEL for an INVITE ccsbc sent (RFC 3261 §9.1):
// same Request-URI, Call-ID, From, To, top Via and CSeq number.
func newCancel(inv *sip.Request) *sip.Request {
	r := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	r.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, h := range inv.GetHeaders("Route") {
		r.AppendHeader(sip.HeaderClone(h))
	}
	r.AppendHeader(sip.HeaderClone(inv.From()))
	r.AppendHeader(sip.HeaderClone(inv.To()))
	r.AppendHeader(sip.HeaderClone(inv.CallID()))
	r.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	r.AppendHeader(&mf)
	r.SetTransport(inv.Transport())
	r.SetDestination(inv.Destination())
	r.Laddr = inv.Laddr
	r.SetBody(nil)
	return r
}

// relayProvisional passes a 18x to the caller; with SDP it is the (early)
// answer and media starts flowing through the relay. It is sent reliably
// (100rel) when the caller requires it, or supports it and there is SDP;
// the error says the caller never acknowledged an earlier one.
func (c *call) relayProvisional(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, res *sip.Response) error {
	var body []byte
	if len(res.Body()) > 0 && isSDPResponse(res) {
		b, err := c.handleAnswer(c.out, res.Body())
		if err != nil {
			c.log.Info("early media SDP refused", zap.Error(err))
		} else {
			body = b
		}
	}
	r := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	c.setInboundTag(r)
	r.AppendHeader(c.in.contact.Clone())
	if body != nil {
		r.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	r.SetBody(body)
	if required, supported := inbound100rel(req); required || (supported && body != nil) {
		return c.respondReliably(ctx, tx, r)
	}
	_ = tx.Respond(r)
	return nil
}

// noPRACK ends a call whose caller never acknowledged a reliable 18x
// (RFC 3262 §3: the INVITE is answered 5xx): the callee is cancelled.
func (c *call) noPRACK(req *sip.Request, tx sip.ServerTransaction, otx sip.ClientTransaction, outReq *sip.Request, err error) {
	if errors.Is(err, context.Canceled) {
		c.cancelOutbound(otx, outReq, true, "cancelled by caller") // meanwhile
		return
	}
	c.log.Info("call failed", zap.Int("code", 504), zap.String("reason", err.Error()))
	c.s.respond(req, tx, 504, "Server Time-out", err.Error())
	c.cancelOutbound(otx, outReq, true, err.Error())
}

func (c *call) setInboundTag(r *sip.Response) {
	if to := r.To(); to != nil {
		to.Params.Add("tag", c.in.localTag)
	}
}

// relayFailure passes a final error to the caller with its code and
// phrase. Contact, Warning and other headers of the peer are not passed,
// except Reason (the Q.850 cause the contact center reports on).
func (c *call) relayFailure(req *sip.Request, tx sip.ServerTransaction, res *sip.Response) {
	code := res.StatusCode
	if code >= 300 && code < 400 {
		// A redirect would hand the caller addresses behind ccsbc.
		code = 480
	}
	r := sip.NewResponseFromRequest(req, code, res.Reason, nil)
	c.setInboundTag(r)
	for _, h := range res.GetHeaders("Reason") {
		r.AppendHeader(sip.NewHeader("Reason", h.Value()))
	}
	if code != res.StatusCode {
		r.AppendHeader(warning(fmt.Sprintf("peer %s redirected the call (%d)", c.out.peerName, res.StatusCode)))
	}
	_ = tx.Respond(r)
}

// answer completes the call on a 2xx from the outbound peer; asked is the
// Session-Expires the INVITE asked for (0: timers off).
func (c *call) answer(req *sip.Request, tx sip.ServerTransaction, otx sip.ClientTransaction, res *sip.Response, asked time.Duration) {
	c.out.learnFromResponse(res)
	var body []byte
	delayedOffer := false
	if len(res.Body()) > 0 {
		var err error
		if c.pendingOffer() {
			body, err = c.handleAnswer(c.out, res.Body())
		} else {
			// Delayed offer: the INVITE had no SDP, the 200 carries the
			// offer and the caller's ACK will carry the answer.
			body, err = c.handleOffer(c.out, res.Body())
			delayedOffer = true
		}
		if err != nil {
			c.log.Info("answer SDP refused", zap.Error(err))
			c.s.metrics.PolicyRejected(rejectionReason(err))
			c.ackOutbound(res, nil)
			code, phrase := sdpErrorStatus(err)
			c.s.respond(req, tx, code, phrase, err.Error())
			c.end("answer SDP refused: "+err.Error(), false, true)
			return
		}
	}
	// After a delayed offer the ACK (which carries the caller's answer) is
	// only sent once the caller's ACK arrives. Retransmissions of the 200
	// are ACKed again by Server.reack.
	if !delayedOffer {
		c.ackOutbound(res, nil)
	}

	ok := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	c.setInboundTag(ok)
	ok.AppendHeader(c.in.contact.Clone())
	ok.AppendHeader(sip.NewHeader("Allow", allowMethods))
	c.inTimer.addTo(ok)
	if body != nil {
		ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	ok.SetBody(body)

	c.markAnswered()
	c.s.nCallsAnswered.Add(1)
	c.log.Info("call answered", zap.String("by", c.out.peerName))

	ack := c.sendInvite2xx(c.in, tx, ok)
	if ack == nil {
		c.log.Info("no ACK from caller for 200; hanging up")
		c.end("no ACK from caller", true, true)
		return
	}
	if delayedOffer {
		var ackBody []byte
		if len(ack.Body()) > 0 {
			b, err := c.handleAnswer(c.in, ack.Body())
			if err != nil {
				c.log.Info("ACK SDP refused", zap.Error(err))
				c.ackOutbound(res, nil)
				c.end("ACK SDP refused: "+err.Error(), true, true)
				return
			}
			ackBody = b
		}
		c.ackOutbound(res, ackBody)
	}
	// Both dialogs are up: each leg's session timer starts.
	c.timerFromResponse(c.out, res, asked)
	c.resetTimer(c.in, c.inTimer.terms)
}

// sendInvite2xx sends a 2xx to an INVITE received on leg l and waits for
// its ACK, retransmitting over UDP (RFC 3261 §13.3.1.4). It returns the
// ACK, or nil when none came within 64*T1 or the call ended.
func (c *call) sendInvite2xx(l *leg, tx sip.ServerTransaction, res *sip.Response) *sip.Request {
	ch := make(chan *sip.Request, 1)
	c.mu.Lock()
	c.ackWait[l] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.ackWait[l] == ch {
			delete(c.ackWait, l)
		}
		c.mu.Unlock()
	}()
	if err := tx.Respond(res); err != nil {
		c.log.Debug("2xx send failed", zap.Error(err))
	}
	interval := sip.T1
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	for {
		select {
		case ack := <-ch:
			return ack
		case <-tx.Acks():
			// sipgo matched the ACK to the transaction itself.
			return sip.NewRequest(sip.ACK, sip.Uri{})
		case <-retransmit.C:
			if l.transport == "UDP" {
				_ = c.s.ua.TransportLayer().WriteMsg(res)
			}
			interval = min(2*interval, sip.T2)
			retransmit.Reset(interval)
		case <-giveUp.C:
			return nil
		case <-c.ended:
			return nil
		}
	}
}

// ackOutbound sends the ACK for a 2xx received on the outbound leg.
func (c *call) ackOutbound(res *sip.Response, body []byte) {
	c.ackLeg(c.out, res, body)
}

// ackLeg sends the ACK for a 2xx to an INVITE ccsbc sent on leg l. The
// leg remembers it for the 2xx's retransmissions (Server.reack).
func (c *call) ackLeg(l *leg, res *sip.Response, body []byte) {
	cs := res.CSeq()
	if cs == nil {
		return
	}
	l.mu.Lock()
	l.ackSeq, l.ackBody = cs.SeqNo, body
	l.mu.Unlock()
	if err := c.s.sendAck(l, cs.SeqNo, body); err != nil {
		c.log.Debug("ACK send failed", zap.Error(err))
	}
}

// sendAck sends an ACK on leg l for the 2xx to its INVITE numbered seq:
// the ACK's CSeq number is the INVITE's (RFC 3261 §13.2.2.4).
func (s *Server) sendAck(l *leg, seq uint32, body []byte) error {
	ack := l.newRequest(sip.ACK, body)
	ack.CSeq().SeqNo = seq
	return s.write(l, ack)
}

// reack answers a retransmitted 2xx to an INVITE ccsbc sent with the ACK
// it sent for the first one (same CSeq and body; a new Via branch, so that
// it is not taken for a retransmission of the first ACK). The peer retransmits its 2xx until an ACK
// reaches it, and then ends the session (RFC 3261 §13.3.1.4), so a lost
// ACK must be made good for every INVITE: the initial one, re-INVITEs
// relayed or made by ccsbc (refreshes, the dialer upgrade), a transfer's.
// sipgo passes such a 2xx to the transaction's retransmission hook while
// the transaction lives (send registers reack there for every INVITE), and
// to the unhandled-response handler once it is gone (also reack).
//
// It finds the call through the dialog table and holds nothing: sipgo keeps
// a terminated INVITE transaction, and its hook, 32 s after a 2xx (its
// Timer M is not stopped), and a hook holding the call kept every ended
// call in memory that long. A 2xx whose ACK is not sent yet (ccsbc waits
// for the other side's answer to put in it) and one for an ended call go
// unanswered.
func (s *Server) reack(res *sip.Response) {
	cs, from, callID := res.CSeq(), res.From(), res.CallID()
	if !res.IsSuccess() || cs == nil || cs.MethodName != sip.INVITE || from == nil || callID == nil {
		return
	}
	tag, _ := from.Params.Get("tag") // ccsbc is the UAC: From carries its tag
	v, ok := s.calls.Load(dialogKey(callID.Value(), tag))
	if !ok {
		return
	}
	l := v.(*call).legOf(callID.Value(), tag)
	if l == nil {
		return
	}
	l.mu.Lock()
	seq, body := l.ackSeq, l.ackBody
	l.mu.Unlock()
	if seq == 0 || seq != cs.SeqNo {
		return
	}
	if err := s.sendAck(l, seq, body); err != nil {
		s.log.Debug("ACK resend failed", zap.Error(err))
	}
}

// onAck delivers an ACK to the call waiting for it, and tells sipgo's
// transaction layer nothing more: ACK has no response.
func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c, l := s.findCall(req)
	if c == nil {
		return
	}
	c.mu.Lock()
	ch := c.ackWait[l]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- req:
		default:
		}
	}
}

// onBye ends the call: 200 to the sender, BYE to the other leg.
func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if code, phrase, reason := validateRequest(req); code != 0 {
		s.respond(req, tx, code, phrase, reason)
		return
	}
	c, l := s.findCall(req)
	if c == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist", "")
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	if !c.current(l) {
		// The dialer hanging up after its transfer: the call goes on.
		c.forgetLeg(l)
		return
	}
	in, out := c.legs()
	byeIn, byeOut := l == out, l == in
	c.end("BYE from "+l.peerName, byeIn, byeOut)
}

// end tears the call down once: BYE on the legs asked for, media released,
// one log line with the outcome.
func (c *call) end(reason string, byeIn, byeOut bool) {
	c.endOnce.Do(func() {
		c.stopTimers()
		c.cancel()
		close(c.ended)
		c.mu.Lock()
		streams := c.streams
		c.streams = nil
		answered := c.answered
		in, out := c.in, c.out
		detached := c.xfer.detached
		c.mu.Unlock()

		var wg sync.WaitGroup
		for _, l := range []*leg{in, out} {
			if (l == in && byeIn) || (l == out && byeOut) {
				wg.Add(1)
				go func(l *leg) {
					defer wg.Done()
					c.bye(l)
				}(l)
			}
		}
		wg.Wait()

		fields := []zap.Field{zap.String("reason", reason), zap.Duration("duration", time.Since(c.start).Round(time.Millisecond))}
		if !answered.IsZero() {
			fields = append(fields, zap.Duration("talk", time.Since(answered).Round(time.Millisecond)))
		} else {
			c.s.nCallsFailed.Add(1)
		}
		stats := make([]media.StreamStats, len(streams))
		for i, st := range streams {
			if st == nil {
				continue
			}
			stats[i] = st.Stats()
			fields = append(fields, zap.Any(fmt.Sprintf("media%d", i), stats[i]))
			st.Close()
		}
		c.log.Info("call end", fields...)
		c.s.ended.mu.Lock()
		c.addStats(&c.s.ended.t, stats)
		c.s.ended.mu.Unlock()
		c.s.metrics.CallEnded(c.model, c.route.Leg, callResult(!answered.IsZero(), reason))
		c.s.audit.Info("call", c.auditFields(reason, answered, stats)...)
		for _, l := range append([]*leg{in, out}, detached...) {
			c.s.calls.Delete(dialogKey(l.callID, l.localTag))
		}
		c.s.active.Done()
	})
}

// bye sends BYE on leg l and waits (bounded) for its answer.
func (c *call) bye(l *leg) {
	if l.getRemoteTag() == "" {
		return // no dialog on that leg
	}
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	req := l.newRequest(sip.BYE, nil)
	tx, err := c.s.send(ctx, l, req)
	if err != nil {
		c.log.Debug("BYE send failed", zap.String("peer", l.peerName), zap.Error(err))
		return
	}
	defer tx.Terminate()
	waitFinal(ctx, tx)
}

// send starts a client transaction for req on leg l. A TLS peer's
// connection is verified before anything is written on it.
func (s *Server) send(ctx context.Context, l *leg, req *sip.Request) (sip.ClientTransaction, error) {
	if err := s.prepare(ctx, l, req); err != nil {
		return nil, err
	}
	tx, err := s.client.TransactionRequest(ctx, req, func(*sipgo.Client, *sip.Request) error { return nil })
	if err == nil && req.IsInvite() {
		tx.OnRetransmission(s.reack)
	}
	return tx, err
}

// write sends a request outside any transaction (ACK for 2xx).
func (s *Server) write(l *leg, req *sip.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), peerResponseTimeout)
	defer cancel()
	if err := s.prepare(ctx, l, req); err != nil {
		return err
	}
	return s.client.WriteRequest(req, func(*sipgo.Client, *sip.Request) error { return nil })
}

func (s *Server) prepare(ctx context.Context, l *leg, req *sip.Request) error {
	if req.Via() == nil {
		via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: l.transport, Params: sip.NewParams()}
		if l.transport == "UDP" {
			via.Host = netip.AddrFrom16([16]byte(l.laddr.IP.To16())).Unmap().String()
			via.Port = l.laddr.Port
		}
		via.Params.Add("branch", sip.GenerateBranchN(16))
		req.PrependHeader(via)
	}
	if l.transport == "TLS" && l.peer != nil && l == l.peerLegOut() {
		if err := s.checkPeerConn(ctx, l.peer, l, req); err != nil {
			return err
		}
	}
	return nil
}

// peerLegOut reports the leg itself when ccsbc dials its peer (the
// outbound leg, or a transfer's new leg); inbound legs reuse the caller's
// connection, authenticated when it was accepted.
func (l *leg) peerLegOut() *leg {
	if l.dialed {
		return l
	}
	return nil
}

func isSDP(req *sip.Request) bool {
	ct := req.ContentType()
	return ct != nil && strings.HasPrefix(strings.ToLower(ct.Value()), "application/sdp")
}

func isSDPResponse(res *sip.Response) bool {
	ct := res.ContentType()
	return ct != nil && strings.HasPrefix(strings.ToLower(ct.Value()), "application/sdp")
}
