package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ccsbc/ccsbc/media"
)

// Offer/answer across the two legs. An offer received on one leg is
// rewritten onto the other with ccsbc's relay ports for that leg; the
// relay learns both sides' addresses when the answer comes back, so that a
// re-offer the other side rejects leaves the media as it was (RFC 3264 §8).

// handleOffer checks an offer received on leg from, allocates relay ports
// for its streams and returns the offer to send on the other leg.
func (c *call) handleOffer(from *leg, body []byte) ([]byte, error) {
	sd, err := parseSDP(body)
	if err != nil {
		return nil, err
	}
	if err := c.checkMediaPolicy(from, sd); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range sd.media {
		if m.Disabled() {
			continue
		}
		for len(c.streams) <= i {
			c.streams = append(c.streams, nil)
		}
		if c.streams[i] == nil {
			st, err := c.s.media.NewStream(c.in.callID, c.onInactive)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMediaPorts, err)
			}
			c.streams[i] = st
		}
	}
	c.offer, c.offerFrom = sd, from
	to := c.other(from)
	return sd.rewrite(&to.origin, c.s.cfg.Media.Advertise, c.portsLocked(to.side, len(sd.media)))
}

// handleAnswer applies an answer received on leg from to the pending offer
// and returns the answer to send on the offerer's leg.
func (c *call) handleAnswer(from *leg, body []byte) ([]byte, error) {
	sd, err := parseSDP(body)
	if err != nil {
		return nil, err
	}
	if err := c.checkMediaPolicy(from, sd); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	offer, offerer := c.offer, c.offerFrom
	if offer == nil || offerer == from {
		return nil, fmt.Errorf("%w: answer without a pending offer", ErrSDPMalformed)
	}
	if len(sd.media) != len(offer.media) {
		return nil, fmt.Errorf("%w: answer has %d m= lines, the offer had %d", ErrSDPMalformed, len(sd.media), len(offer.media))
	}
	for i, st := range c.streams {
		if st == nil || i >= len(sd.media) {
			continue
		}
		om, am := offer.media[i], sd.media[i]
		st.SetRemote(offerer.side, mediaDest(om.RTP), mediaDest(om.RTCP), om.Mux, offerer.signalIP)
		st.SetRemote(from.side, mediaDest(am.RTP), mediaDest(am.RTCP), am.Mux, from.signalIP)
		st.SetHold(om.Hold || am.Hold || am.Disabled())
	}
	return sd.rewrite(&offerer.origin, c.s.cfg.Media.Advertise, c.portsLocked(offerer.side, len(sd.media)))
}

// mediaDest turns an SDP address into a relay destination: c=0.0.0.0 and
// port 0 mean "send nothing".
func mediaDest(ap netip.AddrPort) netip.AddrPort {
	if ap.Port() == 0 || !ap.Addr().IsValid() || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}
	}
	return ap
}

func (c *call) pendingOffer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offer != nil
}

// clearOffer closes the offer/answer exchange (final answer sent, or the
// offer rejected).
func (c *call) clearOffer() {
	c.mu.Lock()
	c.offer, c.offerFrom = nil, nil
	c.mu.Unlock()
}

func (c *call) portsLocked(side media.Side, n int) []localPorts {
	ports := make([]localPorts, n)
	for i := 0; i < n && i < len(c.streams); i++ {
		if st := c.streams[i]; st != nil {
			ports[i].RTP, ports[i].RTCP = st.Local(side)
		}
	}
	return ports
}

func (c *call) onInactive() {
	c.log.Info("media inactivity")
	c.end("media inactivity", true, true)
}

// checkMediaPolicy enforces the media rules that hold on every leg: SDES
// keys only over TLS, and (until per-leg SRTP lands) plain RTP profiles.
func (c *call) checkMediaPolicy(from *leg, sd *sessionDesc) error {
	for i, m := range sd.media {
		if m.Disabled() {
			continue
		}
		if m.Crypto && from.transport != "TLS" {
			return fmt.Errorf("%w (m= line %d from %s over %s)", ErrSDESInsecure, i+1, from.peerName, from.transport)
		}
		if strings.Contains(m.Proto, "SAVP") {
			return fmt.Errorf("%w: %s offered %s on m= line %d; this leg carries RTP (%s)",
				ErrSRTPUnsupported, from.peerName, m.Proto, i+1, c.dec[from.side].Reason)
		}
	}
	return nil
}

// sdpErrorStatus maps an offer/answer failure to a SIP status.
func sdpErrorStatus(err error) (int, string) {
	if errors.Is(err, ErrMediaPorts) {
		return 503, "Service Unavailable"
	}
	return 488, "Not Acceptable Here"
}
