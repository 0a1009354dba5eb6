package media

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

// RFC test vectors for the SRTP Transform.
//
// pion/srtp takes master keys only, and the RFC 7714 packet vectors (and
// RFC 3711 B.2's keystream) start from session keys, which no master key
// can be found for. So the chain is:
//
//  1. refSRTP below, a from-the-RFCs implementation on the standard
//     library, reproduces the RFCs' vectors exactly: RFC 3711 B.2 (AES-CM
//     keystream), B.3 (key derivation), RFC 6188 §7.1-7.2 (AES-256), RFC 7714
//     §16-17 (AEAD_AES_128_GCM and AEAD_AES_256_GCM, SRTP and SRTCP packets).
//  2. Our Transform, given master keys (B.3's and RFC 6188's), protects the
//     RFC 7714 packets into exactly the bytes refSRTP makes from the
//     session keys the RFCs list for those master keys, and unprotects
//     refSRTP's packets back into the RFC plaintext; across a rollover too.

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sessionKeys are the keys one direction derives from its master key for
// SRTP or for SRTCP (RFC 3711 §4.3).
type sessionKeys struct {
	enc, auth, salt []byte
}

// RFC 3711 §4.3.2 key derivation labels.
const (
	labelRTPEnc, labelRTPAuth, labelRTPSalt    = 0, 1, 2
	labelRTCPEnc, labelRTCPAuth, labelRTCPSalt = 3, 4, 5
)

// refKDF is the AES-CM PRF of RFC 3711 §4.3.1 and RFC 6188 §5.1 (the AES
// key size is the master key's) with a key derivation rate of 0. x = the
// label XORed into the master salt at octet 7 (key_id is 56 bits, right
// aligned in the 112-bit salt), and the keystream starts at x * 2^16. A
// 96-bit salt (AEAD suites, RFC 7714 §12) is taken as its 112-bit form
// padded with zeros on the right, as libsrtp and pion do.
func refKDF(t testing.TB, masterKey, masterSalt []byte, label byte, n int) []byte {
	t.Helper()
	iv := make([]byte, aes.BlockSize)
	copy(iv, masterSalt)
	iv[7] ^= label
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, n)
	cipher.NewCTR(block, iv).XORKeyStream(out, out)
	return out
}

func refSessionKeys(t testing.TB, k SRTPKeys, rtcp bool) sessionKeys {
	t.Helper()
	base := byte(labelRTPEnc)
	if rtcp {
		base = labelRTCPEnc
	}
	sk := sessionKeys{
		enc:  refKDF(t, k.Key, k.Salt, base, len(k.Key)),
		salt: refKDF(t, k.Key, k.Salt, base+2, len(k.Salt)),
	}
	if !isAEAD(k.Suite) {
		sk.auth = refKDF(t, k.Key, k.Salt, base+1, sha1.Size) // RFC 3711 §4.3.3: n_a = 160
	}
	return sk
}

// refAESCM XORs buf with the AES-CM keystream of RFC 3711 §4.1.1:
// IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16).
func refAESCM(t testing.TB, key, salt []byte, ssrc uint32, index uint64, buf []byte) {
	t.Helper()
	iv := make([]byte, aes.BlockSize)
	copy(iv, salt[:14])
	var x [16]byte
	binary.BigEndian.PutUint64(x[6:], index) // the 48-bit index lands in octets 8..13
	binary.BigEndian.PutUint32(x[4:], ssrc)  // then the SSRC in 4..7, over the index's zero top
	for i := range iv {
		iv[i] ^= x[i]
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	cipher.NewCTR(block, iv).XORKeyStream(buf, buf)
}

func refGCM(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// refProtectRTP protects an RTP packet (12-byte header, no CSRC or
// extension) with session keys: RFC 3711 §3.1 and §4.2 (AES-CM, HMAC-SHA1
// over the packet and the ROC, truncated), RFC 7714 §8 (AEAD: IV = salt
// XOR 00 00 || SSRC || ROC || SEQ, the header as associated data).
func refProtectRTP(t testing.TB, suite SRTPSuite, sk sessionKeys, roc uint32, plain []byte) []byte {
	t.Helper()
	const hdr = 12
	seq, ssrc := binary.BigEndian.Uint16(plain[2:]), binary.BigEndian.Uint32(plain[8:])
	if isAEAD(suite) {
		iv := make([]byte, 12)
		binary.BigEndian.PutUint32(iv[2:], ssrc)
		binary.BigEndian.PutUint32(iv[6:], roc)
		binary.BigEndian.PutUint16(iv[10:], seq)
		for i := range iv {
			iv[i] ^= sk.salt[i]
		}
		return refGCM(t, sk.enc).Seal(bytes.Clone(plain[:hdr]), iv, plain[hdr:], plain[:hdr])
	}
	out := bytes.Clone(plain)
	refAESCM(t, sk.enc, sk.salt, ssrc, uint64(roc)<<16|uint64(seq), out[hdr:])
	mac := hmac.New(sha1.New, sk.auth)
	mac.Write(out)
	binary.Write(mac, binary.BigEndian, roc)
	return append(out, mac.Sum(nil)[:srtpSuites[suite].rtpTag]...)
}

// refProtectRTCP protects an RTCP packet with SRTCP index index and the E
// flag set: RFC 3711 §3.4 (AES-CM over all but the first 8 octets, then
// E||index, then HMAC-SHA1 over all that), RFC 7714 §9 (AEAD: IV = salt XOR
// 00 00 || SSRC || 00 00 || index, associated data the first 8 octets and
// E||index; the tag before E||index).
func refProtectRTCP(t testing.TB, suite SRTPSuite, sk sessionKeys, index uint32, plain []byte) []byte {
	t.Helper()
	ssrc := binary.BigEndian.Uint32(plain[4:])
	eIndex := binary.BigEndian.AppendUint32(nil, index|1<<31)
	if isAEAD(suite) {
		iv := make([]byte, 12)
		binary.BigEndian.PutUint32(iv[2:], ssrc)
		binary.BigEndian.PutUint32(iv[8:], index)
		for i := range iv {
			iv[i] ^= sk.salt[i]
		}
		aad := append(bytes.Clone(plain[:8]), eIndex...)
		out := refGCM(t, sk.enc).Seal(bytes.Clone(plain[:8]), iv, plain[8:], aad)
		return append(out, eIndex...)
	}
	out := bytes.Clone(plain)
	refAESCM(t, sk.enc, sk.salt, ssrc, uint64(index), out[8:])
	out = append(out, eIndex...)
	mac := hmac.New(sha1.New, sk.auth)
	mac.Write(out)
	return append(out, mac.Sum(nil)[:10]...)
}

// RFC 3711 Appendix B.2: AES-CM keystream, session key and salt given,
// SSRC and index 0. The last three blocks are those of RFC 3686 §F.5.1.
func TestRFC3711AESCMKeystream(t *testing.T) {
	ks := make([]byte, 0xff02*aes.BlockSize)
	refAESCM(t, unhex(t, "2B7E151628AED2A6ABF7158809CF4F3C"), unhex(t, "F0F1F2F3F4F5F6F7F8F9FAFBFCFD"), 0, 0, ks)
	for _, c := range []struct {
		block int
		want  string
	}{
		{0x0000, "E03EAD0935C95E80E166B16DD92B4EB4"},
		{0x0001, "D23513162B02D0F72A43A2FE4A5F97AB"},
		{0x0002, "41E95B3BB0A2E8DD477901E4FCA894C0"},
		{0xfeff, "EC8CDF7398607CB0F2D21675EA9EA1E4"},
		{0xff00, "362B7C3C6773516318A077D7FC5073AE"},
		{0xff01, "6A2CC3787889374FBEB4C81B17BA6C44"},
	} {
		if got := ks[c.block*16 : c.block*16+16]; !bytes.Equal(got, unhex(t, c.want)) {
			t.Errorf("block %#04x: %X, want %s", c.block, got, c.want)
		}
	}
}

// RFC 6188 §7.1: AES-256-CM keystream.
func TestRFC6188AESCMKeystream(t *testing.T) {
	ks := make([]byte, 0xff02*aes.BlockSize)
	refAESCM(t, unhex(t, "57f82fe3613fd170a85ec93c40b1f0922ec4cb0dc025b58272147cc438944a98"),
		unhex(t, "f0f1f2f3f4f5f6f7f8f9fafbfcfd"), 0, 0, ks)
	if want := unhex(t, `92bdd28a93c3f52511c677d08b5515a4 9da71b2378a854f67050756ded165bac
		63c4868b7096d88421b563b8c94c9a31`); !bytes.Equal(ks[:48], want) {
		t.Errorf("first blocks %x", ks[:48])
	}
	if want := unhex(t, `cea518c90fd91ced9cbb18c078a54711 3dbc4814f4da5f00a08772b63c6a046d
		6eb246913062a16891433e97dd01a57f`); !bytes.Equal(ks[len(ks)-48:], want) {
		t.Errorf("last blocks %x", ks[len(ks)-48:])
	}
}

// rfcMasters are the master keys of RFC 3711 B.3 and RFC 6188 §7.2 with the
// SRTP session keys those RFCs list for them.
var rfcMasters = map[string]struct {
	key, salt      string
	enc, auth, slt string
}{
	"RFC 3711 B.3": {
		key: "E1F97A0D3E018BE0D64FA32C06DE4139", salt: "0EC675AD498AFEEBB6960B3AABE6",
		enc: "C61E7A93744F39EE10734AFE3FF7A087", auth: "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4", slt: "30CBBC08863D8C85D49DB34A9AE1",
	},
	"RFC 6188 7.2": {
		key: "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6", salt: "3b04803de51ee7c96423ab5b78d2",
		enc: "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4", auth: "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05", slt: "fa31791685ca444a9e07c6c64e93",
	},
}

// RFC 3711 B.3 and RFC 6188 §7.2: the key derivation of refSRTP.
func TestRFCKeyDerivation(t *testing.T) {
	for name, m := range rfcMasters {
		key, salt := unhex(t, m.key), unhex(t, m.salt)
		for _, c := range []struct {
			label byte
			want  string
		}{{labelRTPEnc, m.enc}, {labelRTPAuth, m.auth}, {labelRTPSalt, m.slt}} {
			want := unhex(t, c.want)
			if got := refKDF(t, key, salt, c.label, len(want)); !bytes.Equal(got, want) {
				t.Errorf("%s label %d: %x, want %x", name, c.label, got, want)
			}
		}
	}
}

// The RFC 7714 §16 RTP packet and §17 RTCP packet, and their protected
// forms under the session key and salt of §16.
const (
	rfc7714RTP = `8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
		69736120 696e2070 61727465 73207472 6573`
	rfc7714RTCP = `81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
		deadbeef deadbeef deadbeef deadbeef deadbeef`
	rfc7714Salt = `517569642070726f2071756f`
)

var rfc7714 = []struct {
	name     string
	suite    SRTPSuite
	key      string
	rtp      string // §16.1.1 / §16.2.1
	rtcp     string // §17.1 / §17.2, index 0x5d4
	rtcpAuth string // §17.3 / §17.4, the same tagged only (E flag clear)
}{
	{
		name: "AEAD_AES_128_GCM", suite: SRTPAEADAES128GCM, key: "000102030405060708090a0b0c0d0e0f",
		rtp: `8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f
			42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce`,
		rtcp: `81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d c676a5f1
			730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4`,
		rtcpAuth: `81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
			deadbeef deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4`,
	},
	{
		name: "AEAD_AES_256_GCM", suite: SRTPAEADAES256GCM, key: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		rtp: `8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238 9a58e2f3
			b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13`,
		rtcp: `81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50 a2eaa5c1
			110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be 800005d4`,
		rtcpAuth: `81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
			deadbeef deadbeef deadbeef deadbeef deadbeef 91db4afb feee5a97 8fab4393 ed2615fe 000005d4`,
	},
}

// RFC 7714 §16-17: refSRTP's AEAD path reproduces the RFC's packets.
func TestRFC7714Vectors(t *testing.T) {
	for _, v := range rfc7714 {
		t.Run(v.name, func(t *testing.T) {
			sk := sessionKeys{enc: unhex(t, v.key), salt: unhex(t, rfc7714Salt)}
			if got, want := refProtectRTP(t, v.suite, sk, 0, unhex(t, rfc7714RTP)), unhex(t, v.rtp); !bytes.Equal(got, want) {
				t.Errorf("SRTP:\n got %x\nwant %x", got, want)
			}
			if got, want := refProtectRTCP(t, v.suite, sk, 0x5d4, unhex(t, rfc7714RTCP)), unhex(t, v.rtcp); !bytes.Equal(got, want) {
				t.Errorf("SRTCP:\n got %x\nwant %x", got, want)
			}
			// §17.3-17.4, authentication only: the whole packet and the
			// index (E clear) are the associated data, the tag comes first.
			plain := unhex(t, rfc7714RTCP)
			iv := make([]byte, 12)
			binary.BigEndian.PutUint32(iv[2:], binary.BigEndian.Uint32(plain[4:]))
			binary.BigEndian.PutUint32(iv[8:], 0x5d4)
			for i := range iv {
				iv[i] ^= sk.salt[i]
			}
			index := binary.BigEndian.AppendUint32(nil, 0x5d4)
			tag := refGCM(t, sk.enc).Seal(nil, iv, nil, append(bytes.Clone(plain), index...))
			if got, want := append(append(bytes.Clone(plain), tag...), index...), unhex(t, v.rtcpAuth); !bytes.Equal(got, want) {
				t.Errorf("SRTCP tagged only:\n got %x\nwant %x", got, want)
			}
		})
	}
}

// TestSRTPTransformRFC runs the RFC 7714 packets through our Transforms for
// every suite, keyed with the RFC 3711 B.3 master key (128-bit suites) or
// the RFC 6188 §7.2 one (256-bit suites), their salt cut to 96 bits for the
// AEAD suites. Protect must produce exactly refSRTP's bytes for the session
// keys the RFCs list (or, where no RFC lists them: SRTCP labels, AEAD
// salts, refKDF's, itself checked against B.3 and §7.2), and Unprotect must
// turn refSRTP's packets back into the RFC plaintext. The sequence crosses
// the 16-bit wrap, so the ROC (0, then 1) is in the IV and the tag.
func TestSRTPTransformRFC(t *testing.T) {
	seqs := []struct {
		seq uint16
		roc uint32
	}{{0xf17b, 0}, {0xfffe, 0}, {0xffff, 0}, {0x0000, 1}, {0x0002, 1}}
	for _, suite := range allSRTPSuites {
		t.Run(suite.String(), func(t *testing.T) {
			m := rfcMasters["RFC 3711 B.3"]
			if suite.KeyLen() == 32 {
				m = rfcMasters["RFC 6188 7.2"]
			}
			master := SRTPKeys{Suite: suite, Key: unhex(t, m.key), Salt: unhex(t, m.salt)[:suite.SaltLen()]}
			rtpKeys, rtcpKeys := refSessionKeys(t, master, false), refSessionKeys(t, master, true)
			if !isAEAD(suite) {
				// The session keys as the RFC prints them, not as derived.
				rtpKeys = sessionKeys{enc: unhex(t, m.enc), auth: unhex(t, m.auth), salt: unhex(t, m.slt)}
			}
			other, err := GenerateSRTPKeys(suite)
			if err != nil {
				t.Fatal(err)
			}
			// tx protects with master; rx unprotects what master protected.
			txRTP, txRTCP, err := NewSRTPTransform(other, master, SRTPOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rxRTP, rxRTCP, err := NewSRTPTransform(master, other, SRTPOptions{})
			if err != nil {
				t.Fatal(err)
			}

			for _, s := range seqs {
				plain := unhex(t, rfc7714RTP)
				binary.BigEndian.PutUint16(plain[2:], s.seq)
				want := refProtectRTP(t, suite, rtpKeys, s.roc, plain)
				got, err := runTransform(txRTP.Protect, plain)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("Protect seq %#04x ROC %d: %v\n got %x\nwant %x", s.seq, s.roc, err, got, want)
				}
				back, err := runTransform(rxRTP.Unprotect, want)
				if err != nil || !bytes.Equal(back, plain) {
					t.Fatalf("Unprotect seq %#04x ROC %d: %v\n got %x\nwant %x", s.seq, s.roc, err, back, plain)
				}
			}
			// pion numbers SRTCP packets from 1.
			for index := uint32(1); index <= 3; index++ {
				plain := unhex(t, rfc7714RTCP)
				want := refProtectRTCP(t, suite, rtcpKeys, index, plain)
				got, err := runTransform(txRTCP.Protect, plain)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("SRTCP Protect index %d: %v\n got %x\nwant %x", index, err, got, want)
				}
				back, err := runTransform(rxRTCP.Unprotect, want)
				if err != nil || !bytes.Equal(back, plain) {
					t.Fatalf("SRTCP Unprotect index %d: %v", index, err)
				}
			}
			// The RFC 7714 index itself, 0x5d4, received out of the blue.
			plain := unhex(t, rfc7714RTCP)
			back, err := runTransform(rxRTCP.Unprotect, refProtectRTCP(t, suite, rtcpKeys, 0x5d4, plain))
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("SRTCP Unprotect index 0x5d4: %v", err)
			}
		})
	}
}
