package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/ccsbc/ccsbc/config"
	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

// newTestCall builds a call between two TLS legs whose media decisions are
// given, over a real relay on loopback.
func newTestCall(t *testing.T, in, out policy.Protection, inTransport string) *call {
	t.Helper()
	mm, err := media.NewManager(media.Config{Bind: netip.MustParseAddr("127.0.0.1"), PortMin: 47000, PortMax: 47199}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mm.Close() })
	s := &Server{cfg: &config.Config{Media: config.Media{Advertise: netip.MustParseAddr("127.0.0.1")}}, log: zap.NewNop(), media: mm}
	// The instance certificate, as New loads it: DTLS-SRTP presents it.
	if s.cert, _, err = config.LoadOrCreateCertificate(&config.TLS{StateDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	s.dtlsFP = media.Fingerprint(s.cert)
	c := &call{s: s, log: zap.NewNop(), ended: make(chan struct{})}
	c.in = &leg{side: media.A, peerName: "cvp", transport: inTransport, callID: "in", origin: sdpOrigin{id: 1, version: 1},
		peer: &config.Peer{Name: "cvp"}, signalIP: netip.MustParseAddr("127.0.0.1")}
	c.out = &leg{side: media.B, peerName: "cucm", transport: "TLS", callID: "out", origin: sdpOrigin{id: 2, version: 1},
		peer: &config.Peer{Name: "cucm"}, signalIP: netip.MustParseAddr("127.0.0.1")}
	c.dec = [2]policy.Decision{{Protection: in, Reason: "in rule"}, {Protection: out, Reason: "out rule"}}
	t.Cleanup(func() {
		for _, st := range c.streams {
			if st != nil {
				st.Close()
			}
		}
	})
	return c
}

func sdpWith(proto string, cryptos ...string) []byte {
	b := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 30000 " + proto + " 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
	for _, c := range cryptos {
		b += "a=crypto:" + c + "\r\n"
	}
	return []byte(b)
}

func cryptoLines(body []byte) []string {
	var out []string
	for _, l := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=crypto:"); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestSDESPerLegRekeying(t *testing.T) {
	c := newTestCall(t, policy.SRTP, policy.SRTP, "TLS")
	callerKey := "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30
	offerOut, err := c.handleOffer(c.in, sdpWith("RTP/SAVP", callerKey))
	if err != nil {
		t.Fatal(err)
	}
	lines := cryptoLines(offerOut)
	if !strings.Contains(string(offerOut), "RTP/SAVP") || len(lines) != 2 ||
		!strings.Contains(lines[0], "AES_CM_128_HMAC_SHA1_80") || !strings.Contains(lines[1], "AES_CM_128_HMAC_SHA1_32") {
		t.Fatalf("offer to the agent leg:\n%s", offerOut)
	}
	if strings.Contains(string(offerOut), key30) {
		t.Fatal("the caller's key crossed to the other leg")
	}

	// The phone answers RTP/AVP: the SRTP-required leg fails closed.
	if _, err := c.handleAnswer(c.out, sdpWith("RTP/AVP")); !errors.Is(err, ErrSRTPRequired) {
		t.Fatalf("RTP/AVP answer on an SRTP leg: err %v", err)
	}

	// It answers with the second suite under a tag of its own: matched by
	// suite; the answer to the caller keeps the caller's tag and suite.
	phone, _ := media.GenerateSRTPKeys(media.SRTPAESCM128HMACSHA1_32)
	ans, err := c.handleAnswer(c.out, sdpWith("RTP/SAVP", formatCrypto(9, phone)))
	if err != nil {
		t.Fatal(err)
	}
	al := cryptoLines(ans)
	if len(al) != 1 || !strings.HasPrefix(al[0], "1 AES_CM_128_HMAC_SHA1_80 inline:") || strings.Contains(al[0], key30) {
		t.Fatalf("answer to the caller: %q", al)
	}
	a, b := c.srtp[media.A][0], c.srtp[media.B][0]
	if !a.applied || !b.applied || b.local.Suite != media.SRTPAESCM128HMACSHA1_32 || !sameKeys(b.remote, phone) {
		t.Fatalf("keys not applied: a=%+v b=%+v", a, b)
	}
	aLocal := a.local

	// A re-INVITE with the same keys keeps the contexts (and ccsbc's keys).
	c.clearOffer()
	offer2, err := c.handleOffer(c.in, sdpWith("RTP/SAVP", callerKey))
	if err != nil {
		t.Fatal(err)
	}
	if cryptoLines(offer2)[1] != lines[1] {
		t.Errorf("ccsbc changed its key toward the agent on an unchanged re-offer")
	}
	phoneLine := formatCrypto(9, phone)
	if _, err := c.handleAnswer(c.out, sdpWith("RTP/SAVP", phoneLine)); err != nil {
		t.Fatal(err)
	}
	if !sameKeys(c.srtp[media.A][0].local, aLocal) || !c.srtp[media.B][0].applied {
		t.Errorf("unchanged re-INVITE re-keyed")
	}

	// The phone re-keys: the agent leg's context is replaced.
	c.clearOffer()
	if _, err := c.handleOffer(c.in, sdpWith("RTP/SAVP", callerKey)); err != nil {
		t.Fatal(err)
	}
	phone2, _ := media.GenerateSRTPKeys(media.SRTPAESCM128HMACSHA1_32)
	if _, err := c.handleAnswer(c.out, sdpWith("RTP/SAVP", formatCrypto(9, phone2))); err != nil {
		t.Fatal(err)
	}
	if !sameKeys(c.srtp[media.B][0].remote, phone2) {
		t.Errorf("new phone keys not taken")
	}
}

func TestSDESInterworkingAndRefusals(t *testing.T) {
	key := "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30
	tests := []struct {
		name      string
		in, out   policy.Protection
		transport string
		offer     []byte
		wantErr   error
		wantOut   string // protocol offered on the other leg
	}{
		{"RTP caller to SRTP agent", policy.RTP, policy.SRTP, "TLS", sdpWith("RTP/AVP"), nil, "RTP/SAVP"},
		{"SRTP caller to RTP IVR", policy.SRTP, policy.RTP, "TLS", sdpWith("RTP/SAVP", key), nil, "RTP/AVP"},
		{"SRTP leg offered RTP", policy.SRTP, policy.SRTP, "TLS", sdpWith("RTP/AVP"), ErrSRTPRequired, ""},
		{"RTP leg offered SAVP only", policy.RTP, policy.RTP, "TLS", sdpWith("RTP/SAVP", key), ErrSRTPUnsupported, ""},
		{"best-effort SRTP declined on an RTP leg", policy.RTP, policy.RTP, "TLS", sdpWith("RTP/AVP", key), nil, "RTP/AVP"},
		{"SDES over UDP", policy.RTP, policy.RTP, "UDP", sdpWith("RTP/AVP", key), ErrSDESInsecure, ""},
		{"GCM not allowed toward a Cisco peer", policy.SRTP, policy.SRTP, "TLS", sdpWith("RTP/SAVP", "1 AEAD_AES_128_GCM inline:"+strings.Repeat("A", 36)), ErrSRTPRequired, ""},
		{"MKI refused", policy.SRTP, policy.SRTP, "TLS", sdpWith("RTP/SAVP", key+"|2^31|1:4"), ErrSRTPRequired, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCall(t, tc.in, tc.out, tc.transport)
			body, err := c.handleOffer(c.in, tc.offer)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), key30) {
					t.Fatal("error text carries a key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(body), "m=audio ") || !strings.Contains(string(body), " "+tc.wantOut+" ") {
				t.Fatalf("offer on the other leg:\n%s", body)
			}
			if (tc.wantOut == "RTP/SAVP") != (len(cryptoLines(body)) > 0) {
				t.Fatalf("crypto lines do not match the protocol:\n%s", body)
			}
		})
	}
}

// TestSRTPInterworkingKeys: a plain caller to an SRTP agent leg gets keys of
// ccsbc's own on the agent leg, applied to the relay, never printed.
func TestSRTPInterworkingKeys(t *testing.T) {
	c := newTestCall(t, policy.RTP, policy.SRTP, "TLS")
	if _, err := c.handleOffer(c.in, sdpWith("RTP/AVP")); err != nil {
		t.Fatal(err)
	}
	phone, _ := media.GenerateSRTPKeys(media.SRTPAESCM128HMACSHA1_80)
	if _, err := c.handleAnswer(c.out, sdpWith("RTP/SAVP", formatCrypto(1, phone))); err != nil {
		t.Fatal(err)
	}
	st := c.srtp[media.B][0]
	if st.local.Suite != media.SRTPAESCM128HMACSHA1_80 || sameKeys(st.local, phone) || !st.applied {
		t.Fatalf("agent leg keys: %+v", st)
	}
	if s := fmt.Sprint(st.local); !strings.Contains(s, "redacted") {
		t.Fatalf("keys print as %q", s)
	}
}
