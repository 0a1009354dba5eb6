// Package codec knows the audio codecs of a contact center by name and RTP
// payload type, so that policy can compare what peers speak.
package codec

import "strings"

// Codec is an RTP payload format ccsbc knows.
type Codec struct {
	Name    string // canonical encoding name, as in a=rtpmap
	PT      int    // static payload type (RFC 3551), or -1 when dynamic
	Rate    int    // clock rate
	Audio   bool   // carries voice (telephone-event does not)
	Display string // how an engineer names it
}

// known lists the codecs of CVP, VVB, Unified CM and Cisco phones.
var known = []Codec{
	{Name: "PCMU", PT: 0, Rate: 8000, Audio: true, Display: "G.711 µ-law"},
	{Name: "PCMA", PT: 8, Rate: 8000, Audio: true, Display: "G.711 A-law"},
	{Name: "G722", PT: 9, Rate: 8000, Audio: true, Display: "G.722"},
	{Name: "G729", PT: 18, Rate: 8000, Audio: true, Display: "G.729"},
	{Name: "iLBC", PT: -1, Rate: 8000, Audio: true, Display: "iLBC"},
	{Name: "opus", PT: -1, Rate: 48000, Audio: true, Display: "Opus"},
	{Name: "telephone-event", PT: -1, Rate: 8000, Display: "RFC 4733 telephone-event (DTMF)"},
}

// Lookup finds a codec by encoding name, case-insensitively; "G729a" and
// "G.729" are the same codec as G729 for matching purposes.
func Lookup(name string) (Codec, bool) {
	n := strings.ToUpper(strings.ReplaceAll(name, ".", ""))
	switch n {
	case "G729A", "G729AB", "G729B":
		n = "G729"
	case "ULAW", "G711U", "G711ULAW":
		n = "PCMU"
	case "ALAW", "G711A", "G711ALAW":
		n = "PCMA"
	}
	for _, c := range known {
		if strings.ToUpper(c.Name) == n {
			return c, true
		}
	}
	return Codec{}, false
}

// ByPayloadType finds a codec by static payload type.
func ByPayloadType(pt int) (Codec, bool) {
	for _, c := range known {
		if c.PT == pt && pt >= 0 {
			return c, true
		}
	}
	return Codec{}, false
}

// Canonical returns the canonical name of a codec name, or the name as
// given when unknown.
func Canonical(name string) string {
	if c, ok := Lookup(name); ok {
		return c.Name
	}
	return name
}

// Voice returns the canonical names of the voice codecs in names
// (telephone-event and comfort noise left out). Empty names means "any".
func Voice(names []string) []string {
	var out []string
	for _, n := range names {
		if c, ok := Lookup(n); ok && !c.Audio {
			continue
		}
		out = append(out, Canonical(n))
	}
	return out
}

// Common returns the voice codecs two lists share, in a's order. A nil or
// empty list stands for "any codec" and shares everything with the other.
func Common(a, b []string) []string {
	va, vb := Voice(a), Voice(b)
	if len(va) == 0 {
		return vb
	}
	if len(vb) == 0 {
		return va
	}
	var out []string
	for _, x := range va {
		for _, y := range vb {
			if strings.EqualFold(x, y) {
				out = append(out, x)
				break
			}
		}
	}
	return out
}
