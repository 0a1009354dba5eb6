package sip

import (
	"errors"
	"strings"
	"testing"

	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

const peerFP = "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:AF:D8:D6:BE:0B:05:FE:69:83:4D:44"

// dtlsSDP is an m= line as a DTLS-SRTP endpoint writes it; extra lines
// are appended as given.
func dtlsSDP(extra ...string) []byte {
	b := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 30000 UDP/TLS/RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
	for _, l := range extra {
		b += l + "\r\n"
	}
	return []byte(b)
}

func sdpLines(body []byte, prefix string) []string {
	var out []string
	for _, l := range strings.Split(string(body), "\r\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// A DTLS-SRTP caller and an SDES agent: each leg gets its own keying, and
// nothing of one leg's DTLS parameters crosses to the other.
func TestDTLSCallerToSDESAgent(t *testing.T) {
	c := newTestCall(t, policy.DTLSSRTP, policy.SRTP, "TLS")
	offer, err := c.handleOffer(c.in, dtlsSDP("a=fingerprint:"+peerFP, "a=setup:actpass", "a=rtcp-mux", "a=tls-id:abc"))
	if err != nil {
		t.Fatal(err)
	}
	o := string(offer)
	if !strings.Contains(o, " RTP/SAVP ") || len(cryptoLines(offer)) == 0 {
		t.Fatalf("offer to the SDES agent is not RTP/SAVP with a=crypto:\n%s", o)
	}
	for _, leak := range []string{"fingerprint", "setup", "tls-id", "UDP/TLS"} {
		if strings.Contains(o, leak) {
			t.Errorf("offer to the SDES agent carries %s of the DTLS leg:\n%s", leak, o)
		}
	}
	phone, _ := media.GenerateSRTPKeys(media.SRTPAESCM128HMACSHA1_80)
	ans, err := c.handleAnswer(c.out, sdpWith("RTP/SAVP", formatCrypto(1, phone)))
	if err != nil {
		t.Fatal(err)
	}
	a := string(ans)
	if !strings.Contains(a, " UDP/TLS/RTP/SAVP ") || len(cryptoLines(ans)) != 0 {
		t.Fatalf("answer to the DTLS caller:\n%s", a)
	}
	if fp := sdpLines(ans, "a=fingerprint:"); len(fp) != 1 || fp[0] != "a=fingerprint:"+c.s.dtlsFP {
		t.Errorf("answer fingerprint %q, want ccsbc's %q", fp, c.s.dtlsFP)
	}
	// ccsbc takes the active end when the offerer says actpass, and runs
	// rtcp-mux (no a=rtcp).
	if got := sdpLines(ans, "a=setup:"); len(got) != 1 || got[0] != "a=setup:active" {
		t.Errorf("answer setup %q, want active", got)
	}
	if len(sdpLines(ans, "a=rtcp-mux")) != 1 || len(sdpLines(ans, "a=rtcp:")) != 0 {
		t.Errorf("answer to a DTLS leg must say rtcp-mux only:\n%s", a)
	}
	d := c.srtp[media.A][0].dtls
	if !d.started || d.role != media.DTLSClient || !sameFingerprint(d.peerFP, peerFP) {
		t.Errorf("DTLS leg state after the answer: %+v", d)
	}

	// A re-INVITE with the same fingerprint keeps the association and
	// ccsbc's role; a new fingerprint is refused, the call goes on.
	c.clearOffer()
	if _, err := c.handleOffer(c.in, dtlsSDP("a=fingerprint:"+peerFP, "a=setup:actpass", "a=rtcp-mux")); err != nil {
		t.Fatal(err)
	}
	ans2, err := c.handleAnswer(c.out, sdpWith("RTP/SAVP", formatCrypto(1, phone)))
	if err != nil {
		t.Fatal(err)
	}
	if got := sdpLines(ans2, "a=setup:"); len(got) != 1 || got[0] != "a=setup:active" {
		t.Errorf("re-INVITE answer setup %q, want the running role (active)", got)
	}
	c.clearOffer()
	other := strings.Replace(peerFP, "4A:AD", "4B:AD", 1)
	if _, err := c.handleOffer(c.in, dtlsSDP("a=fingerprint:"+other, "a=setup:actpass", "a=rtcp-mux")); !errors.Is(err, ErrSRTPRequired) {
		t.Errorf("re-INVITE with a new fingerprint: err %v, want ErrSRTPRequired", err)
	}
}

// What a DTLS-SRTP leg refuses in an offer, each with the reason.
func TestDTLSOfferRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"RTP/AVP", sdpWith("RTP/AVP"), "not UDP/TLS/RTP/SAVP"},
		{"SDES instead", sdpWith("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:"+key30), "not UDP/TLS/RTP/SAVP"},
		{"no fingerprint", dtlsSDP("a=setup:actpass", "a=rtcp-mux"), "no a=fingerprint"},
		{"sha-1", dtlsSDP("a=fingerprint:sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB", "a=rtcp-mux"), "only sha-256"},
		{"fingerprint not hex", dtlsSDP("a=fingerprint:sha-256 ZZ:11", "a=setup:actpass", "a=rtcp-mux"), "colon-separated hex"},
		{"no rtcp-mux", dtlsSDP("a=fingerprint:"+peerFP, "a=setup:actpass"), "rtcp-mux"},
		{"holdconn", dtlsSDP("a=fingerprint:"+peerFP, "a=setup:holdconn", "a=rtcp-mux"), "a=setup:holdconn"},
	} {
		c := newTestCall(t, policy.DTLSSRTP, policy.SRTP, "TLS")
		_, err := c.handleOffer(c.in, tc.body)
		if !errors.Is(err, ErrSRTPRequired) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want ErrSRTPRequired mentioning %q", tc.name, err, tc.want)
		}
	}
	// An SDES leg refuses a DTLS-SRTP offer by name.
	c := newTestCall(t, policy.SRTP, policy.SRTP, "TLS")
	if _, err := c.handleOffer(c.in, dtlsSDP("a=fingerprint:"+peerFP, "a=setup:actpass", "a=rtcp-mux")); !errors.Is(err, ErrSRTPRequired) || !strings.Contains(err.Error(), "srtp_keying: sdes") {
		t.Errorf("DTLS offer on an SDES leg: err %v", err)
	}
}

// ccsbc offering toward a DTLS-SRTP peer: actpass, its fingerprint,
// rtcp-mux; the answer settles the role and must not say actpass.
func TestDTLSOfferToPeer(t *testing.T) {
	c := newTestCall(t, policy.RTP, policy.DTLSSRTP, "TCP")
	offer, err := c.handleOffer(c.in, sdpWith("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(offer), " UDP/TLS/RTP/SAVP ") || len(sdpLines(offer, "a=setup:actpass")) != 1 ||
		len(sdpLines(offer, "a=fingerprint:"+c.s.dtlsFP)) != 1 || len(sdpLines(offer, "a=rtcp-mux")) != 1 || len(sdpLines(offer, "a=rtcp:")) != 0 {
		t.Fatalf("offer to the DTLS peer:\n%s", offer)
	}
	if _, err := c.handleAnswer(c.out, dtlsSDP("a=fingerprint:"+peerFP, "a=setup:actpass", "a=rtcp-mux")); !errors.Is(err, ErrSRTPRequired) {
		t.Errorf("answer with actpass: err %v", err)
	}
	if _, err := c.handleAnswer(c.out, sdpWith("RTP/AVP")); !errors.Is(err, ErrSRTPRequired) {
		t.Errorf("RTP/AVP answer on a DTLS leg: err %v", err)
	}
	ans, err := c.handleAnswer(c.out, dtlsSDP("a=fingerprint:"+peerFP, "a=setup:passive", "a=rtcp-mux"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ans), "SAVP") || strings.Contains(string(ans), "fingerprint") {
		t.Errorf("answer to the RTP caller carries DTLS-SRTP:\n%s", ans)
	}
	if d := c.srtp[media.B][0].dtls; !d.started || d.role != media.DTLSClient {
		t.Errorf("peer answered passive: ccsbc must be the client, state %+v", d)
	}
}

// A leg that ccsbc offers on by itself (a transfer's new leg, the dialer
// upgrade) starts its DTLS-SRTP handshake once the answer is applied, as a
// relayed exchange does: it never relays plain RTP in the meantime.
func TestDTLSOnLegCCSBCOffers(t *testing.T) {
	c := newTestCall(t, policy.RTP, policy.DTLSSRTP, "TLS")
	if _, err := c.handleOffer(c.in, sdpWith("RTP/AVP")); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.srtp[media.B] = nil // the leg is new
	src, _ := parseSDP(sdpWith("RTP/AVP"))
	offer, err := c.offerLocked(c.out, src)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(sdpLines(offer, "a=setup:actpass")) != 1 {
		t.Fatalf("offer on the DTLS leg:\n%s", offer)
	}
	if err := c.applyAnswer(c.out, src, offer, dtlsSDP("a=fingerprint:"+peerFP, "a=setup:active", "a=rtcp-mux")); err != nil {
		t.Fatal(err)
	}
	if d := c.srtp[media.B][0].dtls; !d.started || d.role != media.DTLSServer {
		t.Errorf("after the answer: DTLS state %+v, want started as server", d)
	}
}
