package sip

import (
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ccsbc/ccsbc/admin"
	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

// Operator views of the B2BUA: Prometheus metrics (fed by events, and by
// the relay's own counters read at scrape time, so the per-packet path never
// touches Prometheus) and the active calls for /calls.

// SetMetrics makes the server report to m; call it before Run. A nil m
// reports nothing.
func (s *Server) SetMetrics(m *admin.Metrics) {
	s.metrics = m
	if m == nil {
		return
	}
	m.SetMediaSource(admin.StatsFunc(s.MediaTotals))
	s.setPeers(s.cfg)
}

func (s *Server) setPeers(cfg *config.Config) {
	names := make([]string, 0, len(cfg.Peers))
	for _, p := range cfg.Peers {
		names = append(names, p.Name)
	}
	s.metrics.SetPeers(names)
}

// endedTotals are the media counters of calls that have ended: the totals
// only ever grow.
type endedTotals struct {
	mu sync.Mutex
	t  admin.MediaTotals
}

func addSide(t *admin.MediaTotals, p policy.Protection, s media.SideStats) {
	t.For(p).Add(admin.ProtectionTotals{
		PacketsIn: s.PacketsIn, BytesIn: s.BytesIn, PacketsOut: s.PacketsOut, BytesOut: s.BytesOut,
		Drops: admin.MediaDrops{
			WrongSource: s.Drops.WrongSource, NoDestination: s.Drops.NoDestination, AuthFailed: s.Drops.AuthFailed,
			Replayed: s.Drops.Replayed, Transform: s.Drops.Transform, Malformed: s.Drops.Malformed, SendError: s.Drops.SendError,
		},
	})
}

// addCallStats adds a call's stream counters to t, per leg protection.
func (c *call) addStats(t *admin.MediaTotals, stats []media.StreamStats) {
	c.mu.Lock()
	dec := c.dec
	c.mu.Unlock()
	for _, st := range stats {
		addSide(t, dec[media.A].Protection, st.A)
		addSide(t, dec[media.B].Protection, st.B)
	}
}

// MediaTotals is the relay's traffic since start, by media protection.
func (s *Server) MediaTotals() admin.MediaTotals {
	s.ended.mu.Lock()
	t := s.ended.t
	s.ended.mu.Unlock()
	for _, c := range s.activeCalls() {
		c.mu.Lock()
		streams := append([]*media.Stream(nil), c.streams...)
		c.mu.Unlock()
		for _, st := range streams {
			if st != nil {
				c.addStats(&t, []media.StreamStats{st.Stats()})
			}
		}
	}
	return t
}

func (s *Server) activeCalls() []*call {
	seen := map[*call]bool{}
	var out []*call
	s.calls.Range(func(_, v any) bool {
		if c := v.(*call); !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
		return true
	})
	return out
}

// ListCalls is the admin API's view of the calls in progress, oldest first.
func (s *Server) ListCalls() []admin.Call {
	now := time.Now()
	var out []admin.Call
	for _, c := range s.activeCalls() {
		c.mu.Lock()
		streams := append([]*media.Stream(nil), c.streams...)
		suites := [2]string{}
		for side := range c.srtp {
			for _, st := range c.srtp[side] {
				if st.suite() != 0 {
					suites[side] = st.suite().String()
				}
			}
		}
		legs, dec := [2]*leg{c.in, c.out}, c.dec
		c.mu.Unlock()
		ac := admin.Call{ID: c.id, Route: c.route.Name, Start: c.start, Duration: now.Sub(c.start)}
		for i, l := range legs {
			side := admin.SideIn
			if i == 1 {
				side = admin.SideOut
			}
			lg := admin.Leg{Side: side, Class: dec[i].Class, Peer: l.peerName, Transport: policy.Transport(strings.ToLower(l.transport)),
				TLSVersion: l.tlsInfo().Version, Protection: dec[i].Protection, Suite: suites[i]}
			for _, st := range streams {
				if st == nil {
					continue
				}
				ss := st.Stats()
				sd := ss.A
				if i == 1 {
					sd = ss.B
				}
				lg.PacketsIn += sd.PacketsIn
				lg.PacketsOut += sd.PacketsOut
			}
			ac.Legs = append(ac.Legs, lg)
		}
		out = append(out, ac)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// callResult is the result label of a call that ended.
func callResult(answered bool, reason string) admin.CallResult {
	switch {
	case answered:
		return admin.CallAnswered
	case strings.Contains(reason, "cancelled"):
		return admin.CallCancelled
	case strings.HasPrefix(reason, "4") || strings.HasPrefix(reason, "6"):
		return admin.CallRejected
	}
	return admin.CallFailed
}

// rejectionReason turns an offer/answer refusal into a bounded metric label.
func rejectionReason(err error) string {
	switch {
	case errors.Is(err, ErrSDESInsecure):
		return "sdes over a non-TLS transport"
	case errors.Is(err, ErrSRTPRequired):
		return "srtp required"
	case errors.Is(err, ErrSRTPUnsupported):
		return "srtp offered on an rtp leg"
	case errors.Is(err, ErrSDPMalformed):
		return "malformed sdp"
	}
	return "other"
}
