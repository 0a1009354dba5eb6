package sip

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

const offerCVP = "v=0\r\n" +
	"o=CiscoSystemsSIP-GW-UserAgent 4321 1234 IN IP4 10.1.1.10\r\n" +
	"s=SIP Call\r\n" +
	"c=IN IP4 10.1.1.10\r\n" +
	"t=0 0\r\n" +
	"m=audio 16384 RTP/AVP 0 101\r\n" +
	"c=IN IP4 10.1.1.11\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-16\r\n" +
	"a=candidate:1 1 UDP 2130706431 10.1.1.11 16384 typ host\r\n" +
	"a=ptime:20\r\n" +
	"a=sendrecv\r\n"

func TestParseSDP(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    sdpMedia
		wantErr string
	}{
		{name: "media-level c= wins", body: offerCVP, want: sdpMedia{
			Kind: "audio", Proto: "RTP/AVP", Direction: "sendrecv",
			RTP: netip.MustParseAddrPort("10.1.1.11:16384"), RTCP: netip.MustParseAddrPort("10.1.1.11:16385"),
		}},
		{name: "rtcp attribute and mux", body: "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8\r\na=rtcp:5003\r\na=rtcp-mux\r\n",
			want: sdpMedia{Kind: "audio", Proto: "RTP/AVP", Direction: "sendrecv", Mux: true,
				RTP: netip.MustParseAddrPort("1.2.3.4:5000"), RTCP: netip.MustParseAddrPort("1.2.3.4:5000")}},
		{name: "rtcp attribute with address", body: "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8\r\na=rtcp:6001 IN IP4 5.6.7.8\r\n",
			want: sdpMedia{Kind: "audio", Proto: "RTP/AVP", Direction: "sendrecv",
				RTP: netip.MustParseAddrPort("1.2.3.4:5000"), RTCP: netip.MustParseAddrPort("5.6.7.8:6001")}},
		{name: "hold sendonly", body: "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendonly\r\n",
			want: sdpMedia{Kind: "audio", Proto: "RTP/AVP", Direction: "sendonly", Hold: true,
				RTP: netip.MustParseAddrPort("1.2.3.4:5000"), RTCP: netip.MustParseAddrPort("1.2.3.4:5001")}},
		{name: "old hold 0.0.0.0", body: "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
			want: sdpMedia{Kind: "audio", Proto: "RTP/AVP", Direction: "sendrecv", Hold: true,
				RTP: netip.MustParseAddrPort("0.0.0.0:5000"), RTCP: netip.MustParseAddrPort("0.0.0.0:5001")}},
		{name: "no m line", body: "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n", wantErr: "no m= line"},
		{name: "no c line", body: "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n", wantErr: "no c= line"},
		{name: "hostname in c", body: "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 evil.example\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n", wantErr: "not an IP address"},
		{name: "garbage", body: "hello", wantErr: "malformed SDP"},
		{name: "bad rtcp", body: "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtcp:99999\r\n", wantErr: "a=rtcp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sd, err := parseSDP([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrSDPMalformed) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := sd.media[0]
			got.Formats = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestRewriteHidesTopology(t *testing.T) {
	sd, err := parseSDP([]byte(offerCVP))
	if err != nil {
		t.Fatal(err)
	}
	o := &sdpOrigin{id: 77, version: 1}
	adv := netip.MustParseAddr("192.0.2.5")
	ports := []localPorts{{RTP: netip.MustParseAddrPort("127.0.0.1:40002"), RTCP: netip.MustParseAddrPort("127.0.0.1:40003")}}
	body, err := sd.rewrite(o, adv, ports)
	if err != nil {
		t.Fatal(err)
	}
	out := string(body)
	for _, leak := range []string{"10.1.1.10", "10.1.1.11", "16384", "candidate", "CiscoSystems"} {
		if strings.Contains(out, leak) {
			t.Errorf("rewritten SDP leaks %q:\n%s", leak, out)
		}
	}
	for _, want := range []string{"o=ccsbc 77 1 IN IP4 192.0.2.5", "c=IN IP4 192.0.2.5", "m=audio 40002 RTP/AVP 0 101", "a=rtcp:40003", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=sendrecv"} {
		if !strings.Contains(out, want) {
			t.Errorf("rewritten SDP lacks %q:\n%s", want, out)
		}
	}
	// The same description again keeps the version; a change bumps it.
	body2, _ := sd.rewrite(o, adv, ports)
	if !strings.Contains(string(body2), "o=ccsbc 77 1 ") {
		t.Errorf("unchanged SDP bumped the version:\n%s", body2)
	}
	ports[0].RTP = netip.MustParseAddrPort("127.0.0.1:40010")
	body3, _ := sd.rewrite(o, adv, ports)
	if !strings.Contains(string(body3), "o=ccsbc 77 2 ") {
		t.Errorf("changed SDP kept the version:\n%s", body3)
	}
	// The parsed original is not mutated by rewriting.
	if sd.sd.Origin.UnicastAddress != "10.1.1.10" || sd.sd.MediaDescriptions[0].MediaName.Port.Value != 16384 {
		t.Errorf("rewrite mutated its input")
	}
}

func TestRewriteDisabledAndHold(t *testing.T) {
	body := "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n"
	sd, err := parseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	out, err := sd.rewrite(&sdpOrigin{id: 1, version: 1}, netip.MustParseAddr("127.0.0.1"),
		[]localPorts{{RTP: netip.MustParseAddrPort("127.0.0.1:40000"), RTCP: netip.MustParseAddrPort("127.0.0.1:40001")}, {}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.Contains(s, "m=video 0 RTP/AVP 96") || !strings.Contains(s, "a=inactive") || strings.Contains(s, "0.0.0.0") {
		t.Fatalf("unexpected rewrite:\n%s", s)
	}
}

// TestRewriteMediaAddresses: the session's c= and o= carry the address of
// the first line's ports; a line whose ports are on another media address
// gets its own c=.
func TestRewriteMediaAddresses(t *testing.T) {
	body := "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\nm=video 5002 RTP/AVP 96\r\n"
	sd, err := parseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	out, err := sd.rewrite(&sdpOrigin{id: 1, version: 1}, netip.MustParseAddr("192.0.2.1"), []localPorts{
		{RTP: netip.MustParseAddrPort("10.0.0.6:40000"), RTCP: netip.MustParseAddrPort("10.0.0.6:40001"), Advertise: netip.MustParseAddr("203.0.113.6")},
		{RTP: netip.MustParseAddrPort("10.0.0.5:40000"), RTCP: netip.MustParseAddrPort("10.0.0.5:40001"), Advertise: netip.MustParseAddr("203.0.113.5")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "o=ccsbc 1 1 IN IP4 203.0.113.6\r\ns=ccsbc\r\nc=IN IP4 203.0.113.6\r\n"
	if s := string(out); !strings.Contains(s, want) || !strings.Contains(s, "m=video 40000 RTP/AVP 96\r\nc=IN IP4 203.0.113.5\r\n") ||
		strings.Count(s, "c=") != 2 || strings.Contains(s, "192.0.2.1") || strings.Contains(s, "10.0.0.") {
		t.Fatalf("rewrite over two media addresses:\n%s", s)
	}
}

func FuzzParseSDP(f *testing.F) {
	f.Add([]byte(offerCVP))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8\r\na=rtcp:5003\r\na=rtcp-mux\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := parseSDP(b)
		if err != nil {
			return
		}
		ports := make([]localPorts, len(sd.media))
		for i := range ports {
			ports[i] = localPorts{RTP: netip.MustParseAddrPort("127.0.0.1:40000"), RTCP: netip.MustParseAddrPort("127.0.0.1:40001")}
		}
		_, _ = sd.rewrite(&sdpOrigin{id: 1, version: 1}, netip.MustParseAddr("127.0.0.1"), ports)
	})
}
