package sip

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/media"
)

// Peer health: SIP OPTIONS keepalives (the way CVP and Unified CM watch
// their SIP trunks). A peer is down after DownAfter keepalives in a row get
// no answer or a 503, and up again at the first other answer. Routes skip
// down peers for new calls (route.failover).

// peerHealth is the up/down state of the configured peers.
type peerHealth struct {
	mu     sync.Mutex
	up     map[string]*atomic.Bool // peer name → up; absent: never checked, counts as up
	cancel context.CancelFunc      // stops the keepalive loops of the current configuration
	wg     sync.WaitGroup
}

// isUp reports whether a peer may take new calls.
func (s *Server) isUp(name string) bool {
	s.health.mu.Lock()
	b := s.health.up[name]
	s.health.mu.Unlock()
	return b == nil || b.Load()
}

// pickPeer returns the first of the route's peers that is up; when none is,
// the route's own peer (a call attempt tells more than silence).
func (s *Server) pickPeer(r *config.Route, first string) string {
	for _, name := range append([]string{first}, r.Failover...) {
		if s.isUp(name) {
			return name
		}
	}
	return first
}

// startHealth (re)starts the keepalive loops for cfg's peers. Peers that
// keep their name keep their state.
func (s *Server) startHealth(cfg *config.Config) {
	s.health.mu.Lock()
	if s.health.cancel != nil {
		s.health.cancel()
	}
	old := s.health.up
	s.health.up = map[string]*atomic.Bool{}
	ctx, cancel := context.WithCancel(context.Background())
	s.health.cancel = cancel
	for i := range cfg.Peers {
		p := &cfg.Peers[i]
		if p.Keepalive <= 0 {
			continue
		}
		b := old[p.Name]
		if b == nil {
			b = &atomic.Bool{}
			b.Store(true)
		}
		s.health.up[p.Name] = b
		s.health.wg.Add(1)
		go func() {
			defer s.health.wg.Done()
			s.keepalive(ctx, p, b)
		}()
	}
	s.health.mu.Unlock()
}

// stopHealth stops every keepalive loop and waits for them.
func (s *Server) stopHealth() {
	s.health.mu.Lock()
	if s.health.cancel != nil {
		s.health.cancel()
	}
	s.health.mu.Unlock()
	s.health.wg.Wait()
}

func (s *Server) keepalive(ctx context.Context, p *config.Peer, up *atomic.Bool) {
	s.metrics.SetPeerUp(p.Name, up.Load())
	t := time.NewTicker(p.Keepalive)
	defer t.Stop()
	failures := 0
	for {
		ok := s.ping(ctx, p, min(p.Keepalive, peerResponseTimeout))
		if ctx.Err() != nil {
			return
		}
		switch {
		case ok:
			failures = 0
			if !up.Swap(true) {
				s.log.Info("peer up", zap.String("peer", p.Name))
				s.metrics.SetPeerUp(p.Name, true)
			}
		default:
			failures++
			if failures >= p.DownAfter && up.Swap(false) {
				s.log.Warn("peer down", zap.String("peer", p.Name), zap.Int("failed_keepalives", failures))
				s.metrics.SetPeerUp(p.Name, false)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// peerLeg is a dialog-less leg toward p, to send it OPTIONS.
func (s *Server) peerLeg(p *config.Peer) *leg {
	t := sipTransport(string(p.Transport))
	ln := s.listenerForTransport(t)
	if ln == nil {
		return nil
	}
	host := ln.addr.Addr().String()
	u := sip.Uri{Scheme: "sip", Host: p.Address.Addr().String(), Port: int(p.Address.Port()), UriParams: sip.NewParams()}
	if t != "UDP" {
		u.UriParams.Add("transport", sip.NetworkToLower(t))
	}
	return &leg{
		side: media.B, peer: p, peerName: p.Name, transport: t,
		local: sip.Uri{Scheme: "sip", User: "ccsbc", Host: host}, remote: sip.Uri{Scheme: "sip", Host: p.Address.Addr().String()},
		remoteTarget: u, contact: ln.contact, dest: p.Address.String(),
		laddr: sip.Addr{IP: ln.addr.Addr().AsSlice(), Port: int(ln.addr.Port())}, signalIP: p.Address.Addr(),
		callID: newCallID(host), localTag: sip.GenerateTagN(8),
	}
}

// ping sends one OPTIONS; any final answer but 503 means alive (a 404 or
// 405 still proves the peer's SIP stack runs).
func (s *Server) ping(ctx context.Context, p *config.Peer, timeout time.Duration) bool {
	l := s.peerLeg(p)
	if l == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := l.newRequest(sip.OPTIONS, nil)
	tx, err := s.send(ctx, l, req)
	if err != nil {
		return false
	}
	defer tx.Terminate()
	res := waitFinal(ctx, tx)
	return res != nil && res.StatusCode != 503
}
