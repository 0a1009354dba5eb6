package sip

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// SDP offer/answer handling (RFC 3264). ccsbc anchors every media stream: the
// SDP a peer sends is parsed into the addresses the relay must send to, and
// the SDP the other peer receives is the same description with every address
// and port replaced by ccsbc's own. Nothing of one side's addressing (o=, c=,
// m= ports, a=rtcp, ICE candidates) reaches the other side.

// sdpMedia is what the relay needs to know of one m= line.
type sdpMedia struct {
	Kind      string         // audio, video, image...
	Proto     string         // RTP/AVP, RTP/SAVP...
	RTP       netip.AddrPort // where the peer receives RTP; zero port = disabled stream
	RTCP      netip.AddrPort // where the peer receives RTCP (a=rtcp, or RTP+1)
	Mux       bool           // a=rtcp-mux (RFC 5761)
	Direction string         // sendrecv, sendonly, recvonly or inactive
	Hold      bool           // direction other than sendrecv, or c=0.0.0.0
	Crypto    bool           // carries a=crypto (SDES keys)
	Cryptos   []string       // the a=crypto values, in the offerer's order
	// Fingerprint and Setup are the DTLS-SRTP parameters (RFC 8122, RFC
	// 4145): media level, or the session level's when the line has none.
	Fingerprint string
	Setup       string
	Formats     []string
}

// Disabled reports whether the m= line is rejected or disabled (port 0).
func (m sdpMedia) Disabled() bool { return m.RTP.Port() == 0 }

// sessionDesc is a parsed SDP body.
type sessionDesc struct {
	sd    sdp.SessionDescription
	media []sdpMedia
}

// parseSDP parses and checks an SDP body. Every failure is an error fit for
// a 488 Warning: it names what was wrong, never echoes key material.
func parseSDP(body []byte) (*sessionDesc, error) {
	s := &sessionDesc{}
	if err := s.sd.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSDPMalformed, err)
	}
	if len(s.sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no m= line", ErrSDPMalformed)
	}
	sessAddr, sessErr := connAddr(s.sd.ConnectionInformation)
	var sessFP, sessSetup string
	for _, a := range s.sd.Attributes {
		switch a.Key {
		case "fingerprint":
			sessFP = a.Value
		case "setup":
			sessSetup = a.Value
		}
	}
	for i, md := range s.sd.MediaDescriptions {
		m := sdpMedia{
			Kind:        md.MediaName.Media,
			Proto:       strings.Join(md.MediaName.Protos, "/"),
			Formats:     md.MediaName.Formats,
			Direction:   "sendrecv",
			Fingerprint: sessFP,
			Setup:       sessSetup,
		}
		port := md.MediaName.Port.Value
		if port < 0 || port > 65535 {
			return nil, fmt.Errorf("%w: m= line %d: port %d out of range", ErrSDPMalformed, i+1, port)
		}
		addr, err := sessAddr, sessErr
		if md.ConnectionInformation != nil {
			addr, err = connAddr(md.ConnectionInformation)
		}
		if port != 0 {
			if err != nil {
				return nil, fmt.Errorf("%w: m= line %d: %v", ErrSDPMalformed, i+1, err)
			}
			if addr.IsUnspecified() {
				// RFC 2543 hold: c=0.0.0.0 means "do not send to me".
				m.Hold = true
			}
		}
		m.RTP = netip.AddrPortFrom(addr, uint16(port))
		m.RTCP = netip.AddrPortFrom(addr, uint16(port+1))
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtcp-mux":
				m.Mux = true
			case "rtcp":
				rtcp, err := parseRTCPAttr(a.Value, addr)
				if err != nil {
					return nil, fmt.Errorf("%w: m= line %d: a=rtcp: %v", ErrSDPMalformed, i+1, err)
				}
				m.RTCP = rtcp
			case "sendrecv", "sendonly", "recvonly", "inactive":
				m.Direction = a.Key
			case "crypto":
				m.Crypto = true
				m.Cryptos = append(m.Cryptos, a.Value)
			case "fingerprint":
				m.Fingerprint = a.Value
			case "setup":
				m.Setup = a.Value
			}
		}
		if m.Direction == "sendrecv" {
			for _, a := range s.sd.Attributes {
				switch a.Key {
				case "sendonly", "recvonly", "inactive":
					m.Direction = a.Key
				}
			}
		}
		if m.Direction != "sendrecv" {
			m.Hold = true
		}
		if m.Mux {
			m.RTCP = m.RTP
		}
		s.media = append(s.media, m)
	}
	return s, nil
}

func connAddr(ci *sdp.ConnectionInformation) (netip.Addr, error) {
	if ci == nil || ci.Address == nil {
		return netip.Addr{}, fmt.Errorf("no c= line")
	}
	if ci.NetworkType != "IN" || (ci.AddressType != "IP4" && ci.AddressType != "IP6") {
		return netip.Addr{}, fmt.Errorf("c= %s %s is not IN IP4/IP6", ci.NetworkType, ci.AddressType)
	}
	a, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		// A host name in c= would make ccsbc resolve names chosen by the
		// peer; refuse it instead.
		return netip.Addr{}, fmt.Errorf("c= address %q is not an IP address", ci.Address.Address)
	}
	return a.Unmap(), nil
}

// parseRTCPAttr parses "port [IN IP4 addr]" (RFC 3605).
func parseRTCPAttr(v string, def netip.Addr) (netip.AddrPort, error) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return netip.AddrPort{}, fmt.Errorf("empty")
	}
	p, err := strconv.Atoi(f[0])
	if err != nil || p <= 0 || p > 65535 {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", f[0])
	}
	addr := def
	if len(f) == 4 {
		a, err := netip.ParseAddr(f[3])
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("bad address %q", f[3])
		}
		addr = a.Unmap()
	}
	return netip.AddrPortFrom(addr, uint16(p)), nil
}

// sdpOrigin is ccsbc's own o= line on one leg: one session id per leg, a
// version that rises each time the description sent on that leg changes
// (RFC 3264 §8).
type sdpOrigin struct {
	id      uint64
	version uint64
	last    []byte // last body sent, without the o= line, to detect change
}

// localPorts are the relay ports ccsbc offers on one leg for one m= line,
// and how the line is protected on that leg.
type localPorts struct {
	RTP, RTCP netip.AddrPort
	// Advertise is the address SDP gives for RTP and RTCP (they are bound
	// on one address; its media address's advertise). Invalid: the
	// session's address.
	Advertise netip.Addr
	Proto     string   // transport protocol written in m=; "" keeps the original
	Crypto    []string // ccsbc's a=crypto values for this leg
	// Fingerprint and Setup, on a DTLS-SRTP leg, are ccsbc's a=fingerprint
	// and a=setup; such a leg always runs rtcp-mux.
	Fingerprint, Setup string
}

// SecureProto reports whether an m= protocol is an SRTP profile.
func secureProto(proto string) bool { return strings.Contains(proto, "SAVP") }

// dtlsProto reports whether an m= protocol is DTLS-SRTP's (RFC 5764 §8:
// UDP/TLS/RTP/SAVP, or SAVPF).
func dtlsProto(proto string) bool { return strings.HasPrefix(proto, "UDP/TLS/RTP/SAVP") }

// droppedAttrs are attributes that must not cross ccsbc: ICE would leak the
// other side's candidates and bypass the relay; keys and DTLS parameters
// belong to one leg only (ccsbc terminates media security per leg).
var droppedAttrs = map[string]bool{
	"candidate": true, "remote-candidates": true, "ice-ufrag": true, "ice-pwd": true,
	"ice-options": true, "ice-lite": true, "ice-mismatch": true, "end-of-candidates": true,
	"crypto": true, "fingerprint": true, "setup": true, "connection": true, "tls-id": true,
	"rtcp": true, "rtcp-mux": true, // rewritten below
}

// rewrite renders s for the other leg: origin, connection and ports become
// ccsbc's; ports[i] holds the relay ports for m= line i (ignored for disabled
// lines). The session's c= and o= carry the address of the first enabled
// line's ports (advertise when it has none); a line whose ports are on
// another address gets a c= of its own.
func (s *sessionDesc) rewrite(o *sdpOrigin, advertise netip.Addr, ports []localPorts) ([]byte, error) {
	out := s.sd // shallow copy: slices below are rebuilt, never mutated in place
	for i := range s.media {
		if !s.media[i].Disabled() && i < len(ports) && ports[i].Advertise.IsValid() {
			advertise = ports[i].Advertise
			break
		}
	}
	out.Origin = sdp.Origin{
		Username: "ccsbc", SessionID: o.id, SessionVersion: o.version,
		NetworkType: "IN", AddressType: addrType(advertise), UnicastAddress: advertise.String(),
	}
	out.SessionName = "ccsbc"
	out.ConnectionInformation = connection(advertise)
	out.EmailAddress, out.PhoneNumber, out.URI = nil, nil, nil
	out.Attributes = filterAttrs(s.sd.Attributes)
	out.MediaDescriptions = make([]*sdp.MediaDescription, len(s.sd.MediaDescriptions))
	for i, md := range s.sd.MediaDescriptions {
		nm := *md
		nm.ConnectionInformation = nil
		nm.Attributes = filterAttrs(md.Attributes)
		m := s.media[i]
		if m.Disabled() {
			nm.MediaName.Port = sdp.RangedPort{Value: 0}
		} else {
			if i >= len(ports) {
				return nil, fmt.Errorf("sdp: no relay ports for m= line %d", i+1)
			}
			nm.MediaName.Port = sdp.RangedPort{Value: int(ports[i].RTP.Port())}
			if a := ports[i].Advertise; a.IsValid() && a != advertise {
				nm.ConnectionInformation = connection(a)
			}
			if ports[i].Proto != "" {
				nm.MediaName.Protos = strings.Split(ports[i].Proto, "/")
			}
			for _, c := range ports[i].Crypto {
				nm.Attributes = append(nm.Attributes, sdp.Attribute{Key: "crypto", Value: c})
			}
			if ports[i].Fingerprint != "" {
				nm.Attributes = append(nm.Attributes,
					sdp.Attribute{Key: "fingerprint", Value: ports[i].Fingerprint},
					sdp.Attribute{Key: "setup", Value: ports[i].Setup})
			}
			if m.Mux || ports[i].Fingerprint != "" {
				nm.Attributes = append(nm.Attributes, sdp.Attribute{Key: "rtcp-mux"})
			} else {
				nm.Attributes = append(nm.Attributes, sdp.Attribute{Key: "rtcp", Value: strconv.Itoa(int(ports[i].RTCP.Port()))})
			}
			if s.media[i].Hold && m.Direction == "sendrecv" {
				// c=0.0.0.0 hold becomes an explicit direction: ccsbc
				// always advertises a real address.
				nm.Attributes = append(nm.Attributes, sdp.Attribute{Key: "inactive"})
			}
		}
		out.MediaDescriptions[i] = &nm
	}

	body, err := out.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sdp: render: %w", err)
	}
	// Bump the version only when the description changed (RFC 3264 §8).
	noOrigin := stripOrigin(body)
	if o.last != nil && !bytes.Equal(noOrigin, o.last) {
		o.version++
		out.Origin.SessionVersion = o.version
		if body, err = out.Marshal(); err != nil {
			return nil, fmt.Errorf("sdp: render: %w", err)
		}
	}
	o.last = noOrigin
	return body, nil
}

// connection is an SDP c= for a.
func connection(a netip.Addr) *sdp.ConnectionInformation {
	return &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType(a), Address: &sdp.Address{Address: a.String()}}
}

func addrType(a netip.Addr) string {
	if a.Is6() {
		return "IP6"
	}
	return "IP4"
}

func filterAttrs(in []sdp.Attribute) []sdp.Attribute {
	out := make([]sdp.Attribute, 0, len(in))
	for _, a := range in {
		if !droppedAttrs[a.Key] {
			out = append(out, a)
		}
	}
	return out
}

func stripOrigin(body []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(body, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("o=")) {
			b.Write(line)
		}
	}
	return b.Bytes()
}
