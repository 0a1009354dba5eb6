package admin

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/ccsbc/ccsbc/policy"
)

// TestGrafanaDashboard: the dashboard in configs/ parses and every metric
// it queries is one ccsbc exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../configs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// One sample in every family, so that Gather lists them all.
	m.SetMediaSource(StatsFunc(func() MediaTotals {
		return MediaTotals{SRTP: ProtectionTotals{PacketsIn: 1, BytesIn: 1, PacketsOut: 1, BytesOut: 1,
			Drops: MediaDrops{WrongSource: 1, AuthFailed: 1, Replayed: 1}}}
	}))
	m.CallStarted()
	m.CallEnded(policy.ModelEndToEnd, policy.LegAgent, CallAnswered)
	m.TLSHandshakeFailed("cucm")
	m.PolicyRejected("srtp required")
	m.SetPeerUp("cucm", true)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range fams {
		known[f.GetName()] = true
	}
	re := regexp.MustCompile(`ccsbc_[a-z_]+`)
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range re.FindAllString(tg.Expr, -1) {
				n++
				if !known[m] {
					t.Errorf("panel %q queries %s, which ccsbc does not export", p.Title, m)
				}
			}
		}
	}
	if n < 9 {
		t.Errorf("dashboard queries only %d metrics", n)
	}
}
