package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Screens as SIPp 3.6.1 writes them with -trace_screen (trimmed).
const uacScreen = `------------------------------ Scenario Screen -------- [1-9]: Change Screen --
  Call rate (length)   Port   Total-time  Total-calls  Remote-host
  10.0(2000 ms)/1.000s   5070       2.11 s            1  127.0.0.1:5090(UDP)

                                 Messages  Retrans   Timeout   Unexpected-Msg
      INVITE ---------->         1         0         0                         
         100 <----------         0         0         0         0               
         180 <----------         1         0         0         0               
         200 <----------  E-RTD1 1         0         0         0               
         ACK ---------->         1         0                                   
              [ NOP ]              
       Pause [   2000ms]         1                             0        
         BYE ---------->         1         2         0                         
         200 <----------         1         0         0         0               
------- Waiting for active calls to end. Press [q] again to force exit. -------
----------------------------- Statistics Screen ------- [1-9]: Change Screen --
  Counter Name           | Periodic value            | Cumulative value
-------------------------+---------------------------+--------------------------
  Incoming calls created |        0                  |        0                 
  Outgoing calls created |        0                  |        1                 
  Total Calls created    |                           |        1                 
  Successful call        |        0                  |        1                 
  Failed call            |        0                  |        0                 
`

const uasScreen = `------------------------------ Scenario Screen -------- [1-9]: Change Screen --
                                 Messages  Retrans   Timeout   Unexpected-Msg
  ----------> OPTIONS            2         0         0         0               
  ----------> INVITE             1         0         0         0               

  <---------- 100                1         0                                   
  <---------- 180                1         0                                   
  [      0ms] Pause              1                             0        
  <---------- 200                1         0         0                         
  ----------> ACK         E-RTD1 1         0         0         0               
  ----------> BYE                1         0         0         3               
  <---------- 200                1         0                                   
  <---------- 200                2         0                                   
----------------------------- Statistics Screen ------- [1-9]: Change Screen --
  Total Calls created    |                           |        3                 
  Successful call        |        0                  |        2                 
  Failed call            |        0                  |        1                 
`

func TestParseScreen(t *testing.T) {
	var r Result
	parseScreen(uacScreen, &r)
	if r.Created != 1 || r.Successful != 1 || r.Failed != 0 {
		t.Errorf("uac counts: %+v", r)
	}
	if r.Sent("INVITE") != 1 || r.Received("200") != 2 || r.Received("100") != 0 || r.Sent("BYE") != 1 || r.Sent("200") != 0 {
		t.Errorf("uac messages: %+v", r.Messages)
	}
	if m := r.Messages[len(r.Messages)-2]; m.Name != "BYE" || !m.Sent || m.Retrans != 2 {
		t.Errorf("uac BYE line: %+v", m)
	}
	r = Result{}
	parseScreen(uasScreen, &r)
	if r.Created != 3 || r.Successful != 2 || r.Failed != 1 {
		t.Errorf("uas counts: %+v", r)
	}
	if r.Received("OPTIONS") != 2 || r.Received("INVITE") != 1 || r.Sent("200") != 4 || r.Received("ACK") != 1 {
		t.Errorf("uas messages: %+v", r.Messages)
	}
	for _, m := range r.Messages {
		if m.Name == "BYE" && m.Unexpected != 3 {
			t.Errorf("uas BYE line: %+v", m)
		}
		if m.Name == "Pause" || m.Name == "[" {
			t.Errorf("a pause taken for a message: %+v", m)
		}
	}
}

func TestCleanScreen(t *testing.T) {
	out := "\x1b[2J\x1b[1;1H------ Scenario Screen ------\n  Successful call | 0 | 1\n" +
		"2026-11-23\t11:52:40.722426\t1795434760.722426: response code, \"[expect]\" is not a valid integer!\n"
	if got := cleanScreen(out); !strings.HasPrefix(got, "2026-11-23") || strings.Contains(got, "Screen") {
		t.Errorf("cleanScreen: %q", got)
	}
}

func TestG711(t *testing.T) {
	tone := Tone(1000, 0.5, 100*time.Millisecond)
	for _, c := range []Codec{PCMU, PCMA} {
		enc, err := c.Encode(tone)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := c.Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for i := range tone {
			// G.711 keeps about 5 bits of mantissa; A-law has no zero (±8).
			rel := math.Abs(float64(dec[i])-float64(tone[i])) / (math.Abs(float64(tone[i])) + 128)
			worst = math.Max(worst, rel)
		}
		if worst > 0.07 {
			t.Errorf("%s round trip: worst relative error %.3f", c.Name, worst)
		}
		if st := AnalyzeAudio(dec, SampleRate); math.Abs(st.Freq-1000) > 20 || st.Active != 1 {
			t.Errorf("%s decoded: %v", c.Name, st)
		}
	}
	// Reference points: silence and full scale.
	if linearToUlaw(0) != 0xff || linearToAlaw(0) != 0xd5 {
		t.Errorf("silence: µ-law %#x, A-law %#x", linearToUlaw(0), linearToAlaw(0))
	}
	if linearToUlaw(32767) != 0x80 || linearToUlaw(-32768) != 0x00 {
		t.Errorf("full scale µ-law: %#x %#x", linearToUlaw(32767), linearToUlaw(-32768))
	}
	if _, err := (Codec{PT: 18, Name: "G729"}).Encode(tone); err == nil {
		t.Error("G729 encoded")
	}
}

func TestWAV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.wav")
	if err := WriteWAV(path, Tone(440, 0.25, time.Second)); err != nil {
		t.Fatal(err)
	}
	s, rate, err := ReadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	st := AnalyzeAudio(s, rate)
	if rate != 8000 || len(s) != 8000 || math.Abs(st.Freq-440) > 5 || math.Abs(st.DBFS-(-15.05)) > 0.3 {
		t.Errorf("rate %d, %d samples, %v", rate, len(s), st)
	}
	if st := AnalyzeAudio(make([]int16, 800), 8000); !st.Silent() {
		t.Errorf("silence: %v", st)
	}
}

func TestEntropy(t *testing.T) {
	random := make([]byte, 1<<16)
	for i := range random {
		random[i] = byte(i*7919 + i>>8*104729)
	}
	enc, _ := PCMU.Encode(Tone(1000, 0.3, time.Second))
	if e := Entropy(enc); e > 6 {
		t.Errorf("G.711 tone entropy %.2f", e)
	}
	if e := Entropy(bytes.Repeat([]byte{1}, 100)); e != 0 {
		t.Errorf("constant entropy %.2f", e)
	}
	if e := Entropy(random); e < 7.9 {
		t.Errorf("uniform bytes entropy %.2f", e)
	}
}

// TestTonePCAP reads the generated file back with tshark.
func TestTonePCAP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tone.pcap")
	if err := WriteTonePCAP(path, PCMA, 1000, time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := 24 + 50*(16+14+20+8+12+160); len(b) != want {
		t.Errorf("%d bytes, want %d", len(b), want)
	}
	Need(t, "tshark")
	c := &Capture{t: t, File: path, p: &proc{done: closedChan()}, DecodeAs: []string{"udp.port==4002,rtp"}}
	rows := c.Fields("rtp", "rtp.p_type", "rtp.seq", "rtp.timestamp", "rtp.marker", "ip.checksum.status")
	if len(rows) != 50 {
		t.Fatalf("%d RTP packets, want 50", len(rows))
	}
	if got := strings.Join(rows[1], " "); got != "8 1 160 0 2" {
		t.Errorf("second packet: %q, want pt 8, seq 1, ts 160, no marker", got)
	}
	if rows[0][3] != "1" {
		t.Errorf("first packet has no marker: %v", rows[0])
	}
}

// ctx is a context ending after d, cancelled when the test ends.
func ctx(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func TestNetstring(t *testing.T) {
	br := bufio.NewReader(strings.NewReader(`14:{"event":true},3:abc,`))
	for _, want := range []string{`{"event":true}`, "abc"} {
		got, err := readNetstring(br)
		if err != nil || string(got) != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	}
	if _, err := readNetstring(bufio.NewReader(strings.NewReader("3:abcd"))); err == nil {
		t.Error("netstring without comma accepted")
	}
	if got := string(netstring([]byte("hi"))); got != "2:hi," {
		t.Errorf("netstring: %q", got)
	}
}

func TestFreePorts(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 20; i++ {
		p := FreeMediaPort(t)
		if p%2 != 0 || avoided(p) || avoided(p+3) {
			t.Errorf("media port %d", p)
		}
		for q := p; q < p+4; q++ {
			if seen[q] {
				t.Errorf("port %d handed out twice", q)
			}
			seen[q] = true
		}
	}
	p := FreePortPair(t)
	for _, q := range []int{p, p + 1} {
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", q))
		if err != nil {
			t.Fatalf("pair port %d: %v", q, err)
		}
		l.Close()
	}
}

// TestSIPOptions probes a fake UDP and TCP SIP server that answers 100 then
// 200.
func TestSIPOptions(t *testing.T) {
	answer := func(req string) string {
		var via, callID string
		for _, l := range strings.Split(req, "\r\n") {
			if strings.HasPrefix(l, "Via:") {
				via = l
			}
			if strings.HasPrefix(l, "Call-ID:") {
				callID = l
			}
		}
		resp := func(code string) string {
			return "SIP/2.0 " + code + "\r\n" + via + "\r\n" + callID + "\r\nCSeq: 1 OPTIONS\r\nAllow: INVITE, ACK\r\nContent-Length: 0\r\n\r\n"
		}
		return resp("100 Trying") + "\x00" + resp("200 OK")
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 4096)
		first := true
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if first { // lose the first request: the probe must repeat it
				first = false
				continue
			}
			for _, m := range strings.Split(answer(string(buf[:n])), "\x00") {
				_, _ = pc.WriteTo([]byte(m), from)
			}
		}
	}()
	resp, err := SIPOptions(ctx(t, 5*time.Second), "udp", pc.LocalAddr().String(), nil)
	if err != nil || resp.Status != 200 || resp.Reason != "OK" || resp.Header("allow") != "INVITE, ACK" {
		t.Errorf("udp: %+v, %v", resp, err)
	}

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, err := readSIPStream(bufio.NewReader(c)) // reads a request as well
		if err != nil && !strings.Contains(err.Error(), "not a SIP response") {
			return
		}
		_ = r
		_, _ = c.Write([]byte("\r\n" + strings.ReplaceAll(answer("Via: x\r\nCall-ID: y\r\n"), "\x00", "")))
	}()
	resp, err = SIPOptions(ctx(t, 5*time.Second), "tcp", l.Addr().String(), nil)
	if err != nil || resp.Status != 200 {
		t.Errorf("tcp: %+v, %v", resp, err)
	}

	// Nobody there: an error, within the context's time.
	start := time.Now()
	if _, err := SIPOptions(ctx(t, 700*time.Millisecond), "udp", fmt.Sprintf("127.0.0.1:%d", FreeUDPPort(t)), nil); err == nil {
		t.Error("answer from nobody")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// TestDaemon runs StartCCSBCWith on a stand-in for ccsbc: a shell script
// that takes "run --config FILE", logs JSON, answers SIP OPTIONS (through
// SIPp's uas.xml) and exits 0 on SIGTERM.
func TestDaemon(t *testing.T) {
	Need(t, "sipp")
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "fake-ccsbc")
	port := FreeUDPPort(t)
	err := os.WriteFile(script, []byte(`#!/bin/sh
[ "$1" = run ] && [ "$2" = --config ] && [ -f "$3" ] || { echo "usage: run --config FILE" >&2; exit 2; }
echo '{"level":"info","msg":"starting","state":"'"$STATE_DIRECTORY"'"}' >&2
sipp -sf "$SCENARIO" -i 127.0.0.1 -bind_local -p "$PORT" -mi 127.0.0.1 -mp "$MEDIA" -ci 127.0.0.1 -cp "$CTRL" \
  -key pt 0 -key codec PCMU -nostdin >/dev/null 2>&1 &
child=$!
trap 'kill $child 2>/dev/null; echo "{\"level\":\"info\",\"msg\":\"stopped\"}" >&2; exit 0' TERM
wait $child
`), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	d := StartCCSBCWith(t, DaemonOptions{
		Binary: script,
		Config: fmt.Sprintf("model: 1\nlisteners:\n  - {transport: udp, address: \"127.0.0.1:%d\"}\n", port),
		Env: []string{"SCENARIO=" + Scenario("uas.xml"), fmt.Sprintf("PORT=%d", port),
			fmt.Sprintf("MEDIA=%d", FreeMediaPort(t)), fmt.Sprintf("CTRL=%d", FreeUDPPort(t))},
	})
	if l := d.Listeners(); len(l) != 1 || l[0].Transport != "udp" || l[0].Address != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("listeners: %+v", l)
	}
	ev, err := d.WaitEvent(ctx(t, 5*time.Second), "starting", 1)
	if err != nil || ev[0]["state"] != d.StateDir() || d.StateDir() == "" {
		t.Errorf("starting: %v, %v (state dir %q)", ev, err, d.StateDir())
	}
	// It is ready: it answers.
	if resp, err := SIPOptions(ctx(t, 5*time.Second), "udp", fmt.Sprintf("127.0.0.1:%d", port), nil); err != nil || resp.Status != 200 {
		t.Errorf("OPTIONS: %+v, %v", resp, err)
	}
	if code := d.Stop(); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	if len(d.Events("stopped")) != 1 || !strings.Contains(d.Logs(), `"msg":"starting"`) {
		t.Errorf("logs:\n%s", d.Logs())
	}
}
