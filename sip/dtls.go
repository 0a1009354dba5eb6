package sip

import (
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

// DTLS-SRTP keying in the SDP (RFC 5763, RFC 8842): on a leg whose decision
// is policy.DTLSSRTP the m= protocol is UDP/TLS/RTP/SAVP, the SDP carries
// ccsbc's a=fingerprint and a=setup and always a=rtcp-mux (ccsbc runs DTLS
// on the RTP port only), and the keys come from a handshake on the media
// port once the answer is known (media.Stream.StartDTLS). ccsbc presents
// its instance certificate, the one of its TLS listeners. The fingerprint
// is what authenticates the handshake, so it is only as good as the
// signaling that carried it: DTLS legs exist in models 3 and 4, which are
// TLS only.

// legDTLS is the DTLS-SRTP state of one m= line on one leg.
type legDTLS struct {
	// peerFP is the peer's a=fingerprint and role ccsbc's end of the
	// handshake, as the last offer/answer settled them.
	peerFP string
	role   media.DTLSRole
	// started: the handshake runs (or ran) on the stream; suite is the
	// protection profile it negotiated, once it succeeded.
	started bool
	suite   media.SRTPSuite
	// offerFP and offerSetup are from the peer's pending offer.
	offerFP, offerSetup string
}

// isDTLS reports whether a decision keys SRTP by DTLS-SRTP.
func isDTLS(d policy.Decision) bool { return d.Protection == policy.DTLSSRTP }

// sameFingerprint reports whether two a=fingerprint values name the same
// certificate (hash name and hex digits, case and spacing aside).
func sameFingerprint(a, b string) bool {
	fa, errA := media.ParseFingerprint(a)
	fb, errB := media.ParseFingerprint(b)
	return errA == nil && errB == nil && fa == fb
}

// checkDTLSMedia checks the DTLS-SRTP parameters of an m= line from a peer.
func checkDTLSMedia(m sdpMedia) error {
	if !dtlsProto(m.Proto) {
		return fmt.Errorf("m= protocol is %s, not UDP/TLS/RTP/SAVP", m.Proto)
	}
	if m.Fingerprint == "" {
		return fmt.Errorf("no a=fingerprint")
	}
	if _, err := media.ParseFingerprint(m.Fingerprint); err != nil {
		return fmt.Errorf("a=fingerprint %v", err)
	}
	if !m.Mux {
		return fmt.Errorf("no a=rtcp-mux: ccsbc runs DTLS-SRTP with rtcp-mux only")
	}
	return nil
}

// acceptDTLSOfferLocked checks an m= line offered by l on a DTLS-SRTP leg
// and keeps its parameters for the answer.
func (c *call) acceptDTLSOfferLocked(l *leg, i int, m sdpMedia) error {
	if err := checkDTLSMedia(m); err != nil {
		return fmt.Errorf("%w: %s on m= line %d: %v; %s", ErrSRTPRequired, l.peerName, i+1, err, c.dec[l.side].Reason)
	}
	setup := strings.ToLower(m.Setup)
	if setup == "" {
		setup = "active" // RFC 4145 §4: the default
	}
	if setup != "active" && setup != "passive" && setup != "actpass" {
		return fmt.Errorf("%w: %s on m= line %d: a=setup:%s in an offer", ErrSRTPRequired, l.peerName, i+1, m.Setup)
	}
	d := &c.srtpLocked(l.side, i).dtls
	if d.started && !sameFingerprint(d.peerFP, m.Fingerprint) {
		return fmt.Errorf("%w: %s on m= line %d: a new a=fingerprint during the call (a new DTLS association) is not supported", ErrSRTPRequired, l.peerName, i+1)
	}
	d.offerFP, d.offerSetup = m.Fingerprint, setup
	return nil
}

// dtlsAnswerLocked fills the DTLS-SRTP answer ccsbc sends l, the offerer:
// ccsbc takes the active end when the offerer lets it (RFC 5763 §5), and
// keeps the role of a running association.
func (c *call) dtlsAnswerLocked(l *leg, i int, m sdpMedia, port *localPorts) {
	d := &c.srtpLocked(l.side, i).dtls
	if !d.started {
		d.role = media.DTLSClient
		if d.offerSetup == "active" {
			d.role = media.DTLSServer
		}
	}
	d.peerFP = d.offerFP
	port.Proto = m.Proto
	port.Fingerprint = c.s.dtlsFP
	port.Setup = setupOf(d.role)
}

// dtlsOfferLocked fills the DTLS-SRTP offer ccsbc sends l: actpass for a
// new association, the role in use for a running one (RFC 8842 §5.5).
func (c *call) dtlsOfferLocked(l *leg, i int, port *localPorts) {
	d := &c.srtpLocked(l.side, i).dtls
	port.Proto = "UDP/TLS/RTP/SAVP"
	port.Fingerprint = c.s.dtlsFP
	port.Setup = "actpass"
	if d.started {
		port.Setup = setupOf(d.role)
	}
}

// acceptDTLSAnswerLocked checks the answer of l to ccsbc's DTLS-SRTP offer
// and settles ccsbc's role.
func (c *call) acceptDTLSAnswerLocked(l *leg, i int, m sdpMedia) error {
	if err := checkDTLSMedia(m); err != nil {
		return fmt.Errorf("%w: %s answered on m= line %d: %v; %s", ErrSRTPRequired, l.peerName, i+1, err, c.dec[l.side].Reason)
	}
	var role media.DTLSRole
	switch strings.ToLower(m.Setup) {
	case "active", "":
		role = media.DTLSServer
	case "passive":
		role = media.DTLSClient
	default:
		return fmt.Errorf("%w: %s answered a=setup:%s on m= line %d; an answer says active or passive", ErrSRTPRequired, l.peerName, m.Setup, i+1)
	}
	d := &c.srtpLocked(l.side, i).dtls
	if d.started && (role != d.role || !sameFingerprint(d.peerFP, m.Fingerprint)) {
		return fmt.Errorf("%w: %s on m= line %d: a new DTLS association during the call is not supported", ErrSRTPRequired, l.peerName, i+1)
	}
	d.role, d.peerFP = role, m.Fingerprint
	return nil
}

func setupOf(r media.DTLSRole) string {
	if r == media.DTLSClient {
		return "active"
	}
	return "passive"
}

// startDTLSLocked starts the handshake of a DTLS-SRTP leg of stream i once
// the answer has given both its role and the peer's address. The leg
// relays nothing until the handshake authenticates the peer; a failed
// handshake ends the call.
func (c *call) startDTLSLocked(l *leg, i int, stream *media.Stream) {
	st := c.srtpLocked(l.side, i)
	d := &st.dtls
	if d.started || d.role == 0 {
		return
	}
	var profiles []media.SRTPSuite
	for _, s := range peerSuites(l) {
		if s.DTLS() {
			profiles = append(profiles, s)
		}
	}
	d.started = true
	err := stream.StartDTLS(l.side, media.DTLSConfig{
		Role:              d.role,
		Certificate:       c.s.cert,
		RemoteFingerprint: d.peerFP,
		Profiles:          profiles,
		OnResult: func(side media.Side, suite media.SRTPSuite, err error) {
			c.onDTLSResult(l, i, suite, err)
		},
	})
	if err != nil {
		// StartDTLS leaves the leg refusing every packet: fail the call.
		c.log.Error("DTLS-SRTP start", zap.String("peer", l.peerName), zap.Error(err))
		go c.end("DTLS-SRTP could not start toward "+l.peerName, true, true)
	}
}

// onDTLSResult records the suite of a finished handshake, or ends the call
// when it failed: the leg would stay silent (fail closed), so both legs get
// BYE with the reason.
func (c *call) onDTLSResult(l *leg, i int, suite media.SRTPSuite, err error) {
	if err != nil {
		c.log.Warn("DTLS-SRTP handshake failed", zap.String("peer", l.peerName), zap.Int("m_line", i+1), zap.Error(err))
		c.end("DTLS-SRTP handshake with "+l.peerName+" failed", true, true)
		return
	}
	c.mu.Lock()
	c.srtpLocked(l.side, i).dtls.suite = suite
	c.mu.Unlock()
	c.log.Info("DTLS-SRTP keys installed", zap.String("peer", l.peerName), zap.Int("m_line", i+1), zap.Stringer("suite", suite))
}
