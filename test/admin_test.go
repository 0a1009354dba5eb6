package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccsbc/ccsbc/admin"
)

// metricValue sums the samples of a metric family whose labels contain all
// of want (Prometheus text format).
func metricValue(t *testing.T, body, name string, want ...string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+-]+)$`)
	var sum float64
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(m[1], w)
		}
		if ok {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestAdminMetricsAndCalls: after real calls the metrics count them and
// their media; /calls and `ccsbc calls` list the call in progress; only
// /healthz answers without a credential.
func TestAdminMetricsAndCalls(t *testing.T) {
	needTool(t, "sipp")
	reader, _ := admin.NewToken()
	l := newLab(t, "udp")
	cfg := l.config() + fmt.Sprintf("admin:\n  listen: \"127.0.0.1:0\"\n  tokens:\n    - {name: grafana, sha256: %s, role: read}\n", admin.HashToken(reader))
	d := startCCSBC(t, cfg)
	base := "http://" + d.adminAddr()

	if code, _ := get(t, base+"/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	for _, path := range []string{"/metrics", "/calls", "/readyz"} {
		if code, _ := get(t, base+path, ""); code != 401 {
			t.Errorf("%s without a token: %d, want 401", path, code)
		}
		if code, _ := get(t, base+path, "wrong-token"); code != 401 {
			t.Errorf("%s with a wrong token: %d, want 401", path, code)
		}
	}

	uas := l.uas(t, "uas.xml", keys("-rtp_echo")...)
	uac := l.uac(t, "uac.xml", "1000", keys("-d", "3000", "-key", "pcap", g711a)...)
	d.waitEvent("call answered", 1, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	code, body := get(t, base+"/calls", reader)
	var calls []admin.Call
	if err := json.Unmarshal([]byte(body), &calls); code != 200 || err != nil || len(calls) != 1 ||
		len(calls[0].Legs) != 2 || calls[0].Legs[1].Peer != "cucm" || calls[0].Legs[1].Protection != "rtp" {
		t.Errorf("/calls during a call: %d %v %s", code, err, body)
	}
	out, err := exec.Command(ccsbcBinary(t), "calls", "--admin", base, "--token", reader).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("cucm")) {
		t.Errorf("ccsbc calls: %v\n%s", err, out)
	}
	if code := uac.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("caller: SIPp exit %d", code)
	}
	uas.wait(t, 10*time.Second)
	d.waitEvent("call end", 1, 5*time.Second)

	// A rejected call too.
	l2 := *l
	l2.caller = freePort(t)
	if code := l2.uac(t, "uac_expect.xml", "9999", keys("-key", "expect", "404")...).wait(t, 20*time.Second); code != 0 {
		t.Fatalf("404 call: SIPp exit %d", code)
	}

	code, body = get(t, base+"/metrics", reader)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	checks := []struct {
		name  string
		value float64
		min   float64
	}{
		{"answered calls", metricValue(t, body, "ccsbc_calls_total", `result="answered"`, `leg="agent"`), 1},
		{"rejected calls", metricValue(t, body, "ccsbc_calls_total", `result="rejected"`), 1},
		{"rtp packets in", metricValue(t, body, "ccsbc_media_packets_total", `protection="rtp"`), 200},
	}
	for _, c := range checks {
		if c.value < c.min {
			t.Errorf("%s = %v, want >= %v", c.name, c.value, c.min)
		}
	}
	if v := metricValue(t, body, "ccsbc_calls_active"); v != 0 {
		t.Errorf("calls active after the calls ended: %v", v)
	}
	if strings.Contains(d.logText(), reader) {
		t.Errorf("the token reached the log")
	}
}
