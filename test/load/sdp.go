package load

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// CryptoSuite is an SDES crypto suite (RFC 4568, RFC 7714).
type CryptoSuite string

// The suites the generator offers and answers.
const (
	SuiteAES80  CryptoSuite = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES32  CryptoSuite = "AES_CM_128_HMAC_SHA1_32"
	SuiteGCM128 CryptoSuite = "AEAD_AES_128_GCM"
	SuiteGCM256 CryptoSuite = "AEAD_AES_256_GCM"
)

func (s CryptoSuite) profile() (srtp.ProtectionProfile, error) {
	switch s {
	case SuiteAES80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, nil
	case SuiteAES32:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, nil
	case SuiteGCM128:
		return srtp.ProtectionProfileAeadAes128Gcm, nil
	case SuiteGCM256:
		return srtp.ProtectionProfileAeadAes256Gcm, nil
	}
	return 0, fmt.Errorf("load: unsupported SRTP suite %q", s)
}

// Crypto is one a=crypto line: a suite and its master key and salt.
type Crypto struct {
	Tag   int
	Suite CryptoSuite
	Key   []byte // master key || master salt
}

// NewCrypto makes a fresh random key for suite.
func NewCrypto(tag int, suite CryptoSuite) (Crypto, error) {
	p, err := suite.profile()
	if err != nil {
		return Crypto{}, err
	}
	kl, err1 := p.KeyLen()
	sl, err2 := p.SaltLen()
	if err := errors.Join(err1, err2); err != nil {
		return Crypto{}, err
	}
	key := make([]byte, kl+sl)
	if _, err := rand.Read(key); err != nil {
		return Crypto{}, err
	}
	return Crypto{Tag: tag, Suite: suite, Key: key}, nil
}

func (c Crypto) attr() string {
	return fmt.Sprintf("a=crypto:%d %s inline:%s", c.Tag, c.Suite, base64.StdEncoding.EncodeToString(c.Key))
}

// Context is the SRTP context for packets protected with this key.
func (c Crypto) Context() (*srtp.Context, error) {
	p, err := c.Suite.profile()
	if err != nil {
		return nil, err
	}
	kl, _ := p.KeyLen()
	sl, _ := p.SaltLen()
	if len(c.Key) != kl+sl {
		return nil, fmt.Errorf("load: %s key of %d bytes, want %d", c.Suite, len(c.Key), kl+sl)
	}
	return srtp.CreateContext(c.Key[:kl], c.Key[kl:], p)
}

func parseCrypto(v string) (Crypto, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("load: a=crypto:%s: too few fields", v)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil {
		return Crypto{}, fmt.Errorf("load: a=crypto tag %q", f[0])
	}
	param, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return Crypto{}, fmt.Errorf("load: a=crypto key method %q", f[2])
	}
	param, _, _ = strings.Cut(param, "|") // lifetime, MKI
	key, err := base64.StdEncoding.DecodeString(param)
	if err != nil {
		// RFC 4568 §6.1 leaves the padding open; rtpengine leaves it out.
		if key, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(param, "=")); err != nil {
			return Crypto{}, fmt.Errorf("load: a=crypto key: %w", err)
		}
	}
	return Crypto{Tag: tag, Suite: CryptoSuite(f[1]), Key: key}, nil
}

// SDP is what the generator reads from, and writes into, a session
// description: one audio stream.
type SDP struct {
	Addr   netip.AddrPort // c= and m= port
	Proto  string         // RTP/AVP or RTP/SAVP
	Crypto []Crypto
}

// payloadType is what every stream carries: G.711 µ-law, 8 kHz, 20 ms.
const payloadType = 0

// Marshal writes the SDP of one G.711 µ-law audio stream with
// telephone-events, 20 ms packets.
func (s SDP) Marshal(sessID uint64) []byte {
	proto := s.Proto
	if proto == "" {
		proto = "RTP/AVP"
		if len(s.Crypto) > 0 {
			proto = "RTP/SAVP"
		}
	}
	ip := s.Addr.Addr().String()
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=loadgen %d 1 IN IP4 %s\r\ns=load\r\nc=IN IP4 %s\r\nt=0 0\r\n", sessID, ip, ip)
	fmt.Fprintf(&b, "m=audio %d %s %d 101\r\n", s.Addr.Port(), proto, payloadType)
	b.WriteString("a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n")
	for _, c := range s.Crypto {
		b.WriteString(c.attr())
		b.WriteString("\r\n")
	}
	b.WriteString("a=sendrecv\r\n")
	return []byte(b.String())
}

// ParseSDP reads the first audio stream of body.
func ParseSDP(body []byte) (SDP, error) {
	var s SDP
	var sessIP, mediaIP netip.Addr
	port := -1
	inAudio := false
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		switch {
		case strings.HasPrefix(line, "m="):
			if port >= 0 {
				inAudio = false // only the first audio stream
				continue
			}
			f := strings.Fields(line[2:])
			if len(f) >= 3 && f[0] == "audio" {
				p, err := strconv.Atoi(f[1])
				if err != nil {
					return s, fmt.Errorf("load: SDP %q", line)
				}
				port, s.Proto, inAudio = p, f[2], true
			}
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:])
			if len(f) < 3 {
				continue
			}
			ip, err := netip.ParseAddr(strings.Split(f[2], "/")[0])
			if err != nil {
				return s, fmt.Errorf("load: SDP %q", line)
			}
			if port < 0 {
				sessIP = ip
			} else if inAudio {
				mediaIP = ip
			}
		case strings.HasPrefix(line, "a=crypto:") && inAudio:
			c, err := parseCrypto(line[len("a=crypto:"):])
			if err != nil {
				return s, err
			}
			s.Crypto = append(s.Crypto, c)
		}
	}
	if port < 0 {
		return s, errors.New("load: SDP without an audio stream")
	}
	ip := mediaIP
	if !ip.IsValid() {
		ip = sessIP
	}
	if !ip.IsValid() {
		return s, errors.New("load: SDP without a connection address")
	}
	s.Addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	return s, nil
}
