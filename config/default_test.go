package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ccsbc/ccsbc/policy"
)

// TestDefault proves the embedded default is valid, warns of nothing and
// is the loopback lab of PRODUCT.md.
func TestDefault(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default:\n%v", err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	if c.File != "" {
		t.Errorf("File = %q, want \"\" for the embedded default", c.File)
	}
	if c.Model != policy.ModelUnsecured {
		t.Errorf("model %v", c.Model)
	}

	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	wantListeners := []struct {
		t    policy.Transport
		addr string
	}{{policy.UDP, "127.0.0.1:5060"}, {policy.TCP, "127.0.0.1:5060"}, {policy.TLS, "127.0.0.1:5061"}}
	if len(c.Listeners) != len(wantListeners) {
		t.Fatalf("listeners = %+v", c.Listeners)
	}
	for i, w := range wantListeners {
		l := c.Listeners[i]
		if l.Transport != w.t || l.Address != netip.MustParseAddrPort(w.addr) || !slices.Equal(l.Allow, loopback) {
			t.Errorf("listeners[%d] = %+v, want %s %s allow 127.0.0.0/8", i, l, w.t, w.addr)
		}
	}

	lo := netip.MustParseAddr("127.0.0.1")
	m := c.Media
	if m.Bind != lo || m.Advertise != lo || m.PortMin != 40000 || m.PortMax != 40999 || m.InactivityTimeout != 30*time.Second || m.Latching {
		t.Errorf("media = %+v", m)
	}

	wantPeers := []struct {
		name, kind, addr string
		codecs           []string
	}{
		{"cvp", "cvp", "127.0.0.1:5070", nil},
		{"dialer", "dialer", "127.0.0.1:5075", nil},
		{"cucm", "cucm", "127.0.0.1:5080", nil},
		{"vvb", "vvb", "127.0.0.1:5090", []string{"PCMU", "telephone-event"}},
		{"vvb-g729", "vvb", "127.0.0.1:5092", []string{"G729", "telephone-event"}},
		{"vxml-gw", "vxml-gw", "127.0.0.1:5095", nil},
	}
	if len(c.Peers) != len(wantPeers) {
		t.Fatalf("peers = %+v", c.Peers)
	}
	for i, w := range wantPeers {
		p := c.Peers[i]
		if p.Name != w.name || p.Kind != w.kind || p.Address != netip.MustParseAddrPort(w.addr) ||
			p.Transport != policy.UDP || p.SRTP || !slices.Equal(p.Codecs, w.codecs) {
			t.Errorf("peers[%d] = %+v, want %+v over udp", i, p, w)
		}
	}

	if a := c.Admin; a.Listen != netip.MustParseAddrPort("127.0.0.1:9060") || a.TLS || len(a.Tokens) != 0 || len(a.Clients) != 0 {
		t.Errorf("admin = %+v, want 127.0.0.1:9060 without TLS or credentials", a)
	}

	wantRoutes := []struct {
		user, to string
		leg      policy.LegClass
	}{
		{"1xxx", "cucm", policy.LegAgent},
		{"2xxx", "vvb", policy.LegIVR},
		{"3xxx", "vxml-gw", policy.LegIVRIOS},
		{"4xxx", "cucm", policy.LegMobileAgent},
		{"5xxx", "vvb", policy.LegWhisper},
	}
	if len(c.Routes) != len(wantRoutes) {
		t.Fatalf("routes = %+v", c.Routes)
	}
	for i, w := range wantRoutes {
		r := c.Routes[i]
		if r.User != w.user || r.To != w.to || r.Leg != w.leg || len(r.From) != 0 {
			t.Errorf("routes[%d] = %+v, want %+v", i, r, w)
		}
		// Each lab number reaches its route.
		user := w.user[:1] + "000"
		if got, ok := c.Route("cvp", user); !ok || got != &c.Routes[i] {
			t.Errorf("Route(cvp, %s) = %+v", user, got)
		}
	}
}

// TestDefaultYAMLIsACopy guards the embedded bytes against callers.
func TestDefaultYAMLIsACopy(t *testing.T) {
	b := DefaultYAML()
	b[0] = 'X'
	if _, err := Default(); err != nil {
		t.Fatalf("DefaultYAML's caller changed the embedded default: %v", err)
	}
}
