package config

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/ccsbc/ccsbc/policy"
)

// The defaults ApplyDefaults fills in; each is also documented beside its
// field in config.go and in default.yaml.
const (
	defaultLogLevel          = "info"
	defaultMinVersion        = "1.2"
	defaultClientAuth        = "request"
	defaultHandshakeTimeout  = 10 * time.Second
	defaultPortMin           = 40000
	defaultPortMax           = 40999
	defaultInactivityTimeout = 30 * time.Second
	defaultPeerKind          = "other"
	defaultSessionExpires    = 1800 * time.Second
	defaultMinSE             = 90 * time.Second
	defaultKeepDigits        = 4
)

var (
	defaultMediaBind = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	// defaultAdminListen is loopback only: the admin listener is reached
	// from the host itself (or through a tunnel) unless an operator
	// decides otherwise.
	defaultAdminListen = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 9060)
)

// ApplyDefaults fills every unset field with its documented default. It
// only fills zero values, so calling it twice changes nothing. Load and
// Parse call it; a Config built in code calls it before Validate.
func (c *Config) ApplyDefaults() {
	if c.Log.Level == "" {
		c.Log.Level = defaultLogLevel
	}

	t := &c.TLS
	if t.MinVersion == "" {
		t.MinVersion = defaultMinVersion
	}
	if t.ClientAuth == "" {
		t.ClientAuth = defaultClientAuth
	}
	if t.HandshakeTimeout == 0 {
		t.HandshakeTimeout = defaultHandshakeTimeout
	}

	m := &c.Media
	if !m.Bind.IsValid() {
		m.Bind = defaultMediaBind
	}
	if !m.Advertise.IsValid() {
		m.Advertise = m.Bind
	}
	for i := range m.ExtraAddresses {
		if a := &m.ExtraAddresses[i]; !a.Advertise.IsValid() {
			a.Advertise = a.Bind
		}
	}
	if m.PortMin == 0 && m.PortMax == 0 {
		m.PortMin, m.PortMax = defaultPortMin, defaultPortMax
	}
	if m.InactivityTimeout == 0 && !c.inactivitySet {
		m.InactivityTimeout = defaultInactivityTimeout
	}

	st := &c.SessionTimers
	if !st.Enabled && !c.timersEnabledSet {
		st.Enabled = true
	}
	if st.SessionExpires == 0 {
		st.SessionExpires = defaultSessionExpires
	}
	if st.MinSE == 0 {
		st.MinSE = defaultMinSE
	}
	if c.Audit.KeepDigits == 0 && !c.keepDigitsSet {
		c.Audit.KeepDigits = defaultKeepDigits
	}

	for i := range c.Peers {
		p := &c.Peers[i]
		if p.DownAfter == 0 {
			p.DownAfter = 3
		}
		if len(p.SRTPSuites) == 0 {
			p.SRTPSuites = []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"}
		}
		if p.SRTPKeying == "" {
			p.SRTPKeying = KeyingSDES
		}
		if p.Kind == "" {
			p.Kind = defaultPeerKind
		}
		if p.Transport == "" {
			// Model 1 must be zero-impact: peers keep the UDP they spoke
			// before ccsbc was inserted. Every other model is TLS only.
			p.Transport = policy.TLS
			if c.Model == policy.ModelUnsecured {
				p.Transport = policy.UDP
			}
		}
		if p.Verify == "" {
			p.Verify = VerifyCA
			if p.Fingerprint != "" {
				p.Verify = VerifyFingerprint
			}
		}
	}

	for i := range c.Routes {
		if c.Routes[i].Name == "" {
			c.Routes[i].Name = "route " + strconv.Itoa(i+1)
		}
	}

	if !c.Admin.Listen.IsValid() && !c.adminListenSet {
		c.Admin.Listen = defaultAdminListen
	}
}
