package config

import (
	"testing"

	"github.com/ccsbc/ccsbc/policy"
)

func TestMatchUser(t *testing.T) {
	tests := []struct {
		pattern, user string
		want          bool
	}{
		{"1xxx", "1234", true},
		{"1xxx", "1000", true},
		{"1XXX", "1999", true},
		{"1xxx", "123", false},   // too short
		{"1xxx", "12345", false}, // too long
		{"1xxx", "2234", false},
		{"1xxx", "12a4", false}, // x is a digit, not any character
		{"1xxx", "", false},
		{"2*", "2", true}, // * may match nothing
		{"2*", "2000", true},
		{"2*", "2abc", true},
		{"2*", "3000", false},
		{"2*", "", false},
		{"*", "", true},
		{"*", "anything", true},
		{"+1xxx*", "+15551234", true},
		{"+1xxx*", "15551234", false},
		{"agent", "agent", true},
		{"agent", "Agent", false}, // case-sensitive
		{"9x*", "9", false},       // x needs its digit before * takes the rest
		{"9x*", "91", true},
	}
	for _, tt := range tests {
		if got := matchUser(tt.pattern, tt.user); got != tt.want {
			t.Errorf("matchUser(%q, %q) = %v, want %v", tt.pattern, tt.user, got, tt.want)
		}
	}
}

func TestRoute(t *testing.T) {
	c := &Config{
		Peers: []Peer{{Name: "cvp"}, {Name: "dialer"}, {Name: "cucm"}, {Name: "vvb"}},
		Routes: []Route{
			{Name: "dialer agents", From: []string{"dialer"}, User: "1xxx", To: "cucm", Leg: policy.LegDialer},
			{Name: "agents", User: "1xxx", To: "cucm", Leg: policy.LegAgent},
			{Name: "ivr", From: []string{"cvp", "cucm"}, User: "2*", To: "vvb", Leg: policy.LegIVR},
		},
	}
	tests := []struct {
		from, user string
		want       string // route name, "" for none
	}{
		{"dialer", "1001", "dialer agents"}, // first match wins
		{"cvp", "1001", "agents"},
		{"", "1001", "agents"}, // an unknown caller matches routes without from
		{"cvp", "2000", "ivr"},
		{"cucm", "2", "ivr"},
		{"dialer", "2000", ""},
		{"", "2000", ""},
		{"cvp", "9999", ""},
	}
	for _, tt := range tests {
		r, ok := c.Route(tt.from, tt.user)
		got := ""
		if ok {
			got = r.Name
		}
		if got != tt.want {
			t.Errorf("Route(%q, %q) = %q, want %q", tt.from, tt.user, got, tt.want)
		}
	}
	if r, _ := c.Route("cvp", "1001"); r != &c.Routes[1] {
		t.Errorf("Route does not point into the Config")
	}

	if p, ok := c.Peer("vvb"); !ok || p != &c.Peers[3] {
		t.Errorf("Peer(vvb) = %v, %v", p, ok)
	}
	if _, ok := c.Peer("nobody"); ok {
		t.Errorf("Peer(nobody) found")
	}
}
