package codec

import (
	"reflect"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		pt   int
	}{{"pcmu", "PCMU", 0}, {"G.711 ulaw", "", 0}, {"ulaw", "PCMU", 0}, {"G729a", "G729", 18}, {"G.729", "G729", 18}, {"PCMA", "PCMA", 8}, {"telephone-event", "telephone-event", -1}} {
		c, ok := Lookup(tc.in)
		if tc.want == "" {
			if ok {
				t.Errorf("%q: found %v", tc.in, c)
			}
			continue
		}
		if !ok || c.Name != tc.want || c.PT != tc.pt {
			t.Errorf("%q: got %+v ok=%v", tc.in, c, ok)
		}
	}
	if c, ok := ByPayloadType(18); !ok || c.Name != "G729" {
		t.Errorf("PT 18: %+v", c)
	}
}

func TestCommon(t *testing.T) {
	for _, tc := range []struct {
		a, b, want []string
	}{
		{[]string{"PCMU", "telephone-event"}, []string{"G729", "telephone-event"}, nil},
		{[]string{"G729", "telephone-event"}, []string{"g729a"}, []string{"G729"}},
		{nil, []string{"G729"}, []string{"G729"}},
		{[]string{"PCMU", "G729"}, []string{"G729", "PCMU"}, []string{"PCMU", "G729"}},
	} {
		if got := Common(tc.a, tc.b); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Common(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
