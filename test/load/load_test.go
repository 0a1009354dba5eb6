package load_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccsbc/ccsbc/test/load"
)

// The smoke test runs each load tool tiny (a few calls, a few seconds) and
// checks that what it reports is sane. The full suite is cmd/bench.

func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (CI installs %s: see .ci/run)", tool, pkg)
		}
		t.Skipf("%s is not installed: apt-get install %s", tool, pkg)
	}
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

func ccsbc(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ccsbc-load-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary, buildErr = load.BuildCCSBC(dir, false)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestSmokeMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := ccsbc(t)
	for _, tc := range []struct {
		relay string
		mode  load.Mode
	}{
		{"ccsbc", load.RTPtoRTP}, {"rtpengine", load.RTPtoRTP},
		{"ccsbc", load.RTPtoSRTP}, {"rtpengine", load.RTPtoSRTP},
		{"ccsbc", load.SRTPtoSRTP}, {"rtpengine", load.SRTPtoSRTP},
		{"epollrelay", load.RTPtoRTP},
	} {
		t.Run(tc.relay+"/"+string(tc.mode), func(t *testing.T) {
			if tc.relay == "rtpengine" {
				need(t, "rtpengine", "rtpengine-daemon")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := load.RunMedia(ctx, load.MediaConfig{
				Relay: tc.relay, Mode: tc.mode, Levels: []int{5}, Warmup: 500 * time.Millisecond, Measure: 1500 * time.Millisecond,
				Dir: t.TempDir(), Log: t.Logf,
				CCSBC: load.CCSBCConfig{Binary: bin, PortMin: 30000, PortMax: 30399}, Rtpengine: load.RtpengineConfig{PortMin: 30400, PortMax: 30799},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 {
				t.Fatalf("%d results, want 1", len(res))
			}
			r := res[0]
			t.Log(load.FormatMedia(r))
			if r.Err != "" {
				// A relay that cannot do a mode yet says so, cleanly.
				if tc.relay == "ccsbc" && tc.mode != load.RTPtoRTP && strings.HasPrefix(r.Err, "not available") {
					t.Skip(r.Err)
				}
				t.Fatalf("no figure: %s", r.Err)
			}
			if r.Calls != 5 || r.SetupFailed != 0 {
				t.Errorf("calls %d, setup failed %d; want 5 up", r.Calls, r.SetupFailed)
			}
			// 5 calls × 2 directions × 50 packets/s over 1.5 s: ~750 packets.
			if r.Sent < 500 || r.Recv < 500 {
				t.Errorf("sent %d, received %d packets; want about 750 each", r.Sent, r.Recv)
			}
			if r.Loss > 0.02 {
				t.Errorf("loss %.2f%% on 5 calls", 100*r.Loss)
			}
			if r.SentPPS < 0.7*r.TargetPPS || r.SentPPS > 1.3*r.TargetPPS {
				t.Errorf("sent %.0f packets/s, want about %.0f", r.SentPPS, r.TargetPPS)
			}
			if r.P50 <= 0 || r.P99 < r.P50 || r.P99 > time.Second {
				t.Errorf("latency p50 %v p99 %v: not sane", r.P50, r.P99)
			}
			if r.CPUPerPkt <= 0 || r.CPUPerPkt > 10*time.Millisecond {
				t.Errorf("relay CPU per packet %v: not sane", r.CPUPerPkt)
			}
			if r.SRTPFail != 0 || r.Misrouted != 0 || r.DeadFlows != 0 {
				t.Errorf("SRTP failures %d, misrouted %d, dead flows %d", r.SRTPFail, r.Misrouted, r.DeadFlows)
			}
		})
	}
}

func TestSmokeSignaling(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := ccsbc(t)
	for _, tr := range []string{"udp", "tcp", "tls"} {
		t.Run(tr, func(t *testing.T) {
			if tr != "tls" {
				need(t, "sipp", "sip-tester")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := load.RunSignaling(ctx, load.SignalingConfig{
				Transport: tr, Rate: 20, Calls: 20, Hold: 200 * time.Millisecond, SampleAt: 900 * time.Millisecond,
				Timeout: 25 * time.Second, Dir: t.TempDir(), Log: t.Logf,
				CCSBC: load.CCSBCConfig{Binary: bin, PortMin: 30800, PortMax: 31199},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(load.FormatSignaling(r))
			var na *load.ErrNotAvailable
			if r.Err != "" || errors.As(err, &na) {
				t.Fatalf("not run: %s", r.Err)
			}
			if r.Successful != 20 || r.Failed != 0 {
				t.Errorf("%d calls ok, %d failed; want 20 ok (first error: %s)", r.Successful, r.Failed, r.FirstError)
			}
			if r.CPS < 10 || r.CPS > 30 {
				t.Errorf("%.1f calls/s achieved, want about 20", r.CPS)
			}
			if r.CCSBCCPU <= 0 || r.RSSPeak <= 0 {
				t.Errorf("ccsbc CPU %v, peak RSS %d: not read", r.CCSBCCPU, r.RSSPeak)
			}
		})
	}
}

func TestBencode(t *testing.T) {
	// Round trip through the ng protocol's encoding, as rtpengine's docs
	// write a ping: "d7:command4:pinge".
	got, err := load.BencodeForTest(map[string]any{"command": "ping"})
	if err != nil || got != "d7:command4:pinge" {
		t.Fatalf("bencode ping = %q, %v", got, err)
	}
	v, err := load.BdecodeForTest("d6:result2:ok3:sdp5:v=0\r\n4:listl1:a1:bee")
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if m["result"] != "ok" || m["sdp"] != "v=0\r\n" || len(m["list"].([]any)) != 2 {
		t.Fatalf("bdecode = %#v", m)
	}
}
