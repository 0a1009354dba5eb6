package sip

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/ccsbc/ccsbc/config"
)

// filterListener closes TCP connections from sources outside the
// listener's allow list as soon as they are accepted. It never returns an
// error for a refused connection: sipgo stops serving on any Accept error.
type filterListener struct {
	net.Listener
	allow    []netip.Prefix
	rejected *atomic.Int64
}

func (l *filterListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ra, ok := c.RemoteAddr().(*net.TCPAddr)
		if ok && allowed(l.allow, ra.AddrPort().Addr()) {
			return c, nil
		}
		l.rejected.Add(1)
		c.Close()
	}
}

// handshakeListener wraps accepted connections in TLS whose handshake must
// finish within timeout (a slowloris defence: sipgo's read timeout is the
// idle timeout, far longer).
type handshakeListener struct {
	net.Listener
	conf    *tls.Config
	timeout time.Duration
	failed  *atomic.Int64
	onFail  func() // reports a failed handshake (metrics)
	log     *zap.Logger
}

func (l *handshakeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, l.conf), l: l}, nil
}

// handshakeConn is a server-side TLS connection that completes its
// handshake, bounded in time, on the first Read.
type handshakeConn struct {
	*tls.Conn
	l    *handshakeListener
	done atomic.Bool
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	if !c.done.Load() {
		timeout := c.l.timeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := c.Conn.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.l.failed.Add(1)
			if c.l.onFail != nil {
				c.l.onFail()
			}
			c.l.log.Info("tls handshake failed", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
			c.Conn.Close()
			return 0, net.ErrClosed
		}
		c.done.Store(true)
	}
	return c.Conn.Read(b)
}

// tlsState returns the TLS state of the connection a server transaction
// arrived on, if it is TLS.
func tlsState(tx sip.ServerTransaction) (tls.ConnectionState, bool) {
	stx, ok := tx.(*sip.ServerTx)
	if !ok || stx.Connection() == nil {
		return tls.ConnectionState{}, false
	}
	tc, ok := stx.Connection().(*sip.TCPConnection)
	if !ok {
		return tls.ConnectionState{}, false
	}
	switch c := tc.Conn.(type) {
	case *handshakeConn:
		return c.ConnectionState(), true
	case *tls.Conn:
		return c.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// peerCertFingerprint is the SHA-256 of the client certificate presented on
// the TLS connection tx arrived on, or "".
func peerCertFingerprint(tx sip.ServerTransaction) string {
	st, ok := tlsState(tx)
	if !ok || len(st.PeerCertificates) == 0 {
		return ""
	}
	return config.Fingerprint(st.PeerCertificates[0].Raw)
}

func equalFingerprint(configured, actual string) bool {
	want, err := config.ParseFingerprint(configured)
	if err != nil {
		return false
	}
	got, err := hex.DecodeString(actual)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(want, got) == 1
}

// checkPeerConn makes sure the TLS connection req will leave on is
// established and verified for peer p before anything is written on it. A
// connection that fails verification is closed; the caller fails the call
// (no retry over another transport).
func (s *Server) checkPeerConn(ctx context.Context, p *config.Peer, l *leg, req *sip.Request) error {
	ctx, cancel := context.WithTimeout(ctx, peerResponseTimeout)
	defer cancel()
	conn, err := s.ua.TransportLayer().ClientRequestConnection(ctx, req)
	if err != nil {
		s.nTLSFail.Add(1)
		s.metrics.TLSHandshakeFailed(p.Name)
		return fmt.Errorf("%w: %s: %v", ErrPeerTLS, p.Name, shortErr(err))
	}
	defer conn.TryClose()
	tc, ok := conn.(*sip.TCPConnection)
	if !ok {
		return fmt.Errorf("%w: %s: not a TLS connection", ErrPeerTLS, p.Name)
	}
	tconn, ok := tc.Conn.(*tls.Conn)
	if !ok {
		return fmt.Errorf("%w: %s: not a TLS connection", ErrPeerTLS, p.Name)
	}
	st := tconn.ConnectionState()
	if err := s.peerVerifier.Verify(p, st); err != nil {
		s.nTLSFail.Add(1)
		s.metrics.TLSHandshakeFailed(p.Name)
		tconn.Close()
		return fmt.Errorf("%w: %v", ErrPeerTLS, err)
	}
	if l != nil {
		l.setTLS(st)
	}
	return nil
}

// tlsInfo is what the audit record says of a leg's TLS connection.
type tlsInfo struct {
	Version  string `json:"tls_version,omitempty"`
	Cipher   string `json:"tls_cipher,omitempty"`
	Identity string `json:"peer_certificate,omitempty"` // subject and SHA-256 of the peer's certificate
}

func describeTLS(st tls.ConnectionState) tlsInfo {
	ti := tlsInfo{Version: tlsVersionName(st.Version), Cipher: tls.CipherSuiteName(st.CipherSuite)}
	if len(st.PeerCertificates) > 0 {
		c := st.PeerCertificates[0]
		ti.Identity = c.Subject.String() + " sha256:" + config.Fingerprint(c.Raw)
	}
	return ti
}

// shortErr keeps the last, most specific part of a wrapped network error.
func shortErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		return msg[i+2:]
	}
	return msg
}

func tlsVersion(v string) uint16 {
	switch v {
	case "1.0":
		return tls.VersionTLS10
	case "1.1":
		return tls.VersionTLS11
	case "1.3":
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return ""
}
