package sip

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/media"
)

// leg is one SIP dialog of a call, seen from ccsbc (RFC 3261 §12): the
// inbound leg is the dialog in which ccsbc is the UAS, the outbound leg the
// one in which it is the UAC. sipgo gives transactions; the dialog state a
// B2BUA needs (both tags, remote target, route set, CSeq in both
// directions, where to send) is kept here so that re-INVITE, UPDATE, INFO
// and BYE are built the same way in both directions.
type leg struct {
	side      media.Side
	dialed    bool         // ccsbc sent the dialog-creating INVITE (it is the UAC)
	peer      *config.Peer // nil for an inbound caller that is no configured peer
	peerName  string       // peer.Name, or the source address
	transport string       // UDP, TCP or TLS (sipgo spelling)

	callID    string
	localTag  string
	local     sip.Uri // our URI in From (requests we send) / To (requests we receive)
	localName string
	remote    sip.Uri
	remName   string

	// dest is where requests on this leg are sent: the configured peer
	// address for the outbound leg (ccsbc never follows a Contact to an
	// address nobody configured), the source of the INVITE for the inbound
	// leg, which reuses its TCP/TLS connection.
	dest    string
	laddr   sip.Addr // local address for UDP sends (the listener); zero for TCP/TLS
	contact sip.ContactHeader

	origin   sdpOrigin  // ccsbc's o= line on this leg
	signalIP netip.Addr // where this leg's SIP comes from, for media latching

	mu           sync.Mutex // guards the fields below
	tls          tlsInfo
	remoteTag    string
	remoteTarget sip.Uri
	routeSet     []sip.Uri
	localCSeq    uint32
	remoteCSeq   uint32
	allowUpdate  bool // the peer's Allow lists UPDATE: session refreshes use it
	// ackSeq and ackBody are the CSeq number and body of the ACK ccsbc
	// sent for the 2xx to its latest INVITE on this leg: a retransmission
	// of that 2xx gets the same ACK again (Server.reack). 0: none yet.
	ackSeq  uint32
	ackBody []byte
}

// newRequest builds an in-dialog request on this leg (RFC 3261 §12.2.1.1).
// The Via is added when the request is sent.
func (l *leg) newRequest(method sip.RequestMethod, body []byte) *sip.Request {
	l.mu.Lock()
	target := l.remoteTarget
	remoteTag := l.remoteTag
	routes := append([]sip.Uri(nil), l.routeSet...)
	if method != sip.ACK && method != sip.CANCEL {
		l.localCSeq++
	}
	cseq := l.localCSeq
	l.mu.Unlock()

	req := sip.NewRequest(method, *target.Clone())
	from := &sip.FromHeader{DisplayName: l.localName, Address: *l.local.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", l.localTag)
	to := &sip.ToHeader{DisplayName: l.remName, Address: *l.remote.Clone(), Params: sip.NewParams()}
	if remoteTag != "" {
		to.Params.Add("tag", remoteTag)
	}
	callID := sip.CallIDHeader(l.callID)
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.AppendHeader(&maxFwd)
	for _, r := range routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	if method != sip.BYE && method != sip.CANCEL {
		req.AppendHeader(l.contact.Clone())
	}
	l.address(req)
	setBody(req, "application/sdp", body)
	return req
}

// address sets where and how req leaves on this leg.
func (l *leg) address(req *sip.Request) {
	req.SetTransport(l.transport)
	req.SetDestination(l.dest)
	if l.transport == "UDP" {
		req.Laddr = l.laddr
	}
}

// acceptRemoteCSeq applies the RFC 3261 §12.2.2 CSeq check to a request the
// peer sent on this leg: lower than the last one is out of order.
func (l *leg) acceptRemoteCSeq(n uint32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.remoteCSeq != 0 && n < l.remoteCSeq {
		return false
	}
	l.remoteCSeq = n
	return true
}

// learnFromResponse records the remote tag, target and route set from a
// response that establishes (or refreshes) the dialog on the outbound leg.
func (l *leg) learnFromResponse(res *sip.Response) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if to := res.To(); to != nil {
		if tag, ok := to.Params.Get("tag"); ok && tag != "" {
			l.remoteTag = tag
		}
	}
	if c := res.Contact(); c != nil && c.Address.Host != "" {
		l.remoteTarget = *c.Address.Clone()
	}
	if res.StatusCode >= 200 || len(l.routeSet) == 0 {
		// Route set from Record-Route, in reverse order for the UAC.
		rrs := res.GetHeaders("Record-Route")
		if len(rrs) > 0 || res.StatusCode >= 200 {
			l.routeSet = l.routeSet[:0]
			for i := len(rrs) - 1; i >= 0; i-- {
				if rr, ok := rrs[i].(*sip.RecordRouteHeader); ok {
					l.routeSet = append(l.routeSet, *rr.Address.Clone())
				}
			}
		}
	}
}

// learnTarget updates the remote target from a request's Contact (a
// target refresh: re-INVITE, UPDATE).
func (l *leg) learnTarget(req *sip.Request) {
	if c := req.Contact(); c != nil && c.Address.Host != "" {
		l.mu.Lock()
		l.remoteTarget = *c.Address.Clone()
		l.mu.Unlock()
	}
}

func (l *leg) setTLS(st tls.ConnectionState) {
	ti := describeTLS(st)
	l.mu.Lock()
	l.tls = ti
	l.mu.Unlock()
}

func (l *leg) tlsInfo() tlsInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tls
}

func (l *leg) setAllowUpdate(v bool) {
	l.mu.Lock()
	l.allowUpdate = v
	l.mu.Unlock()
}

func (l *leg) allowsUpdate() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allowUpdate
}

func (l *leg) getRemoteTag() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remoteTag
}

// sendError words a failure to send on this leg for a Warning header.
func (l *leg) sendError(err error) string {
	if errors.Is(err, ErrPeerTLS) {
		return err.Error()
	}
	return fmt.Sprintf("peer %s unreachable over %s: %s", l.peerName, l.transport, shortErr(err))
}

// setBody sets a request's body with its Content-Type (none when empty).
func setBody(req *sip.Request, contentType string, body []byte) {
	if len(body) > 0 && contentType != "" {
		req.RemoveHeader("Content-Type")
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	req.SetBody(body)
}

// sipTransport converts a config transport to sipgo's spelling.
func sipTransport(t string) string { return strings.ToUpper(t) }
