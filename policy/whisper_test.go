package policy

import (
	"strings"
	"testing"
)

func TestWhisper(t *testing.T) {
	vvb := PeerCodecs{Name: "vvb", Kind: "vvb", Codecs: []string{"PCMU", "telephone-event"}}
	vvb729 := PeerCodecs{Name: "vvb-g729", Kind: "vvb", Codecs: []string{"G729", "telephone-event"}}
	agents729 := []PeerCodecs{{Name: "cucm", Kind: "cucm", Codecs: []string{"G729"}}}
	agentsAny := []PeerCodecs{{Name: "cucm", Kind: "cucm"}}
	tests := []struct {
		name       string
		model      Model
		whisper    PeerCodecs
		agents     []PeerCodecs
		candidates []PeerCodecs
		conflict   bool
		to         string
		reason     string
	}{
		{"model 2 transcodes", 2, vvb, agents729, nil, false, "vvb", "may transcode"},
		{"model 3 conflict, no alternate", 3, vvb, agents729, []PeerCodecs{vvb}, true, "", "fix: play the announcement from a VVB in G729"},
		{"model 4 conflict, G.729 VVB configured", 4, vvb, agents729, []PeerCodecs{vvb, vvb729}, true, "vvb-g729", "routed to vvb-g729"},
		{"model 4 fixed route", 4, vvb729, agents729, []PeerCodecs{vvb, vvb729}, false, "vvb-g729", "shares a codec"},
		{"agents take any codec", 4, vvb, agentsAny, nil, false, "vvb", ""},
		{"alternate must be the same kind", 3, vvb, agents729, []PeerCodecs{{Name: "gw", Kind: "vxml-gw", Codecs: []string{"G729"}}}, true, "", "fix"},
	}
	for _, tc := range tests {
		d := Whisper(tc.model, tc.whisper, tc.agents, tc.candidates)
		if d.Conflict != tc.conflict || d.To != tc.to || !strings.Contains(d.Reason, tc.reason) {
			t.Errorf("%s: got %+v", tc.name, d)
		}
	}
}
