package admin

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ccsbc/ccsbc/policy"
)

// TestMetricsScrape feeds every family through Metrics and a StatsSource
// and scrapes /metrics over HTTP as Prometheus would, with a read token.
func TestMetricsScrape(t *testing.T) {
	reg := NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.SetPeers([]string{"cvp", "cucm", "vvb"})
	m.CallStarted()
	m.CallStarted()
	m.CallStarted()
	m.CallEnded(policy.ModelSecureAgentMedia, policy.LegAgent, CallAnswered)
	m.CallEnded(policy.ModelSecureAgentMedia, policy.LegIVRIOS, CallRejected)
	m.TLSHandshakeFailed("cucm")
	m.TLSHandshakeFailed("cucm")
	m.TLSHandshakeFailed("")
	m.PolicyRejected("model 3 encrypts the agent leg (caller to agent)")
	m.SetPeerUp("cucm", true)
	m.SetPeerUp("vvb", false)

	var scrapes atomic.Int32
	m.SetMediaSource(StatsFunc(func() MediaTotals {
		scrapes.Add(1)
		var t MediaTotals
		t.For(policy.RTP).Add(ProtectionTotals{PacketsIn: 100, BytesIn: 17200, PacketsOut: 98, BytesOut: 16856, Drops: MediaDrops{WrongSource: 2}})
		t.For(policy.SRTP).Add(ProtectionTotals{PacketsIn: 50, BytesIn: 9100, PacketsOut: 49, BytesOut: 8918, Drops: MediaDrops{AuthFailed: 3, Replayed: 1}})
		t.For(policy.SRTP).Add(ProtectionTotals{PacketsIn: 10})
		return t
	}))

	f := start(t, testConfig(t, nil), func(o *Options, _ *fixture) { o.Gatherer = reg })
	res := f.do(t, request{method: "GET", path: "/metrics", token: tokRead})
	if res.code != 200 {
		t.Fatalf("scrape: %d %q", res.code, res.body)
	}
	for _, want := range []string{
		"ccsbc_calls_active 1",
		`ccsbc_calls_total{leg="agent",model="3",result="answered"} 1`,
		`ccsbc_calls_total{leg="ivr-ios",model="3",result="rejected"} 1`,
		`ccsbc_tls_handshake_failures_total{peer="cucm"} 2`,
		`ccsbc_tls_handshake_failures_total{peer="unknown"} 1`,
		`ccsbc_tls_handshake_failures_total{peer="vvb"} 0`,
		`ccsbc_policy_rejections_total{reason="model 3 encrypts the agent leg (caller to agent)"} 1`,
		`ccsbc_peer_up{peer="cucm"} 1`,
		`ccsbc_peer_up{peer="vvb"} 0`,
		`ccsbc_media_packets_total{direction="in",protection="rtp"} 100`,
		`ccsbc_media_packets_total{direction="out",protection="rtp"} 98`,
		`ccsbc_media_packets_total{direction="in",protection="srtp"} 60`,
		`ccsbc_media_packets_total{direction="in",protection="dtls-srtp"} 0`,
		`ccsbc_media_bytes_total{direction="in",protection="rtp"} 17200`,
		`ccsbc_media_bytes_total{direction="out",protection="srtp"} 8918`,
		`ccsbc_media_drops_total{protection="rtp",reason="wrong_source"} 2`,
		`ccsbc_media_drops_total{protection="srtp",reason="auth_failed"} 3`,
		`ccsbc_media_drops_total{protection="srtp",reason="replayed"} 1`,
		`ccsbc_srtp_auth_failures_total{protection="srtp"} 3`,
		`ccsbc_srtp_replays_total{protection="srtp"} 1`,
		`ccsbc_srtp_auth_failures_total{protection="dtls-srtp"} 0`,
		"# TYPE ccsbc_media_packets_total counter",
		"# TYPE ccsbc_peer_up gauge",
		"go_goroutines ",
		"process_open_fds ",
	} {
		// A whole line, or a line's start for the entries that end in a
		// space (values that vary).
		found := false
		for _, line := range strings.Split(res.body, "\n") {
			found = found || line == want || strings.HasSuffix(want, " ") && strings.HasPrefix(line, want)
		}
		if !found {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(res.body, `ccsbc_srtp_auth_failures_total{protection="rtp"}`) {
		t.Errorf("SRTP families have an rtp series")
	}
	if n := scrapes.Load(); n != 1 {
		t.Errorf("the StatsSource was read %d times for one scrape", n)
	}

	// A registry's own families only: nothing from the global registry.
	if strings.Contains(res.body, "promhttp_metric_handler") {
		t.Errorf("the global registry's families leaked in")
	}
}

func TestMetricsPeers(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.SetPeerUp("cucm", true)
	m.SetPeerUp("old", true)
	m.SetPeers([]string{"cucm"})
	if n := testutil.CollectAndCount(m.peerUp); n != 1 {
		t.Errorf("%d peer_up series after old left, want 1", n)
	}
	if v := testutil.ToFloat64(m.peerUp.WithLabelValues("cucm")); v != 1 {
		t.Errorf("cucm up = %v", v)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Errorf("registering twice succeeded")
	}
	m.SetMediaSource(StatsFunc(func() MediaTotals { return MediaTotals{} }))
	m.SetMediaSource(nil)
	if n := testutil.CollectAndCount(m.media); n != 0 {
		t.Errorf("%d media series after SetMediaSource(nil)", n)
	}
}

// TestMetricsNil: a nil *Metrics is a valid no-op, for code under test.
func TestMetricsNil(t *testing.T) {
	var m *Metrics
	m.CallStarted()
	m.CallEnded(policy.ModelEndToEnd, policy.LegAgent, CallFailed)
	m.TLSHandshakeFailed("x")
	m.PolicyRejected("x")
	m.SetPeerUp("x", true)
	m.SetPeers(nil)
	m.SetMediaSource(nil)
}

// TestMediaCollectorWithoutSource: before SetMediaSource, the media
// families are absent rather than zero or an error.
func TestMediaCollectorWithoutSource(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "ccsbc_media_") || strings.HasPrefix(mf.GetName(), "ccsbc_srtp_") {
			t.Errorf("%s exported without a source", mf.GetName())
		}
	}
}

// TestInvalidLabelNoPanic: a label value Prometheus refuses is dropped,
// never a panic in the daemon.
func TestInvalidLabelNoPanic(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m.PolicyRejected("\xff\xfe")
	m.SetPeerUp("\xff", true)
	m.TLSHandshakeFailed("\xff")
}

func TestMediaTotalsFor(t *testing.T) {
	var mt MediaTotals
	for _, p := range []policy.Protection{policy.RTP, policy.SRTP, policy.DTLSSRTP} {
		if mt.For(p) == nil {
			t.Errorf("For(%s) = nil", p)
		}
	}
	if mt.For("zrtp") != nil {
		t.Errorf("For(zrtp) is not nil")
	}
	mt.For("zrtp").Add(ProtectionTotals{PacketsIn: 1}) // no panic
	if mt.For(policy.SRTP) != &mt.SRTP || mt.For(policy.DTLSSRTP) != &mt.DTLSSRTP {
		t.Errorf("For maps to the wrong field")
	}
}
