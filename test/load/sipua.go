package load

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// UA is a SIP user agent of the load tools, on sipgo: the caller side
// (INVITE, ACK, BYE toward ccsbc) and the callee side (answers INVITEs from
// ccsbc) of calls, on one listening address and transport. It keeps just
// enough dialog state for load: no re-INVITE, no early media.
type UA struct {
	transport string // "UDP", "TCP" or "TLS"
	addr      netip.AddrPort
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	cli       *sipgo.Client
	cancel    context.CancelFunc
	done      chan struct{}

	// onInviteFn answers an INVITE received as callee: it returns the SDP
	// answer, or an error for a 488. Immutable once serving.
	onInviteFn func(fromUser string, offer []byte) ([]byte, error)

	mu      sync.Mutex
	uas     map[string]*uasDialog // by Call-ID
	Counter UACounters
}

// UACounters are what a UA counted.
type UACounters struct {
	InvitesIn   atomic.Uint64 // INVITEs answered as callee
	Rejected    atomic.Uint64 // INVITEs refused (OnInvite failed)
	AcksMissing atomic.Uint64 // 200s to INVITEs never ACKed
	ByesIn      atomic.Uint64 // BYEs received
}

type uasDialog struct {
	acked chan struct{}
	once  sync.Once
}

// UAConfig configures NewUA.
type UAConfig struct {
	Transport string         // udp, tcp or tls
	Addr      netip.AddrPort // where it listens (a loopback address; port 0: any)
	// Certificate is presented on a TLS listener; a self-signed one is made
	// when it is nil.
	Certificate *tls.Certificate
	// OnInvite answers INVITEs received as callee (see UA.OnInvite).
	OnInvite func(fromUser string, offer []byte) ([]byte, error)
}

// NewUA starts a user agent listening on cfg.Addr.
func NewUA(cfg UAConfig) (*UA, error) {
	if !cfg.Addr.Addr().IsLoopback() {
		return nil, fmt.Errorf("load: UA address %v is not on loopback", cfg.Addr)
	}
	t := strings.ToUpper(cfg.Transport)
	quiet := slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	sip.SetDefaultLogger(quiet)
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("ccsbc-load"),
		sipgo.WithUserAgenTLSConfig(&tls.Config{InsecureSkipVerify: true}), //nolint:gosec // the relay under test, on loopback
	)
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		ua.Close()
		return nil, err
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet))
	if err != nil {
		ua.Close()
		return nil, err
	}
	u := &UA{transport: t, ua: ua, srv: srv, cli: cli, uas: map[string]*uasDialog{}, done: make(chan struct{}), onInviteFn: cfg.OnInvite}
	var serve func() error
	switch t {
	case "UDP":
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(cfg.Addr))
		if err != nil {
			ua.Close()
			return nil, err
		}
		setBuffers(pc, 8<<20)
		u.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		serve = func() error { return srv.ServeUDP(pc) }
	case "TCP", "TLS":
		l, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(cfg.Addr))
		if err != nil {
			ua.Close()
			return nil, err
		}
		u.addr = l.Addr().(*net.TCPAddr).AddrPort()
		if t == "TCP" {
			serve = func() error { return srv.ServeTCP(l) }
		} else {
			cert := cfg.Certificate
			if cert == nil {
				c, err := SelfSigned()
				if err != nil {
					l.Close()
					ua.Close()
					return nil, err
				}
				cert = &c
			}
			tl := tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
			serve = func() error { return srv.ServeTLS(tl) }
		}
	default:
		ua.Close()
		return nil, fmt.Errorf("load: UA transport %q: want udp, tcp or tls", cfg.Transport)
	}
	srv.OnInvite(u.onInvite)
	srv.OnAck(u.onAck)
	srv.OnBye(u.onBye)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go func() {
		defer close(u.done)
		_ = serve()
	}()
	return u, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Addr is where the UA listens.
func (u *UA) Addr() netip.AddrPort { return u.addr }

// Close stops the UA.
func (u *UA) Close() {
	u.srv.Close()
	u.ua.Close()
}

func randID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (u *UA) via() *sip.ViaHeader {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: u.transport,
		Host: u.addr.Addr().String(), Port: int(u.addr.Port()), Params: sip.NewParams()}
	v.Params.Add("branch", sip.GenerateBranchN(16))
	return v
}

func (u *UA) contact() *sip.ContactHeader {
	c := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "load", Host: u.addr.Addr().String(), Port: int(u.addr.Port()), UriParams: sip.NewParams()}}
	if u.transport != "UDP" {
		c.Address.UriParams.Add("transport", strings.ToLower(u.transport))
	}
	return c
}

// address sets how req leaves: over the UA's transport to dst, and on UDP
// from the listening socket (so that ccsbc sees the peer's address).
func (u *UA) address(req *sip.Request, dst netip.AddrPort) {
	req.SetTransport(u.transport)
	req.SetDestination(dst.String())
	if u.transport == "UDP" {
		req.Laddr = sip.Addr{IP: u.addr.Addr().AsSlice(), Port: int(u.addr.Port())}
	}
}

var noBuild = func(*sipgo.Client, *sip.Request) error { return nil }

// Dialog is a call placed by Invite.
type Dialog struct {
	dst    netip.AddrPort
	invite *sip.Request
	res    *sip.Response
	Answer []byte // the SDP of the 200
	// Setup is the time from sending the INVITE to the 200.
	Setup time.Duration
}

// ErrStatus is a final non-2xx answer to a request.
type ErrStatus struct {
	Code    int
	Reason  string
	Warning string
}

func (e *ErrStatus) Error() string {
	if e.Warning != "" {
		return fmt.Sprintf("%d %s (%s)", e.Code, e.Reason, e.Warning)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Reason)
}

// Invite places a call to user@dst from fromUser with SDP offer (nil: no
// body), waits for the 200 and sends the ACK.
func (u *UA) Invite(ctx context.Context, dst netip.AddrPort, user, fromUser string, offer []byte) (*Dialog, error) {
	uri := sip.Uri{Scheme: "sip", User: user, Host: dst.Addr().String(), Port: int(dst.Port()), UriParams: sip.NewParams()}
	if u.transport != "UDP" {
		uri.UriParams.Add("transport", strings.ToLower(u.transport))
	}
	req := sip.NewRequest(sip.INVITE, uri)
	req.AppendHeader(u.via())
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: fromUser, Host: u.addr.Addr().String(), Port: int(u.addr.Port())}, Params: sip.NewParams()}
	from.Params.Add("tag", randID())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: dst.Addr().String(), Port: int(dst.Port())}, Params: sip.NewParams()})
	cid := sip.CallIDHeader(randID() + "@load")
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(u.contact())
	if offer != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(offer)
	u.address(req, dst)
	start := time.Now()
	tx, err := u.cli.TransactionRequest(ctx, req, noBuild)
	if err != nil {
		return nil, fmt.Errorf("load: INVITE: %w", err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			if !res.IsSuccess() {
				e := &ErrStatus{Code: int(res.StatusCode), Reason: res.Reason}
				if w := res.GetHeader("Warning"); w != nil {
					e.Warning = w.Value()
				}
				return nil, e
			}
			d := &Dialog{dst: dst, invite: req, res: res, Answer: res.Body(), Setup: time.Since(start)}
			if err := u.ack(d); err != nil {
				return nil, err
			}
			// A 200 repeated because our ACK was lost is ACKed again.
			tx.OnRetransmission(func(r *sip.Response) {
				if r.IsSuccess() {
					_ = u.ack(d)
				}
			})
			return d, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, fmt.Errorf("load: INVITE: %w", err)
			}
			return nil, errors.New("load: INVITE: transaction ended without an answer")
		case <-ctx.Done():
			return nil, fmt.Errorf("load: INVITE: %w", ctx.Err())
		}
	}
}

// inDialog builds a request of d's dialog.
func (u *UA) inDialog(d *Dialog, method sip.RequestMethod, cseq uint32) *sip.Request {
	target := d.invite.Recipient
	if c := d.res.Contact(); c != nil {
		target = c.Address
	}
	req := sip.NewRequest(method, *target.Clone())
	req.AppendHeader(u.via())
	req.AppendHeader(sip.HeaderClone(d.invite.From()))
	req.AppendHeader(sip.HeaderClone(d.res.To()))
	req.AppendHeader(sip.HeaderClone(d.invite.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetBody(nil)
	u.address(req, d.dst)
	return req
}

func (u *UA) ack(d *Dialog) error {
	if err := u.cli.WriteRequest(u.inDialog(d, sip.ACK, 1), noBuild); err != nil {
		return fmt.Errorf("load: ACK: %w", err)
	}
	return nil
}

// Bye ends the call and waits for the 200.
func (u *UA) Bye(ctx context.Context, d *Dialog) error {
	tx, err := u.cli.TransactionRequest(ctx, u.inDialog(d, sip.BYE, 2), noBuild)
	if err != nil {
		return fmt.Errorf("load: BYE: %w", err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			if !res.IsSuccess() {
				return &ErrStatus{Code: int(res.StatusCode), Reason: res.Reason}
			}
			return nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return fmt.Errorf("load: BYE: %w", err)
			}
			return errors.New("load: BYE: no answer")
		case <-ctx.Done():
			return fmt.Errorf("load: BYE: %w", ctx.Err())
		}
	}
}

// onInvite answers an INVITE as the callee: 200 with OnInvite's SDP,
// repeated on UDP until the ACK comes (RFC 3261 §13.3.1.4).
func (u *UA) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if tag, _ := req.To().Params.Get("tag"); tag != "" {
		// A re-INVITE: keep the session as it is.
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	u.Counter.InvitesIn.Add(1)
	var body []byte
	var err error
	if u.onInviteFn != nil {
		body, err = u.onInviteFn(req.From().Address.User, req.Body())
	}
	if err != nil {
		u.Counter.Rejected.Add(1)
		res := sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil)
		res.AppendHeader(sip.NewHeader("Warning", `399 load "`+strings.ReplaceAll(err.Error(), `"`, "'")+`"`))
		_ = tx.Respond(res)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.To().Params.Add("tag", randID())
	res.AppendHeader(u.contact())
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	res.SetBody(body)
	callID := req.CallID().Value()
	d := &uasDialog{acked: make(chan struct{})}
	u.mu.Lock()
	u.uas[callID] = d
	u.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		return
	}
	if u.transport != "UDP" {
		return
	}
	go func() {
		wait := 500 * time.Millisecond
		deadline := time.After(32 * time.Second)
		for {
			select {
			case <-d.acked:
				return
			case <-deadline:
				u.Counter.AcksMissing.Add(1)
				return
			case <-time.After(wait):
				_ = tx.Respond(res)
				wait = min(2*wait, 4*time.Second)
			}
		}
	}()
}

func (u *UA) onAck(req *sip.Request, tx sip.ServerTransaction) {
	u.mu.Lock()
	d := u.uas[req.CallID().Value()]
	u.mu.Unlock()
	if d != nil {
		d.once.Do(func() { close(d.acked) })
	}
}

func (u *UA) onBye(req *sip.Request, tx sip.ServerTransaction) {
	u.Counter.ByesIn.Add(1)
	u.mu.Lock()
	delete(u.uas, req.CallID().Value())
	u.mu.Unlock()
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}
