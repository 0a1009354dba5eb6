package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/srtp/v3"
)

// dtlsSuites are the suites with a DTLS-SRTP profile.
var dtlsSuites = []SRTPSuite{SRTPAESCM128HMACSHA1_80, SRTPAESCM128HMACSHA1_32, SRTPAEADAES128GCM, SRTPAEADAES256GCM}

func newCert(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dtlsPeer is the far end of a DTLS-SRTP leg, as a WebRTC gateway or a
// phone would be: pion/dtls and pion/srtp over one real UDP socket on
// 127.0.0.1, demultiplexed by first byte like ccsbc's own.
type dtlsPeer struct {
	t    testing.TB
	conn *net.UDPConn
	to   netip.AddrPort // ccsbc's port for the leg
	cert tls.Certificate
	pc   *dtlsPacketConn
	rtp  chan []byte // non-DTLS datagrams that arrived
	done chan struct{}

	dconn    *dtls.Conn
	enc, dec *srtp.Context
}

func newDTLSPeer(t testing.TB, to netip.AddrPort) *dtlsPeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	p := &dtlsPeer{t: t, conn: c, to: to, cert: newCert(t), rtp: make(chan []byte, 4096), done: make(chan struct{})}
	p.pc = newDTLSPacketConn(p.addr(), func(b []byte) (int, error) { return c.WriteToUDPAddrPort(b, p.to) })
	go p.demux()
	t.Cleanup(p.close)
	return p
}

func (p *dtlsPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *dtlsPeer) demux() {
	defer close(p.done)
	buf := make([]byte, 1<<16)
	for {
		n, src, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if n > 0 && buf[0] >= 20 && buf[0] <= 63 {
			p.pc.deliver(buf[:n], src)
			continue
		}
		select {
		case p.rtp <- bytes.Clone(buf[:n]):
		default:
		}
	}
}

func (p *dtlsPeer) close() {
	if p.dconn != nil {
		p.dconn.Close()
	}
	p.pc.Close()
	p.conn.Close()
	<-p.done
}

// handshake runs the peer's side of the handshake against ccsbc, whose
// certificate is want, and keys the peer's SRTP. It returns the error.
func (p *dtlsPeer) handshake(client bool, want tls.Certificate, suites []SRTPSuite, timeout time.Duration) error {
	var profiles []dtls.SRTPProtectionProfile
	for _, s := range suites {
		profiles = append(profiles, dtls.SRTPProtectionProfile(s.Profile()))
	}
	wantFP := sha256.Sum256(want.Certificate[0])
	cfg := &dtls.Config{
		Certificates:           []tls.Certificate{p.cert},
		SRTPProtectionProfiles: profiles,
		ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
		InsecureSkipVerify:     true,
		ClientAuth:             dtls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if got := sha256.Sum256(raw[0]); subtle.ConstantTimeCompare(got[:], wantFP[:]) != 1 {
				return errors.New("test peer: ccsbc's certificate does not match")
			}
			return nil
		},
	}
	raddr := net.UDPAddrFromAddrPort(p.to)
	var err error
	if client {
		p.dconn, err = dtls.Client(p.pc, raddr, cfg) //nolint:staticcheck
	} else {
		p.dconn, err = dtls.Server(p.pc, raddr, cfg) //nolint:staticcheck
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.dconn.HandshakeContext(ctx); err != nil {
		return err
	}
	profile, ok := p.dconn.SelectedSRTPProtectionProfile()
	if !ok {
		return errors.New("test peer: no SRTP profile")
	}
	state, _ := p.dconn.ConnectionState()
	sc := srtp.Config{Profile: srtp.ProtectionProfile(profile)}
	if err := sc.ExtractSessionKeysFromDTLS(&state, client); err != nil {
		return err
	}
	if p.enc, err = srtp.CreateContext(sc.Keys.LocalMasterKey, sc.Keys.LocalMasterSalt, sc.Profile); err != nil {
		return err
	}
	p.dec, err = srtp.CreateContext(sc.Keys.RemoteMasterKey, sc.Keys.RemoteMasterSalt, sc.Profile,
		srtp.SRTPReplayProtection(64), srtp.SRTCPReplayProtection(64))
	return err
}

// recv waits for one non-DTLS datagram from ccsbc.
func (p *dtlsPeer) recv() []byte {
	p.t.Helper()
	select {
	case b := <-p.rtp:
		return b
	case <-time.After(5 * time.Second):
		p.t.Fatalf("%v: no packet from ccsbc", p.addr())
		return nil
	}
}

// quiet checks that nothing but DTLS arrived from ccsbc.
func (p *dtlsPeer) quiet() {
	p.t.Helper()
	select {
	case b := <-p.rtp:
		p.t.Errorf("%v: unexpected packet from ccsbc: % x", p.addr(), b)
	case <-time.After(100 * time.Millisecond):
	}
}

func (p *dtlsPeer) send(pkt []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(pkt, p.to); err != nil {
		p.t.Fatal(err)
	}
}

// dtlsRig is a stream whose side A is plain RTP (peers pa and paRTCP) and
// side B faces a dtlsPeer with rtcp-mux.
type dtlsRig struct {
	s          *Stream
	pa, paRTCP *peer
	pb         *dtlsPeer
	cert       tls.Certificate // ccsbc's
	result     chan error
}

func newDTLSRig(t *testing.T, latching bool) *dtlsRig {
	t.Helper()
	m := newTestManager(t, 2, latching, 0, true)
	s, err := m.NewStream("dtls", nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &dtlsRig{s: s, pa: newPeer(t), paRTCP: newPeer(t), cert: newCert(t), result: make(chan error, 1)}
	bRTP, _ := s.Local(B)
	g.pb = newDTLSPeer(t, bRTP)
	s.SetRemote(A, g.pa.addr(), g.paRTCP.addr(), false, lo)
	s.SetRemote(B, g.pb.addr(), netip.AddrPort{}, true, lo)
	return g
}

// config is ccsbc's DTLSConfig for side B, toward pb.
func (g *dtlsRig) config(role DTLSRole, suites ...SRTPSuite) DTLSConfig {
	return DTLSConfig{
		Role:              role,
		Certificate:       g.cert,
		RemoteFingerprint: Fingerprint(g.pb.cert),
		Profiles:          suites,
		HandshakeTimeout:  5 * time.Second,
		OnResult: func(side Side, _ SRTPSuite, err error) {
			if side != B {
				err = errors.New("OnResult for side " + side.String())
			}
			g.result <- err
		},
	}
}

func (g *dtlsRig) waitResult(t *testing.T) error {
	t.Helper()
	select {
	case err := <-g.result:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("OnResult was not called")
		return nil
	}
}

// handshake starts DTLS on B as role and runs pb's side of it; both must
// succeed.
func (g *dtlsRig) handshake(t *testing.T, role DTLSRole, suite SRTPSuite) {
	t.Helper()
	if err := g.s.StartDTLS(B, g.config(role, suite)); err != nil {
		t.Fatal(err)
	}
	if err := g.pb.handshake(role == DTLSServer, g.cert, []SRTPSuite{suite}, 5*time.Second); err != nil {
		t.Fatalf("peer handshake: %v", err)
	}
	if err := g.waitResult(t); err != nil {
		t.Fatalf("ccsbc handshake: %v", err)
	}
}

var dtlsRoles = []DTLSRole{DTLSClient, DTLSServer}

// TestDTLSRelay: A is plain RTP, B keys SRTP with DTLS (ccsbc as client
// and as server, every profile); audio and RTCP cross intact both ways,
// encrypted on B.
func TestDTLSRelay(t *testing.T) {
	for _, role := range dtlsRoles {
		for _, suite := range dtlsSuites {
			t.Run(role.String()+"/"+suite.String(), func(t *testing.T) {
				g := newDTLSRig(t, false)
				g.handshake(t, role, suite)
				aRTP, aRTCP := g.s.Local(A)

				// A → B: plain in, SRTP out.
				for seq := uint16(1); seq <= 3; seq++ {
					pkt := rtpPacket(0, seq, speech(seq))
					g.pa.send(aRTP, pkt)
					enc := g.pb.recv()
					if bytes.Contains(enc, []byte(speech(seq))) {
						t.Fatal("payload in clear on the DTLS-SRTP leg")
					}
					got, err := g.pb.dec.DecryptRTP(nil, enc, nil)
					if err != nil || !bytes.Equal(got, pkt) {
						t.Fatalf("peer B decrypting: %v\n got % x\nwant % x", err, got, pkt)
					}
				}
				// B → A: SRTP in, plain out; muxed SRTCP to A's RTCP port.
				for seq := uint16(100); seq < 103; seq++ {
					pkt := rtpPacket(0, seq, speech(seq))
					enc, err := g.pb.enc.EncryptRTP(nil, pkt, nil)
					if err != nil {
						t.Fatal(err)
					}
					g.pb.send(enc)
					g.pa.recv(aRTP, pkt)
				}
				rr := rtcpPacket(7)
				enc, err := g.pb.enc.EncryptRTCP(nil, rr, nil)
				if err != nil {
					t.Fatal(err)
				}
				g.pb.send(enc)
				g.paRTCP.recv(aRTCP, rr)

				// The counters move just after the sendto the peers saw.
				waitFor(t, "the counters", func() bool {
					st := g.s.Stats()
					return st.B.PacketsOut == 3 && st.A.PacketsOut == 4
				})
				st := g.s.Stats()
				if st.B.DTLSIn == 0 {
					t.Errorf("stats: %+v", st)
				}
				if st.A.Drops.Total() != 0 || st.B.Drops.Total() != 0 {
					t.Errorf("drops: A %+v, B %+v", st.A.Drops, st.B.Drops)
				}
				if in := st.B.PacketsIn; in != st.B.Drops.Total()+st.B.DTLSIn+st.A.PacketsOut {
					t.Errorf("B: PacketsIn %d != drops %d + DTLSIn %d + relayed %d", in, st.B.Drops.Total(), st.B.DTLSIn, st.A.PacketsOut)
				}
			})
		}
	}
}

// failedClosed checks that a DTLS leg whose handshake failed relays
// nothing either way, plain or not.
func (g *dtlsRig) failedClosed(t *testing.T) {
	t.Helper()
	aRTP, _ := g.s.Local(A)
	pkt := rtpPacket(0, 1, speech(1))
	g.pa.send(aRTP, pkt)
	g.pb.send(pkt) // plain RTP from B's peer
	g.pb.send(rtpPacket(0, 2, speech(2)+"0123456789"))
	g.pb.quiet()
	g.pa.quiet()
	waitFor(t, "the drops to be counted", func() bool {
		st := g.s.Stats()
		return st.A.Drops.Transform == 1 && st.B.Drops.Transform == 2
	})
	if st := g.s.Stats(); st.A.PacketsOut != 0 || st.B.PacketsOut != 0 {
		t.Errorf("a failed DTLS leg relayed: %+v", st)
	}
}

// TestDTLSWrongFingerprint: the peer's certificate is not the one its SDP
// announced; the handshake fails whichever end ccsbc plays, OnResult says
// so, and the leg relays nothing.
func TestDTLSWrongFingerprint(t *testing.T) {
	for _, role := range dtlsRoles {
		t.Run(role.String(), func(t *testing.T) {
			g := newDTLSRig(t, false)
			cfg := g.config(role)
			cfg.RemoteFingerprint = strings.ToLower(Fingerprint(newCert(t))) // someone else's
			if err := g.s.StartDTLS(B, cfg); err != nil {
				t.Fatal(err)
			}
			if err := g.pb.handshake(role == DTLSServer, g.cert, defaultDTLSProfiles, 3*time.Second); err == nil {
				t.Error("peer handshake succeeded against a fingerprint mismatch")
			}
			if err := g.waitResult(t); !errors.Is(err, ErrDTLSFingerprint) {
				t.Fatalf("OnResult: %v, want ErrDTLSFingerprint", err)
			}
			g.failedClosed(t)
		})
	}
}

// TestDTLSTimeout: a peer that never answers (client: our ClientHello goes
// unanswered; server: no ClientHello comes) times out and fails closed.
func TestDTLSTimeout(t *testing.T) {
	for _, role := range dtlsRoles {
		t.Run(role.String(), func(t *testing.T) {
			g := newDTLSRig(t, false)
			cfg := g.config(role)
			cfg.HandshakeTimeout = 300 * time.Millisecond
			start := time.Now()
			if err := g.s.StartDTLS(B, cfg); err != nil {
				t.Fatal(err)
			}
			err := g.waitResult(t)
			if !errors.Is(err, ErrDTLSTimeout) {
				t.Fatalf("OnResult: %v, want ErrDTLSTimeout", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("timed out after %v", d)
			}
			if role == DTLSClient {
				// ccsbc sent its ClientHello to the signaled address.
				select {
				case <-g.pb.pc.in:
				default:
					t.Error("no ClientHello reached the peer")
				}
			}
			g.failedClosed(t)
		})
	}
}

// TestDTLSStranger: DTLS from an address that is not the side's peer never
// reaches the handshake (nor gets an answer), STUN is counted, and the real
// peer's handshake still succeeds.
func TestDTLSStranger(t *testing.T) {
	g := newDTLSRig(t, false)
	if err := g.s.StartDTLS(B, g.config(DTLSServer, SRTPAEADAES128GCM)); err != nil {
		t.Fatal(err)
	}
	bRTP, _ := g.s.Local(B)
	stranger := newDTLSPeer(t, bRTP)
	if err := stranger.handshake(true, g.cert, []SRTPSuite{SRTPAEADAES128GCM}, 500*time.Millisecond); err == nil {
		t.Fatal("a stranger completed a handshake")
	}
	stranger.quiet()
	select {
	case <-stranger.pc.in:
		t.Fatal("ccsbc answered a stranger's DTLS")
	default:
	}
	st := g.s.Stats()
	if st.B.DTLSIn != 0 || st.B.Drops.WrongSource == 0 {
		t.Fatalf("stranger's DTLS: %+v", st.B)
	}
	g.pb.send([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) // STUN binding request
	waitFor(t, "STUN to be counted", func() bool { return g.s.Stats().B.Drops.STUN == 1 })

	if err := g.pb.handshake(true, g.cert, []SRTPSuite{SRTPAEADAES128GCM}, 5*time.Second); err != nil {
		t.Fatalf("peer handshake: %v", err)
	}
	if err := g.waitResult(t); err != nil {
		t.Fatalf("ccsbc handshake: %v", err)
	}
}

// TestDTLSLatchingNAT: with latching, a peer whose SDP names one port but
// whose packets come from another (NAT) on the same IP completes the
// handshake (the replies follow its source) and its SRTP then latches; a
// second source on that IP cannot join the pinned handshake.
func TestDTLSLatchingNAT(t *testing.T) {
	g := newDTLSRig(t, true)
	sdp := newPeer(t) // the address in the peer's SDP: nothing there answers
	g.s.SetRemote(B, sdp.addr(), netip.AddrPort{}, true, lo)
	if err := g.s.StartDTLS(B, g.config(DTLSServer)); err != nil {
		t.Fatal(err)
	}
	if err := g.pb.handshake(true, g.cert, defaultDTLSProfiles, 5*time.Second); err != nil {
		t.Fatalf("peer handshake: %v", err)
	}
	if err := g.waitResult(t); err != nil {
		t.Fatalf("ccsbc handshake: %v", err)
	}
	bRTP, _ := g.s.Local(B)
	other := newDTLSPeer(t, bRTP)
	other.send([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	waitFor(t, "the second source to be refused", func() bool { return g.s.Stats().B.Drops.WrongSource == 1 })

	aRTP, _ := g.s.Local(A)
	pkt := rtpPacket(0, 1, speech(1))
	enc, err := g.pb.enc.EncryptRTP(nil, pkt, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.pb.send(enc) // latches B onto pb
	g.pa.recv(aRTP, pkt)
	g.pa.send(aRTP, pkt)
	if got, err := g.pb.dec.DecryptRTP(nil, g.pb.recv(), nil); err != nil || !bytes.Equal(got, pkt) {
		t.Fatalf("peer B: %v % x", err, got)
	}
	sdp.quiet()
}

// TestDTLSRelayAllocs: once DTLS has keyed side B, the per-packet path from
// plain A to DTLS-SRTP B allocates nothing, as with SDES keys.
func TestDTLSRelayAllocs(t *testing.T) {
	for _, suite := range []SRTPSuite{SRTPAESCM128HMACSHA1_80, SRTPAEADAES128GCM} {
		t.Run(suite.String(), func(t *testing.T) {
			g := newRelayRig(t, false, false, voice)
			s := g.s
			bRTP, _ := s.Local(B)
			pb := newDTLSPeer(t, bRTP)
			s.SetRemote(B, pb.addr(), netip.AddrPort{}, true, lo)
			// Only B's sockets are on a worker (the handshake needs
			// them); A's RTP socket is driven by hand.
			if err := s.m.attach(s, s.legs[B].socks[:]...)(); err != nil {
				t.Fatal(err)
			}
			cert := newCert(t)
			res := make(chan error, 1)
			err := s.StartDTLS(B, DTLSConfig{Role: DTLSClient, Certificate: cert, RemoteFingerprint: Fingerprint(pb.cert),
				Profiles: []SRTPSuite{suite}, OnResult: func(_ Side, got SRTPSuite, err error) {
					if err == nil && got != suite {
						err = fmt.Errorf("OnResult reports suite %v, want %v", got, suite)
					}
					res <- err
				}})
			if err != nil {
				t.Fatal(err)
			}
			if err := pb.handshake(false, cert, []SRTPSuite{suite}, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if err := <-res; err != nil {
				t.Fatal(err)
			}
			g.step()
			if got, err := pb.dec.DecryptRTP(nil, pb.recv(), nil); err != nil || !bytes.Equal(got, voice) {
				t.Fatalf("peer B: %v", err)
			}
			want := 0.0
			if raceEnabled && !isAEAD(suite) {
				want = 1 // pion's AES-CM sync.Pool scratch, see TestSRTPAllocs
			}
			if allocs := testing.AllocsPerRun(1000, g.step); allocs > want {
				t.Errorf("relay step after DTLS: %v allocations per packet, want %v", allocs, want)
			}
			if st := s.Stats(); st.B.PacketsOut < 1001 || st.A.Drops.Total() != 0 {
				t.Errorf("the packets did not take the path under test: %+v", st)
			}
		})
	}
}

var fingerprintRE = regexp.MustCompile(`^sha-256 [0-9A-F]{2}(:[0-9A-F]{2}){31}$`)

func TestFingerprint(t *testing.T) {
	cert := newCert(t)
	fp := Fingerprint(cert)
	if !fingerprintRE.MatchString(fp) {
		t.Fatalf("Fingerprint = %q", fp)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	for _, s := range []string{fp, strings.ToLower(fp), strings.TrimPrefix(fp, "sha-256 "), "SHA-256  " + fp[8:]} {
		got, err := ParseFingerprint(s)
		if err != nil || got != sum {
			t.Errorf("ParseFingerprint(%q) = %x, %v", s, got, err)
		}
	}
	if Fingerprint(tls.Certificate{}) != "" {
		t.Error("Fingerprint of no certificate is not empty")
	}
}

// TestStartDTLSErrors: configs StartDTLS refuses, and a second start.
func TestStartDTLSErrors(t *testing.T) {
	cert := newCert(t)
	good := DTLSConfig{Role: DTLSServer, Certificate: cert, RemoteFingerprint: Fingerprint(cert)}
	for _, c := range []struct {
		name string
		edit func(*DTLSConfig)
		want string
	}{
		{"no role", func(c *DTLSConfig) { c.Role = 0 }, "Role"},
		{"no certificate", func(c *DTLSConfig) { c.Certificate = tls.Certificate{} }, "Certificate"},
		{"no fingerprint", func(c *DTLSConfig) { c.RemoteFingerprint = "" }, "RemoteFingerprint"},
		{"sha-1", func(c *DTLSConfig) { c.RemoteFingerprint = "sha-1 AB:CD" }, "only sha-256"},
		{"short", func(c *DTLSConfig) { c.RemoteFingerprint = "sha-256 AB:CD" }, "RemoteFingerprint"},
		{"not hex", func(c *DTLSConfig) { c.RemoteFingerprint = strings.Repeat("ZZ:", 31) + "ZZ" }, "RemoteFingerprint"},
		{"AES-256-CM", func(c *DTLSConfig) { c.Profiles = []SRTPSuite{SRTPAES256CMHMACSHA1_80} }, "no DTLS-SRTP profile"},
		{"negative timeout", func(c *DTLSConfig) { c.HandshakeTimeout = -1 }, "HandshakeTimeout"},
		{"replay window", func(c *DTLSConfig) { c.SRTP.ReplayWindow = 1 << 16 }, "ReplayWindow"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newTestManager(t, 2, false, 0, true)
			s, err := m.NewStream("dtls-errors", nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := good
			c.edit(&cfg)
			err = s.StartDTLS(B, cfg)
			if !errors.Is(err, ErrDTLSConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("StartDTLS: %v, want ErrDTLSConfig naming %q", err, c.want)
			}
			if s.legs[B].xform.Load() != nil || s.legs[B].dtls.Load() != nil {
				t.Error("a refused StartDTLS changed the leg")
			}
		})
	}
	t.Run("twice", func(t *testing.T) {
		m := newTestManager(t, 2, false, 0, true)
		s, err := m.NewStream("dtls-twice", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.StartDTLS(A, good); err != nil {
			t.Fatal(err)
		}
		if err := s.StartDTLS(A, good); !errors.Is(err, ErrDTLSStarted) {
			t.Errorf("second StartDTLS: %v, want ErrDTLSStarted", err)
		}
		s.Close()
		if err := s.StartDTLS(B, good); !errors.Is(err, ErrClosed) {
			t.Errorf("StartDTLS after Close: %v, want ErrClosed", err)
		}
	})
}

// TestDTLSCloseDuringHandshake: closing the stream mid-handshake stops it
// at once, leaves no goroutine and reports nothing.
func TestDTLSCloseDuringHandshake(t *testing.T) {
	g := newDTLSRig(t, false)
	if err := g.s.StartDTLS(B, g.config(DTLSServer)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond)
		g.s.Close()
	}()
	start := time.Now()
	wg.Wait()
	if err := g.s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case err := <-g.result:
		t.Errorf("OnResult(%v) after Close", err)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestRTPSourceMatchesRoute: the DTLS demultiplexer's source check accepts
// exactly the sources route accepts for RTP, latched or not.
func TestRTPSourceMatchesRoute(t *testing.T) {
	sdp := netip.MustParseAddrPort("192.0.2.10:4000")
	sigIP := netip.MustParseAddr("198.51.100.7")
	sources := []netip.AddrPort{
		sdp,
		netip.MustParseAddrPort("192.0.2.10:4002"),
		netip.MustParseAddrPort("198.51.100.7:5000"),
		netip.MustParseAddrPort("203.0.113.1:4000"),
	}
	for _, latching := range []bool{false, true} {
		for _, latched := range []netip.AddrPort{{}, sources[1]} {
			if latched.IsValid() && !latching {
				continue
			}
			s := detachedStream(latching)
			s.SetRemote(A, sdp, netip.AddrPort{}, true, sigIP)
			s.SetRemote(B, netip.MustParseAddrPort("192.0.2.20:6000"), netip.AddrPort{}, true, sigIP)
			if latched.IsValid() {
				v := s.route(A, sockRTP, latched, voice)
				s.commitLatch(A, sockRTP, v.latch, latched)
			}
			for _, src := range sources {
				v := s.route(A, sockRTP, src, voice)
				ok, mayLatch := s.rtpSource(A, src)
				if ok != (v.drop != dropWrongSource) || mayLatch != (v.latch != nil) {
					t.Errorf("latching %v, latched %v, source %v: rtpSource = %v, %v; route = %v, latch %v",
						latching, latched, src, ok, mayLatch, v.drop, v.latch != nil)
				}
			}
		}
	}
}
