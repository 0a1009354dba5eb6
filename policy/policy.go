// Package policy decides, as pure functions of the deployment model, the leg
// class and the peer's declared capabilities, how each call leg must be
// protected; the SIP layer asks and enforces, it never decides.
package policy

import (
	"fmt"
	"strings"
)

// Model is one of the solution's four security deployment models.
type Model int

const (
	ModelUnsecured        Model = 1 // any signaling transport, RTP everywhere
	ModelSecureSignaling  Model = 2 // TLS only, RTP everywhere
	ModelSecureAgentMedia Model = 3 // TLS only, SRTP on the agent leg
	ModelEndToEnd         Model = 4 // TLS only, SRTP on agent and IVR legs
)

// Valid reports whether m is one of the four models.
func (m Model) Valid() bool { return m >= ModelUnsecured && m <= ModelEndToEnd }

func (m Model) String() string {
	switch m {
	case ModelUnsecured:
		return "model 1 (unsecured)"
	case ModelSecureSignaling:
		return "model 2 (secured signaling)"
	case ModelSecureAgentMedia:
		return "model 3 (secured signaling + agent media)"
	case ModelEndToEnd:
		return "model 4 (end-to-end)"
	}
	return fmt.Sprintf("model %d (invalid)", int(m))
}

// Transport is a SIP signaling transport.
type Transport string

const (
	UDP Transport = "udp"
	TCP Transport = "tcp"
	TLS Transport = "tls"
)

// Transports lists the signaling transports ccsbc speaks.
var Transports = []Transport{UDP, TCP, TLS}

// ParseTransport accepts udp, tcp or tls in any case.
func ParseTransport(s string) (Transport, error) {
	t := Transport(strings.ToLower(s))
	for _, known := range Transports {
		if t == known {
			return t, nil
		}
	}
	return "", fmt.Errorf("policy: unknown transport %q (want udp, tcp or tls)", s)
}

// LegClass says what stands at the far end of a call leg; the exceptions of
// the design guide hang on it.
type LegClass string

const (
	LegAgent       LegClass = "agent"        // toward Unified CM, an agent phone
	LegIVR         LegClass = "ivr"          // toward VVB for VRU treatment
	LegIVRIOS      LegClass = "ivr-ios"      // toward an IOS VXML gateway: no SRTP support
	LegMobileAgent LegClass = "mobile-agent" // a mobile-agent line: no SRTP support
	LegDialer      LegClass = "dialer"       // an Outbound Option dialer is a party
	LegWhisper     LegClass = "whisper"      // whisper announcement toward the agent
	LegCaller      LegClass = "caller"       // the inbound leg of a call (CVP side)
)

// LegClasses lists every class a route may name.
var LegClasses = []LegClass{LegAgent, LegIVR, LegIVRIOS, LegMobileAgent, LegDialer, LegWhisper, LegCaller}

// ParseLegClass accepts one of LegClasses.
func ParseLegClass(s string) (LegClass, error) {
	for _, known := range LegClasses {
		if LegClass(s) == known {
			return known, nil
		}
	}
	names := make([]string, len(LegClasses))
	for i, c := range LegClasses {
		names[i] = string(c)
	}
	return "", fmt.Errorf("policy: unknown leg class %q (want one of %s)", s, strings.Join(names, ", "))
}

// Protection is how a leg's media is carried.
type Protection string

const (
	RTP      Protection = "rtp"
	SRTP     Protection = "srtp-sdes"
	DTLSSRTP Protection = "dtls-srtp"
)

// AllowedTransports says which signaling transports a model permits, and why.
func AllowedTransports(m Model) ([]Transport, string) {
	if m == ModelUnsecured {
		return []Transport{UDP, TCP, TLS}, "model 1 permits UDP, TCP and TLS signaling"
	}
	return []Transport{TLS}, fmt.Sprintf("%s requires SIP over TLS on every leg", m)
}

// TransportAllowed reports whether t may carry signaling under m; the reason
// explains a refusal and is fit for a config error or a Warning header.
func TransportAllowed(m Model, t Transport) (bool, string) {
	allowed, reason := AllowedTransports(m)
	for _, a := range allowed {
		if a == t {
			return true, reason
		}
	}
	return false, fmt.Sprintf("%s is not allowed: %s", strings.ToUpper(string(t)), reason)
}

// blockedPorts are the ports the design guide's perimeter firewall blocks
// (Network Firewall Topology): ccsbc never listens on them.
var blockedPorts = map[string][]int{
	"udp": {135, 137, 138, 445},
	"tcp": {135, 139, 445, 593},
}

// PortBlocked reports whether proto ("udp" or "tcp"; "tls" counts as tcp)
// port is one the perimeter must block.
func PortBlocked(proto string, port int) bool {
	if proto == "tls" {
		proto = "tcp"
	}
	for _, p := range blockedPorts[proto] {
		if p == port {
			return true
		}
	}
	return false
}

// BlockedPortsIn returns the UDP ports the perimeter blocks that fall in
// [lo, hi], for media range validation.
func BlockedPortsIn(lo, hi int) []int {
	var out []int
	for _, p := range blockedPorts["udp"] {
		if p >= lo && p <= hi {
			out = append(out, p)
		}
	}
	return out
}

// Peer is what policy needs to know of a peer.
type Peer struct {
	Name      string
	Transport Transport
	SRTP      bool // declared SRTP-capable
	// DTLS: the peer keys SRTP by DTLS-SRTP (RFC 5763) rather than SDES.
	DTLS bool
}

// CallState is what policy needs to know of the call a leg belongs to.
type CallState struct {
	// DialerConnected is true while an Outbound Option dialer is a party
	// to the call (it does not support SRTP).
	DialerConnected bool
}

// Decision is policy's answer for one leg. Reason is reused verbatim by
// `ccsbc check`, logs, metrics labels and SIP Warning headers.
type Decision struct {
	Class      LegClass
	Transport  Transport
	Protection Protection
	// Exception is set when a model rule was overridden by a leg-class or
	// peer exception (reported by `ccsbc check` and logged).
	Exception bool
	Reason    string
}

// Secure reports whether the decision demands encrypted media.
func (d Decision) Secure() bool { return d.Protection != RTP }

// rule is one cell of the model × leg-class table.
type rule struct {
	srtp   bool   // the model wants SRTP on this leg
	never  bool   // the far end cannot do SRTP whatever the model
	reason string // why, in the design guide's terms
}

// table is the model × leg-class table of the CCE design guide (Secure
// Signaling and Media Design; Media Encryption (SRTP) Considerations). Models
// 1 and 2 carry RTP everywhere; the exceptions hold in every model.
var table = map[Model]map[LegClass]rule{
	ModelSecureAgentMedia: {
		LegAgent:       {srtp: true, reason: "model 3 encrypts the agent leg (caller to agent)"},
		LegCaller:      {srtp: true, reason: "model 3 encrypts the caller's media toward the agent"},
		LegWhisper:     {srtp: true, reason: "model 3: the whisper announcement plays on the secure agent leg"},
		LegIVR:         {reason: "model 3 leaves the IVR leg (CVP/VVB) in RTP"},
		LegIVRIOS:      {never: true, reason: "the IOS VXML gateway does not support SRTP"},
		LegMobileAgent: {never: true, reason: "mobile agents cannot use SRTP"},
		LegDialer:      {srtp: true, reason: "model 3 encrypts the agent leg once the dialer is no longer connected"},
	},
	ModelEndToEnd: {
		LegAgent:       {srtp: true, reason: "model 4 encrypts the agent leg"},
		LegCaller:      {srtp: true, reason: "model 4 encrypts the caller's media end to end"},
		LegWhisper:     {srtp: true, reason: "model 4: the whisper announcement plays on the secure agent leg"},
		LegIVR:         {srtp: true, reason: "model 4 encrypts the IVR leg (VVB supports SRTP)"},
		LegIVRIOS:      {never: true, reason: "the IOS VXML gateway does not support SRTP"},
		LegMobileAgent: {never: true, reason: "mobile agents cannot use SRTP"},
		LegDialer:      {srtp: true, reason: "model 4 encrypts the leg once the dialer is no longer connected"},
	},
}

// DecideLeg returns the media decision for one leg: a pure function of the
// model, the leg class, the peer's declared capabilities and the call
// state.
func DecideLeg(m Model, class LegClass, p Peer, st CallState) Decision {
	d := Decision{Class: class, Transport: p.Transport, Protection: RTP}
	switch m {
	case ModelUnsecured:
		d.Reason = "model 1: unsecured, RTP on every leg"
		return d
	case ModelSecureSignaling:
		d.Reason = "model 2: TLS signaling, RTP media on every leg"
		return d
	}
	r, ok := table[m][class]
	if !ok {
		d.Reason = fmt.Sprintf("%s: no rule for leg class %q, RTP", m, class)
		return d
	}
	switch {
	case r.never:
		d.Exception = true
		d.Reason = r.reason + ": RTP on this leg"
	case !r.srtp:
		d.Reason = r.reason
	case st.DialerConnected:
		// The Outbound Option dialer does not support SRTP; the leg is
		// renegotiated once the call is transferred away from it.
		d.Exception = true
		d.Reason = "an Outbound Option dialer is connected and does not support SRTP: RTP until it leaves the call"
	case !p.SRTP:
		d.Exception = true
		d.Reason = fmt.Sprintf("%s, but peer %s is not declared SRTP-capable: RTP on this leg (exception)", r.reason, p.Name)
	case p.DTLS:
		d.Protection = DTLSSRTP
		d.Reason = r.reason + " (keyed by DTLS-SRTP)"
	default:
		d.Protection = SRTP
		d.Reason = r.reason
	}
	return d
}
