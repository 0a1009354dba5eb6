package media

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"go.uber.org/zap/zapcore"
)

// SRTPSuite is an SRTP crypto suite as SDES names it in a=crypto (RFC 4568
// §6.2, RFC 6188 §3, RFC 7714 §14.1). The zero value is no suite.
type SRTPSuite uint8

// The suites ccsbc speaks. Unified CM offers AES_CM_128_HMAC_SHA1_80 and
// _32, and the AEAD_AES_*_GCM suites when the phone supports them.
const (
	SRTPAESCM128HMACSHA1_80 SRTPSuite = iota + 1 // AES_CM_128_HMAC_SHA1_80, RFC 4568
	SRTPAESCM128HMACSHA1_32                      // AES_CM_128_HMAC_SHA1_32, RFC 4568
	SRTPAEADAES128GCM                            // AEAD_AES_128_GCM, RFC 7714
	SRTPAEADAES256GCM                            // AEAD_AES_256_GCM, RFC 7714
	SRTPAES256CMHMACSHA1_80                      // AES_256_CM_HMAC_SHA1_80, RFC 6188
)

// DefaultSRTPSuite is the suite ccsbc offers first.
const DefaultSRTPSuite = SRTPAESCM128HMACSHA1_80

// srtpSuites describes each SRTPSuite, indexed by it. Key and salt are the
// master key and master salt carried by the SDES inline parameter.
var srtpSuites = [...]struct {
	name             string
	profile          srtp.ProtectionProfile
	keyLen, saltLen  int
	rtpTag, rtcpTail int // bytes Protect adds: the tag, and for SRTCP the E flag and index too
}{
	SRTPAESCM128HMACSHA1_80: {"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14, 10, 4 + 10},
	SRTPAESCM128HMACSHA1_32: {"AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 14, 4, 4 + 10}, // SRTCP keeps an 80-bit tag (RFC 4568 §6.2)
	SRTPAEADAES128GCM:       {"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 16, 12, 16, 16 + 4},
	SRTPAEADAES256GCM:       {"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm, 32, 12, 16, 16 + 4},
	SRTPAES256CMHMACSHA1_80: {"AES_256_CM_HMAC_SHA1_80", srtp.ProtectionProfileAes256CmHmacSha1_80, 32, 14, 10, 4 + 10},
}

// srtpSuiteAliases are other spellings seen in the field: FreeSWITCH and some
// gateways write the RFC 6188 suite with "CM" first.
var srtpSuiteAliases = map[string]SRTPSuite{
	"AES_CM_256_HMAC_SHA1_80": SRTPAES256CMHMACSHA1_80,
}

// ParseSRTPSuite returns the suite an SDES crypto-suite token names. Names
// are matched exactly, as RFC 4568 registers them; an unknown or unsupported
// one wraps ErrSRTPSuite (for the SDP layer: skip that a=crypto line).
func ParseSRTPSuite(name string) (SRTPSuite, error) {
	for s := range srtpSuites {
		if s != 0 && srtpSuites[s].name == name {
			return SRTPSuite(s), nil
		}
	}
	if s, ok := srtpSuiteAliases[name]; ok {
		return s, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrSRTPSuite, name)
}

func (s SRTPSuite) valid() bool { return s != 0 && int(s) < len(srtpSuites) }

// String returns the suite's SDES name.
func (s SRTPSuite) String() string {
	if !s.valid() {
		return "SRTPSuite(" + strconv.Itoa(int(s)) + ")"
	}
	return srtpSuites[s].name
}

// KeyLen is the length of the suite's master key in bytes; 0 for an invalid suite.
func (s SRTPSuite) KeyLen() int {
	if !s.valid() {
		return 0
	}
	return srtpSuites[s].keyLen
}

// SaltLen is the length of the suite's master salt in bytes; 0 for an invalid suite.
func (s SRTPSuite) SaltLen() int {
	if !s.valid() {
		return 0
	}
	return srtpSuites[s].saltLen
}

// Profile is the pion/srtp protection profile of the suite (also the
// DTLS-SRTP profile, RFC 5764 §4.1.2); 0 for an invalid suite.
func (s SRTPSuite) Profile() srtp.ProtectionProfile {
	if !s.valid() {
		return 0
	}
	return srtpSuites[s].profile
}

// redacted stands in for key material wherever SRTPKeys is printed.
const redacted = "[redacted]"

// SRTPKeys are the master key and salt of one direction of one leg, and
// their suite. Printing, logging or marshaling them never shows the key or
// the salt: String, Format, MarshalText and MarshalLogObject all print the
// suite and "[redacted]" (SDES keys must never reach a log). Read Key and
// Salt explicitly to use them.
type SRTPKeys struct {
	Suite SRTPSuite
	Key   []byte // master key, Suite.KeyLen() bytes
	Salt  []byte // master salt, Suite.SaltLen() bytes
}

// GenerateSRTPKeys returns fresh master keys for suite from crypto/rand:
// ccsbc's own keys for the leg it re-encrypts toward.
func GenerateSRTPKeys(suite SRTPSuite) (SRTPKeys, error) {
	return generateSRTPKeys(suite, rand.Reader)
}

// generateSRTPKeys is GenerateSRTPKeys reading from r; tests pass their own.
func generateSRTPKeys(suite SRTPSuite, r io.Reader) (SRTPKeys, error) {
	if !suite.valid() {
		return SRTPKeys{}, fmt.Errorf("%w: %v", ErrSRTPSuite, suite)
	}
	b := make([]byte, suite.KeyLen()+suite.SaltLen())
	if _, err := io.ReadFull(r, b); err != nil {
		return SRTPKeys{}, fmt.Errorf("media: generate SRTP keys: %w", err)
	}
	return SRTPKeys{Suite: suite, Key: b[:suite.KeyLen():suite.KeyLen()], Salt: b[suite.KeyLen():]}, nil
}

// NewSRTPKeys splits keySalt, the master key followed by the master salt as
// the SDES inline parameter carries them once base64-decoded (RFC 4568
// §6.1), into SRTPKeys for suite. It copies keySalt; a length that does not
// fit the suite wraps ErrSRTPKeys.
func NewSRTPKeys(suite SRTPSuite, keySalt []byte) (SRTPKeys, error) {
	if !suite.valid() {
		return SRTPKeys{}, fmt.Errorf("%w: %v", ErrSRTPSuite, suite)
	}
	if want := suite.KeyLen() + suite.SaltLen(); len(keySalt) != want {
		return SRTPKeys{}, fmt.Errorf("%w: %v takes a %d-byte key and salt, got %d bytes", ErrSRTPKeys, suite, want, len(keySalt))
	}
	b := append([]byte(nil), keySalt...)
	return SRTPKeys{Suite: suite, Key: b[:suite.KeyLen():suite.KeyLen()], Salt: b[suite.KeyLen():]}, nil
}

// KeySalt returns a new slice holding the master key followed by the master
// salt, for the SDES inline parameter (base64-encoded there).
func (k SRTPKeys) KeySalt() []byte {
	b := make([]byte, 0, len(k.Key)+len(k.Salt))
	return append(append(b, k.Key...), k.Salt...)
}

// check reports whether the keys fit their suite.
func (k SRTPKeys) check() error {
	if !k.Suite.valid() {
		return fmt.Errorf("%w: %v", ErrSRTPSuite, k.Suite)
	}
	if len(k.Key) != k.Suite.KeyLen() || len(k.Salt) != k.Suite.SaltLen() {
		return fmt.Errorf("%w: %v takes a %d-byte key and a %d-byte salt, got %d and %d",
			ErrSRTPKeys, k.Suite, k.Suite.KeyLen(), k.Suite.SaltLen(), len(k.Key), len(k.Salt))
	}
	return nil
}

// String returns the suite and "key=[redacted]", never the key.
func (k SRTPKeys) String() string { return k.Suite.String() + " key=" + redacted }

// Format prints String for every verb (%v, %+v, %#v, %s, %x, %d...), so that
// no fmt verb can walk into Key or Salt; %q quotes it.
func (k SRTPKeys) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", k.String())
		return
	}
	io.WriteString(f, k.String())
}

// MarshalText returns String: encoding/json, yaml and log/slog print that.
func (k SRTPKeys) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalLogObject logs the suite and a redacted key with zap.Object or zap.Any.
func (k SRTPKeys) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("suite", k.Suite.String())
	enc.AddString("key", redacted)
	return nil
}

// SRTPOptions tune NewSRTPTransform. The zero value is the default.
type SRTPOptions struct {
	// ReplayWindow is how far back, in packets (SRTP) and in SRTCP
	// indexes, a packet may arrive out of order and still be accepted once;
	// anything older or already received is dropped as Drops.Replayed
	// (RFC 3711 §3.3.2). Default 128, as libsrtp: 2.5 s of 20 ms audio.
	// At most 32768. Replay protection cannot be turned off.
	ReplayWindow int
}

const (
	defaultReplayWindow = 128
	// maxReplayWindow: past half the sequence space the receiver's index
	// estimate (RFC 3711 §3.3.1) could not reach the packets anyway.
	maxReplayWindow = 1 << 15
)

// NewSRTPTransform returns the SRTP and SRTCP Transforms of one leg, for
// Stream.SetTransform: Unprotect authenticates and decrypts what the leg's
// peer sent, with remote, the keys the peer encrypts with (its a=crypto);
// Protect encrypts what goes to the peer, with local, ccsbc's own keys for
// the leg (the a=crypto ccsbc sent it). Each of the two Transforms holds a
// pion Context per direction, so Unprotect and Protect may run at the same
// time, as the Transform contract allows.
//
// Replay protection is on for SRTP and SRTCP. The transforms allocate
// nothing per packet in steady state (pion's AES-CM draws a 32-byte CTR
// scratch from a sync.Pool, refilled after a GC). A refused packet costs
// pion's error path, measured with BenchmarkSRTPDrop: a forged AES-CM
// packet 0 allocations, a replay 1, a forged AEAD packet 4, a packet with
// an SSRC never authenticated 4 (AES-CM) or 8 (AEAD).
//
// remote and local must differ: a peer that echoes ccsbc's key back would
// have both directions share a keystream whenever their SSRCs match.
//
// Neither end sends the rollover counter: each estimates a packet's index
// as the one closest to the highest it has seen (RFC 3711 §3.3.1). So a
// sequence number that jumps forward by more than 32768, or back by more
// than the replay window, within one SSRC, reads as an old packet: every
// packet from then on is dropped as Drops.Replayed until the numbers pass
// the highest one seen before the jump, up to 32768 packets (11 minutes of
// 20 ms audio) later. As the sender toward a peer, ccsbc encrypts whatever
// numbers the other leg sends, and the peer's receiver drops them the same
// way. A source whose numbering restarts should change its SSRC (RFC 3550
// §8.2), or the leg be re-keyed (a new SetTransform). See
// TestSRTPSequenceJump.
func NewSRTPTransform(remote, local SRTPKeys, opts SRTPOptions) (rtp, rtcp Transform, err error) {
	if err := remote.check(); err != nil {
		return nil, nil, fmt.Errorf("media: srtp remote keys: %w", err)
	}
	if err := local.check(); err != nil {
		return nil, nil, fmt.Errorf("media: srtp local keys: %w", err)
	}
	if string(remote.Key) == string(local.Key) && string(remote.Salt) == string(local.Salt) {
		return nil, nil, fmt.Errorf("%w: the peer's keys are ccsbc's own", ErrSRTPKeys)
	}
	window := opts.ReplayWindow
	switch {
	case window == 0:
		window = defaultReplayWindow
	case window < 0 || window > maxReplayWindow:
		return nil, nil, fmt.Errorf("media: SRTPOptions.ReplayWindow %d: want 1 to %d, or 0 for %d", window, maxReplayWindow, defaultReplayWindow)
	}

	// Four contexts: pion's Context keeps RTP and RTCP state apart, but it
	// is documented as unsafe for concurrent use, and the Transform
	// contract lets SRTP (each direction) and SRTCP (under the Stream's
	// RTCP mutex) run at once.
	var ctx [4]*srtp.Context
	for i, k := range [4]SRTPKeys{remote, local, remote, local} {
		if ctx[i], err = newSRTPContext(k, window); err != nil {
			return nil, nil, err
		}
	}
	t := &srtpTransform{overhead: srtpSuites[local.Suite].rtpTag}
	t.in.ctx, t.out.ctx = ctx[0], ctx[1]
	c := &srtcpTransform{overhead: srtpSuites[local.Suite].rtcpTail}
	c.in.ctx, c.out.ctx = ctx[2], ctx[3]
	return t, c, nil
}

func newSRTPContext(k SRTPKeys, window int) (*srtp.Context, error) {
	c, err := srtp.CreateContext(k.Key, k.Salt, k.Suite.Profile(),
		srtp.SRTPReplayProtection(uint(window)), srtp.SRTCPReplayProtection(uint(window)))
	if err != nil {
		return nil, fmt.Errorf("media: srtp %v context: %w", k.Suite, err)
	}
	return c, nil
}

// Errors returned per packet, built once: a flood of forged or replayed
// packets costs no allocation of ours.
var (
	errSRTPAuthTag  = fmt.Errorf("%w: %w", ErrSRTPAuth, srtp.ErrFailedToVerifyAuthTag)
	errSRTPReplayed = fmt.Errorf("%w: index already received or older than the replay window", ErrSRTPReplay)
	errSRTPNoRoom   = errors.New("media: srtp protect: no room after the packet for the tag")
	errSRTPLength   = errors.New("media: srtp: packet length out of range")
	errSRTPMoved    = errors.New("media: srtp: pion did not work in place")
)

// pionReplayErr is the sentinel pion/srtp wraps in its error for a replayed
// or too old packet. pion does not export it (v3.1.3: errDuplicated, inside
// an unexported *duplicatedError), so it is learnt once by replaying a
// packet to a scratch Context. TestSRTPReplay fails if a pion upgrade
// changes that; replays would then count as AuthFailed, still dropped.
var pionReplayErr = sync.OnceValue(func() error {
	k := SRTPKeys{Suite: DefaultSRTPSuite, Key: make([]byte, 16), Salt: make([]byte, 14)}
	enc, err1 := newSRTPContext(k, defaultReplayWindow)
	dec, err2 := newSRTPContext(k, defaultReplayWindow)
	if err1 != nil || err2 != nil {
		return nil
	}
	pkt := make([]byte, 12, 64)
	pkt[0] = 0x80
	pkt, err := enc.EncryptRTP(pkt, pkt, nil)
	if err != nil {
		return nil
	}
	for range 2 {
		in := append([]byte(nil), pkt...)
		_, err = dec.DecryptRTP(in, in, nil)
	}
	if err == nil || errors.Is(err, srtp.ErrFailedToVerifyAuthTag) {
		return nil
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	return err
})

// unprotectError maps pion's decryption error to what the relay counts: a
// replay is ErrSRTPReplay; anything else means the packet did not
// authenticate (bad tag, too short to hold one, a header pion refuses) and
// wraps ErrSRTPAuth.
func unprotectError(err error) error {
	switch {
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		return errSRTPAuthTag
	case errors.Is(err, pionReplayErr()):
		return errSRTPReplayed
	}
	return fmt.Errorf("%w: %w", ErrSRTPAuth, err)
}

// srtpTransform is one leg's SRTP Transform. in is used by Unprotect only
// (packets from the leg's peer), out by Protect only (packets to it):
// each direction owns its Context and its reused rtp.Header, padded apart
// so the two goroutines do not share a cache line.
type srtpTransform struct {
	in, out  srtpDir
	overhead int // bytes Protect adds
}

type srtpDir struct {
	ctx *srtp.Context
	hdr rtp.Header
	_   [64]byte
}

// Unprotect decrypts buf[:n] in place. dst is capped at n so pion can never
// write past the packet.
func (t *srtpTransform) Unprotect(buf []byte, n int) (int, error) {
	if n < 0 || n > len(buf) {
		return 0, errSRTPLength
	}
	pkt := buf[:n:n]
	out, err := t.in.ctx.DecryptRTP(pkt, pkt, &t.in.hdr)
	if err != nil {
		return 0, unprotectError(err)
	}
	return inPlace(buf, out)
}

// Protect encrypts buf[:n] in place; the tag goes after it, within len(buf).
func (t *srtpTransform) Protect(buf []byte, n int) (int, error) {
	if n < 0 || n+t.overhead > len(buf) {
		return 0, errSRTPNoRoom
	}
	pkt := buf[:n:len(buf)]
	out, err := t.out.ctx.EncryptRTP(pkt, pkt, &t.out.hdr)
	if err != nil {
		return 0, fmt.Errorf("media: srtp protect: %w", err)
	}
	return inPlace(buf, out)
}

// srtcpTransform is one leg's SRTCP Transform; the Stream serializes its
// calls, but it keeps a Context per direction all the same.
type srtcpTransform struct {
	in, out  srtcpDir
	overhead int // bytes Protect adds: tag, E flag and SRTCP index
}

type srtcpDir struct {
	ctx *srtp.Context
	hdr rtcp.Header
}

func (t *srtcpTransform) Unprotect(buf []byte, n int) (int, error) {
	if n < 0 || n > len(buf) {
		return 0, errSRTPLength
	}
	pkt := buf[:n:n]
	out, err := t.in.ctx.DecryptRTCP(pkt, pkt, &t.in.hdr)
	if err != nil {
		return 0, unprotectError(err)
	}
	return inPlace(buf, out)
}

func (t *srtcpTransform) Protect(buf []byte, n int) (int, error) {
	if n < 0 || n+t.overhead > len(buf) {
		return 0, errSRTPNoRoom
	}
	pkt := buf[:n:len(buf)]
	out, err := t.out.ctx.EncryptRTCP(pkt, pkt, &t.out.hdr)
	if err != nil {
		return 0, fmt.Errorf("media: srtcp protect: %w", err)
	}
	return inPlace(buf, out)
}

// inPlace returns len(out) once sure that out is buf's own memory: pion
// writes into dst when it has the capacity, which the callers ensure, but
// a result elsewhere would silently relay the unprocessed buffer.
func inPlace(buf, out []byte) (int, error) {
	if len(out) == 0 || len(out) > len(buf) || &out[0] != &buf[0] {
		return 0, errSRTPMoved
	}
	return len(out), nil
}
