package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap"

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
	to := c.other(from)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.acceptOfferSecurityLocked(from, sd); err != nil {
		return nil, err
	}
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
			// No inactivity timeout before the call is answered: a phone
			// may ring, without early media, as long as it likes.
			st.SetHold(c.answered.IsZero())
			c.streams[i] = st
		}
	}
	ports := c.portsLocked(to.side, len(sd.media))
	if err := c.offerSecurityLocked(to, sd, ports); err != nil {
		return nil, err
	}
	out, err := sd.rewrite(&to.origin, c.s.cfg.Media.Advertise, ports)
	if err != nil {
		return nil, err
	}
	c.offer, c.offerFrom = sd, from
	c.offerRaw, c.offerOut = body, out
	return out, nil
}

// handleAnswer applies an answer received on leg from to the pending offer
// and returns the answer to send on the offerer's leg.
func (c *call) handleAnswer(from *leg, body []byte) ([]byte, error) {
	sd, err := parseSDP(body)
	if err != nil {
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
	if err := c.acceptAnswerSecurityLocked(from, sd); err != nil {
		return nil, err
	}
	ports := c.portsLocked(offerer.side, len(sd.media))
	if err := c.answerSecurityLocked(offerer, sd, ports); err != nil {
		return nil, err
	}
	c.applyStreamsLocked(offer, sd, legMedia{offerer, offer}, legMedia{from, sd})
	c.last[offerer.side], c.last[from.side] = offer, sd
	out, err := sd.rewrite(&offerer.origin, c.s.cfg.Media.Advertise, ports)
	if err != nil {
		return nil, err
	}
	// The exchange is complete on both legs: remember what each side
	// holds, for session refreshes.
	c.sdpIn[offerer.side], c.sdpOut[offerer.side], c.sdpOutAnswer[offerer.side] = c.offerRaw, out, true
	c.sdpIn[from.side], c.sdpOut[from.side], c.sdpOutAnswer[from.side] = body, c.offerOut, false
	return out, nil
}

// legMedia is a leg and the description its peer gave in an exchange.
type legMedia struct {
	l  *leg
	sd *sessionDesc
}

// applyStreamsLocked gives the streams what a completed offer/answer
// settled: the legs' SRTP keys, the media destination of each leg in
// remotes (from its peer's description), the hold state (which pauses the
// inactivity timeout, as does a call not yet answered) and the DTLS-SRTP
// handshakes that can now start.
func (c *call) applyStreamsLocked(offer, answer *sessionDesc, remotes ...legMedia) {
	for i, st := range c.streams {
		if st == nil || i >= len(answer.media) {
			continue
		}
		om, am := offer.media[i], answer.media[i]
		c.applySRTPLocked(i, st)
		for _, r := range remotes {
			m := r.sd.media[i]
			st.SetRemote(r.l.side, mediaDest(m.RTP), mediaDest(m.RTCP), m.Mux, r.l.signalIP)
		}
		for len(c.held) <= i {
			c.held = append(c.held, false)
		}
		c.held[i] = om.Hold || am.Hold || am.Disabled()
		st.SetHold(c.held[i] || c.answered.IsZero())
		if !am.Disabled() {
			for _, r := range remotes {
				c.startDTLSLocked(r.l, i, st)
			}
		}
	}
}

// mediaDest turns an SDP address into a relay destination: c=0.0.0.0 and
// port 0 mean "send nothing".
func mediaDest(ap netip.AddrPort) netip.AddrPort {
	if ap.Port() == 0 || !ap.Addr().IsValid() || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}
	}
	return ap
}

// markAnswered records the answer of the initial INVITE and starts the
// streams' inactivity timeout (held streams excepted).
func (c *call) markAnswered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered = time.Now()
	for i, st := range c.streams {
		if st != nil {
			st.SetHold(i < len(c.held) && c.held[i])
		}
	}
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
	c.offerRaw, c.offerOut = nil, nil
	c.mu.Unlock()
}

func (c *call) portsLocked(side media.Side, n int) []localPorts {
	ports := make([]localPorts, n)
	for i := 0; i < n && i < len(c.streams); i++ {
		if st := c.streams[i]; st != nil {
			ports[i].RTP, ports[i].RTCP = st.Local(side)
			ports[i].Advertise = c.s.advertised(ports[i].RTP.Addr())
		}
	}
	return ports
}

func (c *call) onInactive() {
	c.log.Info("media inactivity")
	c.end("media inactivity", true, true)
}

// legSRTP is the SDES state of one m= line on one leg.
type legSRTP struct {
	// remote and local are the keys in use: the peer's (to decrypt what it
	// sends) and ccsbc's (to encrypt what it receives). Zero suites: RTP.
	remote, local media.SRTPKeys
	applied       bool // remote/local are what the relay runs with
	// pending exchange
	peerTag     int              // the tag of the a=crypto chosen from the peer's offer
	peerKeys    media.SRTPKeys   // the keys of that line
	peerOffered bool             // the peer's offer carried SRTP that was accepted
	offered     []media.SRTPKeys // ccsbc's keys in its offer to the peer, one per suite
	dtls        legDTLS          // on a DTLS-SRTP leg
}

// suite is the SRTP suite the leg runs, by SDES or DTLS-SRTP; 0 for RTP.
func (st *legSRTP) suite() media.SRTPSuite {
	if st.dtls.suite != 0 {
		return st.dtls.suite
	}
	return st.local.Suite
}

func (c *call) srtpLocked(side media.Side, i int) *legSRTP {
	for len(c.srtp[side]) <= i {
		c.srtp[side] = append(c.srtp[side], legSRTP{})
	}
	return &c.srtp[side][i]
}

// peerSuites are the suites allowed toward a leg's peer, in preference order.
func peerSuites(l *leg) []media.SRTPSuite {
	var names []string
	if l.peer != nil {
		names = l.peer.SRTPSuites
	}
	if len(names) == 0 {
		names = []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"}
	}
	out := make([]media.SRTPSuite, 0, len(names))
	for _, n := range names {
		if s, err := media.ParseSRTPSuite(n); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// sdesAllowed: SDES keys travel only over TLS (RFC 4568 §8.3).
func sdesAllowed(l *leg) bool { return l.transport == "TLS" }

// acceptOfferSecurityLocked checks an offer from leg l against l's
// decision: an SRTP leg must offer RTP/SAVP with an acceptable a=crypto; an
// RTP leg must offer RTP. Keys are taken, not yet used.
func (c *call) acceptOfferSecurityLocked(l *leg, sd *sessionDesc) error {
	dec := c.dec[l.side]
	for i, m := range sd.media {
		if m.Disabled() {
			continue
		}
		if m.Crypto && !sdesAllowed(l) {
			return fmt.Errorf("%w (m= line %d from %s over %s)", ErrSDESInsecure, i+1, l.peerName, l.transport)
		}
		st := c.srtpLocked(l.side, i)
		st.peerOffered = false
		switch {
		case isDTLS(dec):
			if err := c.acceptDTLSOfferLocked(l, i, m); err != nil {
				return err
			}
			st.peerOffered = true
		case dec.Secure() && dtlsProto(m.Proto):
			return fmt.Errorf("%w: %s offered DTLS-SRTP on m= line %d, but ccsbc keys SRTP with it by SDES (srtp_keying: sdes)", ErrSRTPRequired, l.peerName, i+1)
		case dec.Secure() && !secureProto(m.Proto):
			return fmt.Errorf("%w: %s offered %s on m= line %d, but %s", ErrSRTPRequired, l.peerName, m.Proto, i+1, dec.Reason)
		case dec.Secure():
			cr, err := chooseCrypto(m.Cryptos, peerSuites(l))
			if err != nil {
				return fmt.Errorf("%w: %s on m= line %d: %v", ErrSRTPRequired, l.peerName, i+1, err)
			}
			st.peerTag, st.peerKeys, st.peerOffered = cr.Tag, cr.Keys, true
		case secureProto(m.Proto):
			return fmt.Errorf("%w: %s offered %s on m= line %d; this leg carries RTP: %s", ErrSRTPUnsupported, l.peerName, m.Proto, i+1, dec.Reason)
		}
	}
	return nil
}

// offerSecurityLocked fills, for the offer sent on leg l, the protocol and
// ccsbc's a=crypto lines: one per allowed suite, each with keys of its own.
// Keys already in use on the leg are offered again, so that a re-INVITE
// that changes nothing keeps the SRTP contexts.
func (c *call) offerSecurityLocked(l *leg, sd *sessionDesc, ports []localPorts) error {
	dec := c.dec[l.side]
	for i, m := range sd.media {
		if m.Disabled() {
			continue
		}
		st := c.srtpLocked(l.side, i)
		st.offered = nil
		if !dec.Secure() {
			ports[i].Proto = "RTP/AVP"
			continue
		}
		if isDTLS(dec) {
			c.dtlsOfferLocked(l, i, &ports[i])
			continue
		}
		if !sdesAllowed(l) {
			return fmt.Errorf("%w: leg to %s is %s", ErrSDESInsecure, l.peerName, l.transport)
		}
		ports[i].Proto = "RTP/SAVP"
		for n, suite := range peerSuites(l) {
			k, err := keysFor(st.local, suite)
			if err != nil {
				return err
			}
			st.offered = append(st.offered, k)
			ports[i].Crypto = append(ports[i].Crypto, formatCrypto(n+1, k))
		}
	}
	return nil
}

// acceptAnswerSecurityLocked checks the answer from leg l against what
// ccsbc offered it: matched by suite, not by tag (RFC 4568 §6.1 lets the
// answerer keep any tag it likes in practice; Cisco gear does).
func (c *call) acceptAnswerSecurityLocked(l *leg, sd *sessionDesc) error {
	dec := c.dec[l.side]
	for i, m := range sd.media {
		if m.Disabled() {
			continue
		}
		if m.Crypto && !sdesAllowed(l) {
			return fmt.Errorf("%w (m= line %d from %s over %s)", ErrSDESInsecure, i+1, l.peerName, l.transport)
		}
		st := c.srtpLocked(l.side, i)
		if !dec.Secure() {
			if secureProto(m.Proto) {
				return fmt.Errorf("%w: %s answered %s on m= line %d; this leg carries RTP: %s", ErrSRTPUnsupported, l.peerName, m.Proto, i+1, dec.Reason)
			}
			st.remote, st.local = media.SRTPKeys{}, media.SRTPKeys{}
			continue
		}
		if isDTLS(dec) {
			if err := c.acceptDTLSAnswerLocked(l, i, m); err != nil {
				return err
			}
			continue
		}
		if !secureProto(m.Proto) || len(m.Cryptos) == 0 {
			return fmt.Errorf("%w: %s answered %s without SRTP on m= line %d, but %s", ErrSRTPRequired, l.peerName, m.Proto, i+1, dec.Reason)
		}
		if len(m.Cryptos) != 1 {
			return fmt.Errorf("%w: %s answered %d a=crypto lines on m= line %d; an answer carries one", ErrSRTPRequired, l.peerName, len(m.Cryptos), i+1)
		}
		cr, err := parseCrypto(m.Cryptos[0])
		if err != nil {
			return fmt.Errorf("%w: %s on m= line %d: %v", ErrSRTPRequired, l.peerName, i+1, err)
		}
		var ours media.SRTPKeys
		for _, k := range st.offered {
			if k.Suite == cr.Keys.Suite {
				ours = k
			}
		}
		if ours.Suite == 0 {
			return fmt.Errorf("%w: %s answered suite %s, which ccsbc did not offer", ErrSRTPRequired, l.peerName, cr.Keys.Suite)
		}
		if sameKeys(cr.Keys, ours) {
			return fmt.Errorf("%w: %s answered with ccsbc's own key", ErrSRTPRequired, l.peerName)
		}
		st.setKeys(cr.Keys, ours)
	}
	return nil
}

// answerSecurityLocked fills the answer sent on leg l (the offerer): the
// protocol and, on an SRTP leg, one a=crypto with the offerer's tag and
// suite and ccsbc's own key.
func (c *call) answerSecurityLocked(l *leg, sd *sessionDesc, ports []localPorts) error {
	dec := c.dec[l.side]
	for i, m := range sd.media {
		if m.Disabled() {
			continue
		}
		st := c.srtpLocked(l.side, i)
		if !dec.Secure() {
			ports[i].Proto = "RTP/AVP"
			st.remote, st.local = media.SRTPKeys{}, media.SRTPKeys{}
			continue
		}
		if !st.peerOffered {
			return fmt.Errorf("%w: no SRTP offer from %s to answer", ErrSRTPRequired, l.peerName)
		}
		if isDTLS(dec) {
			c.dtlsAnswerLocked(l, i, c.offer.media[i], &ports[i])
			continue
		}
		ours, err := keysFor(st.local, st.peerKeys.Suite)
		if err != nil {
			return err
		}
		st.setKeys(st.peerKeys, ours)
		ports[i].Proto = "RTP/SAVP"
		ports[i].Crypto = []string{formatCrypto(st.peerTag, ours)}
	}
	return nil
}

// keysFor returns ccsbc's keys for suite on a leg: the ones in use when
// the suite is unchanged (so that an unchanged re-INVITE keeps the SRTP
// state), fresh ones from crypto/rand otherwise.
func keysFor(inUse media.SRTPKeys, suite media.SRTPSuite) (media.SRTPKeys, error) {
	if inUse.Suite == suite {
		return inUse, nil
	}
	k, err := media.GenerateSRTPKeys(suite)
	if err != nil {
		return media.SRTPKeys{}, fmt.Errorf("sip: SRTP keys: %w", err)
	}
	return k, nil
}

// setKeys records the keys of an exchange; the relay's contexts are
// replaced only when they differ from those in use (a re-INVITE that keeps
// its keys keeps its SRTP state: rollover counter and replay window).
func (st *legSRTP) setKeys(remote, local media.SRTPKeys) {
	if st.applied && sameKeys(st.remote, remote) && sameKeys(st.local, local) {
		return
	}
	st.remote, st.local, st.applied = remote, local, false
}

// applySRTPLocked gives stream i the transforms its legs' keys call for.
func (c *call) applySRTPLocked(i int, stream *media.Stream) {
	for _, side := range []media.Side{media.A, media.B} {
		st := c.srtpLocked(side, i)
		if st.applied || isDTLS(c.dec[side]) {
			continue // a DTLS-SRTP leg's transforms come from its handshake
		}
		if st.remote.Suite == 0 {
			stream.SetTransform(side, nil, nil)
			st.applied = true
			continue
		}
		rtp, rtcp, err := media.NewSRTPTransform(st.remote, st.local, media.SRTPOptions{})
		if err != nil {
			// Fail closed: without a transform the relay would pass
			// plaintext on a leg that must be encrypted.
			c.log.Error("SRTP context", zap.Error(err))
			stream.SetTransform(side, dropAll{}, dropAll{})
			continue
		}
		stream.SetTransform(side, rtp, rtcp)
		st.applied = true
	}
}

// dropAll is the transform of a leg whose SRTP could not be set up: it
// passes nothing either way.
type dropAll struct{}

func (dropAll) Unprotect([]byte, int) (int, error) { return 0, errDropAll }
func (dropAll) Protect([]byte, int) (int, error)   { return 0, errDropAll }

var errDropAll = errors.New("sip: SRTP not set up on this leg")

// sdpErrorStatus maps an offer/answer failure to a SIP status.
func sdpErrorStatus(err error) (int, string) {
	if errors.Is(err, ErrMediaPorts) {
		return 503, "Service Unavailable"
	}
	return 488, "Not Acceptable Here"
}
