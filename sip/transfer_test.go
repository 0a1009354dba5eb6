package sip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

const transferTestConfig = `model: 3
listeners:
  - {transport: tls, address: "127.0.0.1:5061"}
peers:
  - {name: dialer, kind: dialer, address: "127.0.0.1:5076", transport: tls, verify: insecure-lab}
  - {name: cvp, kind: cvp, address: "127.0.0.1:5071", transport: tls, verify: insecure-lab}
  - {name: cucm, kind: cucm, address: "127.0.0.1:5081", transport: tls, verify: insecure-lab, srtp: true}
  - {name: vvb, kind: vvb, address: "127.0.0.1:5091", transport: tls, verify: insecure-lab}
routes:
  - {user: 1xxx, to: cucm, leg: agent}
  - {user: 2xxx, to: vvb, leg: ivr}
  - {user: 5xxx, to: vvb, leg: whisper}
`

// TestCheckRefer walks the REFERs ccsbc refuses, each with the status and
// the reason the Warning header carries, and the one it takes.
func TestCheckRefer(t *testing.T) {
	cfg, err := config.Parse("transfer.yaml", []byte(transferTestConfig))
	if err != nil {
		t.Fatal(err)
	}
	peer := func(name string) *config.Peer { p, _ := cfg.Peer(name); return p }
	s := &Server{cfg: cfg, listeners: []*listener{{transport: "TLS"}}}
	s.live.Store(cfg)
	newCall := func(from string, answered, connected bool) (*call, *leg) {
		c := &call{s: s, cfg: cfg, ended: make(chan struct{})}
		c.in = &leg{side: media.A, peer: peer(from), peerName: from, transport: "TLS", callID: "in", localTag: "a"}
		c.out = &leg{side: media.B, peer: peer("cucm"), peerName: "cucm", transport: "TLS", callID: "out", localTag: "b", dialed: true}
		if answered {
			c.answered = time.Now()
		}
		c.xfer.state.DialerConnected = connected
		return c, c.in
	}
	cases := []struct {
		name      string
		from      string // the peer that sends the REFER on the inbound leg
		answered  bool
		connected bool
		referTo   []string
		code      int
		reason    string
		wantPeer  string
	}{
		{"blind transfer to the VVB", "dialer", true, true, []string{"<sip:2000@127.0.0.1:5061;transport=tls>"}, 0, "", "vvb"},
		{"bare URI, sips", "dialer", true, true, []string{"sips:1001@ccsbc"}, 0, "", "cucm"},
		{"REFER from CVP", "cvp", true, false, []string{"<sip:2000@127.0.0.1>"}, 501, "only from an Outbound Option dialer", ""},
		{"dialer already gone", "dialer", true, false, []string{"<sip:2000@127.0.0.1>"}, 403, "already left", ""},
		{"before the answer", "dialer", false, true, []string{"<sip:2000@127.0.0.1>"}, 403, "answered call", ""},
		{"no Refer-To", "dialer", true, true, nil, 400, "exactly one Refer-To", ""},
		{"two Refer-To", "dialer", true, true, []string{"<sip:2000@h>", "<sip:2001@h>"}, 400, "exactly one Refer-To", ""},
		{"tel URI", "dialer", true, true, []string{"<tel:+15551234>"}, 400, "SIP URI", ""},
		{"attended transfer", "dialer", true, true, []string{"<sip:2000@127.0.0.1?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"}, 501, "Replaces", ""},
		{"no user", "dialer", true, true, []string{"<sip:127.0.0.1>"}, 400, "no user", ""},
		{"no route", "dialer", true, true, []string{"<sip:9000@127.0.0.1>"}, 404, "no route for 9000", ""},
		{"whisper route", "dialer", true, true, []string{"<sip:5000@127.0.0.1>"}, 403, "whisper", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, l := newCall(tc.from, tc.answered, tc.connected)
			req := sip.NewRequest(sip.REFER, sip.Uri{Scheme: "sip", User: "ccsbc", Host: "127.0.0.1"})
			for _, v := range tc.referTo {
				req.AppendHeader(sip.NewHeader("Refer-To", v))
			}
			target, code, _, reason := c.checkRefer(l, req)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Fatalf("got %d %q, want %d ~%q", code, reason, tc.code, tc.reason)
			}
			if code == 0 && (target.peer == nil || target.peer.Name != tc.wantPeer || target.listener == nil) {
				t.Errorf("target %+v, want peer %s", target, tc.wantPeer)
			}
		})
	}
}

// TestUpgradeOffer: once the dialer has left, ccsbc's offer on the agent
// leg is RTP/SAVP with fresh keys of its own; an answer with SRTP gives the
// relay its transforms, one without SRTP is refused (the caller of
// applyAnswer then ends the call: fail closed).
func TestUpgradeOffer(t *testing.T) {
	c := newTestCall(t, policy.RTP, policy.RTP, "TLS")
	if _, err := c.handleOffer(c.in, sdpWith("RTP/AVP")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.handleAnswer(c.out, sdpWith("RTP/AVP")); err != nil {
		t.Fatal(err)
	}
	c.clearOffer()
	if c.last[media.A] == nil || c.last[media.B] == nil {
		t.Fatal("the completed exchange was not remembered")
	}
	c.dec[media.B] = policy.Decision{Protection: policy.SRTP, Reason: "model 3 encrypts the agent leg"}

	c.mu.Lock()
	offer, err := c.offerLocked(c.out, c.last[media.A])
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(offer), "RTP/SAVP") || strings.Count(string(offer), "a=crypto:") != 2 {
		t.Fatalf("upgrade offer without SDES:\n%s", offer)
	}
	if err := c.applyAnswer(c.out, c.last[media.A], offer, sdpWith("RTP/AVP")); !errors.Is(err, ErrSRTPRequired) {
		t.Fatalf("a plain answer to the upgrade: %v, want ErrSRTPRequired", err)
	}
	phone, _ := media.GenerateSRTPKeys(media.SRTPAESCM128HMACSHA1_80)
	if err := c.applyAnswer(c.out, c.last[media.A], offer, sdpWith("RTP/SAVP", formatCrypto(1, phone))); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	st := c.srtp[media.B][0]
	c.mu.Unlock()
	if !st.applied || st.remote.Suite != media.SRTPAESCM128HMACSHA1_80 || sameKeys(st.local, phone) {
		t.Errorf("agent leg SRTP state after the upgrade: applied=%v suite=%v", st.applied, st.remote.Suite)
	}
}

// TestDialerLegAfterTransfer: the dialer's old leg never counts as one of
// the call's legs again, before or after it is forgotten, so that its BYE
// (which baresip and Cisco's dialer send after the final NOTIFY, crossing
// ccsbc's own) cannot end the transferred call.
func TestDialerLegAfterTransfer(t *testing.T) {
	s := &Server{}
	c := &call{s: s, ended: make(chan struct{})}
	dialer := &leg{side: media.A, callID: "d", localTag: "1"}
	c.in = &leg{side: media.A, callID: "n", localTag: "2"}
	c.out = &leg{side: media.B, callID: "o", localTag: "3"}
	c.xfer.detached = []*leg{dialer}
	s.calls.Store(dialogKey("d", "1"), c)
	if c.current(dialer) || c.legOf("d", "1") != dialer {
		t.Fatal("a detached leg must be found, and not be current")
	}
	c.forgetLeg(dialer)
	if c.current(dialer) || c.legOf("d", "1") != nil {
		t.Fatal("a forgotten leg must be neither found nor current")
	}
	if _, ok := s.calls.Load(dialogKey("d", "1")); ok {
		t.Error("a forgotten leg's dialog still routes to the call")
	}
	if !c.current(c.in) || !c.current(c.out) || c.legOf("n", "2") != c.in {
		t.Error("the call's own legs")
	}
}
