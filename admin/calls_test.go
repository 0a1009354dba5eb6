package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ccsbc/ccsbc/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// now is the fixed clock of the call tests.
var now = time.Date(2026, 3, 1, 9, 31, 23, 500e6, time.UTC)

// testCalls are two calls in progress as a CallLister returns them:
// newest first, without durations.
func testCalls() []Call {
	return []Call{
		{
			ID:    "b9c8d7e6@192.0.2.20",
			Route: "vru",
			Start: now.Add(-12 * time.Second),
			Legs: []Leg{
				{Side: SideIn, Class: policy.LegCaller, Peer: "cvp", Transport: policy.UDP, Protection: policy.RTP, PacketsIn: 600, PacketsOut: 598},
				{Side: SideOut, Class: policy.LegIVR, Peer: "vvb", Transport: policy.UDP, Protection: policy.RTP, PacketsIn: 598, PacketsOut: 600},
			},
		},
		{
			ID:    "a84b4c76e66710\t@pc33",
			Route: "agents",
			Start: now.Add(-83*time.Second - 200*time.Millisecond),
			Legs: []Leg{
				{Side: SideIn, Class: policy.LegCaller, Peer: "cvp", Transport: policy.TLS, TLSVersion: "TLS 1.3", Protection: policy.SRTP, Suite: "AES_CM_128_HMAC_SHA1_80", PacketsIn: 4150, PacketsOut: 4148},
				{Side: SideOut, Class: policy.LegAgent, Peer: "cucm", Transport: policy.TLS, TLSVersion: "TLS 1.2", Protection: policy.SRTP, Suite: "AES_CM_128_HMAC_SHA1_32", PacketsIn: 4148, PacketsOut: 4150},
			},
		},
	}
}

func callsFixture(t *testing.T) *fixture {
	return start(t, testConfig(t, nil), func(o *Options, _ *fixture) {
		o.Calls = CallListerFunc(testCalls)
		o.Now = func() time.Time { return now }
	})
}

// TestCallsJSON: GET /calls is a JSON list, oldest first, durations in
// seconds; the Client reads it back as it was.
func TestCallsJSON(t *testing.T) {
	f := callsFixture(t)
	res := f.do(t, request{method: "GET", path: "/calls", token: tokRead})
	if res.code != 200 || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %q", res.code, res.header.Get("Content-Type"), res.body)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(res.body), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || raw[0]["id"] != "a84b4c76e66710\t@pc33" || raw[0]["duration_seconds"] != 83.2 ||
		raw[0]["start"] != "2026-03-01T09:30:00.3Z" || raw[1]["duration_seconds"] != 12.0 {
		t.Errorf("JSON: %s", res.body)
	}
	leg := raw[0]["legs"].([]any)[1].(map[string]any)
	for k, v := range map[string]any{"side": "out", "class": "agent", "peer": "cucm", "transport": "tls", "tls_version": "TLS 1.2",
		"protection": "srtp-sdes", "suite": "AES_CM_128_HMAC_SHA1_32", "packets_in": 4148.0, "packets_out": 4150.0} {
		if leg[k] != v {
			t.Errorf("legs[1].%s = %v, want %v", k, leg[k], v)
		}
	}

	got, err := f.client(t, tokRead, nil).Calls(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := testCalls()
	want[0], want[1] = want[1], want[0]
	want[0].Duration = 83200 * time.Millisecond
	want[1].Duration = 12 * time.Second
	for i := range want {
		if !got[i].Start.Equal(want[i].Start) {
			t.Errorf("calls[%d].Start = %v, want %v", i, got[i].Start, want[i].Start)
		}
		got[i].Start = want[i].Start
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Client.Calls:\n got %+v\nwant %+v", got, want)
	}
}

// TestCallsTable checks the table against testdata/calls.golden (go test
// -update rewrites it), served and written alike.
func TestCallsTable(t *testing.T) {
	f := callsFixture(t)
	res := f.do(t, request{method: "GET", path: "/calls?format=table", token: tokRead})
	if res.code != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %q", res.code, res.body)
	}
	golden := filepath.Join("testdata", "calls.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(res.body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if res.body != string(want) {
		t.Errorf("GET /calls?format=table:\n%s\nwant (%s):\n%s", res.body, golden, want)
	}

	// What `ccsbc calls` prints: the Client's calls through
	// WriteCallsTable.
	calls, err := f.client(t, tokRead, nil).Calls(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCallsTable(&b, calls); err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("WriteCallsTable(Client.Calls):\n%s\nwant:\n%s", b.String(), want)
	}

	if res := f.do(t, request{method: "GET", path: "/calls?format=xml", token: tokRead}); res.code != 400 {
		t.Errorf("format=xml: %d", res.code)
	}
}

func TestCallsEmpty(t *testing.T) {
	f := start(t, testConfig(t, nil))
	if res := f.do(t, request{method: "GET", path: "/calls", token: tokRead}); res.code != 200 || res.body != "[]\n" {
		t.Errorf("no calls JSON: %d %q", res.code, res.body)
	}
	if res := f.do(t, request{method: "GET", path: "/calls?format=table", token: tokRead}); res.body != "no active calls\n" {
		t.Errorf("no calls table: %q", res.body)
	}
	calls, err := f.client(t, tokRead, nil).Calls(context.Background())
	if err != nil || len(calls) != 0 {
		t.Errorf("Client.Calls: %v %v", calls, err)
	}
}

// TestClientErrors: the Client's errors unwrap to the sentinels the CLI
// branches on, and carry the server's reason.
func TestClientErrors(t *testing.T) {
	certs := newClientCerts(t)
	f := start(t, testConfig(t, certs))
	ctx := context.Background()

	if _, err := f.client(t, tokWrong, nil).Calls(ctx); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := f.client(t, "", &certs.unpinned).Calls(ctx); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("wrong certificate: %v", err)
	}
	err := f.client(t, tokRead, nil).Reload(ctx)
	var se *StatusError
	if !errors.Is(err, ErrForbidden) || !errors.As(err, &se) || se.Code != 403 || !strings.Contains(se.Msg, `"grafana" has role read, which does not allow reload`) {
		t.Errorf("read reloading: %v", err)
	}
	op := certs.byRole[RoleOperate]
	if err := f.client(t, "", &op).Reload(ctx); err != nil {
		t.Errorf("operate certificate reloading: %v", err)
	}
	if err := f.client(t, tokOperate, nil).Drain(ctx); err != nil || f.drains.Load() != 1 {
		t.Errorf("drain: %v (%d)", err, f.drains.Load())
	}

	for _, addr := range []string{"", "ftp://127.0.0.1:9060", "http://"} {
		if _, err := (&Client{Addr: addr}).Calls(ctx); err == nil || !strings.Contains(err.Error(), "admin address") {
			t.Errorf("address %q: %v", addr, err)
		}
	}
	if _, err := PinnedTLSConfig("not-a-fingerprint"); err == nil {
		t.Errorf("PinnedTLSConfig accepted a bad pin")
	}
}

// TestWriteCallsTableNoLegs: a call whose legs are not known yet still
// gets a row.
func TestWriteCallsTableNoLegs(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCallsTable(&b, []Call{{ID: "x", Start: now, Duration: 1500 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != "x - 2026-03-01T09:31:23Z 2s - - - - - - - 0 0" {
		t.Errorf("table:\n%s", b.String())
	}
}
