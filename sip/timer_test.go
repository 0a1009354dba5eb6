package sip

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"
)

// request parses a SIP request with the given extra header lines.
func request(t *testing.T, headers ...string) *sip.Request {
	t.Helper()
	raw := "INVITE sip:1000@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n" +
		"From: <sip:cvp@127.0.0.1>;tag=1\r\nTo: <sip:1000@127.0.0.1>\r\n" +
		"Call-ID: t1\r\nCSeq: 1 INVITE\r\nContact: <sip:cvp@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n" +
		strings.Join(append(headers, ""), "\r\n") + "Content-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

func TestParseTimerHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    timerHeaders
		err     string
	}{
		{"none", nil, timerHeaders{}, ""},
		{"full", []string{"Supported: 100rel, timer", "Session-Expires: 1800;refresher=uac", "Min-SE: 90", "Allow: INVITE, ACK, UPDATE"},
			timerHeaders{supported: true, expires: 1800, refresher: "uac", minSE: 90, hasAllow: true, allowUpdate: true}, ""},
		{"compact forms", []string{"k: timer", "x: 600 ; refresher=UAS"}, timerHeaders{supported: true, expires: 600, refresher: "uas"}, ""},
		{"require", []string{"Require: timer", "Session-Expires: 90"}, timerHeaders{required: true, expires: 90}, ""},
		{"other params kept apart", []string{"Session-Expires: 120;foo=bar"}, timerHeaders{expires: 120}, ""},
		{"not a number", []string{"Session-Expires: soon"}, timerHeaders{}, `Session-Expires "soon" is not a number of seconds`},
		{"zero", []string{"Session-Expires: 0"}, timerHeaders{}, "is not a number of seconds"},
		{"negative", []string{"Session-Expires: -5"}, timerHeaders{}, "is not a number of seconds"},
		{"beyond 32 bits", []string{"Session-Expires: 99999999999"}, timerHeaders{}, "is not a number of seconds"},
		{"bad refresher", []string{"Session-Expires: 90;refresher=proxy"}, timerHeaders{}, `refresher "proxy" is neither uac nor uas`},
		{"bad Min-SE", []string{"Min-SE: ninety"}, timerHeaders{}, `Min-SE "ninety" is not a number of seconds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTimerHeaders(request(t, tt.headers...))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestAnswerRequest walks RFC 4028 §9 as ccsbc applies it when it answers
// a request on a leg, with session_expires 1800 and min_se 90.
func TestAnswerRequest(t *testing.T) {
	p := timerPolicy{expires: 1800, minSE: 90}
	tests := []struct {
		name      string
		h         timerHeaders
		reject    bool
		se        string
		require   bool
		weRefresh bool
	}{
		{"no timer support, no header: ccsbc refreshes at its interval", timerHeaders{}, false, "1800;refresher=uas", false, true},
		{"supported, no header: the peer refreshes", timerHeaders{supported: true}, false, "1800;refresher=uac", true, false},
		{"supported, asks uac", timerHeaders{supported: true, expires: 600, refresher: "uac"}, false, "600;refresher=uac", true, false},
		{"supported, asks uas", timerHeaders{supported: true, expires: 600, refresher: "uas"}, false, "600;refresher=uas", false, true},
		{"supported, no refresher named", timerHeaders{supported: true, expires: 600}, false, "600;refresher=uac", true, false},
		{"too long: reduced to session_expires", timerHeaders{supported: true, expires: 7200}, false, "1800;refresher=uac", true, false},
		{"reduced, but never below the request's Min-SE", timerHeaders{supported: true, expires: 7200, minSE: 3600}, false, "3600;refresher=uac", true, false},
		{"no header but a Min-SE above ours", timerHeaders{minSE: 2000}, false, "2000;refresher=uas", false, true},
		{"below Min-SE from a peer that supports timers: 422", timerHeaders{supported: true, expires: 60}, true, "", false, false},
		{"exactly Min-SE is fine", timerHeaders{supported: true, expires: 90}, false, "90;refresher=uac", true, false},
		{"below Min-SE, inserted by a proxy (no support): raised, ccsbc refreshes", timerHeaders{expires: 60, refresher: "uac"}, false, "90;refresher=uas", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms, se, require, reject := p.answerRequest(tt.h)
			if reject != tt.reject {
				t.Fatalf("reject = %v, want %v", reject, tt.reject)
			}
			if reject {
				return
			}
			if se != tt.se || require != tt.require || terms.weRefresh != tt.weRefresh {
				t.Errorf("got Session-Expires %q require %v ccsbc refreshes %v; want %q %v %v", se, require, terms.weRefresh, tt.se, tt.require, tt.weRefresh)
			}
			if want := strings.Split(tt.se, ";")[0] + "s"; terms.interval.String() != mustDuration(t, want).String() {
				t.Errorf("interval %v, want %s", terms.interval, want)
			}
		})
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRequestAndResponse: what ccsbc asks for in the requests it sends,
// and what it makes of the 2xx.
func TestRequestAndResponse(t *testing.T) {
	p := timerPolicy{expires: 1800, minSE: 90}
	values := func(hs []sip.Header) string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Name()+": "+h.Value())
		}
		return strings.Join(out, " | ")
	}
	hs, asked := p.requestHeaders(sessionTerms{})
	if got := values(hs); got != "Supported: timer | Session-Expires: 1800 | Min-SE: 90" || asked != 1800*time.Second {
		t.Errorf("new leg: %s (asked %v)", got, asked)
	}
	hs, _ = p.requestHeaders(sessionTerms{interval: 600 * time.Second, weRefresh: true})
	if got := values(hs); got != "Supported: timer | Session-Expires: 600;refresher=uac | Min-SE: 90" {
		t.Errorf("refresh by ccsbc: %s", got)
	}
	hs, _ = p.requestHeaders(sessionTerms{interval: 600 * time.Second})
	if got := values(hs); !strings.Contains(got, "Session-Expires: 600;refresher=uas") {
		t.Errorf("relayed re-INVITE on a leg the peer refreshes: %s", got)
	}

	for _, tt := range []struct {
		name string
		h    timerHeaders
		want sessionTerms
	}{
		{"peer without timers: ccsbc refreshes what it asked", timerHeaders{}, sessionTerms{1800 * time.Second, true}},
		{"refresher=uac is ccsbc", timerHeaders{supported: true, expires: 900, refresher: "uac"}, sessionTerms{900 * time.Second, true}},
		{"refresher=uas is the peer", timerHeaders{supported: true, expires: 900, refresher: "uas"}, sessionTerms{900 * time.Second, false}},
	} {
		if got := p.fromResponse(tt.h, 1800*time.Second); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}

	if n := p.retryAfter422(1800, 3600); n != 3600 {
		t.Errorf("422 with Min-SE 3600: retry with %d", n)
	}
	if n := p.retryAfter422(1800, 900); n != 0 {
		t.Errorf("422 with a Min-SE below what was asked: retry with %d, want none", n)
	}
	if n := p.retryAfter422(1800, 200000); n != 0 {
		t.Errorf("422 asking for more than a day: retry with %d, want none", n)
	}
}

// TestDelays: refresh at half the interval; give up at the interval minus
// min(32 s, a third) (RFC 4028 §10).
func TestDelays(t *testing.T) {
	for _, tt := range []struct{ interval, refresh, expire time.Duration }{
		{1800 * time.Second, 900 * time.Second, 1768 * time.Second},
		{90 * time.Second, 45 * time.Second, 60 * time.Second},
		{6 * time.Second, 3 * time.Second, 4 * time.Second},
	} {
		if r, e := refreshDelay(tt.interval), expiryDelay(tt.interval); r != tt.refresh || e != tt.expire {
			t.Errorf("interval %v: refresh %v expire %v, want %v %v", tt.interval, r, e, tt.refresh, tt.expire)
		}
	}
}

// TestLegTimer: the refresher's callback comes at half the interval, the
// expiry at two thirds (short intervals), Reset pushes it back, Stop ends
// it with nothing left running.
func TestLegTimer(t *testing.T) {
	defer goleak.VerifyNone(t)
	var refreshed, expired atomic.Int32
	lt := newLegTimer(func() { refreshed.Add(1) }, func() { expired.Add(1) })

	start := time.Now()
	lt.Reset(sessionTerms{interval: 300 * time.Millisecond, weRefresh: true})
	waitFor(t, func() bool { return refreshed.Load() == 1 })
	if el := time.Since(start); el < 140*time.Millisecond || el > 400*time.Millisecond {
		t.Errorf("refresh after %v, want about 150ms", el)
	}

	// A peer that refreshes keeps pushing the expiry back.
	lt.Reset(sessionTerms{interval: 300 * time.Millisecond})
	for i := 0; i < 3; i++ {
		time.Sleep(100 * time.Millisecond)
		lt.Reset(sessionTerms{interval: 300 * time.Millisecond})
	}
	if expired.Load() != 0 {
		t.Fatalf("expired although refreshed")
	}
	start = time.Now()
	waitFor(t, func() bool { return expired.Load() == 1 })
	if el := time.Since(start); el < 180*time.Millisecond || el > 450*time.Millisecond {
		t.Errorf("expired after %v, want about 200ms", el)
	}

	// A refresh that could not start is retried soon; one that failed,
	// halfway to the deadline, unless that is past it.
	lt.Reset(sessionTerms{interval: time.Second, weRefresh: true})
	if lt.Retry(false) {
		t.Errorf("Retry(false) with a second left: want false (the session expires first)")
	}
	start = time.Now()
	if !lt.Retry(true) {
		t.Fatalf("Retry(true) with a second left: want true")
	}
	waitFor(t, func() bool { return refreshed.Load() == 2 })
	if el := time.Since(start); el > 450*time.Millisecond {
		t.Errorf("soon retry after %v, want about %v", el, retrySoon)
	}

	lt.Reset(sessionTerms{interval: 100 * time.Millisecond, weRefresh: true})
	lt.Stop()
	lt.Reset(sessionTerms{interval: 100 * time.Millisecond, weRefresh: true}) // ignored once stopped
	time.Sleep(200 * time.Millisecond)
	if refreshed.Load() != 2 || !lt.isStopped() {
		t.Errorf("callbacks after Stop: refreshed %d", refreshed.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUnsupportedRequire(t *testing.T) {
	for _, tt := range []struct {
		headers []string
		timers  bool
		want    string
	}{
		{nil, true, ""},
		{[]string{"Require: timer"}, true, ""},
		{[]string{"Require: timer"}, false, "timer"},
		{[]string{"Require: timer, 100rel"}, true, ""},
		{[]string{"Require: timer, 100rel"}, false, "timer"},
		{[]string{"Require: 100rel", "Require: precondition"}, true, "precondition"},
	} {
		if got := unsupportedRequire(request(t, tt.headers...), tt.timers); got != tt.want {
			t.Errorf("%v timers %v: %q, want %q", tt.headers, tt.timers, got, tt.want)
		}
	}
}

func TestMaskNumber(t *testing.T) {
	for _, tt := range []struct {
		n    string
		keep int
		want string
	}{
		{"+14085551234", 4, "+*******1234"},
		{"14085551234", 4, "*******1234"},
		{"1000", 4, "1000"},
		{"1000", 0, "****"},
		{"+1", 4, "+1"},
		{"", 4, ""},
		{"anonymous", 2, "*******us"},
		{"+3361234é5678", 4, "+********5678"},
	} {
		if got := maskNumber(tt.n, tt.keep); got != tt.want {
			t.Errorf("maskNumber(%q, %d) = %q, want %q", tt.n, tt.keep, got, tt.want)
		}
	}
}
