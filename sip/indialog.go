package sip

import (
	"bytes"
	"context"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// inDialogTimeout bounds a request relayed inside a dialog (64*T1, Timer
// F): a peer that never answers a re-INVITE does not hold the call busy.
const inDialogTimeout = 32 * time.Second

// tryBusy marks an offer/answer transaction in progress; false means one
// already is (glare, RFC 3261 §14.1: answer 491).
func (c *call) tryBusy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy {
		return false
	}
	c.busy = true
	return true
}

func (c *call) notBusy() {
	c.mu.Lock()
	c.busy = false
	c.mu.Unlock()
}

// inDialogPrecheck finds the call of an in-dialog request and applies the
// CSeq rule; it answers the request itself when it returns nil.
func (s *Server) inDialogPrecheck(req *sip.Request, tx sip.ServerTransaction) (*call, *leg) {
	if code, phrase, reason := validateRequest(req); code != 0 {
		s.nMalformed.Add(1)
		s.respond(req, tx, code, phrase, reason)
		return nil, nil
	}
	c, l := s.findCall(req)
	if c == nil || !c.current(l) {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist", "")
		return nil, nil
	}
	if !l.acceptRemoteCSeq(req.CSeq().SeqNo) {
		s.respond(req, tx, 500, "Server Internal Error", "CSeq out of order")
		return nil, nil
	}
	return c, l
}

// onReInvite relays a re-INVITE (hold, resume, codec change, target
// refresh) to the other leg, with the SDP anchored on ccsbc.
func (s *Server) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	c, l := s.inDialogPrecheck(req, tx)
	if c == nil {
		return
	}
	if !c.tryBusy() {
		s.respond(req, tx, 491, "Request Pending", "")
		return
	}
	defer c.notBusy()
	ut, accepted := c.answerTimer(l, req, tx)
	if !accepted {
		return
	}
	l.learnTarget(req)
	_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))
	o := c.other(l)
	if c.answerRefreshLocally(l, req, tx, ut) {
		return
	}

	var body []byte
	hadOffer := len(req.Body()) > 0
	if hadOffer {
		if !isSDP(req) {
			s.respond(req, tx, 415, "Unsupported Media Type", "only application/sdp bodies are accepted")
			return
		}
		b, err := c.handleOffer(l, req.Body())
		if err != nil {
			code, phrase := sdpErrorStatus(err)
			c.log.Info("re-INVITE refused", zap.String("from", l.peerName), zap.Error(err))
			s.respond(req, tx, code, phrase, err.Error())
			return
		}
		body = b
	}
	defer c.clearOffer()

	ctx, cancel := context.WithTimeout(context.Background(), inDialogTimeout)
	defer cancel()
	r2 := o.newRequest(sip.INVITE, body)
	r2.AppendHeader(sip.NewHeader("Allow", allowMethods))
	asked := c.addRequestTimer(o, r2)
	otx, err := s.send(ctx, o, r2)
	if err != nil {
		s.respond(req, tx, 503, "Service Unavailable", o.sendError(err))
		return
	}
	defer otx.Terminate()
	res := waitFinal(ctx, otx)
	if res == nil {
		s.respond(req, tx, 408, "Request Timeout", "peer "+o.peerName+" did not answer the re-INVITE")
		return
	}
	if !res.IsSuccess() {
		// sipgo's transaction ACKs the non-2xx; the old session stays.
		r := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
		if ra := res.GetHeader("Retry-After"); ra != nil {
			r.AppendHeader(sip.NewHeader("Retry-After", ra.Value()))
		}
		_ = tx.Respond(r)
		return
	}
	o.learnFromResponse(res)

	var ans []byte
	answerInAck := false
	if len(res.Body()) > 0 {
		if hadOffer {
			ans, err = c.handleAnswer(o, res.Body())
		} else {
			// Offerless re-INVITE: the 2xx carries the offer, the ACK
			// the answer.
			ans, err = c.handleOffer(o, res.Body())
			answerInAck = true
		}
		if err != nil {
			c.log.Info("re-INVITE answer refused", zap.String("from", o.peerName), zap.Error(err))
			c.ackLeg(o, res, nil)
			code, phrase := sdpErrorStatus(err)
			s.respond(req, tx, code, phrase, err.Error())
			c.end("re-INVITE answer refused: "+err.Error(), true, true)
			return
		}
	}
	if !answerInAck {
		c.ackLeg(o, res, nil)
	}
	c.timerFromResponse(o, res, asked)
	ack := c.sendInvite2xx(l, tx, inDialog2xx(req, res.StatusCode, res.Reason, l, ut, ans))
	if answerInAck {
		var ackBody []byte
		if ack != nil && len(ack.Body()) > 0 {
			if ackBody, err = c.handleAnswer(l, ack.Body()); err != nil {
				c.log.Info("re-INVITE ACK SDP refused", zap.Error(err))
				ackBody = nil
			}
		}
		c.ackLeg(o, res, ackBody)
	}
	if ack != nil {
		c.resetTimer(l, ut.terms)
	}
	c.log.Info("re-INVITE", zap.String("from", l.peerName), zap.Int("code", res.StatusCode))
}

// inDialog2xx is the 2xx ccsbc sends on leg l to a re-INVITE or UPDATE,
// with its Contact (a target refresh), Allow, the session timer headers
// and an SDP body when there is one.
func inDialog2xx(req *sip.Request, code int, reason string, l *leg, ut uasTimer, sdp []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(l.contact.Clone())
	res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	ut.addTo(res)
	if sdp != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	res.SetBody(sdp)
	return res
}

// answerRefreshLocally answers a session refresh from leg l's peer without
// involving the other leg, and reports whether it did. A refresh is a
// re-INVITE whose SDP is byte for byte the one the peer sent last, when
// ccsbc's last SDP on that leg was an answer (it is answered again, same
// o= version: RFC 3264 §8, nothing changed), or an UPDATE without a body
// that carries Session-Expires. Each leg is a session of its own with its
// own timer: relaying a refresh would make the other peer refresh on this
// peer's schedule, double the signaling, and turn a peer's routine refresh
// into an offer the other side could refuse. Anything else (a new SDP, an
// offerless re-INVITE, as Unified CM sends to renegotiate after a
// transfer) is still relayed. Only with session timers on: off, ccsbc
// relays every re-INVITE as before.
func (c *call) answerRefreshLocally(l *leg, req *sip.Request, tx sip.ServerTransaction, ut uasTimer) bool {
	if !c.timersOn() {
		return false
	}
	var body []byte
	switch req.Method {
	case sip.INVITE:
		c.mu.Lock()
		same := len(req.Body()) > 0 && c.sdpOutAnswer[l.side] && bytes.Equal(req.Body(), c.sdpIn[l.side])
		body = c.sdpOut[l.side]
		c.mu.Unlock()
		if !same {
			return false
		}
	case sip.UPDATE:
		if len(req.Body()) > 0 || req.GetHeader("Session-Expires") == nil && req.GetHeader("x") == nil {
			return false
		}
	default:
		return false
	}
	res := inDialog2xx(req, 200, "OK", l, ut, body)
	if req.Method == sip.INVITE {
		if c.sendInvite2xx(l, tx, res) == nil {
			return true // no ACK: the timer is not reset, it will expire
		}
	} else if err := tx.Respond(res); err != nil {
		return true
	}
	c.resetTimer(l, ut.terms)
	c.log.Debug("session refresh answered", zap.String("from", l.peerName), zap.String("method", string(req.Method)))
	return true
}

// onInDialog relays UPDATE and INFO inside a dialog. An UPDATE with SDP is
// an offer (RFC 3311) and is anchored like a re-INVITE's; an INFO body
// (DTMF relay, application data) passes through untouched.
func (s *Server) onInDialog(req *sip.Request, tx sip.ServerTransaction) {
	c, l := s.inDialogPrecheck(req, tx)
	if c == nil {
		return
	}
	var ut uasTimer
	if req.Method == sip.UPDATE {
		var ok bool
		if ut, ok = c.answerTimer(l, req, tx); !ok {
			return
		}
		if c.answerRefreshLocally(l, req, tx, ut) {
			return
		}
	}
	o := c.other(l)
	body := req.Body()
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	offer := req.Method == sip.UPDATE && len(body) > 0
	if offer {
		if !c.tryBusy() {
			s.respond(req, tx, 491, "Request Pending", "")
			return
		}
		defer c.notBusy()
		defer c.clearOffer()
		b, err := c.handleOffer(l, body)
		if err != nil {
			code, phrase := sdpErrorStatus(err)
			s.respond(req, tx, code, phrase, err.Error())
			return
		}
		body = b
	}
	if req.Method == sip.UPDATE {
		l.learnTarget(req)
	}
	r2 := o.newRequest(req.Method, nil)
	setBody(r2, ct, body)
	for _, name := range []string{"Info-Package", "Content-Disposition", "Event"} {
		if h := req.GetHeader(name); h != nil {
			r2.AppendHeader(sip.NewHeader(h.Name(), h.Value()))
		}
	}
	var asked time.Duration
	if req.Method == sip.UPDATE {
		asked = c.addRequestTimer(o, r2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), inDialogTimeout)
	defer cancel()
	otx, err := s.send(ctx, o, r2)
	if err != nil {
		s.respond(req, tx, 503, "Service Unavailable", o.sendError(err))
		return
	}
	defer otx.Terminate()
	res := waitFinal(ctx, otx)
	if res == nil {
		s.respond(req, tx, 408, "Request Timeout", "peer "+o.peerName+" did not answer "+string(req.Method))
		return
	}
	var rbody []byte
	rct := ""
	if h := res.ContentType(); h != nil {
		rct = h.Value()
	}
	if res.IsSuccess() && offer && len(res.Body()) > 0 {
		if rbody, err = c.handleAnswer(o, res.Body()); err != nil {
			code, phrase := sdpErrorStatus(err)
			s.respond(req, tx, code, phrase, err.Error())
			return
		}
	} else if !offer {
		rbody = res.Body()
	}
	r := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	if res.IsSuccess() && req.Method == sip.UPDATE {
		r.AppendHeader(l.contact.Clone())
		ut.addTo(r)
		c.timerFromResponse(o, res, asked)
		defer c.resetTimer(l, ut.terms)
	}
	if len(rbody) > 0 && rct != "" {
		r.AppendHeader(sip.NewHeader("Content-Type", rct))
	}
	r.SetBody(rbody)
	_ = tx.Respond(r)
}

// waitFinal returns the final response of a client transaction, or nil.
func waitFinal(ctx context.Context, tx sip.ClientTransaction) *sip.Response {
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res
		case <-tx.Done():
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
