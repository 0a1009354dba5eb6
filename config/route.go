package config

import (
	"slices"

	"github.com/ccsbc/ccsbc/policy"
)

// Peer returns the peer named name.
func (c *Config) Peer(name string) (*Peer, bool) {
	for i := range c.Peers {
		if c.Peers[i].Name == name {
			return &c.Peers[i], true
		}
	}
	return nil, false
}

// Route returns the first route that matches a call from the peer named
// fromPeer ("" when the caller is no configured peer) to Request-URI user
// user. The Route points into c and must not be modified.
func (c *Config) Route(fromPeer, user string) (*Route, bool) {
	for i := range c.Routes {
		if c.Routes[i].Matches(fromPeer, user) {
			return &c.Routes[i], true
		}
	}
	return nil, false
}

// Matches reports whether r applies to a call from fromPeer to user: From
// is empty or names fromPeer, and user matches the User pattern.
func (r *Route) Matches(fromPeer, user string) bool {
	if len(r.From) > 0 && !slices.Contains(r.From, fromPeer) {
		return false
	}
	return matchUser(r.User, user)
}

// matchUser matches user against a Route.User pattern: x or X is one
// digit, a trailing * is the rest (possibly nothing), any other byte is
// itself, case-sensitive.
func matchUser(pattern, user string) bool {
	for i := 0; i < len(pattern); i++ {
		p := pattern[i]
		if p == '*' && i == len(pattern)-1 {
			return true
		}
		if i >= len(user) {
			return false
		}
		switch u := user[i]; p {
		case 'x', 'X':
			if u < '0' || u > '9' {
				return false
			}
		default:
			if p != u {
				return false
			}
		}
	}
	return len(user) == len(pattern)
}

// PeerCodecs is what policy needs of a peer's codecs.
func (p *Peer) PeerCodecs() policy.PeerCodecs {
	return policy.PeerCodecs{Name: p.Name, Kind: p.Kind, Codecs: p.Codecs}
}

// WhisperDecision applies policy.Whisper to a whisper route: the agents are
// the peers that agent routes go to, the candidates every peer.
func (c *Config) WhisperDecision(r *Route) policy.WhisperDecision {
	p, ok := c.Peer(r.To)
	if !ok {
		return policy.WhisperDecision{Reason: "no peer " + r.To}
	}
	var agents, all []policy.PeerCodecs
	seen := map[string]bool{}
	for i := range c.Routes {
		if c.Routes[i].Leg != policy.LegAgent || seen[c.Routes[i].To] {
			continue
		}
		seen[c.Routes[i].To] = true
		if ap, ok := c.Peer(c.Routes[i].To); ok {
			agents = append(agents, ap.PeerCodecs())
		}
	}
	for i := range c.Peers {
		all = append(all, c.Peers[i].PeerCodecs())
	}
	return policy.Whisper(c.Model, p.PeerCodecs(), agents, all)
}
