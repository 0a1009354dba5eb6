package lab

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSIPpCall places a call SIPp to SIPp over UDP and over TCP: the caller
// plays a tone, the callee echoes it, and the capture counts both ways.
func TestSIPpCall(t *testing.T) {
	Need(t, "sipp", "tshark")
	t.Parallel()
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			uas := SIPpUAS(t, SIPpOptions{Scenario: "uas.xml", Transport: tr, Echo: true, Calls: 1})
			uacMedia := FreeMediaPort(t)
			capt := StartCapture(t, "lo", fmt.Sprintf("udp port %d or udp port %d", uas.MediaPort(), uacMedia))
			res, err := SIPpUAC(t, SIPpOptions{
				Scenario: "uac.xml", Transport: tr, Remote: uas.Addr(), MediaPort: uacMedia,
				Service: "2000", Duration: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Successful != 1 || res.Sent("INVITE") != 1 || res.Received("200") != 2 || res.Sent("BYE") != 1 {
				t.Errorf("caller: %v, messages %+v", res, res.Messages)
			}
			ures, err := uas.Wait(ctx(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if ures.Successful != 1 || ures.Received("INVITE") != 1 || ures.Received("BYE") != 1 {
				t.Errorf("callee: %v, messages %+v", ures, ures.Messages)
			}
			capt.Stop()
			sent := capt.PacketsBetween(uacMedia, uas.MediaPort())
			echoed := capt.PacketsBetween(uas.MediaPort(), uacMedia)
			// 1 s of 20 ms packets is 50.
			if sent < 40 || echoed < sent-2 {
				t.Errorf("RTP: %d packets sent, %d echoed; want about 50 each", sent, echoed)
			}
			payloads := capt.RTPPayloads(fmt.Sprintf("udp.dstport==%d", uacMedia))
			var audio []int16
			for _, p := range payloads {
				s, err := PCMU.Decode(p)
				if err != nil {
					t.Fatal(err)
				}
				audio = append(audio, s...)
			}
			if st := AnalyzeAudio(audio, SampleRate); st.Freq < 950 || st.Freq > 1050 || st.Active < 0.9 {
				t.Errorf("echoed audio: %v, want the 1 kHz tone", st)
			}
		})
	}
}

// TestBaresipTLSCall calls baresip to baresip over SIP/TLS with plain RTP,
// SDES-SRTP and DTLS-SRTP: both hear the other's tone, and the wire shows
// neither cleartext SIP nor, with SRTP, readable audio.
func TestBaresipTLSCall(t *testing.T) {
	Need(t, "baresip", "tshark")
	t.Parallel()
	for _, enc := range []string{"", "srtp-mand", "dtls_srtp"} {
		name := enc
		if name == "" {
			name = "rtp"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			callee := Baresip(t, BaresipOptions{User: "1000", MediaEnc: enc, ToneHz: 800})
			caller := Baresip(t, BaresipOptions{User: "2000", MediaEnc: enc, ToneHz: 1200})
			alo, ahi := callee.RTPPorts()
			blo, bhi := caller.RTPPorts()
			capt := StartCapture(t, "lo", fmt.Sprintf("tcp port %d or udp portrange %d-%d or udp portrange %d-%d",
				callee.Port()+1, alo, ahi, blo, bhi))

			if err := caller.Dial(callee.URI()); err != nil {
				t.Fatal(err)
			}
			c := ctx(t, 15*time.Second)
			for _, ua := range []*UA{caller, callee} {
				if _, err := ua.WaitEstablished(c); err != nil {
					t.Fatal(err)
				}
				if _, err := ua.WaitMedia(c); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(1500 * time.Millisecond)
			if err := caller.Hangup(); err != nil {
				t.Fatal(err)
			}
			for _, ua := range []*UA{caller, callee} {
				if _, err := ua.WaitClosed(c); err != nil {
					t.Fatal(err)
				}
			}
			caller.Stop()
			callee.Stop()

			for _, x := range []struct {
				ua   *UA
				hear float64
			}{{caller, 800}, {callee, 1200}} {
				st, err := x.ua.ReceivedAudio()
				if err != nil {
					t.Fatal(err)
				}
				if st.Freq < x.hear-50 || st.Freq > x.hear+50 || st.Active < 0.5 {
					t.Errorf("%s heard %v, want the %.0f Hz tone", x.ua.name, st, x.hear)
				}
				stats := x.ua.CallStats()
				if len(stats) != 1 || stats[0].Received < 40 || stats[0].Sent < 40 {
					t.Errorf("%s RTP stats %+v, want one call with packets both ways", x.ua.name, stats)
				}
				menc := x.ua.MediaEncryption()
				switch enc {
				case "":
					if len(menc) != 0 {
						t.Errorf("%s media encryption %v, want none", x.ua.name, menc)
					}
				case "srtp-mand":
					if len(menc) == 0 || !strings.HasSuffix(menc[0], "AES_CM_128_HMAC_SHA1_80") {
						t.Errorf("%s media encryption %v, want SDES AES_CM_128_HMAC_SHA1_80", x.ua.name, menc)
					}
				case "dtls_srtp":
					if len(menc) == 0 || menc[0] != "0,audio,RTP" {
						t.Errorf("%s media encryption %v, want DTLS-SRTP", x.ua.name, menc)
					}
				}
			}

			capt.Stop()
			tlsPort := fmt.Sprintf("tcp.port==%d", callee.Port()+1)
			if n := capt.Count(tlsPort + " && tls.handshake"); n == 0 {
				t.Errorf("no TLS handshake on the SIP port")
			}
			if capt.ContainsCleartext(tlsPort, "INVITE sip:") || capt.Count(tlsPort+" && sip") != 0 {
				t.Errorf("cleartext SIP on the TLS port")
			}
			audio := bytes.Join(capt.RTPPayloads(fmt.Sprintf("udp.srcport>=%d && udp.srcport<=%d", blo, bhi)), nil)
			if len(audio) < 40*160 {
				t.Fatalf("captured %d bytes of the caller's RTP payload, want about 2 s", len(audio))
			}
			h := Entropy(audio)
			if enc == "" && h > 7 {
				t.Errorf("plain RTP payload entropy %.2f bits/byte: not G.711?", h)
			}
			if enc != "" && h < 7.5 {
				t.Errorf("SRTP payload entropy %.2f bits/byte, want ~8 (encrypted)", h)
			}
		})
	}
}

// TestSIPpCancel: the caller cancels while the callee rings.
func TestSIPpCancel(t *testing.T) {
	Need(t, "sipp")
	t.Parallel()
	uas := SIPpUAS(t, SIPpOptions{Scenario: "uas_ring.xml", Calls: 1})
	res, err := SIPpUAC(t, SIPpOptions{Scenario: "uac_cancel.xml", Remote: uas.Addr(), Service: "1000", Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent("CANCEL") != 1 || res.Received("487") != 1 || res.Sent("ACK") != 1 {
		t.Errorf("caller: %+v", res.Messages)
	}
	ures, err := uas.Wait(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if ures.Received("CANCEL") != 1 || ures.Sent("487") != 1 || ures.Received("ACK") != 1 {
		t.Errorf("callee: %+v", ures.Messages)
	}
}

// TestSIPpHoldResume: hold (sendonly -> recvonly) and resume (sendrecv)
// with re-INVITEs, over TCP.
func TestSIPpHoldResume(t *testing.T) {
	Need(t, "sipp")
	t.Parallel()
	uas := SIPpUAS(t, SIPpOptions{Scenario: "uas_reinvite.xml", Transport: "tcp", Echo: true, Calls: 1})
	res, err := SIPpUAC(t, SIPpOptions{Scenario: "uac_reinvite.xml", Transport: "tcp", Remote: uas.Addr(),
		Service: "1000", Duration: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent("INVITE") != 3 || res.Received("200") != 4 {
		t.Errorf("caller: %+v", res.Messages)
	}
	ures, err := uas.Wait(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if ures.Received("INVITE") != 3 {
		t.Errorf("callee: %+v", ures.Messages)
	}
	// The callee mirrored the hold: its second 200 says recvonly.
	trace := ures.Trace()
	if !strings.Contains(trace, "a=recvonly") || strings.Count(trace, "a=sendrecv") < 3 {
		t.Errorf("callee's answers do not mirror hold and resume:\n%s", trace)
	}
}

// TestSIPpExpectedFailure: a callee that answers 404 is what uac_expect.xml
// expects with -key expect 404, and a failed call when it expects 486.
func TestSIPpExpectedFailure(t *testing.T) {
	Need(t, "sipp")
	t.Parallel()
	for _, want := range []string{"404", "486"} {
		t.Run(want, func(t *testing.T) {
			t.Parallel()
			uas := SIPpUAS(t, SIPpOptions{Scenario: "uas_reject.xml", Calls: 1, Keys: map[string]string{"code": "404"}})
			res, err := SIPpUAC(t, SIPpOptions{Scenario: "uac_expect.xml", Remote: uas.Addr(), Service: "9999",
				Keys: map[string]string{"expect": want}})
			if want == "404" {
				if err != nil {
					t.Fatal(err)
				}
				if log := readFile(res.LogFile); !strings.Contains(log, `final response 404 (expected 404) Warning: 399 ccsbc-lab`) {
					t.Errorf("log actions: %q", log)
				}
			} else {
				if err == nil || res.Failed != 1 || res.ExitCode != 1 {
					t.Fatalf("expecting 486 from a 404 callee: %v, err %v", res, err)
				}
				if !strings.Contains(res.Errors(), "404:486") {
					t.Errorf("error log does not show the mismatch:\n%s", res.Errors())
				}
			}
			// The callee got its ACK either way.
			if ures, err := uas.Wait(ctx(t, 10*time.Second)); err != nil || ures.Received("ACK") != 1 {
				t.Errorf("callee: %v, err %v", ures, err)
			}
		})
	}
}

// TestSIPpKeepalives: a UAS answers OPTIONS (ccsbc's keepalives) between
// calls, and Stop ends it with the counts of what it saw.
func TestSIPpKeepalives(t *testing.T) {
	Need(t, "sipp")
	t.Parallel()
	uas := SIPpUAS(t, SIPpOptions{Scenario: "uas.xml"}) // no Calls: until Stop
	for i := 0; i < 2; i++ {
		resp, err := SIPOptions(ctx(t, 5*time.Second), "udp", uas.Addr(), nil)
		if err != nil || resp.Status != 200 {
			t.Fatalf("OPTIONS: %d, %v", resp.Status, err)
		}
	}
	if _, err := SIPpUAC(t, SIPpOptions{Scenario: "uac_options.xml", Remote: uas.Addr(), Service: "ping"}); err != nil {
		t.Fatal(err)
	}
	if _, err := SIPpUAC(t, SIPpOptions{Remote: uas.Addr(), Service: "1000", Duration: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	res := uas.Stop()
	if res.Killed != "" || res.Received("OPTIONS") != 3 || res.Received("INVITE") != 1 || res.Successful != 4 || res.Failed != 0 {
		t.Errorf("callee: %v, killed %q, messages %+v", res, res.Killed, res.Messages)
	}
}

// TestSIPpDTMF: uac_dtmf.xml presses 5 after the audio; the callee's side
// of the wire shows the RFC 4733 events.
func TestSIPpDTMF(t *testing.T) {
	Need(t, "sipp", "tshark")
	t.Parallel()
	uas := SIPpUAS(t, SIPpOptions{Calls: 1})
	capt := StartCapture(t, "lo", fmt.Sprintf("udp dst port %d", uas.MediaPort()))
	if _, err := SIPpUAC(t, SIPpOptions{Scenario: "uac_dtmf.xml", Remote: uas.Addr(), Service: "2000",
		Duration: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	capt.Stop()
	events := capt.Fields("rtpevent", "rtpevent.event_id", "rtp.marker")
	if len(events) != 10 || events[0][0] != "5" || events[0][1] != "1" {
		t.Errorf("telephone-events at the callee: %v, want 10 packets of event 5, marker on the first", events)
	}
	if n := capt.Count("rtp.p_type==0"); n < 10 {
		t.Errorf("%d audio packets before the key press, want about 15", n)
	}
}
