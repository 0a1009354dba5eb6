package media

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// relayPaths are the four ways a packet can cross a stream, by the
// protection of the leg it arrives on and of the leg it leaves by.
var relayPaths = []struct {
	name    string
	in, out bool // SRTP on A (ingress), on B (egress)
	plain   bool // the path has no SRTP: one run, not one per suite
}{
	{name: "rtp-rtp", plain: true},
	{name: "rtp-srtp", out: true},
	{name: "srtp-rtp", in: true},
	{name: "srtp-srtp", in: true, out: true},
}

// voiceSource is a stream of fresh 172-byte voice packets from A's peer,
// made ahead in batches: SRTP ones when end is set, which replay
// protection will not take twice.
type voiceSource struct {
	end   *srtpEnd // nil: plain RTP
	batch [][]byte
	next  int
	seq   uint16
	hdr   rtp.Header
}

func newVoiceSource(tb testing.TB, end *srtpEnd, batch int) *voiceSource {
	tb.Helper()
	v := &voiceSource{end: end, batch: make([][]byte, batch), seq: 65000}
	for i := range v.batch {
		v.batch[i] = make([]byte, len(voice), len(voice)+MaxOverhead)
	}
	v.refill(tb)
	return v
}

// refill makes the next batch, continuing the sequence (and, past 65535,
// the rollover counter).
func (v *voiceSource) refill(tb testing.TB) {
	for i, b := range v.batch {
		b = b[:len(voice)]
		copy(b, voice)
		binary.BigEndian.PutUint16(b[2:], v.seq)
		v.seq++
		if v.end != nil {
			var err error
			if b, err = v.end.enc.EncryptRTP(b, b, &v.hdr); err != nil {
				tb.Fatal(err)
			}
		}
		v.batch[i] = b
	}
	v.next = 0
}

// pop returns the next packet; in a benchmark, making a new batch is off
// the clock.
func (v *voiceSource) pop(b *testing.B) []byte {
	if v.next == len(v.batch) {
		b.StopTimer()
		v.refill(b)
		b.StartTimer()
	}
	v.next++
	return v.batch[v.next-1]
}

// pathRig drives side A's RTP socket of a relayRig with a voiceSource.
type pathRig struct {
	g   *relayRig
	src *voiceSource
}

func newPathRig(tb testing.TB, suite SRTPSuite, in, out bool, batch int) *pathRig {
	tb.Helper()
	p := &pathRig{g: newRelayRig(tb, false, false, voice)}
	var endA *srtpEnd
	if in {
		endA = newSRTPEnd(tb, suite, 40)
		rtpX, rtcpX := endA.transforms(tb)
		p.g.s.SetTransform(A, rtpX, rtcpX)
	}
	if out {
		rtpX, rtcpX := newSRTPEnd(tb, suite, 41).transforms(tb)
		p.g.s.SetTransform(B, rtpX, rtcpX)
	}
	p.src = newVoiceSource(tb, endA, batch)
	return p
}

// step is one relay step, as the worker runs it after recvmmsg.
func (p *pathRig) step() {
	n := copy(p.g.buf, p.src.batch[p.src.next])
	p.src.next++
	p.g.k.relay(p.g.buf, n, p.g.src)
}

func (p *pathRig) check(tb testing.TB, min uint64) {
	tb.Helper()
	if st := p.g.s.Stats(); st.B.PacketsOut < min || st.A.Drops.Total() != 0 {
		tb.Fatalf("the packets did not take the path under test: relayed %d, drops %+v", st.B.PacketsOut, st.A.Drops)
	}
}

// TestSRTPAllocs guards the per-packet path with SRTP on either leg, both
// or neither, for every suite: receiving, unprotecting, protecting and
// sending a packet allocates nothing.
func TestSRTPAllocs(t *testing.T) {
	for _, path := range relayPaths {
		for _, suite := range allSRTPSuites {
			name := path.name + "/" + suite.String()
			if path.plain {
				name = path.name
			}
			t.Run(name, func(t *testing.T) {
				const runs = 1000
				p := newPathRig(t, suite, path.in, path.out, runs+2)
				p.step() // pion's per-SSRC state is made by the first packet
				// pion's AES-CM takes a 32-byte CTR scratch from a global
				// sync.Pool per packet (xorBytesCTR): none in steady state,
				// but the race detector drops Pool entries on purpose.
				want := 0.0
				if raceEnabled && (path.in || path.out) && !isAEAD(suite) {
					want = 1
				}
				if allocs := testing.AllocsPerRun(runs, p.step); allocs > want {
					t.Errorf("relay step: %v allocations per packet, want %v", allocs, want)
				}
				p.check(t, runs)
			})
			if path.plain {
				break
			}
		}
	}
}

// BenchmarkRelayPath measures the relay step (decision, transforms and the
// sendto of WriteToUDPAddrPort) for a 172-byte voice packet on each path
// and suite; a goroutine drains the receiving peer. SRTP packets for A are
// encrypted ahead in batches, off the clock.
func BenchmarkRelayPath(b *testing.B) {
	for _, path := range relayPaths {
		for _, suite := range allSRTPSuites {
			name := path.name + "/" + suite.String()
			if path.plain {
				name = path.name + "/plain"
			}
			b.Run(name, func(b *testing.B) {
				p := newPathRig(b, suite, path.in, path.out, 4096)
				stop := drain(p.g.pb)
				defer stop()
				p.step()
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if p.src.next == len(p.src.batch) {
						b.StopTimer()
						p.src.refill(b)
						b.StartTimer()
					}
					p.step()
				}
				b.StopTimer()
				p.check(b, uint64(b.N))
			})
			if path.plain {
				break
			}
		}
	}
}

// BenchmarkPionSRTP measures pion/srtp alone on the same 172-byte packet,
// with the same copy into the buffer that the relay step makes, replay
// protection on and a reused header: the floor under our SRTP paths.
func BenchmarkPionSRTP(b *testing.B) {
	for _, suite := range allSRTPSuites {
		b.Run(suite.String()+"/encrypt", func(b *testing.B) {
			e := newSRTPEnd(b, suite, 50)
			buf := make([]byte, bufSize)
			var hdr rtp.Header
			b.ReportAllocs()
			seq := uint16(0)
			for b.Loop() {
				n := copy(buf, voice)
				binary.BigEndian.PutUint16(buf[2:], seq)
				seq++
				if _, err := e.enc.EncryptRTP(buf[:n:len(buf)], buf[:n], &hdr); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(suite.String()+"/decrypt", func(b *testing.B) {
			e := newSRTPEnd(b, suite, 50)
			src := newVoiceSource(b, e, 4096)
			dec, err := srtp.CreateContext(e.keys.Key, e.keys.Salt, suite.Profile(),
				srtp.SRTPReplayProtection(defaultReplayWindow), srtp.SRTCPReplayProtection(defaultReplayWindow))
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, bufSize)
			var hdr rtp.Header
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				n := copy(buf, src.pop(b))
				if _, err := dec.DecryptRTP(buf[:n:n], buf[:n:n], &hdr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSRTPTransform measures our Transforms alone, as
// BenchmarkPionSRTP measures pion: the difference is what the wrapper costs.
func BenchmarkSRTPTransform(b *testing.B) {
	for _, suite := range allSRTPSuites {
		b.Run(suite.String()+"/protect", func(b *testing.B) {
			rtpX, _ := newSRTPEnd(b, suite, 61).transforms(b)
			buf := make([]byte, bufSize)
			b.ReportAllocs()
			seq := uint16(0)
			for b.Loop() {
				n := copy(buf, voice)
				binary.BigEndian.PutUint16(buf[2:], seq)
				seq++
				if _, err := rtpX.Protect(buf, n); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(suite.String()+"/unprotect", func(b *testing.B) {
			e := newSRTPEnd(b, suite, 60)
			src := newVoiceSource(b, e, 4096)
			rtpX, _ := e.transforms(b)
			buf := make([]byte, bufSize)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := rtpX.Unprotect(buf, copy(buf, src.pop(b))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSRTPDrop measures a packet that Unprotect refuses: what a flood
// of forged or replayed packets at an SRTP port costs, per packet.
func BenchmarkSRTPDrop(b *testing.B) {
	for _, suite := range allSRTPSuites {
		e := newSRTPEnd(b, suite, 70)
		rtpX, _ := e.transforms(b)
		good := e.protectRTP(b, rtpPacket(0, 1, speech(1)))
		if _, err := runTransform(rtpX.Unprotect, good); err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name string
			pkt  []byte
			want error
		}{
			{"forged", flip(e.protectRTP(b, rtpPacket(0, 2, speech(2))), 30), ErrSRTPAuth},
			{"unknown-ssrc", flip(e.protectRTP(b, rtpPacket(0, 3, speech(3))), 9), ErrSRTPAuth},
			{"replayed", good, ErrSRTPReplay},
		} {
			b.Run(suite.String()+"/"+c.name, func(b *testing.B) {
				buf := make([]byte, bufSize)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := rtpX.Unprotect(buf, copy(buf, c.pkt)); !errors.Is(err, c.want) {
						b.Fatalf("%v, want %v", err, c.want)
					}
				}
			})
		}
	}
}
