package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIPp facts that shaped these helpers (SIPp 3.6.1 from Debian's
// sip-tester, built without TLS and SRTP):
//
//   - -key NAME VALUE is substituted in messages when they are sent and in
//     some attributes when the file is loaded (play_pcap_audio="[pcap]"), not
//     in all (recv response="[expect]" is refused). A key the scenario uses
//     but the command line does not give is a load error, so SIPpUAS and
//     SIPpUAC give pt, codec, pcap and dtmf defaults when the file uses them.
//   - RTP is played from [media_ip]:[media_port] through a raw socket (root),
//     so a peer's -rtp_echo returns it there. SIPp 3.6.1 counts no RTP on
//     its final screen: count packets with StartCapture.
//   - Its global -timeout is not always honoured (a UAS holding a call
//     created by -aa never exits): the lab kills SIPp itself.
//   - On TCP SIPp fails a call when the peer closes the connection while the
//     call still has an element to run (even a timewait or a nop): the
//     scenarios end on their last message.
//   - A SIPp UAS answers out-of-dialog OPTIONS only through the scenario
//     (-oocsf is refused in server mode; -aa answers but leaves a call that
//     never ends and eats a -m slot). The lab's uas*.xml answer OPTIONS as a
//     call of its own, which -m counts: with keepalives on, run the UAS
//     without Calls and end it with Stop.
//   - SIGUSR1 is a soft exit (no new calls, current ones finish) that still
//     writes the -trace_screen file; SIGKILL writes nothing.

// SIPpOptions configures one SIPp run. Zero values have lab defaults.
type SIPpOptions struct {
	// Scenario is a file of test/scenarios ("uac.xml") or a path.
	Scenario string
	// Transport is "udp" (default, SIPp's u1) or "tcp" (t1: one
	// connection for all calls).
	Transport string
	// Remote is where a UAC sends its calls: "127.0.0.1:5060".
	Remote string
	// Port is the local SIP port (-p); 0 picks a free one.
	Port int
	// MediaPort is SIPp's RTP port (-mp, the [media_port] of its SDP);
	// 0 picks a free one. With Echo SIPp also binds MediaPort+2.
	MediaPort int
	// Echo sends every RTP packet that reaches MediaPort back to its
	// source (-rtp_echo). Never on a UAC that plays RTP toward an echoing
	// UAS: the two would ping-pong forever.
	Echo bool
	// Service is the Request-URI user of a UAC's calls (-s).
	Service string
	// Calls is the number of calls after which SIPp exits (-m). A UAC
	// defaults to 1; a UAS without Calls runs until Stop.
	Calls int
	// Rate is a UAC's calls per second (-r; SIPp's default is 10) and
	// Limit its most simultaneous calls (-l).
	Rate  float64
	Limit int
	// Duration is the -d of the scenario's plain pauses: the talk time of
	// uac.xml, the ring time of uas.xml... (see each file's header).
	Duration time.Duration
	// Codec gives the pt and codec keys: the RTP payload type and encoding
	// offered or answered. Default PCMU.
	Codec Codec
	// PCAP is the RTP a UAC plays (-key pcap). Default: a 1 kHz tone in
	// Codec, generated long enough for the call.
	PCAP string
	// Keys are more -key values ("expect": "404", "code": "486", "dtmf":
	// file...).
	Keys map[string]string
	// RecvTimeout bounds each wait for a message (-recv_timeout); a call
	// that times out fails.
	RecvTimeout time.Duration
	// Timeout bounds the whole run (default 60 s): SIPp's own -timeout, and
	// 5 s later the lab kills it.
	Timeout time.Duration
	// Quiet leaves out the message log (-trace_msg), which grows by about
	// a kilobyte per message: for load runs.
	Quiet bool
	// Args are more SIPp arguments, added last.
	Args []string
	// Name prefixes the log files; default "uas" or "uac".
	Name string
}

// SIPp is a running SIPp.
type SIPp struct {
	t         testing.TB
	name      string
	dir       string
	opts      SIPpOptions
	p         *proc
	port      int
	mediaPort int
	argv      []string
}

// Result is what SIPp counted, read from its exit code and its final
// screen (-trace_screen), with the paths of its logs.
type Result struct {
	Name     string
	ExitCode int    // 0 all calls succeeded, 1 some failed, 97 stopped, 99 no call, 255 fatal, 254 bind error
	Killed   string // why the lab killed SIPp, if it did (then the counts are missing)

	Created    int // calls created (incoming + outgoing)
	Successful int
	Failed     int
	// Messages are the scenario's lines as SIPp counted them, in order.
	Messages []MessageStat

	Dir        string // where all the files are
	Screen     string // final screens (-trace_screen)
	MessageLog string // every SIP message sent and received (-trace_msg)
	ErrorLog   string // unexpected messages, failed checks (-trace_err)
	LogFile    string // the scenarios' <log> actions (-trace_logs)
	StatFile   string // periodic statistics, CSV (-trace_stat)
	Output     string // SIPp's stdout and stderr
	Args       []string
}

// MessageStat is one line of SIPp's scenario screen.
type MessageStat struct {
	Name       string // INVITE, 180, ACK...
	Sent       bool   // false: received
	Count      int
	Retrans    int
	Timeout    int
	Unexpected int
}

// Received is how many name messages SIPp received (all the scenario's
// lines for it added up).
func (r Result) Received(name string) int { return r.count(name, false) }

// Sent is how many name messages SIPp sent.
func (r Result) Sent(name string) int { return r.count(name, true) }

func (r Result) count(name string, sent bool) int {
	n := 0
	for _, m := range r.Messages {
		if m.Name == name && m.Sent == sent {
			n += m.Count
		}
	}
	return n
}

// Errors is the content of SIPp's error log ("" when there were none).
func (r Result) Errors() string { return readFile(r.ErrorLog) }

// Trace is SIPp's message log: every SIP message it sent and received.
func (r Result) Trace() string { return readFile(r.MessageLog) }

// Err is nil when every call succeeded and the run was not cut short.
func (r Result) Err() error {
	switch {
	case r.Killed != "":
		return fmt.Errorf("lab: SIPp %s killed: %s (logs in %s)", r.Name, r.Killed, r.Dir)
	case r.ExitCode != 0 || r.Failed > 0:
		return fmt.Errorf("lab: SIPp %s: exit %d, %d successful and %d failed calls (logs in %s)\n%s",
			r.Name, r.ExitCode, r.Successful, r.Failed, r.Dir, r.diagnosis())
	}
	return nil
}

// diagnosis is what to read first when a run failed.
func (r Result) diagnosis() string {
	var b strings.Builder
	if e := strings.TrimSpace(r.Errors()); e != "" {
		fmt.Fprintf(&b, "error log:\n%s\n", tail(e, 3000))
	}
	if out := cleanScreen(readFile(r.Output)); out != "" {
		fmt.Fprintf(&b, "output:\n%s\n", tail(out, 1500))
	}
	return b.String()
}

func (r Result) String() string {
	return fmt.Sprintf("SIPp %s: exit %d, %d created, %d successful, %d failed", r.Name, r.ExitCode, r.Created, r.Successful, r.Failed)
}

// SIPpUAS starts SIPp as a UAS listening on 127.0.0.1 (opts.Port, or a free
// port) and returns once its SIP socket is bound. It is stopped when the
// test ends; Wait or Stop gives its Result.
func SIPpUAS(t testing.TB, opts SIPpOptions) *SIPp {
	t.Helper()
	if opts.Scenario == "" {
		opts.Scenario = "uas.xml"
	}
	s := startSIPp(t, opts, false)
	s.waitBound()
	return s
}

// SIPpUAC runs SIPp as a UAC placing opts.Calls calls (default 1) to
// opts.Remote and waits for it to finish. The error is non-nil unless
// every call succeeded; the Result says what happened either way.
func SIPpUAC(t testing.TB, opts SIPpOptions) (Result, error) {
	t.Helper()
	s := StartSIPpUAC(t, opts)
	return s.Wait(context.Background())
}

// StartSIPpUAC starts SIPp as a UAC in the background (Wait gives its
// Result): calls that run while the test does something else.
func StartSIPpUAC(t testing.TB, opts SIPpOptions) *SIPp {
	t.Helper()
	if opts.Scenario == "" {
		opts.Scenario = "uac.xml"
	}
	if opts.Remote == "" {
		t.Fatal("lab: SIPpUAC needs Remote (host:port of the callee)")
	}
	if opts.Calls == 0 {
		opts.Calls = 1
	}
	return startSIPp(t, opts, true)
}

// Addr is SIPp's SIP address, "127.0.0.1:port".
func (s *SIPp) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Port is SIPp's SIP port.
func (s *SIPp) Port() int { return s.port }

// MediaPort is SIPp's RTP port ([media_port] in its SDP).
func (s *SIPp) MediaPort() int { return s.mediaPort }

// Dir is where SIPp's files are.
func (s *SIPp) Dir() string { return s.dir }

// Wait waits for SIPp to exit, at most until ctx ends (the run's own
// Timeout bounds it anyway), and returns its Result and Result.Err(). A
// UAS exits by itself only after its Calls; without them, use Stop.
func (s *SIPp) Wait(ctx context.Context) (Result, error) {
	select {
	case <-s.p.done:
	case <-ctx.Done():
		s.p.kill("the test stopped waiting: " + ctx.Err().Error())
	}
	r := s.result()
	return r, r.Err()
}

// Stop ends SIPp softly (SIGUSR1: no new calls, current ones finish), kills
// it if it has not exited within 5 s, and returns its Result.
func (s *SIPp) Stop() Result {
	s.p.stop(syscall.SIGUSR1, 5*time.Second)
	return s.result()
}

// Exited reports whether SIPp has exited.
func (s *SIPp) Exited() bool { return s.p.exited() }

func (s *SIPp) file(suffix string) string { return filepath.Join(s.dir, s.name+suffix) }

func (s *SIPp) result() Result {
	code, killed := s.p.status()
	r := Result{
		Name:       s.name,
		ExitCode:   code,
		Killed:     killed,
		Dir:        s.dir,
		Screen:     s.file("_screen.log"),
		MessageLog: s.file("_messages.log"),
		ErrorLog:   s.file("_errors.log"),
		LogFile:    s.file("_logs.log"),
		StatFile:   s.file("_stat.csv"),
		Output:     s.p.stdout,
		Args:       s.argv,
	}
	parseScreen(readFile(r.Screen), &r)
	return r
}

func startSIPp(t testing.TB, opts SIPpOptions, uac bool) *SIPp {
	t.Helper()
	scen := Scenario(opts.Scenario)
	text, err := os.ReadFile(scen)
	if err != nil {
		t.Fatalf("lab: SIPp scenario: %v", err)
	}
	name := opts.Name
	if name == "" {
		name = "uas"
		if uac {
			name = "uac"
		}
	}
	dir := t.TempDir()
	s := &SIPp{t: t, name: name, dir: dir, opts: opts, port: opts.Port, mediaPort: opts.MediaPort}
	if s.port == 0 {
		if opts.Transport == "tcp" {
			s.port = FreeTCPPort(t)
		} else {
			s.port = FreeUDPPort(t)
		}
	}
	if s.mediaPort == 0 {
		s.mediaPort = FreeMediaPort(t)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	timeout = boundTimeout(t, timeout)

	transport := "u1"
	switch opts.Transport {
	case "", "udp":
	case "tcp":
		transport = "t1"
	default:
		t.Fatalf("lab: SIPp transport %q: udp or tcp (SIPp 3.6.1 has no TLS)", opts.Transport)
	}
	argv := []string{"sipp"}
	if uac {
		argv = append(argv, opts.Remote)
	}
	argv = append(argv,
		"-sf", scen,
		"-t", transport,
		"-i", "127.0.0.1", "-bind_local", "-p", strconv.Itoa(s.port),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(s.mediaPort),
		"-ci", "127.0.0.1", "-cp", strconv.Itoa(FreeUDPPort(t)),
		"-nostdin",
		"-trace_err", "-error_file", s.file("_errors.log"),
		"-trace_screen", "-screen_file", s.file("_screen.log"),
		"-trace_logs", "-log_file", s.file("_logs.log"),
		"-trace_stat", "-stf", s.file("_stat.csv"),
		"-timeout", fmt.Sprintf("%ds", int((timeout+time.Second-1)/time.Second)), "-timeout_error",
	)
	if !opts.Quiet {
		argv = append(argv, "-trace_msg", "-message_file", s.file("_messages.log"))
	}
	if opts.Echo {
		argv = append(argv, "-rtp_echo")
	}
	if opts.Calls > 0 {
		argv = append(argv, "-m", strconv.Itoa(opts.Calls))
	}
	if opts.Service != "" {
		argv = append(argv, "-s", opts.Service)
	}
	if opts.Rate > 0 {
		argv = append(argv, "-r", strconv.FormatFloat(opts.Rate, 'f', -1, 64))
	}
	if opts.Limit > 0 {
		argv = append(argv, "-l", strconv.Itoa(opts.Limit))
	}
	if opts.Duration > 0 {
		argv = append(argv, "-d", strconv.FormatInt(opts.Duration.Milliseconds(), 10))
	}
	if opts.RecvTimeout > 0 {
		argv = append(argv, "-recv_timeout", strconv.FormatInt(opts.RecvTimeout.Milliseconds(), 10))
	}
	for _, kv := range scenarioKeys(t, dir, string(text), opts) {
		argv = append(argv, "-key", kv[0], kv[1])
	}
	argv = append(argv, opts.Args...)
	s.argv = argv

	p, err := startProc(t, procSpec{
		name:       name,
		argv:       argv,
		dir:        dir,
		timeout:    timeout + 5*time.Second,
		stopSignal: syscall.SIGUSR1,
		grace:      5 * time.Second,
		combined:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.p = p
	t.Cleanup(func() {
		if t.Failed() {
			r := s.result()
			t.Logf("lab: %s; files in %s\n  %s\n%s", r, r.Dir, strings.Join(argv, " "), r.diagnosis())
		}
	})
	return s
}

// keyRe finds the [key] references of a scenario.
var keyRe = regexp.MustCompile(`\[([a-z][a-z0-9_]*)\]`)

// scenarioKeys are the -key values for a run: opts.Keys, plus defaults for
// the lab's keys that the scenario uses and opts does not give.
func scenarioKeys(t testing.TB, dir, text string, opts SIPpOptions) [][2]string {
	used := map[string]bool{}
	for _, m := range keyRe.FindAllStringSubmatch(text, -1) {
		used[m[1]] = true
	}
	keys := map[string]string{}
	for k, v := range opts.Keys {
		keys[k] = v
	}
	codec := opts.Codec
	if codec.Name == "" {
		codec = PCMU
	}
	setDefault := func(k string, v func() string) {
		if _, ok := keys[k]; !ok && used[k] {
			keys[k] = v()
		}
	}
	setDefault("pt", func() string { return strconv.Itoa(codec.PT) })
	setDefault("codec", func() string { return codec.Name })
	setDefault("pcap", func() string {
		if opts.PCAP != "" {
			return opts.PCAP
		}
		dur := 30 * time.Second
		if d := 3*opts.Duration + 5*time.Second; d > dur {
			dur = d
		}
		path := filepath.Join(dir, fmt.Sprintf("tone-%s.pcap", strings.ToLower(codec.Name)))
		if err := WriteTonePCAP(path, codec, 1000, dur); err != nil {
			t.Fatalf("lab: %v (give SIPpOptions.PCAP)", err)
		}
		return path
	})
	setDefault("dtmf", func() string { return "/usr/share/sip-tester/dtmf_2833_5.pcap" })
	var out [][2]string
	for k, v := range keys {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// waitBound returns once SIPp holds its SIP port (and its echo port), and
// fails the test if SIPp exits first.
func (s *SIPp) waitBound() {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s.p.exited() {
			r := s.result()
			s.t.Fatalf("lab: SIPp %s exited at start (exit %d): %s\n%s", s.name, r.ExitCode, strings.Join(s.argv, " "), r.diagnosis())
		}
		ok := portHeld(s.opts.Transport, s.port)
		if ok && s.opts.Echo {
			ok = portHeld("udp", s.mediaPort)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("lab: SIPp %s did not bind 127.0.0.1:%d within 10s", s.name, s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// portHeld reports whether someone holds 127.0.0.1:port (tcp: listens).
func portHeld(transport string, port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if transport == "tcp" {
		c, err := net.DialTimeout("tcp4", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	l, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return errors.Is(err, syscall.EADDRINUSE)
	}
	l.Close()
	return false
}

var (
	msgLineRe = regexp.MustCompile(`^\s*(?:(---------->|<----------)\s+(\S+)|(\S+)\s+(---------->|<----------))\s+(?:[A-Z]-RTD\d+\s+)?(\d+)(?:\s+(\d+))?(?:\s+(\d+))?(?:\s+(\d+))?\s*$`)
	escRe     = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
)

// parseScreen reads the counts of SIPp's final screens into r.
func parseScreen(screen string, r *Result) {
	inScenario := false
	for _, line := range strings.Split(screen, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.Contains(line, "Scenario Screen"):
			inScenario = true
			r.Messages = nil
			continue
		case strings.Contains(line, "Statistics Screen"), strings.Contains(line, "Repartition Screen"):
			inScenario = false
		}
		if inScenario {
			if m := msgLineRe.FindStringSubmatch(line); m != nil {
				st := MessageStat{}
				if m[1] != "" {
					// "----------> INVITE": received (UAS view); "<---------- 180": sent.
					st.Name, st.Sent = m[2], m[1] == "<----------"
				} else {
					// "INVITE ---------->": sent (UAC view); "100 <----------": received.
					st.Name, st.Sent = m[3], m[4] == "---------->"
				}
				nums := []*int{&st.Count, &st.Retrans, &st.Timeout, &st.Unexpected}
				for i, s := range m[5:9] {
					if s != "" {
						*nums[i], _ = strconv.Atoi(s)
					}
				}
				r.Messages = append(r.Messages, st)
			}
			continue
		}
		if !strings.Contains(line, "|") {
			continue
		}
		cols := strings.Split(line, "|")
		label := strings.TrimSpace(cols[0])
		val, err := strconv.Atoi(strings.TrimSpace(cols[len(cols)-1]))
		if err != nil {
			continue
		}
		switch label {
		case "Total Calls created":
			r.Created = val
		case "Successful call":
			r.Successful = val
		case "Failed call":
			r.Failed = val
		}
	}
}

// sippMsgRe matches SIPp's own messages (errors, warnings), which it
// stamps with the date, among the screens it repaints every second.
var sippMsgRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}\s`)

// cleanScreen keeps SIPp's messages from its output, without the screens.
func cleanScreen(out string) string {
	var msgs []string
	for _, line := range strings.Split(escRe.ReplaceAllString(out, ""), "\n") {
		if l := strings.TrimSpace(line); sippMsgRe.MatchString(l) {
			msgs = append(msgs, l)
		}
	}
	return strings.Join(msgs, "\n")
}
