package media

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// read waits for one packet and returns it with its source.
func (p *peer) read() ([]byte, netip.AddrPort) {
	p.t.Helper()
	buf := make([]byte, 1<<16)
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		p.t.Fatalf("%v: waiting for a packet: %v", p.addr(), err)
	}
	return buf[:n], from
}

// quiet checks that nothing more arrives at p: nothing was forwarded that
// should not have been.
func (p *peer) quiet() {
	p.t.Helper()
	buf := make([]byte, 1<<16)
	p.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, from, err := p.conn.ReadFromUDPAddrPort(buf); err == nil {
		p.t.Errorf("%v: unexpected packet from %v: % x", p.addr(), from, buf[:n])
	}
}

// recvSRTP waits for a packet from ccsbc's wantFrom, decrypts it as e's
// peer would, and checks it is want.
func (p *peer) recvSRTP(e *srtpEnd, rtcp bool, wantFrom netip.AddrPort, want []byte) {
	p.t.Helper()
	pkt, from := p.read()
	if from != wantFrom {
		p.t.Errorf("%v: packet from %v, want %v", p.addr(), from, wantFrom)
	}
	hdr := 12
	if rtcp {
		hdr = 8
	}
	if len(want) > hdr+4 && bytes.Contains(pkt, want[hdr:]) {
		p.t.Errorf("%v: payload arrived in clear on an SRTP leg", p.addr())
	}
	var got []byte
	var err error
	if rtcp {
		got, err = e.unprotectRTCP(pkt)
	} else {
		got, err = e.unprotectRTP(pkt)
	}
	if err != nil || !bytes.Equal(got, want) {
		p.t.Fatalf("%v: decrypting ccsbc's packet: %v\n got % x\nwant % x", p.addr(), err, got, want)
	}
}

// TestSRTPRelayInterworking: side A is plain RTP (an IOS VXML gateway),
// side B SRTP (an agent phone) behind NAT, with latching. Audio and RTCP
// cross intact both ways; forged and replayed packets are dropped, counted,
// never forwarded, and do not disturb the stream; B latches only onto a
// source whose packet authenticated.
func TestSRTPRelayInterworking(t *testing.T) {
	for _, suite := range allSRTPSuites {
		t.Run(suite.String(), func(t *testing.T) {
			m := newTestManager(t, 2, true, 0, true)
			s, err := m.NewStream("interwork", nil)
			if err != nil {
				t.Fatal(err)
			}
			phone := newSRTPEnd(t, suite, 10)
			rtpX, rtcpX := phone.transforms(t)
			s.SetTransform(B, rtpX, rtcpX)
			aRTP, aRTCP := s.Local(A)
			bRTP, bRTCP := s.Local(B)
			pa, paRTCP := newPeer(t), newPeer(t)
			pb, pbRTCP := newPeer(t), newPeer(t) // the phone's NAT mappings
			sdpB, forger := newPeer(t), newPeer(t)
			s.SetRemote(A, pa.addr(), paRTCP.addr(), false, lo)
			s.SetRemote(B, sdpB.addr(), netip.AddrPort{}, false, lo) // the phone's SDP address is not where it sends from

			// A forger from the signaled IP comes first: latching alone
			// would take it; it does not authenticate, so B stays unlatched.
			forger.send(bRTP, append(rtpPacket(0, 1, speech(1)), make([]byte, 16)...))
			waitFor(t, "forgery dropped", func() bool { return s.Stats().B.Drops.AuthFailed == 1 })

			var sent [][]byte // the phone's protected packets, for the replay below
			for seq := uint16(1); seq <= 50; seq++ {
				plain := rtpPacket(0, seq, speech(seq))
				pkt := phone.protectRTP(t, plain)
				sent = append(sent, pkt)
				pb.send(bRTP, pkt)
				pa.recv(aRTP, plain)

				back := rtpPacket(0, 1000+seq, speech(1000+seq))
				pa.send(aRTP, back)
				pb.recvSRTP(phone, false, bRTP, back) // to the latched source, not sdpB
			}

			// Forged packets at ccsbc's SRTP port from the phone's own
			// address (a spoofer on path), ahead in sequence, between
			// genuine ones: dropped, and the stream goes on.
			for i, seq := range []uint16{51, 52, 53} {
				plain := rtpPacket(0, seq, speech(seq))
				forged := flip(phone.protectRTP(t, rtpPacket(0, seq+1000, speech(seq))), 30)
				pb.send(bRTP, forged)
				pb.send(bRTP, append(rtpPacket(0, seq+30000, "jump"), make([]byte, 16)...))
				pb.send(bRTP, phone.protectRTP(t, plain))
				pa.recv(aRTP, plain)
				waitFor(t, "forgeries counted", func() bool { return s.Stats().B.Drops.AuthFailed == uint64(1+2*(i+1)) })
			}
			// A replay from the phone's address, and a genuine copy from
			// a stranger once B has latched.
			pb.send(bRTP, sent[10])
			forger.send(bRTP, sent[20])
			last := rtpPacket(0, 54, speech(54))
			pb.send(bRTP, phone.protectRTP(t, last))
			pa.recv(aRTP, last)
			pa.quiet()
			sdpB.quiet()

			// RTCP: the phone's SRTCP latches B's RTCP socket and reaches A
			// in clear; A's RTCP reaches the phone as SRTCP.
			rrB := rtcpPacket(0xb)
			pbRTCP.send(bRTCP, phone.protectRTCP(t, rrB))
			paRTCP.recv(aRTCP, rrB)
			rrA := append(rtcpPacket(0xa), make([]byte, 24)...)
			paRTCP.send(aRTCP, rrA)
			pbRTCP.recvSRTP(phone, true, bRTCP, rrA)
			srtcp := phone.protectRTCP(t, rrB)
			pbRTCP.send(bRTCP, srtcp)
			paRTCP.recv(aRTCP, rrB)
			pbRTCP.send(bRTCP, srtcp) // replayed
			pbRTCP.send(bRTCP, flip(phone.protectRTCP(t, rrB), 10))
			paRTCP.quiet()

			want := Drops{AuthFailed: 1 + 6 + 1, Replayed: 1 + 1, WrongSource: 1}
			var got StreamStats
			waitFor(t, "drop counters", func() bool { got = s.Stats(); return got.B.Drops == want })
			if got.A.Drops != (Drops{}) {
				t.Errorf("A drops %+v", got.A.Drops)
			}
			if got.B.PacketsIn != got.B.Drops.Total()+got.A.PacketsOut {
				t.Errorf("B: PacketsIn %d != drops %d + relayed %d", got.B.PacketsIn, got.B.Drops.Total(), got.A.PacketsOut)
			}
			if got.A.PacketsOut != 54+2 || got.B.PacketsOut != 50+1 {
				t.Errorf("relayed %d to A, %d to B; want 56 and 51", got.A.PacketsOut, got.B.PacketsOut)
			}
		})
	}
}

// TestSRTPRelayReencrypt: SRTP on both legs with different keys, and
// different suites, as when ccsbc terminates the agent's SRTP and
// re-encrypts toward VVB. B muxes RTCP. Both directions run at once.
func TestSRTPRelayReencrypt(t *testing.T) {
	for _, c := range []struct{ a, b SRTPSuite }{
		{SRTPAESCM128HMACSHA1_80, SRTPAEADAES256GCM},
		{SRTPAEADAES128GCM, SRTPAESCM128HMACSHA1_32},
		{SRTPAES256CMHMACSHA1_80, SRTPAES256CMHMACSHA1_80},
	} {
		t.Run(c.a.String()+"-"+c.b.String(), func(t *testing.T) {
			m := newTestManager(t, 2, false, 0, true)
			s, err := m.NewStream("reencrypt", nil)
			if err != nil {
				t.Fatal(err)
			}
			endA, endB := newSRTPEnd(t, c.a, 20), newSRTPEnd(t, c.b, 21)
			rtpA, rtcpA := endA.transforms(t)
			rtpB, rtcpB := endB.transforms(t)
			s.SetTransform(A, rtpA, rtcpA)
			s.SetTransform(B, rtpB, rtcpB)
			aRTP, aRTCP := s.Local(A)
			bRTP, _ := s.Local(B)
			pa, paRTCP, pb := newPeer(t), newPeer(t), newPeer(t)
			s.SetRemote(A, pa.addr(), paRTCP.addr(), false, lo)
			s.SetRemote(B, pb.addr(), netip.AddrPort{}, true, lo)

			// Each side sends 200 packets while receiving the other's.
			const n = 200
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			flow := func(from *srtpEnd, src *peer, to netip.AddrPort, dst *peer, dstEnd *srtpEnd, base uint16) {
				wg.Go(func() {
					for i := range uint16(n) {
						pkt, err := from.enc.EncryptRTP(nil, rtpPacket(0, base+i, speech(base+i)), nil)
						if err != nil {
							errs <- err
							return
						}
						if _, err := src.conn.WriteToUDPAddrPort(pkt, to); err != nil {
							errs <- err
							return
						}
						if i%20 == 0 {
							time.Sleep(time.Millisecond) // stay within the sockets' buffers
						}
					}
				})
				wg.Go(func() {
					buf := make([]byte, 2048)
					for i := range uint16(n) {
						dst.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
						k, _, err := dst.conn.ReadFromUDPAddrPort(buf)
						if err != nil {
							errs <- fmt.Errorf("packet %d of %d: %w", i, n, err)
							return
						}
						got, err := dstEnd.dec.DecryptRTP(nil, buf[:k], nil)
						if want := rtpPacket(0, base+i, speech(base+i)); err != nil || !bytes.Equal(got, want) {
							errs <- fmt.Errorf("packet %d: %v (lost or reordered on loopback?)", i, err)
							return
						}
					}
				})
			}
			flow(endA, pa, aRTP, pb, endB, 100)
			flow(endB, pb, bRTP, pa, endA, 40000)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			// A forged packet at A's port from A's own address, then the
			// stream continues.
			pa.send(aRTP, flip(endA.protectRTP(t, rtpPacket(0, 300, speech(300))), 25))
			next := rtpPacket(0, 300, speech(300))
			pa.send(aRTP, endA.protectRTP(t, next))
			pb.recvSRTP(endB, false, bRTP, next)

			// RTCP: A's on its RTCP port, B's muxed on its RTP port.
			rrA, rrB := rtcpPacket(0xa), append(rtcpPacket(0xb), make([]byte, 24)...)
			paRTCP.send(aRTCP, endA.protectRTCP(t, rrA))
			pb.recvSRTP(endB, true, bRTP, rrA)
			pb.send(bRTP, endB.protectRTCP(t, rrB))
			paRTCP.recvSRTP(endA, true, aRTCP, rrB)
			pb.quiet()

			st := s.Stats()
			if st.A.Drops != (Drops{AuthFailed: 1}) || st.B.Drops != (Drops{}) {
				t.Errorf("drops A %+v, B %+v", st.A.Drops, st.B.Drops)
			}
		})
	}
}

// TestSRTPRelayRekey: a re-INVITE brings new keys; after SetTransform,
// packets under the old keys fail and packets under the new ones pass.
func TestSRTPRelayRekey(t *testing.T) {
	m := newTestManager(t, 2, false, 0, true)
	s, err := m.NewStream("rekey", nil)
	if err != nil {
		t.Fatal(err)
	}
	old, fresh := newSRTPEnd(t, DefaultSRTPSuite, 30), newSRTPEnd(t, SRTPAEADAES128GCM, 31)
	rtpX, rtcpX := old.transforms(t)
	s.SetTransform(A, rtpX, rtcpX)
	aRTP, _ := s.Local(A)
	pa, pb := newPeer(t), newPeer(t)
	s.SetRemote(A, pa.addr(), netip.AddrPort{}, false, lo)
	s.SetRemote(B, pb.addr(), netip.AddrPort{}, false, lo)
	bRTP, _ := s.Local(B)

	p1 := rtpPacket(0, 1, speech(1))
	pa.send(aRTP, old.protectRTP(t, p1))
	pb.recv(bRTP, p1)

	rtpX, rtcpX = fresh.transforms(t)
	s.SetTransform(A, rtpX, rtcpX)
	pa.send(aRTP, old.protectRTP(t, rtpPacket(0, 2, speech(2))))
	p3 := rtpPacket(0, 3, speech(3))
	pa.send(aRTP, fresh.protectRTP(t, p3))
	pb.recv(bRTP, p3)
	waitFor(t, "old-key packet dropped", func() bool { return s.Stats().A.Drops.AuthFailed == 1 })
}

// TestTransformDrop: the relay counts a Transform's error by what it wraps.
func TestTransformDrop(t *testing.T) {
	for _, c := range []struct {
		err  error
		want dropReason
	}{
		{errSRTPAuthTag, dropAuthFailed},
		{errSRTPReplayed, dropReplayed},
		{fmt.Errorf("wrapped: %w", ErrSRTPAuth), dropAuthFailed},
		{errBadTag, dropTransform},
		{errSRTPNoRoom, dropTransform},
		{net.ErrClosed, dropTransform},
		{errors.Join(ErrSRTPReplay), dropReplayed},
	} {
		if got := transformDrop(c.err); got != c.want {
			t.Errorf("transformDrop(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
