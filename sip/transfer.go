package sip

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/policy"
)

// The Outbound Option dialer's transfer, and the "dialer upgrade" it allows.
//
// The dialer does not support SRTP, so while it is a party every leg of its
// call is RTP (policy.CallState.DialerConnected). Cisco's SIP dialer hands
// a call on with a blind REFER toward the gateway in ccsbc's position;
// ccsbc terminates that REFER, as Cisco's border element does, instead of
// passing it to the other side (which would expose addresses and lose the
// leg's policy):
//
//	dialer                 ccsbc                  agent (remains)     target
//	  |--REFER Refer-To:2000-->|                        |                 |
//	  |<--202 Accepted---------|                        |                 |
//	  |<--NOTIFY 100 Trying----|                        |                 |
//	  |                        |--INVITE (agent's codecs, policy of the   |
//	  |                        |   target's route, dialer gone)---------->|
//	  |                        |<--200 OK (answer)------------------------|
//	  |                        |--ACK------------------------------------>|
//	  |<--NOTIFY 200 OK--------|   (media: agent <-> target)              |
//	  |<--BYE------------------|                        |                 |
//	  |                        |--re-INVITE RTP/SAVP -->|  when policy    |
//	  |                        |<--200 RTP/SAVP---------|  now says SRTP  |
//	  |                        |--ACK------------------>|                 |
//
// The target is found from the Refer-To user by the routes of the call's
// configuration (its host is ignored: ccsbc never dials an address that
// nobody configured). A transfer that fails (4xx-6xx, no answer, refused
// SDP) leaves the call as it was and the final NOTIFY says why. Once the
// remaining leg's decision becomes SRTP, a refusal of the re-INVITE ends
// the call: a leg that must be secure never stays plain (fail closed).

const (
	// transferTimeout bounds the new leg's INVITE, ringing included, and
	// the re-INVITE of the remaining leg.
	transferTimeout = inDialogTimeout
	// referExpires is the implicit subscription's lifetime we announce in
	// NOTIFY (RFC 3515 §2.4.4); the transfer ends well before it.
	referExpires = 60
)

// transferState is the dialer's part in a call; guarded by call.mu.
type transferState struct {
	state policy.CallState
	// detached are the legs a transfer took out of the call (the
	// dialer's), until their dialog ends: a BYE on one of them is
	// answered without ending the call.
	detached []*leg
	// done records each completed transfer ("dialer -> vvb") for the
	// call's audit record.
	done []string
}

// transferTarget is where a REFER asks the call to go.
type transferTarget struct {
	user     string
	route    *config.Route
	peer     *config.Peer
	listener *listener
}

// legOf returns the leg of c whose dialog is (callID, ccsbc's tag), among
// the current and detached ones, or nil.
func (c *call) legOf(callID, tag string) *leg {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range append([]*leg{c.in, c.out}, c.xfer.detached...) {
		if l.callID == callID && l.localTag == tag {
			return l
		}
	}
	return nil
}

// current reports whether l is one of the call's two legs now; a leg a
// transfer took out of the call is not, even once forgotten.
func (c *call) current(l *leg) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return l == c.in || l == c.out
}

// forgetLeg drops a detached leg once its dialog has ended.
func (c *call) forgetLeg(l *leg) {
	c.mu.Lock()
	for i, d := range c.xfer.detached {
		if d == l {
			c.xfer.detached = append(c.xfer.detached[:i], c.xfer.detached[i+1:]...)
			c.s.calls.Delete(dialogKey(l.callID, l.localTag))
			break
		}
	}
	c.mu.Unlock()
}

// dialerConnected reports whether the Outbound Option dialer is a party.
func (c *call) dialerConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.xfer.state.DialerConnected
}

// policyPeer is what policy needs of a configured peer.
func policyPeer(p *config.Peer) policy.Peer {
	return policy.Peer{Name: p.Name, Transport: p.Transport, SRTP: p.SRTP}
}

// legPolicyPeer is what policy needs of the peer at the end of l.
func legPolicyPeer(l *leg) policy.Peer {
	return policy.Peer{Name: l.peerName, Transport: policy.Transport(strings.ToLower(l.transport)), SRTP: l.peer != nil && l.peer.SRTP}
}

// onRefer consumes a REFER (RFC 3515) from the Outbound Option dialer's leg
// and transfers the call; any other REFER is refused as before.
func (s *Server) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	c, l := s.inDialogPrecheck(req, tx)
	if c == nil {
		return
	}
	t, code, phrase, reason := c.checkRefer(l, req)
	if code != 0 {
		c.log.Info("transfer refused", zap.String("from", l.peerName), zap.Int("code", code), zap.String("reason", reason))
		s.respond(req, tx, code, phrase, reason)
		return
	}
	if !c.tryBusy() {
		s.respond(req, tx, 491, "Request Pending", "an offer/answer or a transfer is in progress")
		return
	}
	res := sip.NewResponseFromRequest(req, 202, "Accepted", nil)
	res.AppendHeader(l.contact.Clone())
	if err := tx.Respond(res); err != nil {
		c.log.Debug("202 send failed", zap.Error(err))
	}
	go c.transfer(l, t)
}

// checkRefer validates a REFER received on leg l. It returns the target,
// or the status, phrase and reason of the refusal.
func (c *call) checkRefer(l *leg, req *sip.Request) (transferTarget, int, string, string) {
	var t transferTarget
	if l.peer == nil || l.peer.Kind != "dialer" || !c.current(l) {
		return t, 501, "Not Implemented", "REFER is consumed only from an Outbound Option dialer's leg; other transfers are not supported yet"
	}
	if !c.dialerConnected() {
		return t, 403, "Forbidden", "the dialer has already left this call"
	}
	c.mu.Lock()
	answered := !c.answered.IsZero()
	c.mu.Unlock()
	if !answered {
		return t, 403, "Forbidden", "a transfer needs an answered call"
	}
	refs := req.GetHeaders("Refer-To")
	if len(refs) == 0 {
		refs = req.GetHeaders("r") // compact form (RFC 3515 §2.1)
	}
	if len(refs) != 1 {
		return t, 400, "Bad Request", fmt.Sprintf("REFER needs exactly one Refer-To header (got %d)", len(refs))
	}
	v := refs[0].Value()
	var u sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(v, &u, &params); err != nil {
		return t, 400, "Bad Request", "Refer-To is not a valid URI"
	}
	if s := strings.ToLower(u.Scheme); s != "sip" && s != "sips" {
		return t, 400, "Bad Request", fmt.Sprintf("Refer-To must be a SIP URI, not %s:", u.Scheme)
	}
	// An attended transfer carries the dialog to replace as a URI header
	// (RFC 3891 §7: Refer-To: <sip:...?Replaces=...>).
	if strings.Contains(strings.ToLower(v), "replaces=") || (u.Headers != nil && hasParamFold(u.Headers, "replaces")) {
		return t, 501, "Not Implemented", "Refer-To with Replaces (attended transfer) is not supported; the dialer's blind transfer is"
	}
	if u.User == "" {
		return t, 400, "Bad Request", "Refer-To has no user to route"
	}
	route, ok := c.cfg.Route(l.peerName, u.User)
	if !ok {
		return t, 404, "Not Found", "no route for " + u.User
	}
	if route.Leg == policy.LegWhisper {
		return t, 403, "Forbidden", "a transfer to a whisper route is not supported"
	}
	to := c.s.pickPeer(route, route.To)
	p, ok := c.cfg.Peer(to)
	if !ok {
		return t, 500, "Server Internal Error", "route " + route.Name + " names unknown peer"
	}
	ln := c.s.listenerForTransport(sipTransport(string(p.Transport)))
	if ln == nil {
		return t, 503, "Service Unavailable", "no " + string(p.Transport) + " listener to reach peer " + p.Name
	}
	return transferTarget{user: u.User, route: route, peer: p, listener: ln}, 0, "", ""
}

func hasParamFold(h sip.HeaderParams, name string) bool {
	for _, k := range h.Keys() {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// transfer runs a REFER accepted on the dialer's leg; the call is busy
// until it returns.
func (c *call) transfer(dialer *leg, t transferTarget) {
	defer c.notBusy()
	log := c.log.With(zap.String("to_peer", t.peer.Name), zap.String("user", t.user))
	log.Info("transfer start", zap.String("from", dialer.peerName), zap.String("route", t.route.Name), zap.String("leg_class", string(t.route.Leg)))
	c.notify(dialer, "SIP/2.0 100 Trying", false)

	remain := c.other(dialer)
	// The new leg's decision: the dialer will no longer be a party.
	newDec := policy.DecideLeg(c.model, t.route.Leg, policyPeer(t.peer), policy.CallState{})
	nl := c.s.dialLeg(dialer.side, remain.remote.User, remain.remName, t.listener, t.peer, t.user)

	code, reason, answer, asked := c.dialTransfer(nl, remain, newDec)
	if code/100 != 2 {
		log.Info("transfer failed", zap.Int("code", code), zap.String("reason", reason))
		c.notify(dialer, fmt.Sprintf("SIP/2.0 %d %s", code, sanitizeQuoted(reason)), true)
		return
	}

	c.mu.Lock()
	select {
	case <-c.ended:
		// The remaining party hung up while the target answered.
		c.mu.Unlock()
		log.Info("transfer abandoned: the call ended")
		c.bye(nl)
		return
	default:
	}
	if c.in == dialer {
		c.in = nl
	} else {
		c.out = nl
	}
	c.xfer.detached = append(c.xfer.detached, dialer)
	c.xfer.done = append(c.xfer.done, dialer.peerName+" -> "+nl.peerName)
	c.xfer.state.DialerConnected = false
	before := c.dec[remain.side]
	after := policy.DecideLeg(c.model, before.Class, legPolicyPeer(remain), c.xfer.state)
	c.dec[remain.side] = after
	c.s.calls.Store(dialogKey(nl.callID, nl.localTag), c)
	c.mu.Unlock()
	log.Info("transfer complete", zap.String("new_call_id", nl.callID), zap.String("protection", string(newDec.Protection)), zap.String("policy", newDec.Reason))

	if c.timersOn() {
		// The side's session timer now runs for the new leg, on the
		// terms its answer gave.
		c.timerFromResponse(nl, answer, asked)
	}
	c.notify(dialer, "SIP/2.0 200 OK", true)
	go func() {
		c.bye(dialer)
		c.forgetLeg(dialer)
	}()

	if after.Protection != before.Protection {
		c.upgrade(remain, before, after)
	}
}

// dialTransfer places the new leg nl (which takes the dialer's side) with an
// offer built from the remaining leg's media, and applies its answer. It
// returns the target's final status (2xx: nl is established and the relay
// sends the remaining party's media to it), or the failure and why; on a
// failure the call's state is as it was.
func (c *call) dialTransfer(nl, remain *leg, dec policy.Decision) (code int, reason string, answer *sip.Response, asked time.Duration) {
	side := nl.side
	c.mu.Lock()
	src := c.last[remain.side]
	savedDec, savedSRTP := c.dec[side], c.srtp[side]
	restore := func() {
		c.mu.Lock()
		c.dec[side], c.srtp[side] = savedDec, savedSRTP
		c.mu.Unlock()
	}
	if src == nil {
		c.mu.Unlock()
		return 488, "no media session to transfer", nil, 0
	}
	c.dec[side], c.srtp[side] = dec, nil
	body, err := c.offerLocked(nl, src)
	c.mu.Unlock()
	if err != nil {
		restore()
		return 488, err.Error(), nil, 0
	}

	req := nl.newRequest(sip.INVITE, body)
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	if c.timersOn() {
		var hs []sip.Header
		hs, asked = c.tpol.requestHeaders(sessionTerms{})
		for _, h := range hs {
			req.AppendHeader(h)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), transferTimeout)
	defer cancel()
	otx, err := c.s.send(ctx, nl, req)
	if err != nil {
		restore()
		return 503, nl.sendError(err), nil, 0
	}
	defer otx.Terminate()
	noAnswer := time.NewTimer(peerResponseTimeout)
	defer noAnswer.Stop()
	gotProvisional := false
	for {
		select {
		case res := <-otx.Responses():
			noAnswer.Stop()
			if res.IsProvisional() {
				gotProvisional = true
				continue
			}
			if !res.IsSuccess() {
				restore()
				return res.StatusCode, fmt.Sprintf("%s (from %s)", res.Reason, nl.peerName), nil, 0
			}
			nl.learnFromResponse(res)
			err := c.applyAnswer(nl, src, body, res.Body())
			c.ackLeg(nl, res, nil)
			if err != nil {
				c.bye(nl)
				restore()
				return 488, "answer refused: " + err.Error(), nil, 0
			}
			return res.StatusCode, res.Reason, res, asked
		case <-noAnswer.C:
			restore()
			return 408, fmt.Sprintf("peer %s did not respond", nl.peerName), nil, 0
		case <-otx.Done():
			restore()
			if errors.Is(otx.Err(), sip.ErrTransactionTimeout) {
				return 408, fmt.Sprintf("peer %s did not answer", nl.peerName), nil, 0
			}
			return 503, fmt.Sprintf("peer %s unreachable: %v", nl.peerName, shortErr(errOr(otx.Err()))), nil, 0
		case <-ctx.Done():
			c.abandonDial(otx, req, nl, gotProvisional)
			restore()
			return 408, fmt.Sprintf("peer %s did not answer within %v", nl.peerName, transferTimeout), nil, 0
		case <-c.ended:
			c.abandonDial(otx, req, nl, gotProvisional)
			restore()
			return 487, "the call ended during the transfer", nil, 0
		}
	}
}

// abandonDial cancels the new leg's INVITE and hangs up an answer that
// crossed the CANCEL.
func (c *call) abandonDial(otx sip.ClientTransaction, inv *sip.Request, nl *leg, gotProvisional bool) {
	if res, _ := c.cancelInvite(otx, inv, nl, gotProvisional); res != nil && res.IsSuccess() {
		c.bye(nl)
	}
}

// offerLocked builds the offer ccsbc makes on leg l from src, the other
// side's current description: its codecs and directions, ccsbc's relay ports
// on l, and the protection of l's decision (with fresh keys when it is
// SRTP and l had none).
func (c *call) offerLocked(l *leg, src *sessionDesc) ([]byte, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: no media session to offer", ErrSDPMalformed)
	}
	ports := c.portsLocked(l.side, len(src.media))
	if err := c.offerSecurityLocked(l, src, ports); err != nil {
		return nil, err
	}
	return src.rewrite(&l.origin, c.s.cfg.Media.Advertise, ports)
}

// applyAnswer applies the answer of leg l to an offer ccsbc made on it
// (sent, rendered from the other side's description offer): l's keys and
// media destination; the other side's stay as they are. The exchange is
// remembered for session refreshes on l.
func (c *call) applyAnswer(l *leg, offer *sessionDesc, sent, body []byte) error {
	sd, err := parseSDP(body)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(sd.media) != len(offer.media) {
		return fmt.Errorf("%w: answer has %d m= lines, the offer had %d", ErrSDPMalformed, len(sd.media), len(offer.media))
	}
	if err := c.acceptAnswerSecurityLocked(l, sd); err != nil {
		return err
	}
	c.applyStreamsLocked(offer, sd, legMedia{l, sd})
	c.last[l.side] = sd
	c.sdpIn[l.side], c.sdpOut[l.side], c.sdpOutAnswer[l.side] = body, sent, false
	return nil
}

// upgrade renegotiates leg l's media after its decision changed from
// before to after (the dialer upgrade: RTP to SRTP) with a re-INVITE
// carrying a fresh offer and ccsbc's new keys. A refusal ends the call: the
// leg must not stay plain once policy says it is secure.
func (c *call) upgrade(l *leg, before, after policy.Decision) {
	log := c.log.With(zap.String("peer", l.peerName), zap.String("from", string(before.Protection)), zap.String("to", string(after.Protection)))
	fail := func(why string) {
		log.Info("dialer upgrade failed", zap.String("reason", why), zap.String("policy", after.Reason))
		c.s.metrics.PolicyRejected("srtp required")
		c.end("dialer upgrade failed: "+why, true, true)
	}
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		src := c.last[c.otherSideLocked(l)]
		body, err := c.offerLocked(l, src)
		c.mu.Unlock()
		if err != nil {
			fail(err.Error())
			return
		}
		req := l.newRequest(sip.INVITE, body)
		req.AppendHeader(sip.NewHeader("Allow", allowMethods))
		res := c.request(l, req)
		switch {
		case res == nil:
			fail(fmt.Sprintf("peer %s did not answer the re-INVITE", l.peerName))
			return
		case res.StatusCode == 491 && attempt < 2:
			// Glare (RFC 3261 §14.1): try again after 2.1 to 4 s.
			n, _ := rand.Int(rand.Reader, big.NewInt(1900))
			select {
			case <-time.After(2100*time.Millisecond + time.Duration(n.Int64())*time.Millisecond):
				continue
			case <-c.ended:
				return
			}
		case !res.IsSuccess():
			fail(fmt.Sprintf("%s answered the re-INVITE with %d %s", l.peerName, res.StatusCode, res.Reason))
			return
		}
		l.learnFromResponse(res)
		err = c.applyAnswer(l, src, body, res.Body())
		c.ackLeg(l, res, nil)
		if err != nil {
			fail(err.Error())
			return
		}
		log.Info("dialer upgrade", zap.String("policy", after.Reason))
		return
	}
}

// otherSideLocked is the side of the leg opposite l.
func (c *call) otherSideLocked(l *leg) int {
	if l == c.in {
		return int(c.out.side)
	}
	return int(c.in.side)
}

// request sends an in-dialog request on leg l and returns its final
// response, or nil after transferTimeout or the end of the call.
func (c *call) request(l *leg, req *sip.Request) *sip.Response {
	ctx, cancel := context.WithTimeout(context.Background(), transferTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.ended:
			cancel()
		case <-ctx.Done():
		}
	}()
	tx, err := c.s.send(ctx, l, req)
	if err != nil {
		c.log.Debug("request send failed", zap.String("method", string(req.Method)), zap.String("peer", l.peerName), zap.Error(err))
		return nil
	}
	defer tx.Terminate()
	return waitFinal(ctx, tx)
}

// notify reports a transfer's progress to the dialer (RFC 3515 §2.4.4): a
// message/sipfrag with the status line of the new leg; the last one ends
// the implicit subscription.
func (c *call) notify(dialer *leg, statusLine string, final bool) {
	req := dialer.newRequest(sip.NOTIFY, nil)
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := fmt.Sprintf("active;expires=%d", referExpires)
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	setBody(req, "message/sipfrag;version=2.0", []byte(statusLine+"\r\n"))
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	tx, err := c.s.send(ctx, dialer, req)
	if err != nil {
		c.log.Debug("NOTIFY send failed", zap.Error(err))
		return
	}
	defer tx.Terminate()
	if res := waitFinal(ctx, tx); res == nil || !res.IsSuccess() {
		// The dialer may have dropped the subscription (481): the
		// transfer goes on regardless.
		code := 0
		if res != nil {
			code = res.StatusCode
		}
		c.log.Debug("NOTIFY not accepted", zap.Int("code", code))
	}
}
