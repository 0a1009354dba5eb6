package media

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/pion/srtp/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"
)

// allSRTPSuites lists every suite, in declaration order.
var allSRTPSuites = []SRTPSuite{
	SRTPAESCM128HMACSHA1_80, SRTPAESCM128HMACSHA1_32, SRTPAEADAES128GCM, SRTPAEADAES256GCM, SRTPAES256CMHMACSHA1_80,
}

func TestParseSRTPSuite(t *testing.T) {
	for _, c := range []struct {
		name          string
		want          SRTPSuite
		key, salt     int
		profile       srtp.ProtectionProfile
		canonicalName string // String(), when name is an alias
	}{
		{"AES_CM_128_HMAC_SHA1_80", SRTPAESCM128HMACSHA1_80, 16, 14, srtp.ProtectionProfileAes128CmHmacSha1_80, ""},
		{"AES_CM_128_HMAC_SHA1_32", SRTPAESCM128HMACSHA1_32, 16, 14, srtp.ProtectionProfileAes128CmHmacSha1_32, ""},
		{"AEAD_AES_128_GCM", SRTPAEADAES128GCM, 16, 12, srtp.ProtectionProfileAeadAes128Gcm, ""},
		{"AEAD_AES_256_GCM", SRTPAEADAES256GCM, 32, 12, srtp.ProtectionProfileAeadAes256Gcm, ""},
		{"AES_256_CM_HMAC_SHA1_80", SRTPAES256CMHMACSHA1_80, 32, 14, srtp.ProtectionProfileAes256CmHmacSha1_80, ""},
		{"AES_CM_256_HMAC_SHA1_80", SRTPAES256CMHMACSHA1_80, 32, 14, srtp.ProtectionProfileAes256CmHmacSha1_80, "AES_256_CM_HMAC_SHA1_80"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseSRTPSuite(c.name)
			if err != nil || s != c.want {
				t.Fatalf("ParseSRTPSuite = %v, %v; want %v", s, err, c.want)
			}
			want := c.name
			if c.canonicalName != "" {
				want = c.canonicalName
			}
			if s.String() != want || s.KeyLen() != c.key || s.SaltLen() != c.salt || s.Profile() != c.profile {
				t.Errorf("%v: key %d salt %d profile %v, want %s %d %d %v", s, s.KeyLen(), s.SaltLen(), s.Profile(), want, c.key, c.salt, c.profile)
			}
		})
	}
	for _, name := range []string{"", "aes_cm_128_hmac_sha1_80", "AES_192_CM_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80", "AES_CM_128_NULL_AUTH", "NULL_HMAC_SHA1_80"} {
		if s, err := ParseSRTPSuite(name); !errors.Is(err, ErrSRTPSuite) {
			t.Errorf("ParseSRTPSuite(%q) = %v, %v; want ErrSRTPSuite", name, s, err)
		}
	}
	for _, s := range []SRTPSuite{0, 99} {
		if s.KeyLen() != 0 || s.SaltLen() != 0 || s.Profile() != 0 || !strings.HasPrefix(s.String(), "SRTPSuite(") {
			t.Errorf("invalid suite %d: %v %d %d %v", s, s, s.KeyLen(), s.SaltLen(), s.Profile())
		}
	}
}

// TestSRTPSuiteTable checks the suite table against pion's view of each
// profile, and that Protect's growth fits the relay's MaxOverhead.
func TestSRTPSuiteTable(t *testing.T) {
	for _, s := range allSRTPSuites {
		p := s.Profile()
		keyLen, _ := p.KeyLen()
		saltLen, _ := p.SaltLen()
		rtpTag, _ := p.AuthTagRTPLen()
		rtcpTag, _ := p.AuthTagRTCPLen()
		aead, _ := p.AEADAuthTagLen()
		d := srtpSuites[s]
		if d.keyLen != keyLen || d.saltLen != saltLen || d.rtpTag != rtpTag+aead || d.rtcpTail != rtcpTag+aead+4 {
			t.Errorf("%v: table %+v, pion key %d salt %d rtp tag %d rtcp tag %d aead %d", s, d, keyLen, saltLen, rtpTag, rtcpTag, aead)
		}
		if d.rtpTag > MaxOverhead || d.rtcpTail > MaxOverhead {
			t.Errorf("%v: overhead %d/%d > MaxOverhead %d", s, d.rtpTag, d.rtcpTail, MaxOverhead)
		}
	}
}

func TestGenerateSRTPKeys(t *testing.T) {
	for _, s := range allSRTPSuites {
		k1, err := GenerateSRTPKeys(s)
		if err != nil {
			t.Fatal(err)
		}
		k2, _ := GenerateSRTPKeys(s)
		if k1.Suite != s || len(k1.Key) != s.KeyLen() || len(k1.Salt) != s.SaltLen() {
			t.Errorf("%v: got %v with a %d-byte key and %d-byte salt", s, k1.Suite, len(k1.Key), len(k1.Salt))
		}
		if bytes.Equal(k1.KeySalt(), k2.KeySalt()) {
			t.Errorf("%v: two generated keys are equal", s)
		}
		// Appending to the key must not overwrite the salt behind it.
		salt := bytes.Clone(k1.Salt)
		_ = append(k1.Key, 0xff, 0xff)
		if !bytes.Equal(k1.Salt, salt) {
			t.Errorf("%v: appending to the key overwrote the salt", s)
		}
	}
	r := rand.NewChaCha8([32]byte{1})
	k, err := generateSRTPKeys(SRTPAEADAES128GCM, r)
	want := make([]byte, 28)
	rand.NewChaCha8([32]byte{1}).Read(want)
	if err != nil || !bytes.Equal(k.KeySalt(), want) {
		t.Errorf("generateSRTPKeys from a seeded reader: %v, %v", hex.EncodeToString(k.KeySalt()), err)
	}
	if _, err := GenerateSRTPKeys(0); !errors.Is(err, ErrSRTPSuite) {
		t.Errorf("GenerateSRTPKeys(0): %v, want ErrSRTPSuite", err)
	}
	if _, err := generateSRTPKeys(DefaultSRTPSuite, bytes.NewReader(make([]byte, 20))); err == nil {
		t.Error("a short random source did not fail")
	}
}

func TestNewSRTPKeys(t *testing.T) {
	ks := make([]byte, 30)
	for i := range ks {
		ks[i] = byte(i)
	}
	k, err := NewSRTPKeys(SRTPAESCM128HMACSHA1_80, ks)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Key, ks[:16]) || !bytes.Equal(k.Salt, ks[16:]) || !bytes.Equal(k.KeySalt(), ks) {
		t.Fatalf("split %x / %x", k.Key, k.Salt)
	}
	ks[0] = 0xff
	if k.Key[0] != 0 {
		t.Error("NewSRTPKeys did not copy its input")
	}
	if _, err := NewSRTPKeys(SRTPAEADAES128GCM, ks); !errors.Is(err, ErrSRTPKeys) {
		t.Errorf("30 bytes for AEAD_AES_128_GCM: %v, want ErrSRTPKeys", err)
	}
	if _, err := NewSRTPKeys(0, ks); !errors.Is(err, ErrSRTPSuite) {
		t.Errorf("no suite: %v, want ErrSRTPSuite", err)
	}
}

// TestSRTPKeysRedacted: however SRTPKeys reach a log (fmt, zap, slog, JSON,
// YAML, inside another struct, by pointer), the key and salt do not.
func TestSRTPKeysRedacted(t *testing.T) {
	k, err := GenerateSRTPKeys(SRTPAEADAES256GCM)
	if err != nil {
		t.Fatal(err)
	}
	secret := k.KeySalt()
	// Every way the bytes could be spelled in a log line.
	var leaks []string
	for _, b := range [][]byte{k.Key[:6], k.Salt[:6]} {
		leaks = append(leaks,
			hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
			strings.Trim(fmt.Sprint(b[:4]), "[]"),                                   // decimal, as %v prints a []byte
			fmt.Sprintf("%#x, %#x", b[0], b[1]),                                     // %#v of a []byte
			fmt.Sprintf("%o %o %o", b[0], b[1], b[2]),                               // %o
			fmt.Sprintf("%b %b", b[0], b[1]),                                        // %b
			base64.StdEncoding.EncodeToString(secret)[:8],                           // JSON of a []byte
			base64.StdEncoding.EncodeToString(k.Salt)[:8], fmt.Sprintf("%q", b)[:6], // %q of a []byte
		)
	}
	type holder struct {
		Leg  string
		Keys SRTPKeys
		Ptr  *SRTPKeys
	}
	h := holder{Leg: "B", Keys: k, Ptr: &k}

	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%10.3v"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, h), fmt.Sprintf(verb, []SRTPKeys{k}))
	}
	outs = append(outs, fmt.Sprint(k), fmt.Sprintln(k), k.String())
	for _, v := range []any{k, &k, h} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(j), string(y))
	}
	var zbuf bytes.Buffer
	zl := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&zbuf), zap.DebugLevel))
	zl.Info("keys", zap.Any("any", k), zap.Any("ptr", &k), zap.Object("obj", k), zap.Stringer("str", k), zap.Reflect("reflect", h))
	var sbuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&sbuf, nil)).Info("keys", "k", k, "h", h)
	slog.New(slog.NewTextHandler(&sbuf, nil)).Info("keys", "k", k, "p", &k)
	outs = append(outs, zbuf.String(), sbuf.String())

	for _, out := range outs {
		if !strings.Contains(out, redacted) {
			t.Errorf("no %s in %q", redacted, out)
		}
		for _, l := range leaks {
			if strings.Contains(out, l) {
				t.Errorf("key material %q in %q", l, out)
			}
		}
	}
	if got, want := k.String(), "AEAD_AES_256_GCM key=[redacted]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// srtpEnd is the far end of an SRTP leg, simulated with pion contexts of
// its own: it encrypts with its keys (ccsbc's remote keys for the leg) and
// decrypts with ccsbc's local keys, replay protection on, as a phone does.
// Each context is used by one goroutine at a time.
type srtpEnd struct {
	keys, ccsbc SRTPKeys
	enc, dec    *srtp.Context
}

func newSRTPEnd(t testing.TB, suite SRTPSuite, seed byte) *srtpEnd {
	t.Helper()
	e := &srtpEnd{}
	var err error
	if e.keys, err = generateSRTPKeys(suite, rand.NewChaCha8([32]byte{seed, 1})); err != nil {
		t.Fatal(err)
	}
	if e.ccsbc, err = generateSRTPKeys(suite, rand.NewChaCha8([32]byte{seed, 2})); err != nil {
		t.Fatal(err)
	}
	if e.enc, err = srtp.CreateContext(e.keys.Key, e.keys.Salt, suite.Profile()); err != nil {
		t.Fatal(err)
	}
	if e.dec, err = srtp.CreateContext(e.ccsbc.Key, e.ccsbc.Salt, suite.Profile(),
		srtp.SRTPReplayProtection(64), srtp.SRTCPReplayProtection(64)); err != nil {
		t.Fatal(err)
	}
	return e
}

// transforms are ccsbc's Transforms for the leg toward e.
func (e *srtpEnd) transforms(t testing.TB) (rtp, rtcp Transform) {
	t.Helper()
	rtp, rtcp, err := NewSRTPTransform(e.keys, e.ccsbc, SRTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rtp, rtcp
}

func (e *srtpEnd) protectRTP(t testing.TB, plain []byte) []byte {
	t.Helper()
	out, err := e.enc.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *srtpEnd) protectRTCP(t testing.TB, plain []byte) []byte {
	t.Helper()
	out, err := e.enc.EncryptRTCP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *srtpEnd) unprotectRTP(pkt []byte) ([]byte, error) { return e.dec.DecryptRTP(nil, pkt, nil) }

func (e *srtpEnd) unprotectRTCP(pkt []byte) ([]byte, error) { return e.dec.DecryptRTCP(nil, pkt, nil) }

// runTransform runs op (Unprotect or Protect) on a copy of pkt in a relay-sized buffer.
func runTransform(op func([]byte, int) (int, error), pkt []byte) ([]byte, error) {
	buf := make([]byte, bufSize)
	n, err := op(buf, copy(buf, pkt))
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// speech is a 20 ms G.711 payload that differs from packet to packet.
func speech(seq uint16) string {
	b := make([]byte, 160)
	for i := range b {
		b[i] = byte(int(seq)*31 + i*7)
	}
	return string(b)
}

func TestNewSRTPTransformErrors(t *testing.T) {
	good, _ := GenerateSRTPKeys(DefaultSRTPSuite)
	other, _ := GenerateSRTPKeys(DefaultSRTPSuite)
	gcm, _ := GenerateSRTPKeys(SRTPAEADAES128GCM)
	for _, c := range []struct {
		name          string
		remote, local SRTPKeys
		opts          SRTPOptions
		want          error
	}{
		{"no suite", SRTPKeys{Key: good.Key, Salt: good.Salt}, other, SRTPOptions{}, ErrSRTPSuite},
		{"short key", SRTPKeys{Suite: DefaultSRTPSuite, Key: good.Key[:15], Salt: good.Salt}, other, SRTPOptions{}, ErrSRTPKeys},
		{"GCM salt for AES-CM", SRTPKeys{Suite: DefaultSRTPSuite, Key: gcm.Key, Salt: gcm.Salt}, other, SRTPOptions{}, ErrSRTPKeys},
		{"local keys bad", good, SRTPKeys{Suite: SRTPAEADAES256GCM, Key: gcm.Key, Salt: gcm.Salt}, SRTPOptions{}, ErrSRTPKeys},
		{"peer echoes our keys", good, good, SRTPOptions{}, ErrSRTPKeys},
		{"negative window", good, other, SRTPOptions{ReplayWindow: -1}, nil},
		{"huge window", good, other, SRTPOptions{ReplayWindow: 1 << 16}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			rtp, rtcp, err := NewSRTPTransform(c.remote, c.local, c.opts)
			if err == nil || rtp != nil || rtcp != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, %v, %v; want an error wrapping %v", rtp, rtcp, err, c.want)
			}
			if strings.Contains(err.Error(), hex.EncodeToString(good.Key[:4])) {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
	// Different suites each way are allowed: the contexts are independent.
	if _, _, err := NewSRTPTransform(gcm, good, SRTPOptions{ReplayWindow: 1024}); err != nil {
		t.Errorf("mixed suites: %v", err)
	}
}

// TestSRTPTransform: for every suite, what the peer protects comes out of
// Unprotect as it was sent, and what Protect sends decrypts at the peer,
// for RTP and RTCP.
func TestSRTPTransform(t *testing.T) {
	for _, suite := range allSRTPSuites {
		t.Run(suite.String(), func(t *testing.T) {
			e := newSRTPEnd(t, suite, 1)
			rtpX, rtcpX := e.transforms(t)
			for seq := uint16(1); seq <= 20; seq++ {
				plain := rtpPacket(0, seq, speech(seq))
				got, err := runTransform(rtpX.Unprotect, e.protectRTP(t, plain))
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Unprotect seq %d: %v; got % x", seq, err, got)
				}
				back := rtpPacket(8, seq+1000, speech(seq+1000))
				sent, err := runTransform(rtpX.Protect, back)
				if err != nil {
					t.Fatalf("Protect: %v", err)
				}
				if len(sent) != len(back)+srtpSuites[suite].rtpTag || bytes.Equal(sent[12:len(back)], back[12:]) {
					t.Fatalf("Protect: %d bytes, payload in clear %v", len(sent), bytes.Equal(sent[12:len(back)], back[12:]))
				}
				if got, err := e.unprotectRTP(sent); err != nil || !bytes.Equal(got, back) {
					t.Fatalf("peer decrypting Protect's packet: %v", err)
				}
			}
			for i := range 5 {
				rr := rtcpPacket(byte(i))
				got, err := runTransform(rtcpX.Unprotect, e.protectRTCP(t, rr))
				if err != nil || !bytes.Equal(got, rr) {
					t.Fatalf("SRTCP Unprotect: %v; got % x", err, got)
				}
				sr := append(rtcpPacket(0x77), make([]byte, 20)...)
				sent, err := runTransform(rtcpX.Protect, sr)
				if err != nil || len(sent) != len(sr)+srtpSuites[suite].rtcpTail {
					t.Fatalf("SRTCP Protect: %v, %d bytes", err, len(sent))
				}
				if got, err := e.unprotectRTCP(sent); err != nil || !bytes.Equal(got, sr) {
					t.Fatalf("peer decrypting SRTCP: %v", err)
				}
			}
		})
	}
}

// TestSRTPTampered: a packet altered anywhere, or cut short, fails
// authentication, and does not disturb the stream: the genuine packet with
// the same sequence number is accepted afterwards.
func TestSRTPTampered(t *testing.T) {
	for _, suite := range allSRTPSuites {
		t.Run(suite.String(), func(t *testing.T) {
			e := newSRTPEnd(t, suite, 2)
			rtpX, rtcpX := e.transforms(t)
			if _, err := runTransform(rtpX.Unprotect, e.protectRTP(t, rtpPacket(0, 1, speech(1)))); err != nil {
				t.Fatal(err)
			}
			plain := rtpPacket(0, 2, speech(2))
			good := e.protectRTP(t, plain)
			for name, bad := range map[string][]byte{
				"payload bit":   flip(good, 40),
				"marker bit":    flip(good, 1),
				"timestamp":     flip(good, 5),
				"ssrc":          flip(good, 9),
				"tag":           flip(good, len(good)-1),
				"truncated tag": good[:len(good)-1],
				"header only":   good[:12],
				"no tag":        good[:len(plain)],
				"forged":        append(rtpPacket(0, 2, speech(9)), make([]byte, 16)...),
			} {
				_, err := runTransform(rtpX.Unprotect, bad)
				if !errors.Is(err, ErrSRTPAuth) || errors.Is(err, ErrSRTPReplay) {
					t.Errorf("%s: %v, want ErrSRTPAuth", name, err)
				}
			}
			if got, err := runTransform(rtpX.Unprotect, good); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("genuine packet after forgeries: %v", err)
			}

			rr := rtcpPacket(3)
			goodRTCP := e.protectRTCP(t, rr)
			// The E flag and index end the packet with AEAD; the HMAC tag
			// follows them otherwise.
			indexEnd := len(goodRTCP)
			if !isAEAD(suite) {
				indexEnd -= 10
			}
			eFlag := bytes.Clone(goodRTCP)
			eFlag[indexEnd-4] ^= 0x80
			for name, bad := range map[string][]byte{
				"body":      flip(goodRTCP, 9),
				"index":     flip(goodRTCP, indexEnd-1),
				"E flag":    eFlag,
				"tag":       flip(goodRTCP, len(goodRTCP)-1),
				"truncated": goodRTCP[:len(goodRTCP)-3],
			} {
				if _, err := runTransform(rtcpX.Unprotect, bad); !errors.Is(err, ErrSRTPAuth) {
					t.Errorf("SRTCP %s: %v, want ErrSRTPAuth", name, err)
				}
			}
			if got, err := runTransform(rtcpX.Unprotect, goodRTCP); err != nil || !bytes.Equal(got, rr) {
				t.Fatalf("genuine SRTCP after forgeries: %v", err)
			}
		})
	}
}

func isAEAD(s SRTPSuite) bool { return s == SRTPAEADAES128GCM || s == SRTPAEADAES256GCM }

func flip(pkt []byte, i int) []byte {
	b := bytes.Clone(pkt)
	b[i] ^= 0x01
	return b
}

// TestSRTPReplay: a packet received twice, or older than the replay window,
// is dropped as a replay; reordering within the window is accepted once.
func TestSRTPReplay(t *testing.T) {
	if pionReplayErr() == nil {
		t.Fatal("could not learn pion's replay error: replays would count as AuthFailed")
	}
	for _, suite := range allSRTPSuites {
		t.Run(suite.String(), func(t *testing.T) {
			e := newSRTPEnd(t, suite, 3)
			rtpX, rtcpX := e.transforms(t)
			pkts := map[uint16][]byte{}
			for _, seq := range []uint16{1, 2, 3, 200, 300, 301} {
				pkts[seq] = e.protectRTP(t, rtpPacket(0, seq, speech(seq)))
			}
			for _, c := range []struct {
				seq    uint16
				replay bool
			}{
				{1, false}, {1, true}, // twice
				{3, false}, {2, false}, {2, true}, // reordered within the window, once
				{200, false}, {300, false},
				{3, true},               // seen, now also out of the window
				{301, false}, {1, true}, // long gone
			} {
				_, err := runTransform(rtpX.Unprotect, pkts[c.seq])
				if c.replay != (err != nil) || c.replay && (!errors.Is(err, ErrSRTPReplay) || errors.Is(err, ErrSRTPAuth)) {
					t.Errorf("seq %d: %v, want replay=%v", c.seq, err, c.replay)
				}
			}
			// Never seen, but older than the window: still refused. The
			// window is 128 packets; 300-150 is past it.
			old := e.protectRTP(t, rtpPacket(0, 150, speech(150)))
			if _, err := runTransform(rtpX.Unprotect, old); !errors.Is(err, ErrSRTPReplay) {
				t.Errorf("seq 150 after 301: %v, want ErrSRTPReplay", err)
			}

			rr := e.protectRTCP(t, rtcpPacket(4))
			if _, err := runTransform(rtcpX.Unprotect, rr); err != nil {
				t.Fatal(err)
			}
			if _, err := runTransform(rtcpX.Unprotect, rr); !errors.Is(err, ErrSRTPReplay) {
				t.Errorf("SRTCP replay: %v, want ErrSRTPReplay", err)
			}
		})
	}
}

// TestSRTPRollover: a stream crossing the 16-bit sequence wrap (RFC 3711
// §3.3.1) decrypts on both sides of it, in both directions.
func TestSRTPRollover(t *testing.T) {
	for _, suite := range allSRTPSuites {
		t.Run(suite.String(), func(t *testing.T) {
			e := newSRTPEnd(t, suite, 4)
			rtpX, _ := e.transforms(t)
			for seq := uint16(65530); seq != 6; seq++ {
				plain := rtpPacket(0, seq, speech(seq))
				if got, err := runTransform(rtpX.Unprotect, e.protectRTP(t, plain)); err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Unprotect seq %d: %v", seq, err)
				}
				sent, err := runTransform(rtpX.Protect, plain)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := e.unprotectRTP(sent); err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("peer decrypting seq %d: %v", seq, err)
				}
			}
			if roc, _ := e.enc.ROC(0xdeadbeef); roc != 1 {
				t.Errorf("sender ROC %d after the wrap, want 1", roc)
			}
			if roc, _ := e.dec.ROC(0xdeadbeef); roc != 1 {
				t.Errorf("peer receiver ROC %d after ccsbc's packets wrapped, want 1", roc)
			}
		})
	}
}

// TestSRTPSequenceJump documents what a sequence number jump of more than
// 32768 within one SSRC does, after the stream has wrapped once: the sender
// and the receiver both estimate the packet as 25536 packets old, so every
// packet is dropped as a replay until the sequence numbers come back within
// 32768 of where the stream was, 25537 packets (8.5 minutes) later. A jump
// of less than 32768 is harmless.
func TestSRTPSequenceJump(t *testing.T) {
	e := newSRTPEnd(t, DefaultSRTPSuite, 5)
	rtpX, _ := e.transforms(t)
	unprotect := func(seq uint16) error {
		_, err := runTransform(rtpX.Unprotect, e.protectRTP(t, rtpPacket(0, seq, "x")))
		return err
	}
	for seq := uint16(65530); seq != 6; seq++ { // ROC 1, index 65541
		if err := unprotect(seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := unprotect(6 + 30000); err != nil {
		t.Fatalf("jump of 30000: %v", err)
	}
	if err := unprotect(6 + 30000 + 32768 - 1); err != nil {
		t.Fatalf("a further jump of 32767: %v", err)
	}
	// Late packets within the replay window are still accepted once; they
	// fill the window as a continuous stream would have.
	for seq := uint16(62773 - 127); seq < 62773; seq++ {
		if err := unprotect(seq); err != nil {
			t.Fatalf("late seq %d within the window: %v", seq, err)
		}
	}
	// The stream is now at seq 62773, ROC 1. A jump of 40000 lands on seq
	// 37237, which both ends read as 25536 packets behind the stream's
	// highest index: far behind the replay window.
	seq, drops := uint16(62773+40000-65536), 0
	for ; ; seq++ {
		err := unprotect(seq)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrSRTPReplay) {
			t.Fatalf("seq %d: %v, want ErrSRTPReplay", seq, err)
		}
		drops++
	}
	// Recovery comes at the first sequence number past 62773 in the
	// receiver's terms: 62774, after 65536-40000+1 packets.
	if seq != 62774 || drops != 65536-40000+1 {
		t.Errorf("recovered at seq %d after %d drops, want 62774 after %d", seq, drops, 65536-40000+1)
	}

	// As sender, ccsbc encrypts whatever sequence numbers the other leg
	// sends; the peer's receiver then drops the packets after a jump the
	// same way.
	e2 := newSRTPEnd(t, DefaultSRTPSuite, 6)
	rtpX2, _ := e2.transforms(t)
	for _, c := range []struct {
		seq    uint16
		replay bool
	}{{65535, false}, {0, false}, {1, false}, {1 + 40000, true}, {1 + 40001, true}, {2, false}} {
		sent, err := runTransform(rtpX2.Protect, rtpPacket(0, c.seq, "y"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e2.unprotectRTP(sent); (err != nil) != c.replay {
			t.Errorf("peer receiving seq %d: %v, want dropped=%v", c.seq, err, c.replay)
		}
	}
}

// TestSRTPTransformLimits: Protect refuses a buffer without room for the
// tag rather than let pion allocate another, and lengths out of range fail.
func TestSRTPTransformLimits(t *testing.T) {
	e := newSRTPEnd(t, DefaultSRTPSuite, 7)
	rtpX, rtcpX := e.transforms(t)
	pkt := rtpPacket(0, 1, "abc")
	for name, x := range map[string]Transform{"rtp": rtpX, "rtcp": rtcpX} {
		tight := make([]byte, len(pkt)+3)
		copy(tight, pkt)
		if _, err := x.Protect(tight, len(pkt)); err == nil || errors.Is(err, ErrSRTPAuth) {
			t.Errorf("%s: Protect without room: %v", name, err)
		}
		if _, err := x.Protect(tight, -1); err == nil {
			t.Errorf("%s: Protect n=-1 did not fail", name)
		}
		if _, err := x.Unprotect(tight, len(tight)+1); err == nil {
			t.Errorf("%s: Unprotect n > len(buf) did not fail", name)
		}
	}
	// Exactly enough room is enough.
	buf := make([]byte, len(pkt)+srtpSuites[DefaultSRTPSuite].rtpTag)
	copy(buf, pkt)
	if n, err := rtpX.Protect(buf, len(pkt)); err != nil || n != len(buf) {
		t.Errorf("Protect with exact room: %d, %v", n, err)
	}
}

// TestSRTPTransformConcurrent runs Unprotect and Protect of one Transform
// from two goroutines at once, as the two readers of a stream do; the race
// detector checks that they share nothing.
func TestSRTPTransformConcurrent(t *testing.T) {
	e := newSRTPEnd(t, SRTPAEADAES128GCM, 8)
	rtpX, rtcpX := e.transforms(t)
	const n = 500
	in := make([][]byte, n)
	for i := range in {
		in[i] = e.protectRTP(t, rtpPacket(0, uint16(i), speech(uint16(i))))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		buf := make([]byte, bufSize)
		for i, p := range in {
			if _, err := rtpX.Unprotect(buf, copy(buf, p)); err != nil {
				errs <- fmt.Errorf("Unprotect %d: %w", i, err)
				return
			}
		}
	})
	wg.Go(func() {
		buf := make([]byte, bufSize)
		for i := range n {
			if _, err := rtpX.Protect(buf, copy(buf, rtpPacket(0, uint16(i), "out"))); err != nil {
				errs <- fmt.Errorf("Protect %d: %w", i, err)
				return
			}
		}
	})
	wg.Go(func() {
		buf := make([]byte, bufSize)
		for range 50 {
			if _, err := rtcpX.Protect(buf, copy(buf, rtcpPacket(1))); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
