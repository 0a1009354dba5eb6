package lab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"time"
)

// Codec is an RTP audio codec as SDP names it.
type Codec struct {
	PT   int    // RTP payload type
	Name string // encoding name in a=rtpmap
}

// The G.711 codecs, the ones the lab can generate audio for.
var (
	PCMU = Codec{PT: 0, Name: "PCMU"}
	PCMA = Codec{PT: 8, Name: "PCMA"}
)

// SampleRate is the G.711 sample rate, which every lab audio file uses.
const SampleRate = 8000

// Tone is dur of a sine wave at freq Hz, amplitude amp (0..1 of full
// scale), 16-bit samples at 8 kHz.
func Tone(freq, amp float64, dur time.Duration) []int16 {
	n := int(dur.Seconds() * SampleRate)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/SampleRate))
	}
	return s
}

// WriteWAV writes 16-bit mono PCM at 8 kHz (what baresip's aufile reads).
func WriteWAV(path string, samples []int16) error {
	var b bytes.Buffer
	data := 2 * len(samples)
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+data))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, uint32(16))           // fmt chunk size
	binary.Write(&b, binary.LittleEndian, uint16(1))            // PCM
	binary.Write(&b, binary.LittleEndian, uint16(1))            // mono
	binary.Write(&b, binary.LittleEndian, uint32(SampleRate))   // sample rate
	binary.Write(&b, binary.LittleEndian, uint32(2*SampleRate)) // byte rate
	binary.Write(&b, binary.LittleEndian, uint16(2))            // block align
	binary.Write(&b, binary.LittleEndian, uint16(16))           // bits per sample
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(data))
	binary.Write(&b, binary.LittleEndian, samples)
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// ReadWAV reads a 16-bit PCM WAV file (mono, or the first channel).
func ReadWAV(path string) (samples []int16, rate int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("lab: %s is not a WAV file", path)
	}
	channels, bits := 0, 0
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := int(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		body := b[off+8:]
		if size > len(body) || (id == "data" && size == 0) {
			size = len(body) // a file still being written, or not closed
		}
		body = body[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, 0, fmt.Errorf("lab: %s: short fmt chunk", path)
			}
			if f := binary.LittleEndian.Uint16(body[0:2]); f != 1 && f != 0xfffe {
				return nil, 0, fmt.Errorf("lab: %s: format %d is not PCM", path, f)
			}
			channels = int(binary.LittleEndian.Uint16(body[2:4]))
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
		case "data":
			if bits != 16 || channels < 1 {
				return nil, 0, fmt.Errorf("lab: %s: %d-bit, %d channels: want 16-bit PCM", path, bits, channels)
			}
			frame := 2 * channels
			for i := 0; i+frame <= len(body); i += frame {
				samples = append(samples, int16(binary.LittleEndian.Uint16(body[i:i+2])))
			}
			return samples, rate, nil
		}
		off += 8 + size + size%2
	}
	return nil, 0, fmt.Errorf("lab: %s: no data chunk", path)
}

// AudioStats sums up a stretch of audio.
type AudioStats struct {
	Duration time.Duration
	RMS      float64 // root mean square, full scale 32767
	DBFS     float64 // RMS in dB relative to full scale (-inf for silence)
	// Freq is the dominant frequency estimated from zero crossings over the
	// loud part: right for one tone, meaningless for speech or noise.
	Freq float64
	// Active is the fraction of 20 ms frames louder than -50 dBFS.
	Active float64
}

// Silent reports whether the audio has no frame louder than -50 dBFS.
func (a AudioStats) Silent() bool { return a.Active == 0 }

func (a AudioStats) String() string {
	return fmt.Sprintf("%v of audio, %.1f dBFS, %.0f%% active, ~%.0f Hz", a.Duration, a.DBFS, 100*a.Active, a.Freq)
}

// AnalyzeAudio measures samples taken at rate Hz.
func AnalyzeAudio(samples []int16, rate int) AudioStats {
	var st AudioStats
	if rate <= 0 || len(samples) == 0 {
		st.DBFS = math.Inf(-1)
		return st
	}
	st.Duration = time.Duration(len(samples)) * time.Second / time.Duration(rate)
	var sum float64
	for _, s := range samples {
		sum += float64(s) * float64(s)
	}
	st.RMS = math.Sqrt(sum / float64(len(samples)))
	st.DBFS = 20 * math.Log10(st.RMS/32767)
	frame := rate / 50
	if frame == 0 {
		frame = 1
	}
	var frames, active, crossings, activeSamples int
	threshold := 32767 * math.Pow(10, -50.0/20)
	prevActive := false
	for off := 0; off+frame <= len(samples); off += frame {
		frames++
		var fs float64
		for _, s := range samples[off : off+frame] {
			fs += float64(s) * float64(s)
		}
		if math.Sqrt(fs/float64(frame)) < threshold {
			prevActive = false
			continue
		}
		active++
		activeSamples += frame
		start := off + 1
		if prevActive {
			start = off // count the crossing between two loud frames too
		}
		for i := start; i < off+frame; i++ {
			if (samples[i-1] < 0) != (samples[i] < 0) {
				crossings++
			}
		}
		prevActive = true
	}
	if frames > 0 {
		st.Active = float64(active) / float64(frames)
	}
	if activeSamples > 0 {
		st.Freq = float64(crossings) / 2 / (float64(activeSamples) / float64(rate))
	}
	return st
}

// Entropy is the Shannon entropy of b in bits per byte: SRTP payloads come
// close to 8, G.711 audio stays well below.
func Entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	var h float64
	n := float64(len(b))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// Encode encodes 16-bit samples with the codec (PCMU or PCMA).
func (c Codec) Encode(samples []int16) ([]byte, error) {
	out := make([]byte, len(samples))
	switch c.PT {
	case 0:
		for i, s := range samples {
			out[i] = linearToUlaw(s)
		}
	case 8:
		for i, s := range samples {
			out[i] = linearToAlaw(s)
		}
	default:
		return nil, fmt.Errorf("lab: cannot encode %s (pt %d): only PCMU and PCMA", c.Name, c.PT)
	}
	return out, nil
}

// linearToUlaw is G.711 µ-law (the classic Sun reference algorithm).
func linearToUlaw(pcm int16) byte {
	const bias, clip = 0x84, 32635
	s := int(pcm)
	sign := 0
	if s < 0 {
		s = -s
		sign = 0x80
	}
	if s > clip {
		s = clip
	}
	s += bias
	exp := 7
	for mask := 0x4000; s&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (s >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// linearToAlaw is G.711 A-law.
func linearToAlaw(pcm int16) byte {
	s := int(pcm) >> 3 // 13-bit magnitude
	mask := 0xd5       // sign bit set (positive) and even bits inverted
	if s < 0 {
		mask = 0x55
		s = -s - 1
	}
	segEnd := []int{0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff}
	seg := 0
	for seg < 8 && s > segEnd[seg] {
		seg++
	}
	if seg >= 8 {
		return byte(0x7f ^ mask)
	}
	var aval int
	if seg < 2 {
		aval = s >> 1 & 0x0f
	} else {
		aval = s >> seg & 0x0f
	}
	return byte((seg<<4 | aval) ^ mask)
}

// WriteTonePCAP writes dur of a freq Hz tone as an RTP stream in the codec
// (20 ms packets, one SSRC, sequence and timestamp from 0, marker on the
// first) to a pcap file that SIPp's play_pcap_audio can play: Ethernet,
// IPv4, UDP from 127.0.0.1:4000 to 127.0.0.1:4002. SIPp keeps the payload,
// the RTP header and the timing, and replaces addresses and ports.
func WriteTonePCAP(path string, codec Codec, freq float64, dur time.Duration) error {
	samples := Tone(freq, 0.3, dur)
	payload, err := codec.Encode(samples)
	if err != nil {
		return err
	}
	const spp = SampleRate / 50 // samples per 20 ms packet
	var b bytes.Buffer
	// pcap global header: magic, v2.4, tz 0, sigfigs 0, snaplen, Ethernet.
	binary.Write(&b, binary.LittleEndian, []uint32{0xa1b2c3d4})
	binary.Write(&b, binary.LittleEndian, []uint16{2, 4})
	binary.Write(&b, binary.LittleEndian, []uint32{0, 0, 65535, 1})
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const ssrc = 0x1ab5eed
	for i := 0; (i+1)*spp <= len(payload); i++ {
		rtp := make([]byte, 12, 12+spp)
		rtp[0] = 0x80
		rtp[1] = byte(codec.PT)
		if i == 0 {
			rtp[1] |= 0x80
		}
		binary.BigEndian.PutUint16(rtp[2:], uint16(i))
		binary.BigEndian.PutUint32(rtp[4:], uint32(i*spp))
		binary.BigEndian.PutUint32(rtp[8:], ssrc)
		rtp = append(rtp, payload[i*spp:(i+1)*spp]...)
		frame := ethIPv4UDP([4]byte{127, 0, 0, 1}, [4]byte{127, 0, 0, 1}, 4000, 4002, uint16(i), rtp)
		ts := start.Add(time.Duration(i) * 20 * time.Millisecond)
		binary.Write(&b, binary.LittleEndian, []uint32{
			uint32(ts.Unix()), uint32(ts.Nanosecond() / 1000), uint32(len(frame)), uint32(len(frame)),
		})
		b.Write(frame)
	}
	if b.Len() == 24 {
		return errors.New("lab: tone too short for one packet")
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// ethIPv4UDP frames a UDP payload in IPv4 and Ethernet.
func ethIPv4UDP(src, dst [4]byte, sport, dport, id uint16, payload []byte) []byte {
	f := make([]byte, 14+20+8+len(payload))
	// Ethernet: locally administered MACs, IPv4.
	copy(f[0:6], []byte{0x02, 0, 0, 0, 0, 2})
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], id)
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	// UDP checksum 0: none (SIPp computes its own when it plays the file).
	copy(udp[8:], payload)
	return f
}

// Decode decodes G.711 payload bytes (PCMU or PCMA) to 16-bit samples: the
// audio of RTP read back from a capture can then go through AnalyzeAudio.
func (c Codec) Decode(payload []byte) ([]int16, error) {
	out := make([]int16, len(payload))
	switch c.PT {
	case 0:
		for i, u := range payload {
			out[i] = ulawToLinear(u)
		}
	case 8:
		for i, a := range payload {
			out[i] = alawToLinear(a)
		}
	default:
		return nil, fmt.Errorf("lab: cannot decode %s (pt %d): only PCMU and PCMA", c.Name, c.PT)
	}
	return out, nil
}

func ulawToLinear(u byte) int16 {
	u = ^u
	t := (int(u&0x0f) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

func alawToLinear(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0f) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}
