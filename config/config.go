// Package config decodes, defaults and validates ccsbc's YAML configuration;
// nothing starts until a Config has passed Validate.
package config

import (
	"net/netip"
	"time"

	"github.com/ccsbc/ccsbc/policy"
)

// Config is a whole ccsbc configuration. The YAML key of each field is given
// in its tag; defaults are documented beside each field.
type Config struct {
	// Model is the security deployment model, 1..4. Required.
	Model policy.Model `yaml:"model"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Listeners are the SIP listeners. At least one is required.
	Listeners []Listener `yaml:"listeners"`
	// TLS holds the instance certificate and TLS settings for every TLS
	// listener and every TLS peer.
	TLS TLS `yaml:"tls"`
	// Media configures the media relay.
	Media Media `yaml:"media"`
	// Peers are the SIP peers ccsbc talks to.
	Peers []Peer `yaml:"peers"`
	// Routes map inbound calls to an outbound peer and a leg class; the
	// first route that matches wins.
	Routes []Route `yaml:"routes"`

	// File is the path the config was read from ("" for the embedded default).
	File string `yaml:"-"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
}

// Listener is one SIP listening socket.
type Listener struct {
	// Transport is udp, tcp or tls. Required.
	Transport policy.Transport `yaml:"transport"`
	// Address is host:port to bind. Required.
	Address netip.AddrPort `yaml:"address"`
	// Allow lists the source CIDRs accepted; empty accepts any source.
	// Requests from elsewhere get no answer on UDP and a closed connection
	// on TCP/TLS.
	Allow []netip.Prefix `yaml:"allow"`

	Line int `yaml:"-"`
}

// TLS holds the instance's TLS settings.
type TLS struct {
	// Certificate and Key are PEM files. Both empty (the default): a
	// self-signed certificate is generated on first start in StateDir and
	// reused afterwards.
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
	// CABundle is a PEM file of CAs trusted to sign peer certificates (peers
	// with verify: ca). Default: none.
	CABundle string `yaml:"ca_bundle"`
	// MinVersion is "1.0", "1.1", "1.2" or "1.3". Default "1.2"; below 1.2
	// logs a warning at start.
	MinVersion string `yaml:"min_version"`
	// ClientAuth is how inbound TLS clients are asked for a certificate:
	// none, request or require. Default request. A presented certificate is
	// always verified against the peer it claims to be.
	ClientAuth string `yaml:"client_auth"`
	// StateDir keeps the generated certificate. Default
	// $STATE_DIRECTORY, else $XDG_STATE_HOME/ccsbc, else ~/.local/state/ccsbc.
	StateDir string `yaml:"state_dir"`
	// HandshakeTimeout bounds a TLS handshake and an idle TCP/TLS read.
	// Default 10s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
}

// Media configures the relay.
type Media struct {
	// Bind is the address media sockets bind to. Default 127.0.0.1.
	Bind netip.Addr `yaml:"bind"`
	// Advertise is the address written into SDP (the NAT "fix-up").
	// Default: Bind.
	Advertise netip.Addr `yaml:"advertise"`
	// Ports is the media port range "lo-hi", both even/odd inclusive.
	// Default 40000-40999.
	PortMin int `yaml:"-"`
	PortMax int `yaml:"-"`
	// InactivityTimeout tears a call down with BYE on both legs when no
	// media arrives on either leg for this long. 0 disables. Default 30s.
	InactivityTimeout time.Duration `yaml:"inactivity_timeout"`
	// Latching accepts media from the first source that sends (from the
	// signaled IP or the peer's signaling IP) and never moves afterwards.
	// Default false: media is accepted only from the SDP address.
	Latching bool `yaml:"latching"`
}

// Peer is a SIP peer.
type Peer struct {
	// Name identifies the peer in routes and logs. Required, unique.
	Name string `yaml:"name"`
	// Kind is what the peer is: cvp, vvb, cucm, dialer, vxml-gw or other.
	// Default other.
	Kind string `yaml:"kind"`
	// Address is host:port where the peer receives SIP. Required.
	Address netip.AddrPort `yaml:"address"`
	// Transport is udp, tcp or tls. Default udp in model 1, tls otherwise.
	Transport policy.Transport `yaml:"transport"`
	// Verify is how the peer's TLS certificate is checked: ca (against
	// tls.ca_bundle), fingerprint (pinned SHA-256) or insecure-lab (accept
	// any; lab only, reported as a warning). Default ca. Ignored for udp/tcp.
	Verify string `yaml:"verify"`
	// Fingerprint is the pinned SHA-256 of the peer's certificate, hex with
	// or without colons. Required with verify: fingerprint.
	Fingerprint string `yaml:"fingerprint"`
	// SRTP declares the peer SRTP-capable. Default false.
	SRTP bool `yaml:"srtp"`
	// Codecs lists the codec names the peer may use, in preference order
	// (PCMU, PCMA, G729, G722, telephone-event...). Default: any.
	Codecs []string `yaml:"codecs"`

	Line int `yaml:"-"`
}

// Route sends calls whose Request-URI user matches User (and, when From is
// set, that arrive from one of those peers) to peer To as leg class Leg.
type Route struct {
	// Name labels the route in logs and `ccsbc check`. Default "route N".
	Name string `yaml:"name"`
	// From limits the route to calls from these peers. Default: any source.
	From []string `yaml:"from"`
	// User is a Request-URI user pattern: digits and letters match
	// themselves, x or X matches one digit, a trailing * matches the rest.
	// Required.
	User string `yaml:"user"`
	// To is the peer the call is sent to. Required.
	To string `yaml:"to"`
	// Leg is the outbound leg's class. Required.
	Leg policy.LegClass `yaml:"leg"`

	Line int `yaml:"-"`
}
