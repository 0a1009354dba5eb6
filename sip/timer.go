package sip

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/media"
)

// Session timers (RFC 4028). sipgo has none: they are built here on its
// transactions, one timer per leg, because ccsbc is a B2BUA and each leg is
// a dialog of its own with its own interval and refresher.
//
// The words uac and uas in a refresher parameter name the roles in the
// transaction that carried it (RFC 4028 §7.1): in a re-INVITE that the
// peer sends, refresher=uac means the peer. sessionTerms keeps the result
// as "who refreshes this leg", which does not depend on who sent what.

// timerHeaders are the session timer headers of one request or response.
type timerHeaders struct {
	supported   bool   // Supported: timer (or k: timer)
	required    bool   // Require: timer
	expires     int    // Session-Expires in seconds; 0 when absent
	refresher   string // "uac", "uas" or ""
	minSE       int    // Min-SE in seconds; 0 when absent
	hasAllow    bool   // an Allow header is present (a 2xx to UPDATE often has none)
	allowUpdate bool   // Allow lists UPDATE
}

// headerValues returns the values of a header under its full and compact
// names. sipgo only maps the compact forms of the headers it parses itself:
// "k:" (Supported) and "x:" (Session-Expires) stay under their short names.
func headerValues(m sip.Message, name, compact string) []string {
	var out []string
	for _, n := range []string{name, compact} {
		if n == "" {
			continue
		}
		for _, h := range m.GetHeaders(n) {
			out = append(out, h.Value())
		}
	}
	return out
}

// hasToken reports whether a comma-separated header value list holds tok.
func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), tok) {
				return true
			}
		}
	}
	return false
}

// parseTimerHeaders reads the session timer headers of m. A malformed
// Session-Expires or Min-SE is an error (answered 400 by the caller).
func parseTimerHeaders(m sip.Message) (timerHeaders, error) {
	h := timerHeaders{
		supported:   hasToken(headerValues(m, "Supported", "k"), "timer"),
		required:    hasToken(headerValues(m, "Require", ""), "timer"),
		allowUpdate: hasToken(headerValues(m, "Allow", ""), "UPDATE"),
		hasAllow:    len(m.GetHeaders("Allow")) > 0,
	}
	if v := headerValues(m, "Session-Expires", "x"); len(v) > 0 {
		// Session-Expires = delta-seconds *(SEMI se-params)
		parts := strings.Split(v[0], ";")
		n, err := deltaSeconds(parts[0])
		if err != nil || n == 0 {
			return h, fmt.Errorf("Session-Expires %q is not a number of seconds", v[0])
		}
		h.expires = n
		for _, p := range parts[1:] {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "refresher") {
				switch r := strings.ToLower(strings.TrimSpace(val)); r {
				case "uac", "uas":
					h.refresher = r
				default:
					return h, fmt.Errorf("Session-Expires refresher %q is neither uac nor uas", val)
				}
			}
		}
	}
	if v := headerValues(m, "Min-SE", ""); len(v) > 0 {
		n, err := deltaSeconds(strings.Split(v[0], ";")[0])
		if err != nil {
			return h, fmt.Errorf("Min-SE %q is not a number of seconds", v[0])
		}
		h.minSE = n
	}
	return h, nil
}

// deltaSeconds parses RFC 3261 delta-seconds (1*DIGIT), bounded to 32 bits.
func deltaSeconds(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return int(n), err
}

// sessionTerms is what one leg's session timer runs with.
type sessionTerms struct {
	interval  time.Duration // the session interval; 0: no timer on this leg
	weRefresh bool          // ccsbc sends the refreshes; else the peer does
}

// timerPolicy is the configuration the negotiation works from.
type timerPolicy struct {
	expires int // Session-Expires ccsbc asks for and the most it accepts, seconds
	minSE   int // the least ccsbc accepts, seconds
}

func newTimerPolicy(c config.SessionTimers) timerPolicy {
	return timerPolicy{expires: int(c.SessionExpires / time.Second), minSE: int(c.MinSE / time.Second)}
}

// answerRequest decides the session timer of a leg when ccsbc answers a
// request (INVITE, re-INVITE, UPDATE) carrying h, following RFC 4028 §9:
//
//   - Session-Expires below ccsbc's Min-SE from a peer that supports
//     timers: reject with 422 and Min-SE (reject is true). From a peer
//     that does not (a proxy added the header), the interval is raised to
//     Min-SE instead, since the peer would not understand a 422.
//   - A longer interval than ccsbc's session_expires is reduced to it, but
//     never below the request's own Min-SE.
//   - The refresher is the one the request named; with none, the peer
//     when it supports timers, else ccsbc (a peer without timer support
//     never refreshes, so ccsbc does, and a peer that only ignores the
//     headers still gets a re-INVITE or UPDATE it understands).
//   - No Session-Expires at all: ccsbc asks for its own interval in the
//     answer and refreshes that leg itself if the peer does not support
//     timers.
//
// se is the Session-Expires value for the 2xx and require reports whether
// it needs Require: timer (refresher=uac).
func (p timerPolicy) answerRequest(h timerHeaders) (t sessionTerms, se string, require, reject bool) {
	iv := p.expires
	if h.expires > 0 {
		if h.expires < p.minSE && h.supported {
			return sessionTerms{}, "", false, true
		}
		iv = max(min(h.expires, p.expires), p.minSE)
	}
	iv = max(iv, h.minSE)
	refresher := h.refresher
	switch {
	case !h.supported:
		refresher = "uas"
	case refresher == "":
		refresher = "uac"
	}
	t = sessionTerms{interval: time.Duration(iv) * time.Second, weRefresh: refresher == "uas"}
	return t, strconv.Itoa(iv) + ";refresher=" + refresher, refresher == "uac", false
}

// requestHeaders are the session timer headers ccsbc puts in a request
// (INVITE, re-INVITE, UPDATE) it sends on a leg whose current terms are
// cur (zero on a new leg): Supported: timer, Session-Expires and Min-SE,
// and the interval asked for. On an established leg the refresher is
// stated so that it stays where it is (RFC 4028 §7.4).
func (p timerPolicy) requestHeaders(cur sessionTerms) ([]sip.Header, time.Duration) {
	iv := p.expires
	se := strconv.Itoa(iv)
	if cur.interval > 0 {
		iv = int(cur.interval / time.Second)
		se = strconv.Itoa(iv) + ";refresher=uas"
		if cur.weRefresh {
			se = strconv.Itoa(iv) + ";refresher=uac"
		}
	}
	return []sip.Header{
		sip.NewHeader("Supported", "timer"),
		sip.NewHeader("Session-Expires", se),
		sip.NewHeader("Min-SE", strconv.Itoa(min(p.minSE, iv))),
	}, time.Duration(iv) * time.Second
}

// fromResponse decides the terms of a leg from the 2xx to a request
// ccsbc sent with Session-Expires asked (RFC 4028 §7.2): the interval and
// refresher of the response's Session-Expires (refresher=uac is ccsbc).
// A 2xx without Session-Expires comes from a peer that does not do
// timers; ccsbc keeps the interval it asked for and refreshes the leg
// itself, which is also how it finds out that the peer is gone.
func (p timerPolicy) fromResponse(h timerHeaders, asked time.Duration) sessionTerms {
	if h.expires == 0 {
		return sessionTerms{interval: asked, weRefresh: true}
	}
	return sessionTerms{interval: time.Duration(h.expires) * time.Second, weRefresh: h.refresher != "uas"}
}

// retryAfter422 is the Session-Expires to ask for again after a 422 whose
// Min-SE is minSE (RFC 4028 §7.3), or 0 when a retry cannot help.
func (p timerPolicy) retryAfter422(asked, minSE int) int {
	if minSE <= asked || minSE > int(maxTimerInterval/time.Second) {
		return 0
	}
	return minSE
}

// maxTimerInterval bounds what a peer's 422 can make ccsbc ask for.
const maxTimerInterval = 24 * time.Hour

// refreshDelay is when the refresher refreshes: at half the interval
// (RFC 4028 §7.2, §9 recommend it).
func refreshDelay(interval time.Duration) time.Duration { return interval / 2 }

// expiryDelay is when the side that is not the refresher gives up on a
// session that was not refreshed: the interval minus min(32 s, a third
// of it) (RFC 4028 §10), which leaves room for a refresh in flight.
func expiryDelay(interval time.Duration) time.Duration {
	return interval - min(32*time.Second, interval/3)
}

// legTimer runs the session timer of one leg: it calls refresh when ccsbc
// is the refresher and the refresh is due, expire when the peer is the
// refresher and let the session run out. Reset restarts it after each
// refresh, Stop ends it for good (when the call ends). The callbacks run
// on a goroutine of time.AfterFunc, without the lock held.
type legTimer struct {
	refresh func()
	expire  func()

	mu       sync.Mutex // guards the fields below
	terms    sessionTerms
	deadline time.Time // the session expires then without a refresh
	t        *time.Timer
	stopped  bool
}

func newLegTimer(refresh, expire func()) *legTimer {
	return &legTimer{refresh: refresh, expire: expire}
}

// Reset starts the timer over with terms, as after a successful refresh.
// Zero terms stop it (no timer on this leg).
func (lt *legTimer) Reset(t sessionTerms) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.stopped {
		return
	}
	if lt.t != nil {
		lt.t.Stop()
		lt.t = nil
	}
	lt.terms = t
	if t.interval <= 0 {
		return
	}
	lt.deadline = time.Now().Add(t.interval)
	delay, fire := expiryDelay(t.interval), lt.expire
	if t.weRefresh {
		delay, fire = refreshDelay(t.interval), lt.refresh
	}
	lt.t = time.AfterFunc(delay, fire)
}

// Retry schedules another refresh attempt: soon (in retrySoon) when the
// refresh could not start because another offer/answer was under way,
// else, after a refresh that failed without ending the dialog (491,
// 500...), halfway to the deadline and at least a second later. It reports
// false when the session expires before the retry: the caller ends the
// call.
func (lt *legTimer) Retry(soon bool) bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.stopped {
		return true
	}
	left := time.Until(lt.deadline)
	after := max(left/2, time.Second)
	if soon {
		after = retrySoon
	}
	if after >= left {
		return false
	}
	lt.t = time.AfterFunc(after, lt.refresh)
	return true
}

// retrySoon is how long a refresh waits for an offer/answer exchange in
// progress on the call (usually the other leg's refresh) to finish.
const retrySoon = 200 * time.Millisecond

// Terms returns the terms the timer runs with.
func (lt *legTimer) Terms() sessionTerms {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.terms
}

// Stop stops the timer for good: nothing is scheduled after it returns,
// and a callback already running sees isStopped.
func (lt *legTimer) Stop() {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.stopped = true
	if lt.t != nil {
		lt.t.Stop()
	}
}

// stopped reports whether Stop was called.
func (lt *legTimer) isStopped() bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.stopped
}

// The session timers of a call: one legTimer per leg, nil when timers are
// disabled in the configuration the call started with.

// startTimers creates the legs' timers (stopped until armed with Reset).
func (c *call) startTimers(cfg config.SessionTimers) {
	if !cfg.Enabled {
		return
	}
	c.tpol = newTimerPolicy(cfg)
	// The callbacks look up the leg on their side when they run: a
	// transfer may have replaced it (transfer.go).
	for _, side := range []media.Side{c.in.side, c.out.side} {
		c.lt[side] = newLegTimer(func() { c.refreshLeg(c.legOn(side)) }, func() { c.expireLeg(c.legOn(side)) })
	}
}

// legOn is the call's current leg on side.
func (c *call) legOn(side media.Side) *leg {
	in, out := c.legs()
	if in.side == side {
		return in
	}
	return out
}

func (c *call) timersOn() bool { return c.lt[0] != nil }

// stopTimers stops both legs' timers; end calls it before anything else.
func (c *call) stopTimers() {
	for _, lt := range c.lt {
		if lt != nil {
			lt.Stop()
		}
	}
}

// resetTimer restarts leg l's timer after a refresh (any successful
// INVITE, re-INVITE or UPDATE on that leg, RFC 4028 §10).
func (c *call) resetTimer(l *leg, t sessionTerms) {
	if lt := c.lt[l.side]; lt != nil {
		lt.Reset(t)
		c.log.Debug("session timer", zap.String("peer", l.peerName), zap.Duration("interval", t.interval), zap.Bool("ccsbc_refreshes", t.weRefresh))
	}
}

// addRequestTimer adds the session timer headers to a request ccsbc sends
// on leg l and returns the interval asked for (0: timers off).
func (c *call) addRequestTimer(l *leg, req *sip.Request) time.Duration {
	lt := c.lt[l.side]
	if lt == nil {
		return 0
	}
	hs, asked := c.tpol.requestHeaders(lt.Terms())
	for _, h := range hs {
		req.AppendHeader(h)
	}
	return asked
}

// timerFromResponse restarts leg l's timer from the 2xx to a request
// ccsbc sent there asking for interval asked.
func (c *call) timerFromResponse(l *leg, res *sip.Response, asked time.Duration) {
	if asked == 0 {
		return
	}
	h, err := parseTimerHeaders(res)
	if err != nil {
		c.log.Info("session timer headers ignored", zap.String("peer", l.peerName), zap.Error(err))
		h = timerHeaders{}
	}
	if h.hasAllow {
		l.setAllowUpdate(h.allowUpdate)
	}
	c.resetTimer(l, c.tpol.fromResponse(h, asked))
}

// uasTimer is the outcome of answerRequest for a request received on a
// leg: the terms to arm once it succeeds and the headers of the 2xx.
type uasTimer struct {
	terms   sessionTerms
	se      string
	require bool
}

// answerTimer applies RFC 4028 §9 to a request received on leg l. It
// answers the request itself (400 for malformed headers, 422 for an
// interval below Min-SE) and returns ok false when it did.
func (c *call) answerTimer(l *leg, req *sip.Request, tx sip.ServerTransaction) (uasTimer, bool) {
	if !c.timersOn() {
		return uasTimer{}, true
	}
	return answerTimerWith(c.s, c.tpol, req, tx, func(h timerHeaders) {
		if h.hasAllow {
			l.setAllowUpdate(h.allowUpdate)
		}
	})
}

func answerTimerWith(s *Server, p timerPolicy, req *sip.Request, tx sip.ServerTransaction, seen func(timerHeaders)) (uasTimer, bool) {
	h, err := parseTimerHeaders(req)
	if err != nil {
		s.respond(req, tx, 400, "Bad Request", err.Error())
		return uasTimer{}, false
	}
	t, se, require, reject := p.answerRequest(h)
	if reject {
		res := sip.NewResponseFromRequest(req, 422, "Session Interval Too Small", nil)
		res.AppendHeader(sip.NewHeader("Min-SE", strconv.Itoa(p.minSE)))
		res.AppendHeader(warning(fmt.Sprintf("Session-Expires %d is below ccsbc's Min-SE %d", h.expires, p.minSE)))
		_ = tx.Respond(res)
		return uasTimer{}, false
	}
	if seen != nil {
		seen(h)
	}
	return uasTimer{terms: t, se: se, require: require}, true
}

// addTo puts the session timer headers into the 2xx ccsbc answers with.
func (u uasTimer) addTo(res *sip.Response) {
	if u.se == "" {
		return
	}
	res.AppendHeader(sip.NewHeader("Supported", "timer"))
	res.AppendHeader(sip.NewHeader("Session-Expires", u.se))
	if u.require {
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
}

// refreshLeg sends a session refresh on leg l, where ccsbc is the
// refresher: UPDATE without a body when the peer allows UPDATE (it
// touches no media), else a re-INVITE with the SDP ccsbc last sent on that
// leg, unchanged (same o= version: RFC 3264 §8 says nothing changes). A
// 408 or 481, or no answer at all, ends the call (RFC 4028 §10); another
// failure is retried while the session lasts.
func (c *call) refreshLeg(l *leg) {
	lt := c.lt[l.side]
	if lt == nil || lt.isStopped() {
		return
	}
	c.mu.Lock()
	body := c.sdpOut[l.side]
	c.mu.Unlock()
	method := sip.UPDATE
	if !l.allowsUpdate() && body != nil {
		method = sip.INVITE
		if !c.tryBusy() {
			// An offer/answer is under way; it may refresh this leg
			// itself. Try again shortly.
			c.retryRefresh(l, true, "an offer/answer exchange was in progress")
			return
		}
		defer c.notBusy()
	} else {
		body = nil
	}
	req := l.newRequest(method, body)
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	asked := c.addRequestTimer(l, req)

	ctx, cancel := context.WithTimeout(c.ctx, inDialogTimeout)
	defer cancel()
	otx, err := c.s.send(ctx, l, req)
	if err != nil {
		c.refreshFailed(l, l.sendError(err))
		return
	}
	defer otx.Terminate()
	res := waitFinal(ctx, otx)
	switch {
	case c.ctx.Err() != nil:
		return // the call ended meanwhile
	case res == nil:
		c.refreshFailed(l, fmt.Sprintf("no answer to %s", method))
	case res.IsSuccess():
		l.learnFromResponse(res)
		if method == sip.INVITE {
			c.ackLeg(l, res, nil)
			c.mu.Lock()
			changed := len(res.Body()) > 0 && !bytes.Equal(res.Body(), c.sdpIn[l.side])
			c.mu.Unlock()
			if changed {
				// ccsbc offered the session unchanged; an answer that
				// moves the media is not applied (the relay keeps the
				// addresses and keys it has): say so, since audio may
				// suffer until the peer sends a re-INVITE of its own.
				c.log.Info("session refresh answer changed the SDP; media left as it was", zap.String("peer", l.peerName))
			}
		}
		c.timerFromResponse(l, res, asked)
		c.log.Debug("session refreshed", zap.String("peer", l.peerName), zap.String("method", string(method)))
	case res.StatusCode == 408 || res.StatusCode == 481:
		c.refreshFailed(l, fmt.Sprintf("%s answered %d %s", method, res.StatusCode, res.Reason))
	case method == sip.UPDATE && (res.StatusCode == 405 || res.StatusCode == 501):
		l.setAllowUpdate(false) // the next attempt is a re-INVITE
		c.retryRefresh(l, true, fmt.Sprintf("UPDATE answered %d", res.StatusCode))
	default:
		c.retryRefresh(l, false, fmt.Sprintf("%s answered %d %s", method, res.StatusCode, res.Reason))
	}
}

func (c *call) retryRefresh(l *leg, soon bool, why string) {
	if soon {
		c.log.Debug("session refresh deferred", zap.String("peer", l.peerName), zap.String("why", why))
	} else {
		c.log.Info("session refresh failed; retrying", zap.String("peer", l.peerName), zap.String("why", why))
	}
	if !c.lt[l.side].Retry(soon) {
		c.refreshFailed(l, why+"; the session expired")
	}
}

func (c *call) refreshFailed(l *leg, why string) {
	reason := fmt.Sprintf("session refresh to %s failed: %s", l.peerName, why)
	c.log.Info("session refresh failed", zap.String("peer", l.peerName), zap.String("why", why))
	c.end(reason, true, true)
}

// expireLeg ends the call when leg l's peer, the refresher, let its
// session expire.
func (c *call) expireLeg(l *leg) {
	lt := c.lt[l.side]
	if lt == nil || lt.isStopped() {
		return
	}
	iv := lt.Terms().interval
	c.log.Info("session expired", zap.String("peer", l.peerName), zap.Duration("interval", iv))
	c.end(fmt.Sprintf("session timer expired: no refresh from %s within %v", l.peerName, iv), true, true)
}
