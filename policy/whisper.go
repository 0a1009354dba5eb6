package policy

import (
	"fmt"
	"strings"

	"github.com/ccsbc/ccsbc/codec"
)

// PeerCodecs is a peer's name, kind and declared codecs (empty: any).
type PeerCodecs struct {
	Name   string
	Kind   string
	Codecs []string
}

// WhisperDecision is policy's answer for a whisper announcement route.
type WhisperDecision struct {
	// Conflict is set when the announcement cannot play: under SRTP
	// Unified CM cannot transcode securely, so the announcement's codec
	// must be one the agents speak.
	Conflict bool
	// To is the peer that plays the announcement: the route's own, or an
	// alternate of the same kind whose codecs match the agents'. Empty
	// when the conflict has no fix in the configuration.
	To     string
	Reason string
}

// Whisper decides where a whisper announcement plays (design guide, Secure
// Signaling and Media Design: "Where CVP and VVB are in G711 mu-law and all
// agents are in G729, Unified CM does not support secure transcoding in the
// Whisper Announcement leg. Play the announcement using a VVB in G729").
// agents are the peers agent legs go to; candidates the other peers, in
// configuration order.
func Whisper(m Model, whisper PeerCodecs, agents []PeerCodecs, candidates []PeerCodecs) WhisperDecision {
	var agentCodecs []string
	for _, a := range agents {
		if len(codec.Voice(a.Codecs)) == 0 {
			agentCodecs = nil // an agent peer that takes any codec: nothing to match
			break
		}
		agentCodecs = append(agentCodecs, a.Codecs...)
	}
	if m < ModelSecureAgentMedia {
		return WhisperDecision{To: whisper.Name, Reason: fmt.Sprintf("%s: Unified CM may transcode the whisper announcement (no SRTP)", m)}
	}
	if len(agentCodecs) == 0 || len(codec.Common(whisper.Codecs, agentCodecs)) > 0 {
		return WhisperDecision{To: whisper.Name, Reason: fmt.Sprintf("%s: whisper announcement from %s shares a codec with the agents", m, whisper.Name)}
	}
	reason := fmt.Sprintf("whisper conflict: %s plays %s and agents use %s; under SRTP (%s) Unified CM cannot transcode securely",
		whisper.Name, codecList(whisper.Codecs), codecList(agentCodecs), m)
	for _, c := range candidates {
		if c.Name != whisper.Name && c.Kind == whisper.Kind && len(codec.Voice(c.Codecs)) > 0 && len(codec.Common(c.Codecs, agentCodecs)) > 0 {
			return WhisperDecision{Conflict: true, To: c.Name, Reason: reason + "; routed to " + c.Name + " (" + codecList(c.Codecs) + ") instead"}
		}
	}
	return WhisperDecision{Conflict: true, Reason: reason + "; fix: play the announcement from a VVB in " + codecList(agentCodecs)}
}

func codecList(names []string) string {
	v := codec.Voice(names)
	if len(v) == 0 {
		return "any codec"
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range v {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return strings.Join(out, "/")
}
