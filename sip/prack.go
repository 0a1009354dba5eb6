package sip

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Reliable provisional responses (RFC 3262, "100rel"), which sipgo does not
// do. Each leg is handled on its own, as everything in a B2BUA:
//
//   - Toward the callee ccsbc is the UAC: its INVITE says Supported: 100rel;
//     a 18x that requires 100rel is acknowledged with PRACK (RAck), once
//     per RSeq, and a retransmission of it is neither re-acknowledged nor
//     relayed again (the PRACK transaction retransmits itself).
//   - Toward the caller ccsbc is the UAS: it sends a 18x reliably when the
//     caller requires 100rel, or supports it and the 18x carries SDP (early
//     media's answer must not be lost); it retransmits it (T1 doubling, up
//     to 64*T1) until the PRACK comes, sends no other reliable 18x before
//     then, and holds the 2xx until every reliable 18x is acknowledged. A
//     caller that never acknowledges gets 504 and the callee a BYE.
//
// An offer or answer inside PRACK is refused (488): ccsbc's early offer/
// answer happens in the INVITE and the 18x.

// optionTags returns the option tags of every header called name.
func optionTags(m sip.Message, name string) []string {
	var out []string
	compact := map[string]string{"Supported": "k"}[name] // sipgo keeps compact forms apart
	for _, v := range headerValues(m, name, compact) {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, strings.ToLower(t))
			}
		}
	}
	return out
}

func hasOptionTag(m sip.Message, name, tag string) bool {
	for _, t := range optionTags(m, name) {
		if t == tag {
			return true
		}
	}
	return false
}

// reliable18x is ccsbc's reliable provisional toward the caller.
type reliable18x struct {
	rseq   uint32
	cseq   uint32        // of the INVITE it answers
	acked  chan struct{} // closed by the PRACK
	failed chan struct{} // closed when 64*T1 passed without PRACK
}

// inbound100rel reports how the caller's INVITE treats 100rel.
func inbound100rel(req *sip.Request) (required, supported bool) {
	required = hasOptionTag(req, "Require", "100rel")
	return required, required || hasOptionTag(req, "Supported", "100rel")
}

// awaitPRACK waits until the caller has acknowledged ccsbc's last reliable
// 18x: nil at once if there is none, an error if the caller never does or
// ctx ends first.
func (c *call) awaitPRACK(ctx context.Context) error {
	c.mu.Lock()
	r := c.rel
	c.mu.Unlock()
	if r == nil {
		return nil
	}
	select {
	case <-r.acked:
		return nil
	case <-r.failed:
		return c.prackLostErr(r)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// respondReliably sends res to the caller as a reliable provisional and
// retransmits it until the PRACK comes (or 64*T1, or the call ends). The
// previous reliable 18x must have been acknowledged first.
func (c *call) respondReliably(ctx context.Context, tx sip.ServerTransaction, res *sip.Response) error {
	if err := c.awaitPRACK(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.inRSeq++
	r := &reliable18x{rseq: c.inRSeq, cseq: res.CSeq().SeqNo, acked: make(chan struct{}), failed: make(chan struct{})}
	c.rel = r
	c.mu.Unlock()
	res.AppendHeader(sip.NewHeader("Require", "100rel"))
	res.AppendHeader(sip.NewHeader("RSeq", strconv.FormatUint(uint64(r.rseq), 10)))
	if err := tx.Respond(res); err != nil {
		return err
	}
	go func() {
		interval := sip.T1
		retransmit := time.NewTimer(interval)
		giveUp := time.NewTimer(64 * sip.T1)
		defer retransmit.Stop()
		defer giveUp.Stop()
		for {
			select {
			case <-r.acked:
				return
			case <-c.ended:
				return
			case <-giveUp.C:
				close(r.failed)
				select {
				case c.prackLost <- c.prackLostErr(r):
				default:
				}
				return
			case <-retransmit.C:
				_ = tx.Respond(res)
				interval *= 2
				retransmit.Reset(interval)
			}
		}
	}()
	return nil
}

func (c *call) prackLostErr(r *reliable18x) error {
	return fmt.Errorf("no PRACK from %s for reliable provisional RSeq %d", c.in.peerName, r.rseq)
}

// onPrack takes the caller's PRACK for ccsbc's reliable 18x.
func (s *Server) onPrack(req *sip.Request, tx sip.ServerTransaction) {
	c, l := s.inDialogPrecheck(req, tx)
	if c == nil {
		return
	}
	if l != c.in {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist", "ccsbc sent no reliable provisional on this dialog")
		return
	}
	if len(req.Body()) > 0 {
		s.respond(req, tx, 488, "Not Acceptable Here", "ccsbc does not take an offer or answer in PRACK")
		return
	}
	var rseq, cseq uint64
	var method string
	if h := req.GetHeader("RAck"); h != nil {
		f := strings.Fields(h.Value())
		if len(f) == 3 {
			rseq, _ = strconv.ParseUint(f[0], 10, 32)
			cseq, _ = strconv.ParseUint(f[1], 10, 32)
			method = f[2]
		}
	}
	c.mu.Lock()
	r := c.rel
	match := r != nil && rseq == uint64(r.rseq) && cseq == uint64(r.cseq) && method == string(sip.INVITE)
	if match {
		select {
		case <-r.acked: // a retransmitted PRACK: answered again
		default:
			close(r.acked)
		}
	}
	c.mu.Unlock()
	if !match {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist", "RAck matches no reliable provisional response")
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}

// outboundReliable checks a provisional response from the callee: whether
// it requires a PRACK, and whether it is a retransmission of one already
// handled (then it is dropped).
func (c *call) outboundReliable(res *sip.Response) (reliable, duplicate bool, rseq uint32) {
	if !hasOptionTag(res, "Require", "100rel") {
		return false, false, 0
	}
	h := res.GetHeader("RSeq")
	if h == nil {
		return false, false, 0 // not a valid reliable provisional: relayed as an unreliable one
	}
	n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil || n == 0 {
		return false, false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outRSeq != 0 && uint32(n) <= c.outRSeq {
		return true, true, uint32(n)
	}
	c.outRSeq = uint32(n)
	return true, false, uint32(n)
}

// prack acknowledges the callee's reliable provisional res.
func (c *call) prack(res *sip.Response, rseq uint32) {
	req := c.out.newRequest(sip.PRACK, nil)
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d INVITE", rseq, res.CSeq().SeqNo)))
	switch r := c.request(c.out, req); {
	case r == nil:
		c.log.Info("PRACK unanswered", zap.String("to", c.out.peerName))
	case !r.IsSuccess():
		c.log.Info("PRACK refused", zap.String("by", c.out.peerName), zap.Int("code", r.StatusCode))
	}
}
