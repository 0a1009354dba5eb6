package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

// Peer.Verify values.
const (
	VerifyCA          = "ca"           // chain to tls.ca_bundle
	VerifyFingerprint = "fingerprint"  // pinned SHA-256 of the certificate
	VerifyInsecureLab = "insecure-lab" // accept any certificate (lab only)
)

var (
	logLevels   = []string{"debug", "info", "warn", "error"}
	tlsVersions = []string{"1.0", "1.1", "1.2", "1.3"}
	clientAuths = []string{"none", "request", "require"}
	peerKinds   = []string{"cvp", "vvb", "cucm", "dialer", "vxml-gw", "other"}
	verifies    = []string{VerifyCA, VerifyFingerprint, VerifyInsecureLab}
)

// Validate checks the whole configuration and returns every problem found
// (errors.Join of *Error, in file order), nil if there is none. It expects
// ApplyDefaults to have run. It reads the TLS files named in the config to
// check that they load, as `ccsbc check` must catch a wrong path before a
// change window, not at the first call.
func (c *Config) Validate() error { return c.validate().join() }

func (c *Config) validate() errorList {
	k := &checker{c: c}
	k.model()
	k.oneOf("log.level", c.Log.Level, logLevels)
	k.listeners()
	k.tls()
	k.media()
	k.peers()
	k.routes()
	k.sessionTimers()
	k.audit()
	k.admin()
	return k.errs
}

// Warnings lists what the configuration allows but an auditor must see,
// each as "file:line: key: why": TLS below 1.2, peers whose certificate is
// not verified (verify: insecure-lab), TLS listeners that ask clients for
// no certificate, an admin listener off loopback without TLS.
func (c *Config) Warnings() []string {
	var w []string
	warn := func(key, format string, args ...any) {
		e := &Error{File: c.name(), Line: c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
		w = append(w, e.Error())
	}
	if v := c.TLS.MinVersion; v == "1.0" || v == "1.1" {
		warn("tls.min_version", "TLS %s is below the TLS 1.2 minimum of the solution's security guidance; raise it to 1.2 once every peer supports it", v)
	}
	hasTLSListener := slices.ContainsFunc(c.Listeners, func(l Listener) bool { return l.Transport == policy.TLS })
	if c.TLS.ClientAuth == "none" && hasTLSListener {
		warn("tls.client_auth", "none: TLS clients are not asked for a certificate, so any host that reaches a TLS listener can send calls; use request or require")
	}
	for i, p := range c.Peers {
		if p.Verify == VerifyInsecureLab {
			warn(indexKey("peers", i)+".verify", "insecure-lab accepts any certificate from peer %q (and from any inbound TLS client), so anyone on the path can impersonate it; lab use only: pin it with verify: fingerprint or use verify: ca", p.Name)
		}
	}
	if st := c.SessionTimers; st.Enabled && st.MinSE < minSERFC && st.MinSE >= minSETest {
		warn("session_timers.min_se", "%v is below the 90s minimum of RFC 4028; peers may refuse it and refreshes come often: for tests only", st.MinSE)
	}
	if a := c.Admin; a.Enabled() && !a.TLS && !a.Listen.Addr().Unmap().IsLoopback() {
		warn("admin.listen", "%s is not a loopback address and admin.tls is false: bearer tokens, metrics and call data cross the network in clear; set admin.tls: true, or bind 127.0.0.1", a.Listen)
	}
	return w
}

// name is what errors call this config.
func (c *Config) name() string {
	switch {
	case c.src != "":
		return c.src
	case c.File != "":
		return c.File
	}
	return "config"
}

// line is the line of key, or of the nearest enclosing key that has one;
// for a Config built in code, the Line of the listener, peer or route.
func (c *Config) line(key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if l, ok := c.lines[k]; ok {
			return l
		}
	}
	if i, ok := itemIndex(key, "listeners"); ok && i < len(c.Listeners) {
		return c.Listeners[i].Line
	}
	if i, ok := itemIndex(key, "peers"); ok && i < len(c.Peers) {
		return c.Peers[i].Line
	}
	if i, ok := itemIndex(key, "routes"); ok && i < len(c.Routes) {
		return c.Routes[i].Line
	}
	if i, ok := itemIndex(key, "admin.tokens"); ok && i < len(c.Admin.Tokens) {
		return c.Admin.Tokens[i].Line
	}
	if i, ok := itemIndex(key, "admin.clients"); ok && i < len(c.Admin.Clients) {
		return c.Admin.Clients[i].Line
	}
	return 0
}

// atLine is " (line N)" for key, or "" when its line is unknown.
func (c *Config) atLine(key string) string {
	if l := c.line(key); l > 0 {
		return " (line " + strconv.Itoa(l) + ")"
	}
	return ""
}

// itemIndex returns i for a key path "list[i]..." .
func itemIndex(key, list string) (int, bool) {
	rest, ok := strings.CutPrefix(key, list+"[")
	if !ok {
		return 0, false
	}
	n, _, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(n)
	return i, ok && err == nil
}

// checker accumulates validation errors.
type checker struct {
	c    *Config
	errs errorList
}

func (k *checker) errorf(key, format string, args ...any) {
	k.errs = append(k.errs, &Error{
		File: k.c.name(),
		Line: k.c.line(key),
		Key:  key,
		Msg:  fmt.Sprintf(format, args...),
		Err:  ErrInvalid,
	})
}

// oneOf checks that v is one of choices.
func (k *checker) oneOf(key, v string, choices []string) bool {
	switch {
	case v == "":
		k.errorf(key, "required; one of %s", strings.Join(choices, ", "))
	case !slices.Contains(choices, v):
		k.errorf(key, "%q is not one of %s", v, strings.Join(choices, ", "))
	default:
		return true
	}
	return false
}

func (k *checker) model() {
	switch m := k.c.Model; {
	case m == 0:
		k.errorf("model", "required; set the deployment model: %s", modelChoices())
	case !m.Valid():
		k.errorf("model", "%d is not a deployment model; use %s", int(m), modelChoices())
	}
}

// transport checks a listener's or peer's transport, and that the model
// allows it.
func (k *checker) transport(key string, t policy.Transport) {
	switch {
	case t == "":
		k.errorf(key, "required; one of %s", transportChoices())
		return
	case !slices.Contains(policy.Transports, t):
		k.errorf(key, "%q is not one of %s", t, transportChoices())
		return
	case !k.c.Model.Valid():
		return // reported once, on model
	}
	if ok, why := policy.TransportAllowed(k.c.Model, t); !ok {
		k.errorf(key, "%s; use transport: tls", why)
	}
}

// socketProto is the IP protocol a transport binds: TLS runs over TCP.
func socketProto(t policy.Transport) string {
	if t == policy.UDP {
		return "udp"
	}
	return "tcp"
}

func (k *checker) listeners() {
	c := k.c
	if len(c.Listeners) == 0 {
		k.errorf("listeners", "at least one listener is required, e.g. - {transport: tls, address: 127.0.0.1:5061}")
		return
	}
	for i, l := range c.Listeners {
		key := indexKey("listeners", i)
		k.transport(key+".transport", l.Transport)
		for j, a := range l.Allow {
			if !a.IsValid() {
				k.errorf(indexKey(key+".allow", j), "not a valid prefix; write it like 10.0.0.0/8")
			}
		}
		if !l.Address.IsValid() {
			k.errorf(key+".address", "required; the IP:port to listen on, e.g. 127.0.0.1:5061")
			continue
		}
		proto, port := socketProto(l.Transport), int(l.Address.Port())
		if l.Transport != "" && policy.PortBlocked(proto, port) {
			k.errorf(key+".address", "%s port %d is one the perimeter firewall blocks (Network Firewall Topology) and ccsbc never listens on it; use 5060 (UDP, TCP) or 5061 (TLS)", strings.ToUpper(proto), port)
		}
		// Port 0 (an ephemeral port, as tests use) never conflicts.
		for j, o := range c.Listeners[:i] {
			if port != 0 && o.Address.IsValid() && socketProto(o.Transport) == proto &&
				o.Address.Port() == l.Address.Port() && overlaps(o.Address.Addr(), l.Address.Addr()) {
				k.errorf(key+".address", "%s %s is already bound by listeners[%d]%s; remove one or change its port", strings.ToUpper(proto), l.Address, j, c.atLine(indexKey("listeners", j)))
				break
			}
		}
	}
}

// overlaps reports whether binding a and b on one port conflicts: the
// same address, or an unspecified one that covers the other (:: is dual
// stack, as Go binds it).
func overlaps(a, b netip.Addr) bool {
	a, b = a.Unmap(), b.Unmap()
	covers := func(u, o netip.Addr) bool { return u.IsUnspecified() && (u.Is6() || o.Is4()) }
	return a == b || covers(a, b) || covers(b, a)
}

func (k *checker) tls() {
	t := &k.c.TLS
	switch {
	case t.Certificate != "" && t.Key == "":
		k.errorf("tls.key", "required with tls.certificate: set both, or neither to use a generated self-signed certificate")
	case t.Key != "" && t.Certificate == "":
		k.errorf("tls.certificate", "required with tls.key: set both, or neither to use a generated self-signed certificate")
	case t.Certificate != "":
		certOK := k.readable("tls.certificate", t.Certificate)
		keyOK := k.readable("tls.key", t.Key)
		if certOK && keyOK {
			// The error names no key material (crypto/tls never does).
			if _, err := tls.LoadX509KeyPair(t.Certificate, t.Key); err != nil {
				k.errorf("tls.certificate", "%s and %s do not load as a certificate and its key: %v", t.Certificate, t.Key, err)
			}
		}
	}
	if t.CABundle != "" && k.readable("tls.ca_bundle", t.CABundle) {
		if data, err := os.ReadFile(t.CABundle); err == nil && !x509.NewCertPool().AppendCertsFromPEM(data) {
			k.errorf("tls.ca_bundle", "%s holds no PEM certificate; name a file of -----BEGIN CERTIFICATE----- blocks", t.CABundle)
		}
	}
	k.oneOf("tls.min_version", t.MinVersion, tlsVersions)
	k.oneOf("tls.client_auth", t.ClientAuth, clientAuths)
	if t.HandshakeTimeout <= 0 {
		k.errorf("tls.handshake_timeout", "%s must be positive, e.g. 10s", t.HandshakeTimeout)
	}
}

// readable checks that path names a file ccsbc can open.
func (k *checker) readable(key, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		k.errorf(key, "cannot open %s: %v", path, err)
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		k.errorf(key, "%s is a directory; name the PEM file", path)
		return false
	}
	return true
}

func (k *checker) media() {
	m := &k.c.Media
	if !m.Bind.IsValid() {
		k.errorf("media.bind", "required; the address media sockets bind to, e.g. 127.0.0.1")
	}
	switch {
	case !m.Advertise.IsValid():
		k.errorf("media.advertise", "required; the address written into SDP, e.g. 192.0.2.10")
	case m.Advertise.IsUnspecified() || m.Advertise.IsMulticast():
		if _, set := k.c.lines["media.advertise"]; !set {
			k.errorf("media.advertise", "defaults to media.bind (%s), which peers cannot send media to; set media.advertise to the address they reach ccsbc at", m.Advertise)
		} else {
			k.errorf("media.advertise", "%s cannot be written into SDP as a media address; set the address peers reach ccsbc at", m.Advertise)
		}
	}

	for i, a := range m.ExtraAddresses {
		key := indexKey("media.extra_addresses", i)
		switch {
		case !a.Bind.IsValid():
			k.errorf(key+".bind", "required; another address of this host for media, e.g. 192.0.2.11")
			continue
		case a.Bind.IsUnspecified() || m.Bind.IsUnspecified():
			k.errorf(key+".bind", "with extra addresses neither media.bind nor an extra bind may be unspecified (0.0.0.0 or ::): name each address")
		case a.Bind.Unmap().Is4() != m.Bind.Unmap().Is4():
			k.errorf(key+".bind", "%s is not of media.bind's (%s) address family", a.Bind, m.Bind)
		case a.Bind == m.Bind || slices.ContainsFunc(m.ExtraAddresses[:i], func(b MediaAddress) bool { return b.Bind == a.Bind }):
			k.errorf(key+".bind", "%s is given twice", a.Bind)
		}
		if a.Advertise.IsUnspecified() || a.Advertise.IsMulticast() {
			k.errorf(key+".advertise", "%s cannot be written into SDP as a media address; set the address peers reach it at", a.Advertise)
		}
	}

	lo, hi := m.PortMin, m.PortMax
	rng := fmt.Sprintf("%d-%d", lo, hi)
	switch {
	case lo < 1024 || hi > 65535:
		msg := rng + " is outside 1024-65535"
		if blocked := policy.BlockedPortsIn(lo, hi); len(blocked) > 0 {
			msg += fmt.Sprintf(" and holds UDP ports the perimeter firewall blocks (%s)", joinInts(blocked))
		}
		k.errorf("media.ports", "%s; use a range such as 40000-40999", msg)
	case lo >= hi:
		k.errorf("media.ports", "%s: the first port must be below the last, e.g. 40000-40999", rng)
	case hi-lo+1 < 4:
		k.errorf("media.ports", "%s holds %d ports; a call needs at least 4 (RTP and RTCP on each leg)", rng, hi-lo+1)
	case lo%2 != 0:
		// RTP takes the even port and RTCP the odd one above (RFC 3550
		// section 11), so the range must start even.
		k.errorf("media.ports", "%s starts on an odd port; RTP takes even ports and RTCP the odd one above, start it at %d", rng, lo+1)
	default:
		if blocked := policy.BlockedPortsIn(lo, hi); len(blocked) > 0 {
			k.errorf("media.ports", "%s holds UDP ports the perimeter firewall blocks (%s); choose a range without them", rng, joinInts(blocked))
		}
	}
	if m.InactivityTimeout < 0 {
		k.errorf("media.inactivity_timeout", "%s is negative; write 0 to disable, or a duration such as 30s", m.InactivityTimeout)
	}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func (k *checker) peers() {
	c := k.c
	first := map[string]int{} // name → index
	for i, p := range c.Peers {
		key := indexKey("peers", i)
		switch j, dup := first[p.Name]; {
		case p.Name == "":
			k.errorf(key+".name", "required; routes refer to the peer by its name")
		case dup:
			k.errorf(key+".name", "%q is already the name of peers[%d]%s; peer names must be unique", p.Name, j, c.atLine(indexKey("peers", j)))
		default:
			first[p.Name] = i
		}
		k.oneOf(key+".kind", p.Kind, peerKinds)
		switch {
		case !p.Address.IsValid():
			k.errorf(key+".address", "required; the IP:port where the peer receives SIP, e.g. 127.0.0.1:5060")
		case p.Address.Port() == 0:
			k.errorf(key+".address", "%s has port 0; write the port the peer receives SIP on, e.g. %s", p.Address, netip.AddrPortFrom(p.Address.Addr(), 5060))
		}
		k.transport(key+".transport", p.Transport)
		k.verify(key, p)
		if p.Keepalive != 0 && p.Keepalive < 100*time.Millisecond {
			k.errorf(key+".keepalive", "%v is too often; write 0 to send none, or at least 100ms (30s is usual)", p.Keepalive)
		}
		if p.DownAfter < 1 {
			k.errorf(key+".down_after", "%d: a peer is marked down after at least 1 failed keepalive", p.DownAfter)
		}
		suites := map[media.SRTPSuite]bool{}
		for j, name := range p.SRTPSuites {
			sk := indexKey(key+".srtp_suites", j)
			switch suite, err := media.ParseSRTPSuite(name); {
			case err != nil:
				k.errorf(sk, "%q is not an SRTP suite ccsbc supports; use AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM or AES_256_CM_HMAC_SHA1_80", name)
			case suites[suite]:
				k.errorf(sk, "%s is listed twice; list each suite once, in preference order", name)
			case p.SRTPKeying == KeyingDTLS && !suite.DTLS():
				k.errorf(sk, "%s has no DTLS-SRTP protection profile; with srtp_keying: dtls use AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM or AEAD_AES_256_GCM", name)
			default:
				suites[suite] = true
			}
		}
		k.oneOf(key+".srtp_keying", p.SRTPKeying, []string{KeyingSDES, KeyingDTLS})
		if p.SRTPKeying == KeyingDTLS && !p.SRTP {
			k.errorf(key+".srtp_keying", "dtls keys SRTP, but the peer is not declared SRTP-capable; set srtp: true, or remove srtp_keying")
		}
		seen := map[string]bool{}
		for j, name := range p.Codecs {
			ck := indexKey(key+".codecs", j)
			switch u := strings.ToUpper(name); {
			case name == "":
				k.errorf(ck, "empty codec name; write one such as PCMU, G729 or telephone-event")
			case seen[u]:
				k.errorf(ck, "%s is listed twice; list each codec once, in preference order", name)
			default:
				seen[u] = true
			}
		}
	}
}

func (k *checker) verify(key string, p Peer) {
	if !k.oneOf(key+".verify", p.Verify, verifies) {
		return
	}
	switch {
	case p.Verify == VerifyFingerprint && p.Fingerprint == "":
		k.errorf(key+".fingerprint", "required with verify: fingerprint; take it from the peer's certificate with: openssl x509 -noout -fingerprint -sha256 -in peer.pem")
	case p.Verify != VerifyFingerprint && p.Fingerprint != "":
		// A pin that is silently not enforced is worse than none.
		k.errorf(key+".fingerprint", "set, but verify is %s so it would not be checked; set verify: fingerprint to pin it, or remove it", p.Verify)
	case p.Fingerprint != "":
		if _, msg := parseFingerprint(p.Fingerprint); msg != "" {
			k.errorf(key+".fingerprint", "%s", msg)
		}
	}
	if p.Verify == VerifyCA && p.Transport == policy.TLS && k.c.TLS.CABundle == "" {
		k.errorf(key+".verify", "ca needs tls.ca_bundle, the CAs that sign %q's certificate; set tls.ca_bundle, or pin the peer with verify: fingerprint", p.Name)
	}
}

func (k *checker) routes() {
	c := k.c
	for i, r := range c.Routes {
		key := indexKey("routes", i)
		if r.User == "" {
			k.errorf(key+".user", "required; a Request-URI user pattern such as 1xxx (x is one digit) or 2* (* ends it)")
		} else if msg := checkUserPattern(r.User); msg != "" {
			k.errorf(key+".user", "%s", msg)
		}
		if r.To == "" {
			k.errorf(key+".to", "required; the peer calls are sent to (%s)", k.peerNames())
		} else if _, ok := c.Peer(r.To); !ok {
			k.errorf(key+".to", "%q is not a peer; %s", r.To, k.peerNames())
		}
		for j, name := range r.Failover {
			if _, ok := c.Peer(name); !ok {
				k.errorf(indexKey(key+".failover", j), "%q is not a peer; %s", name, k.peerNames())
			}
		}
		for j, from := range r.From {
			if _, ok := c.Peer(from); !ok {
				k.errorf(indexKey(key+".from", j), "%q is not a peer; %s", from, k.peerNames())
			}
		}
		switch {
		case r.Leg == "":
			k.errorf(key+".leg", "required; the outbound leg's class, one of %s", legChoices())
		case !slices.Contains(policy.LegClasses, r.Leg):
			k.errorf(key+".leg", "%q is not a leg class; use one of %s", r.Leg, legChoices())
		}
	}
}

// Bounds of session_timers. RFC 4028 §4 makes 90 s the smallest Min-SE;
// ccsbc accepts down to 2 s so that end-to-end tests see refreshes and
// expiry within seconds (Warnings reports it).
const (
	minSERFC          = 90 * time.Second
	minSETest         = 2 * time.Second
	maxSessionExpires = 24 * time.Hour
)

func (k *checker) sessionTimers() {
	st := &k.c.SessionTimers
	whole := func(key string, d time.Duration) bool {
		if d%time.Second != 0 {
			k.errorf(key, "%v is not a whole number of seconds; Session-Expires and Min-SE are written in seconds, e.g. %v", d, d.Round(time.Second))
			return false
		}
		return true
	}
	minOK := whole("session_timers.min_se", st.MinSE)
	if minOK && st.MinSE < minSETest {
		k.errorf("session_timers.min_se", "%v is too short; write 90s (the RFC 4028 minimum), or at least %v in a test lab", st.MinSE, minSETest)
		minOK = false
	}
	if !whole("session_timers.session_expires", st.SessionExpires) {
		return
	}
	switch {
	case st.SessionExpires > maxSessionExpires:
		k.errorf("session_timers.session_expires", "%v is longer than %v: a dead call would stay up that long; write 1800s (the usual) or less", st.SessionExpires, maxSessionExpires)
	case minOK && st.SessionExpires < st.MinSE:
		k.errorf("session_timers.session_expires", "%v is below session_timers.min_se (%v)%s; ccsbc would refuse its own interval, raise it to at least min_se", st.SessionExpires, st.MinSE, k.c.atLine("session_timers.min_se"))
	}
}

// maxKeepDigits bounds audit.keep_digits: more would leave a whole
// national number readable.
const maxKeepDigits = 8

func (k *checker) audit() {
	if n := k.c.Audit.KeepDigits; n < 0 || n > maxKeepDigits {
		k.errorf("audit.keep_digits", "%d is out of range; write how many trailing digits stay readable, from 0 (mask all) to %d (4 is usual)", n, maxKeepDigits)
	}
}

func (k *checker) peerNames() string {
	if len(k.c.Peers) == 0 {
		return "no peers are configured"
	}
	names := make([]string, 0, len(k.c.Peers))
	for _, p := range k.c.Peers {
		if p.Name != "" {
			names = append(names, p.Name)
		}
	}
	return "the peers are: " + strings.Join(names, ", ")
}

// checkUserPattern returns why pattern is not a valid Route.User, or "".
func checkUserPattern(pattern string) string {
	pos := 0
	for i, ch := range pattern {
		pos++
		switch {
		case ch == '*' && i == len(pattern)-1:
		case ch == '*':
			return fmt.Sprintf("%q: * may only end the pattern (it matches the rest of the user)", pattern)
		case ch >= '0' && ch <= '9', ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch == '+':
		default:
			return fmt.Sprintf("%q: %q at position %d is not allowed; use digits, letters, x or X (one digit), + and an optional trailing *", pattern, ch, pos)
		}
	}
	return ""
}

func (k *checker) admin() {
	c := k.c
	a := &c.Admin
	if a.Enabled() {
		port := int(a.Listen.Port())
		if policy.PortBlocked("tcp", port) {
			k.errorf("admin.listen", "TCP port %d is one the perimeter firewall blocks (Network Firewall Topology) and ccsbc never listens on it; use 9060", port)
		}
		for j, l := range c.Listeners {
			if port != 0 && l.Address.IsValid() && socketProto(l.Transport) == "tcp" &&
				l.Address.Port() == a.Listen.Port() && overlaps(l.Address.Addr(), a.Listen.Addr()) {
				k.errorf("admin.listen", "TCP %s is already bound by listeners[%d]%s; give the admin listener another port, e.g. 9060", a.Listen, j, c.atLine(indexKey("listeners", j)))
				break
			}
		}
	}
	if len(a.Clients) > 0 && !a.TLS {
		// A pin that is silently never checked is worse than none.
		k.errorf("admin.clients", "client certificates are only asked for over TLS; set admin.tls: true, or authenticate these clients with tokens")
	}

	names := map[string]string{} // identity name → key of its first use
	name := func(key, n string) {
		switch first, dup := names[n]; {
		case n == "":
			k.errorf(key, "required; logs name whoever uses the credential by it")
		case strings.ContainsFunc(n, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			k.errorf(key, "%q has spaces or control characters; use a plain name such as grafana or alice@example.com", n)
		case dup:
			k.errorf(key, "%q is already the name of %s%s; each token and client needs its own name, so that logs say who acted", n, first, c.atLine(first))
		default:
			names[n] = parentKey(key)
		}
	}
	role := func(key, r string) {
		switch {
		case r == "":
			k.errorf(key, "required; one of %s", strings.Join(AdminRoles, ", "))
		case !slices.Contains(AdminRoles, r):
			k.errorf(key, "%q is not a role; use read (metrics, calls), operate (read, reload, drain) or admin (everything)", r)
		}
	}

	hashes := map[string]string{}
	for i, t := range a.Tokens {
		key := indexKey("admin.tokens", i)
		name(key+".name", t.Name)
		// The value is never quoted back: an operator who pasted the
		// token itself here must not find it in an error log too.
		switch h, msg := parseTokenHash(t.SHA256); {
		case msg != "":
			k.errorf(key+".sha256", "%s", msg)
		case hashes[h] != "":
			k.errorf(key+".sha256", "the same token as %s%s; give each holder a token of their own", hashes[h], c.atLine(hashes[h]))
		default:
			hashes[h] = key
		}
		role(key+".role", t.Role)
	}
	pins := map[string]string{}
	for i, cl := range a.Clients {
		key := indexKey("admin.clients", i)
		name(key+".name", cl.Name)
		switch b, msg := parseFingerprint(cl.Fingerprint); {
		case cl.Fingerprint == "":
			k.errorf(key+".fingerprint", "required; the SHA-256 of the client's certificate: openssl x509 -noout -fingerprint -sha256 -in client.pem")
		case msg != "":
			k.errorf(key+".fingerprint", "%s", msg)
		case pins[string(b)] != "":
			k.errorf(key+".fingerprint", "the same certificate as %s%s; each client needs a certificate of its own", pins[string(b)], c.atLine(pins[string(b)]))
		default:
			pins[string(b)] = key
		}
		role(key+".role", cl.Role)
	}
}

// parseTokenHash returns the lowercase hex SHA-256 an admin token's
// sha256 key holds, or why it is not one. The message never contains the
// value.
func parseTokenHash(s string) (string, string) {
	const how = "tokens are stored hashed: write the SHA-256 of the token, as `ccsbc admin hash-token` prints it, never the token itself"
	switch {
	case s == "":
		return "", "required; " + how
	case len(s) != 2*sha256.Size:
		return "", fmt.Sprintf("a value of %d characters is not a SHA-256 (64 hex digits); %s", len(s), how)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", "not hex; " + how
	}
	return hex.EncodeToString(b), ""
}
