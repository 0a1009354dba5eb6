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
//
// Its lifecycle is decode (Load, Parse) → ApplyDefaults → Validate; Load
// and Parse run all three, so a Config they return is ready to use. A
// Config built in code must go through ApplyDefaults and Validate itself.
// A validated Config is read-only: share it, never mutate it; a reload
// builds a new one.
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
	// SessionTimers configures RFC 4028 session timers, negotiated and
	// enforced on each leg of a call on its own.
	SessionTimers SessionTimers `yaml:"session_timers"`
	// Audit configures the per-call security audit record.
	Audit Audit `yaml:"audit"`
	// Admin configures the admin HTTP listener: metrics, health,
	// readiness, active calls, reload and drain.
	Admin Admin `yaml:"admin"`

	// File is the path the config was read from ("" for the embedded default).
	File string `yaml:"-"`

	// src names the config in errors and warnings; lines maps each key
	// path ("peers[2].transport") to the line it was read from. Both are
	// empty for a Config built in code.
	src   string
	lines map[string]int
	// inactivitySet records that media.inactivity_timeout was written, so
	// that an explicit 0 (disabled) is not taken for "unset".
	inactivitySet bool
	// adminListenSet records that admin.listen was written, so that
	// listen: "" (disabled) is not taken for "unset".
	adminListenSet bool
	// timersEnabledSet records that session_timers.enabled was written,
	// so that an explicit false is not taken for "unset".
	timersEnabledSet bool
	// keepDigitsSet records that audit.keep_digits was written, so that
	// an explicit 0 (mask everything) is not taken for "unset".
	keepDigitsSet bool
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
	// A bare address (10.1.2.3) is a single host.
	Allow []netip.Prefix `yaml:"allow"`

	// Line is where the listener starts in the file (0 if built in code).
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
	// always verified against the configured TLS peers: it must match the
	// pinned fingerprint of a verify: fingerprint peer or chain to
	// CABundle when some peer has verify: ca, unless a peer is
	// insecure-lab; otherwise the handshake fails.
	ClientAuth string `yaml:"client_auth"`
	// StateDir keeps the generated certificate (ccsbc.crt, ccsbc.key).
	// Default $STATE_DIRECTORY (the first, if systemd gives several), else
	// $XDG_STATE_HOME/ccsbc, else ~/.local/state/ccsbc; resolved when the
	// certificate is loaded, see TLS.StateDirectory.
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
	// PortMin and PortMax are the media port range, inclusive, written in
	// YAML as one key, ports: "lo-hi". PortMin is even (RTP on even ports,
	// RTCP on the odd one above). Default 40000-40999.
	PortMin int `yaml:"-"`
	PortMax int `yaml:"-"`
	// InactivityTimeout tears a call down with BYE on both legs when no
	// media arrives on either leg for this long. 0 disables. Default 30s
	// when the key is absent (in code: a zero value before ApplyDefaults
	// becomes 30s; set 0 after ApplyDefaults to disable).
	InactivityTimeout time.Duration `yaml:"inactivity_timeout"`
	// Latching accepts media from the first source that sends (from the
	// signaled IP or the peer's signaling IP) and never moves afterwards.
	// Default false: media is accepted only from the SDP address.
	Latching bool `yaml:"latching"`
	// ExtraAddresses are more addresses media binds to, each with the
	// whole port range of its own, for more concurrent calls than one
	// address's ports hold (4 per call: about 16,000 calls on 1024-65535).
	// New calls take their ports from Bind and the extra addresses in turn.
	ExtraAddresses []MediaAddress `yaml:"extra_addresses"`
}

// MediaAddress is an extra media address: where its sockets bind and what
// SDP says for it.
type MediaAddress struct {
	// Bind is the address, of media.bind's family, on this host. Required.
	Bind netip.Addr `yaml:"bind"`
	// Advertise is written into SDP for ports on Bind. Default: Bind.
	Advertise netip.Addr `yaml:"advertise"`
}

// Addresses returns the media addresses: Bind and Advertise first, then
// ExtraAddresses.
func (m *Media) Addresses() []MediaAddress {
	return append([]MediaAddress{{Bind: m.Bind, Advertise: m.Advertise}}, m.ExtraAddresses...)
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
	// tls.ca_bundle, and ServerName), fingerprint (pinned SHA-256) or
	// insecure-lab (accept any; lab only, reported as a warning). Default
	// fingerprint when Fingerprint is set, else ca. It applies when ccsbc
	// connects to the peer over TLS, and to the certificate of any inbound
	// TLS client (see TLS.ClientAuth), whatever the peer's transport.
	Verify string `yaml:"verify"`
	// Fingerprint is the pinned SHA-256 of the peer's certificate, hex with
	// or without colons. Required with verify: fingerprint.
	Fingerprint string `yaml:"fingerprint"`
	// ServerName is the name the peer's certificate must carry with
	// verify: ca (Unified CM certificates usually name the host's FQDN,
	// not its IP). Default: the IP of Address.
	ServerName string `yaml:"server_name"`
	// SRTP declares the peer SRTP-capable. Default false.
	SRTP bool `yaml:"srtp"`
	// Keepalive is how often ccsbc sends the peer a SIP OPTIONS to learn
	// whether it is up. 0 (the default) sends none: the peer counts as up.
	Keepalive time.Duration `yaml:"keepalive"`
	// DownAfter is how many keepalives in a row must fail (no answer, or
	// 503) before the peer is marked down; one answer marks it up again.
	// Default 3.
	DownAfter int `yaml:"down_after"`
	// SRTPSuites are the SDES crypto suites ccsbc offers and accepts on
	// SRTP legs toward this peer, in preference order. Default
	// [AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32]: what Cisco phones
	// and Unified CM do (no GCM). Also AEAD_AES_128_GCM, AEAD_AES_256_GCM,
	// AES_256_CM_HMAC_SHA1_80 (alias AES_CM_256_HMAC_SHA1_80).
	SRTPSuites []string `yaml:"srtp_suites"`
	// SRTPKeying is how SRTP keys are exchanged with the peer on an SRTP
	// leg: sdes (a=crypto in the SDP over TLS, what Cisco gear does) or
	// dtls (DTLS-SRTP on the media port, RFC 5763/5764: a=fingerprint and
	// a=setup in the SDP, rtcp-mux required). Default sdes. With dtls the
	// suites above are the DTLS-SRTP protection profiles offered, and
	// AES_256_CM_HMAC_SHA1_80, which has none, may not be listed.
	SRTPKeying string `yaml:"srtp_keying"`
	// Codecs lists the codec names the peer may use, in preference order
	// (PCMU, PCMA, G729, G722, telephone-event...). Default: any.
	Codecs []string `yaml:"codecs"`

	// Line is where the peer starts in the file (0 if built in code).
	Line int `yaml:"-"`
}

// The values of Peer.SRTPKeying.
const (
	KeyingSDES = "sdes"
	KeyingDTLS = "dtls"
)

// Policy is what policy needs to know of the peer, reached over transport.
func (p *Peer) Policy(transport policy.Transport) policy.Peer {
	return policy.Peer{Name: p.Name, Transport: transport, SRTP: p.SRTP, DTLS: p.SRTPKeying == KeyingDTLS}
}

// Route sends calls whose Request-URI user matches User (and, when From is
// set, that arrive from one of those peers) to peer To as leg class Leg.
type Route struct {
	// Name labels the route in logs and `ccsbc check`. Default "route N",
	// counting from 1 (routes[0] is "route 1").
	Name string `yaml:"name"`
	// From limits the route to calls from these peers. Default: any source.
	From []string `yaml:"from"`
	// User is a Request-URI user pattern: digits, letters and + match
	// themselves (case-sensitive), x or X matches one digit, a trailing *
	// matches the rest (possibly nothing). Required; "*" alone matches
	// every user.
	User string `yaml:"user"`
	// To is the peer the call is sent to. Required.
	To string `yaml:"to"`
	// Failover lists more peers, in order: a call goes to the first of To
	// and these whose keepalives say it is up (all down: To). Default none.
	Failover []string `yaml:"failover"`
	// Leg is the outbound leg's class. Required.
	Leg policy.LegClass `yaml:"leg"`

	// Line is where the route starts in the file (0 if built in code).
	Line int `yaml:"-"`
}

// SessionTimers configures RFC 4028 session timers. ccsbc is a B2BUA, so
// each leg is a dialog of its own: the interval and the refresher are
// negotiated with each peer independently, ccsbc refreshes the legs where
// it is the refresher (and those whose peer does not support timers), and
// ends the call with BYE on both legs when a peer that took the refresher
// role lets its session expire. A change applies to new calls (SIGHUP).
type SessionTimers struct {
	// Enabled turns session timers on: ccsbc sends Supported: timer,
	// Session-Expires and Min-SE, answers them, refreshes and enforces.
	// false: ccsbc neither asks for nor supports timers (an INVITE with
	// Require: timer gets 420). Default true (in code: a zero Config
	// before ApplyDefaults becomes true; set false after ApplyDefaults to
	// disable).
	Enabled bool `yaml:"enabled"`
	// SessionExpires is the interval ccsbc asks for in the INVITEs it
	// sends, and the longest it accepts from a peer (a longer request is
	// reduced to it). Whole seconds, at least MinSE, at most 86400s.
	// Default 1800s.
	SessionExpires time.Duration `yaml:"session_expires"`
	// MinSE is the shortest interval ccsbc accepts: a request asking for
	// less gets 422 with this Min-SE. Whole seconds. Default 90s, the
	// smallest RFC 4028 allows; values from 2s up to 90s are accepted for
	// tests and reported as a warning.
	MinSE time.Duration `yaml:"min_se"`
}

// Audit configures the per-call security audit record (logger "audit").
type Audit struct {
	// MaskNumbers masks the calling number (From user) and the called
	// number (Request-URI user) in the audit record: every character but
	// a leading + and the last KeepDigits becomes *. Default false (the
	// numbers are written as they are).
	MaskNumbers bool `yaml:"mask_numbers"`
	// KeepDigits is how many trailing characters of each number stay
	// readable when MaskNumbers is on, from 0 (all masked) to 8.
	// Default 4 (in code: the zero value is 4 unless set after
	// ApplyDefaults).
	KeepDigits int `yaml:"keep_digits"`
}

// Admin roles, from least to most privileged. Each includes the ones
// before it.
const (
	// AdminRoleRead reads: readiness, metrics, active calls.
	AdminRoleRead = "read"
	// AdminRoleOperate is read plus the actions of an on-call operator:
	// reload and drain.
	AdminRoleOperate = "operate"
	// AdminRoleAdmin is everything, including changing the log level.
	AdminRoleAdmin = "admin"
)

// AdminRoles lists the roles in order of privilege.
var AdminRoles = []string{AdminRoleRead, AdminRoleOperate, AdminRoleAdmin}

// Admin configures the admin HTTP listener. Every endpoint but /healthz
// needs a credential, a bearer token or a client certificate, whose role
// allows it. With no tokens and no clients only /healthz answers.
type Admin struct {
	// Listen is the IP:port the admin listener binds. Default
	// 127.0.0.1:9060, loopback only. Written as "" it disables the
	// listener (in code: a zero Listen before ApplyDefaults becomes the
	// default; set it to the zero AddrPort after ApplyDefaults to
	// disable). A non-loopback address without TLS is reported as a
	// warning: tokens and call data would cross the network in clear.
	Listen netip.AddrPort `yaml:"listen"`
	// TLS serves HTTPS with the instance certificate (see TLS) and asks
	// clients for a certificate, which Clients may then authenticate.
	// Default false: plain HTTP, fit for loopback only.
	TLS bool `yaml:"tls"`
	// Tokens are the bearer tokens accepted, stored hashed. Default none.
	Tokens []AdminToken `yaml:"tokens"`
	// Clients are the client certificates accepted (TLS only), pinned by
	// fingerprint. Default none.
	Clients []AdminClient `yaml:"clients"`
}

// Enabled reports whether the admin listener is to be started.
func (a *Admin) Enabled() bool { return a.Listen.IsValid() }

// AdminToken is one bearer token and the role it grants.
type AdminToken struct {
	// Name identifies whoever holds the token in logs. Required, unique
	// among tokens and clients.
	Name string `yaml:"name"`
	// SHA256 is the SHA-256 of the token, 64 hex digits: the token itself
	// is never written in the configuration. `ccsbc admin hash-token`
	// prints it. Required, unique.
	SHA256 string `yaml:"sha256"`
	// Role is read, operate or admin. Required.
	Role string `yaml:"role"`

	// Line is where the token starts in the file (0 if built in code).
	Line int `yaml:"-"`
}

// AdminClient is one client certificate and the role it grants.
type AdminClient struct {
	// Name identifies the client in logs. Required, unique among tokens
	// and clients.
	Name string `yaml:"name"`
	// Fingerprint is the SHA-256 of the client's certificate, hex with or
	// without colons, as peers are pinned. Required, unique.
	Fingerprint string `yaml:"fingerprint"`
	// Role is read, operate or admin. Required.
	Role string `yaml:"role"`

	// Line is where the client starts in the file (0 if built in code).
	Line int `yaml:"-"`
}
