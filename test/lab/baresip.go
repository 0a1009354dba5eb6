package lab

// baresip 1.0.0 (Debian 12: baresip-core 1.0.0-4, libre 1.1.0, librem 0.6.0),
// as found on this machine:
//
// Configuration (the file "config" in the -f directory; accounts in
// "accounts"):
//   - sip_listen 127.0.0.1:P opens UDP and TCP on P and TLS on P+1: there is
//     no key for a TLS-only listener, nor one for the TLS port. So a peer
//     "at 5070, TLS 5071" (PRODUCT.md's lab) is sip_listen 127.0.0.1:5070.
//   - sip_certificate FILE is one PEM with the certificate and then its
//     private key (EC keys work); the same certificate serves the listener
//     and outgoing connections. sip_cafile FILE is loaded (tls_add_ca).
//     There is no sip_verify_server (nor any other key) in 1.0: as a TLS
//     client baresip does NOT verify the server's certificate at all
//     (libre's verify callback accepts everything). A self-signed peer is
//     trusted with nothing to configure, and a wrong sip_cafile changes
//     nothing, so baresip cannot show that a client refuses a bad server
//     certificate. As a server it asks for no client certificate (no
//     CertificateRequest): anyone gets in. As a client it presents its
//     sip_certificate when the server asks (a Go server with
//     RequireAnyClientCert sees it; its SHA-256 is Cert().Fingerprint), so
//     it can stand for a peer that ccsbc verifies by pinned fingerprint.
//     TLS 1.3 and 1.2 work; 1.0 and 1.1 are refused (Debian's OpenSSL).
//   - net_interface 127.0.0.1 (an address works, "lo" is not needed) binds
//     SIP and RTP to loopback; rtp_ports LO-HI bounds the RTP ports.
//   - Media encryption is per account (;mediaenc=), with modules srtp.so
//     and dtls_srtp.so loaded. SDES offers one line, "a=crypto:1
//     AES_CM_128_HMAC_SHA1_80 inline:...", on "m=audio P RTP/AVP" with
//     srtp (best effort: over any SIP transport, even UDP), RTP/SAVP with
//     srtp-mand, RTP/SAVPF with srtp-mandf. dtls_srtp offers
//     "UDP/TLS/RTP/SAVPF" with a=setup:actpass and a session-level
//     "a=fingerprint:SHA-256 ..." (the answerer says a=setup:active); the
//     handshake takes about 1 s on loopback, once per component without
//     rtcp_mux, and the profile is AES_CM_128_HMAC_SHA1_80. The SDES keys
//     are in the -s trace of the log: test logs only.
//   - Audio: audio_source aufile,FILE.wav (module aufile.so: reads the whole
//     file at start, 16-bit PCM WAV) and audio_player aubridge,NAME (module
//     aubridge.so: a sink nothing plays). aufile has no player in 1.0. The
//     audio filter module sndfile.so dumps each call's audio to
//     snd_path/dump-<date>-<time>-enc.wav (sent) and -dec.wav (received):
//     the received file is how a test hears the call.
//   - The stdio UI fails without a terminal ("fd_listen: fd=0 ... Operation
//     not permitted") and is left out; ctrl_tcp.so (ctrl_tcp_listen
//     127.0.0.1:P) takes commands as netstrings of JSON
//     {"command":"dial","params":"sip:...","token":"1"} and answers
//     {"response":true,"ok":true,"data":"...","token":"1"}; the commands
//     are menu.so's (dial, accept, hangup, hold, resume, reinvite, sndcode,
//     transfer, listcalls, callstat, quit), so menu.so is loaded too. -e
//     "/dial ..." at start works as well, but only once and blind.
//   - An incoming call is taken only by the account whose user is the
//     Request-URI's user; any other user gets 404 Not Found.
//   - A dialled URI without ;transport= gets the account's; one with it gets
//     it twice (";transport=tls;transport=tls"), so Dial drops it.
//
// What it tells (stdout, and ctrl_tcp events {"event":true,"type":...}):
//   - events CALL_INCOMING, CALL_RINGING, CALL_PROGRESS, CALL_ESTABLISHED,
//     CALL_CLOSED (param: the reason: "Connection reset by user" when we
//     hung up, "Connection reset by peer" when the peer sent BYE, or the
//     status line, e.g. "404 Not Found", when the call failed), CALL_MENC
//     (param "0,audio,AES_CM_128_HMAC_SHA1_80" for SDES, "0,audio,RTP" then
//     "0,audio,RTCP" when DTLS-SRTP is up), CALL_RTPESTAB (param "audio":
//     the first RTP packet arrived), CALL_RTCP, CALL_LOCAL_SDP,
//     CALL_REMOTE_SDP (param offer/answer).
//   - log lines: "<aor>: Call established: <peer>", "stream: incoming rtp
//     for 'audio' established, receiving from <addr>", "srtp: audio: SRTP
//     is Enabled (cryptosuite=...)", "dtls_srtp: ---> DTLS-SRTP complete
//     (audio/RTP) Profile=...", "dtls_srtp: verified SHA-256 fingerprint
//     OK", "<peer>: session closed: <reason>", "Call with <peer> terminated
//     (duration: N secs)" and, with rtp_stats yes, a table at the end of
//     each call: "packets: <sent> <received>", "errors: ...".
//   - -s traces every SIP message ("TLS 127.0.0.1:a -> 127.0.0.1:b" then
//     the message); its Contact user is "<user>-0x<pointer>".

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BaresipOptions configures a baresip user agent. Zero values have lab
// defaults.
type BaresipOptions struct {
	// User is the account's user: the number it calls from and the only
	// one it answers (other Request-URI users get 404). Default "1000".
	User string
	// Port is sip_listen's port: UDP and TCP on Port, TLS on Port+1. 0
	// picks a free pair.
	Port int
	// Transport is the account's: "tls" (default), "tcp" or "udp".
	Transport string
	// Cert is the certificate it presents (sip_certificate). Default: a
	// new SelfSigned one.
	Cert *Cert
	// CAFile is sip_cafile. baresip 1.0 loads it but verifies nothing.
	CAFile string
	// MediaEnc is the account's mediaenc: "" (plain RTP), "srtp",
	// "srtp-mand", "srtp-mandf" or "dtls_srtp".
	MediaEnc string
	// AnswerMode is "auto" (default), "manual" (Accept) or "early".
	AnswerMode string
	// Codecs are the account's audio_codecs. Default ["pcmu"].
	Codecs []string
	// ToneHz is the frequency of the tone it sends (default 1000), unless
	// SourceWAV names a 16-bit 8 kHz WAV file to send instead.
	ToneHz    float64
	SourceWAV string
	// RTCPMux offers rtcp-mux.
	RTCPMux bool
	// Timeout bounds the process's life (default 60 s).
	Timeout time.Duration
	// Config are more lines for the config file.
	Config []string
	// Name names its files; default "baresip-<user>".
	Name string
}

// UA is a running baresip.
type UA struct {
	t      testing.TB
	opts   BaresipOptions
	name   string
	dir    string
	port   int
	ctrl   int
	rtpLo  int
	cert   Cert
	p      *proc
	conn   net.Conn
	tokens int

	mu      sync.Mutex
	events  []BaresipEvent
	seen    map[string]int // per event type, how many WaitEvent has returned
	waiting map[string]chan ctrlResponse
	changed chan struct{}
	readErr error
}

// BaresipEvent is an event of baresip's ctrl_tcp socket.
type BaresipEvent struct {
	Type       string `json:"type"`
	Class      string `json:"class"`
	AccountAOR string `json:"accountaor"`
	Direction  string `json:"direction"`
	PeerURI    string `json:"peeruri"`
	ID         string `json:"id"`
	Param      string `json:"param"`
	At         time.Time
}

type ctrlResponse struct {
	OK    bool   `json:"ok"`
	Data  string `json:"data"`
	Token string `json:"token"`
}

// Baresip starts a headless baresip with a configuration written for it in
// a temp dir, and returns once its control socket answers. It quits when
// the test ends.
func Baresip(t testing.TB, opts BaresipOptions) *UA {
	t.Helper()
	if opts.User == "" {
		opts.User = "1000"
	}
	if opts.Transport == "" {
		opts.Transport = "tls"
	}
	if opts.AnswerMode == "" {
		opts.AnswerMode = "auto"
	}
	if len(opts.Codecs) == 0 {
		opts.Codecs = []string{"pcmu"}
	}
	if opts.ToneHz == 0 {
		opts.ToneHz = 1000
	}
	if opts.Name == "" {
		opts.Name = "baresip-" + opts.User
	}
	switch opts.MediaEnc {
	case "", "srtp", "srtp-mand", "srtp-mandf", "dtls_srtp":
	default:
		t.Fatalf("lab: baresip mediaenc %q: want srtp, srtp-mand, srtp-mandf or dtls_srtp", opts.MediaEnc)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	timeout = boundTimeout(t, timeout)

	u := &UA{
		t: t, opts: opts, name: opts.Name, dir: t.TempDir(), port: opts.Port,
		seen: map[string]int{}, waiting: map[string]chan ctrlResponse{}, changed: make(chan struct{}),
	}
	if u.port == 0 {
		u.port = FreePortPair(t)
	}
	u.ctrl = FreeTCPPort(t)
	if opts.Cert != nil {
		u.cert = *opts.Cert
	} else {
		u.cert = SelfSigned(t, opts.Name)
	}
	source := opts.SourceWAV
	if source == "" {
		source = filepath.Join(u.dir, "source.wav")
		dur := timeout
		if dur > 2*time.Minute {
			dur = 2 * time.Minute
		}
		if err := WriteWAV(source, Tone(opts.ToneHz, 0.3, dur)); err != nil {
			t.Fatal(err)
		}
	}
	u.rtpLo = FreeMediaRange(t, 16)
	config := []string{
		"# written by ccsbc's test/lab for " + t.Name(),
		"poll_method epoll",
		fmt.Sprintf("sip_listen 127.0.0.1:%d", u.port),
		"sip_certificate " + u.cert.PEMFile,
	}
	if opts.CAFile != "" {
		config = append(config, "sip_cafile "+opts.CAFile)
	}
	config = append(config,
		"call_local_timeout 30",
		"call_max_calls 4",
		"audio_source aufile,"+source,
		"audio_player aubridge,"+opts.Name,
		"audio_alert aubridge,"+opts.Name+"-alert",
		"audio_level no",
		"ausrc_srate 8000",
		"auplay_srate 8000",
		"ausrc_channels 1",
		"auplay_channels 1",
		fmt.Sprintf("rtp_ports %d-%d", u.rtpLo, u.rtpLo+15),
		"rtp_stats yes",
		"rtcp_mux "+map[bool]string{true: "yes", false: "no"}[opts.RTCPMux],
		"net_interface 127.0.0.1",
		"snd_path "+u.dir,
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module aubridge.so",
		"module sndfile.so",
		"module srtp.so",
		"module dtls_srtp.so",
		"module_tmp uuid.so",
		"module_tmp account.so",
		"module_app menu.so",
		"module_app ctrl_tcp.so",
		fmt.Sprintf("ctrl_tcp_listen 127.0.0.1:%d", u.ctrl),
	)
	config = append(config, opts.Config...)
	account := fmt.Sprintf("<sip:%s@127.0.0.1;transport=%s>;regint=0;answermode=%s;audio_codecs=%s;ptime=20",
		opts.User, opts.Transport, opts.AnswerMode, strings.Join(opts.Codecs, ","))
	if opts.MediaEnc != "" {
		account += ";mediaenc=" + opts.MediaEnc
	}
	for name, text := range map[string]string{
		"config":   strings.Join(config, "\n") + "\n",
		"accounts": account + "\n",
		"contacts": "",
	} {
		if err := os.WriteFile(filepath.Join(u.dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	p, err := startProc(t, procSpec{
		name: opts.Name,
		// -s traces SIP into the log; -t is baresip's own quit timer.
		argv:       []string{"baresip", "-4", "-s", "-f", u.dir, "-t", strconv.Itoa(int(timeout.Seconds()) + 1)},
		dir:        u.dir,
		timeout:    timeout + 5*time.Second,
		stopSignal: syscall.SIGTERM,
		grace:      3 * time.Second,
		combined:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	u.p = p
	logOnFailure(t, "baresip "+opts.Name, u.dir, p.stdout)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab: baresip %s log (%s):\n%s", u.name, p.stdout, tail(u.Log(), 4000))
		}
	})
	u.connect()
	// Registered after startProc's: runs before it, so baresip quits by
	// itself (and hangs up) before it is signalled.
	t.Cleanup(u.quit)
	return u
}

// connect opens the control socket once baresip listens on it.
func (u *UA) connect() {
	u.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if u.p.exited() {
			u.t.Fatalf("lab: baresip %s exited at start:\n%s", u.name, tail(u.Log(), 3000))
		}
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", u.ctrl), time.Second)
		if err == nil {
			u.conn = c
			break
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("lab: baresip %s: no control socket within 15s: %v\n%s", u.name, err, tail(u.Log(), 3000))
		}
		time.Sleep(30 * time.Millisecond)
	}
	go u.read()
	// The SIP listeners are up before the control socket is, but make sure.
	for !strings.Contains(u.Log(), "baresip is ready.") {
		if time.Now().After(deadline) {
			u.t.Fatalf("lab: baresip %s not ready within 15s:\n%s", u.name, tail(u.Log(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// read decodes the control socket's netstrings until it closes.
func (u *UA) read() {
	br := bufio.NewReader(u.conn)
	for {
		msg, err := readNetstring(br)
		if err != nil {
			u.mu.Lock()
			u.readErr = err
			close(u.changed)
			u.changed = make(chan struct{})
			u.mu.Unlock()
			return
		}
		var head struct {
			Event    bool `json:"event"`
			Response bool `json:"response"`
		}
		if json.Unmarshal(msg, &head) != nil {
			continue
		}
		u.mu.Lock()
		switch {
		case head.Event:
			var ev BaresipEvent
			if json.Unmarshal(msg, &ev) == nil {
				ev.At = time.Now()
				u.events = append(u.events, ev)
				close(u.changed)
				u.changed = make(chan struct{})
			}
		case head.Response:
			var r ctrlResponse
			if json.Unmarshal(msg, &r) == nil {
				if ch, ok := u.waiting[r.Token]; ok {
					ch <- r
					delete(u.waiting, r.Token)
				}
			}
		}
		u.mu.Unlock()
	}
}

func readNetstring(br *bufio.Reader) ([]byte, error) {
	lenText, err := br.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(lenText, ":")))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("lab: bad netstring length %q", lenText)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, errors.New("lab: netstring without its comma")
	}
	return buf[:n], nil
}

func netstring(b []byte) []byte {
	return append(append([]byte(strconv.Itoa(len(b))+":"), b...), ',')
}

// Command runs one of baresip's commands ("dial", "hangup", "listcalls"...)
// through the control socket and returns its answer.
func (u *UA) Command(command, params string) (string, error) {
	ch, token, err := u.send(command, params)
	if err != nil {
		return "", err
	}
	select {
	case <-u.p.done:
		return "", fmt.Errorf("lab: baresip %s exited before answering %s", u.name, command)
	case r := <-ch:
		if !r.OK {
			return r.Data, fmt.Errorf("lab: baresip %s: %s %s: %s", u.name, command, params, strings.TrimSpace(r.Data))
		}
		return r.Data, nil
	case <-time.After(10 * time.Second):
		u.mu.Lock()
		delete(u.waiting, token)
		u.mu.Unlock()
		return "", fmt.Errorf("lab: baresip %s: no answer to %s within 10s", u.name, command)
	}
}

// send writes a command; its answer will come on the channel.
func (u *UA) send(command, params string) (chan ctrlResponse, string, error) {
	u.mu.Lock()
	u.tokens++
	token := strconv.Itoa(u.tokens)
	ch := make(chan ctrlResponse, 1)
	u.waiting[token] = ch
	u.mu.Unlock()
	msg, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	_ = u.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := u.conn.Write(netstring(msg)); err != nil {
		return nil, "", fmt.Errorf("lab: baresip %s: %s: %w", u.name, command, err)
	}
	return ch, token, nil
}

// Dial calls uri ("sip:2000@127.0.0.1:5061") over the account's transport
// (a ;transport= of the same value is dropped: baresip adds its own).
func (u *UA) Dial(uri string) error {
	uri = strings.Replace(uri, ";transport="+u.opts.Transport, "", 1)
	_, err := u.Command("dial", uri)
	return err
}

// Accept answers the incoming call (AnswerMode "manual").
func (u *UA) Accept() error {
	_, err := u.Command("accept", "")
	return err
}

// Hangup hangs up the current call (BYE, or CANCEL while it rings).
func (u *UA) Hangup() error {
	_, err := u.Command("hangup", "")
	return err
}

// quit asks baresip to quit (hanging up its calls) and waits a little.
func (u *UA) quit() {
	if u.p.exited() {
		return
	}
	// baresip may exit before it answers: do not wait for the answer.
	if _, _, err := u.send("quit", ""); err == nil {
		u.p.wait(3 * time.Second)
	}
}

// Stop quits baresip and waits for it to exit: its logs and recordings
// are then complete.
func (u *UA) Stop() {
	u.quit()
	u.p.stop(syscall.SIGTERM, 3*time.Second)
}

// Events are the control socket's events so far.
func (u *UA) Events() []BaresipEvent {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]BaresipEvent(nil), u.events...)
}

// WaitEvent returns the next event of type typ (CALL_ESTABLISHED,
// CALL_CLOSED...) that no earlier WaitEvent for typ returned, waiting for it
// until ctx ends or baresip exits. While waiting for another type, a
// CALL_CLOSED that no WaitClosed has returned yet ends the wait with an
// error that says why the call closed: call WaitClosed after each call.
func (u *UA) WaitEvent(ctx context.Context, typ string) (BaresipEvent, error) {
	for {
		u.mu.Lock()
		var closed *BaresipEvent
		counts := map[string]int{}
		for i, ev := range u.events {
			if ev.Type == typ && counts[typ] == u.seen[typ] {
				u.seen[typ]++
				u.mu.Unlock()
				return ev, nil
			}
			if ev.Type == "CALL_CLOSED" && counts[ev.Type] >= u.seen[ev.Type] && closed == nil {
				closed = &u.events[i]
			}
			counts[ev.Type]++
		}
		changed, readErr := u.changed, u.readErr
		u.mu.Unlock()
		if closed != nil && typ != "CALL_CLOSED" {
			return BaresipEvent{}, fmt.Errorf("lab: baresip %s: no %s: the call closed: %s", u.name, typ, closed.Param)
		}
		if readErr != nil {
			return BaresipEvent{}, fmt.Errorf("lab: baresip %s: no %s: control socket: %v", u.name, typ, readErr)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return BaresipEvent{}, fmt.Errorf("lab: baresip %s: no %s: %w", u.name, typ, ctx.Err())
		case <-u.p.done:
			return BaresipEvent{}, fmt.Errorf("lab: baresip %s exited before %s", u.name, typ)
		}
	}
}

// WaitEstablished waits for the call to be established.
func (u *UA) WaitEstablished(ctx context.Context) (BaresipEvent, error) {
	return u.WaitEvent(ctx, "CALL_ESTABLISHED")
}

// WaitClosed waits for the call to close; Param is the reason.
func (u *UA) WaitClosed(ctx context.Context) (BaresipEvent, error) {
	return u.WaitEvent(ctx, "CALL_CLOSED")
}

// WaitMedia waits for the first RTP packet of the call (CALL_RTPESTAB).
func (u *UA) WaitMedia(ctx context.Context) (BaresipEvent, error) {
	return u.WaitEvent(ctx, "CALL_RTPESTAB")
}

// MediaEncryption is the param of the CALL_MENC events so far
// ("0,audio,AES_CM_128_HMAC_SHA1_80" for SDES; "0,audio,RTP" and
// "0,audio,RTCP" for DTLS-SRTP); none for plain RTP.
func (u *UA) MediaEncryption() []string {
	var out []string
	for _, ev := range u.Events() {
		if ev.Type == "CALL_MENC" {
			out = append(out, ev.Param)
		}
	}
	return out
}

// Addr is where baresip receives SIP over its account's transport
// ("127.0.0.1:Port+1" for TLS).
func (u *UA) Addr() string {
	if u.opts.Transport == "tls" {
		return fmt.Sprintf("127.0.0.1:%d", u.port+1)
	}
	return fmt.Sprintf("127.0.0.1:%d", u.port)
}

// URI is the SIP URI that reaches this UA: "sip:1000@127.0.0.1:5071;transport=tls".
func (u *UA) URI() string {
	return fmt.Sprintf("sip:%s@%s;transport=%s", u.opts.User, u.Addr(), u.opts.Transport)
}

// RTPPorts is the range baresip takes its RTP and RTCP ports from.
func (u *UA) RTPPorts() (lo, hi int) { return u.rtpLo, u.rtpLo + 15 }

// Port is sip_listen's port (UDP and TCP; TLS is Port+1).
func (u *UA) Port() int { return u.port }

// Cert is the certificate baresip presents.
func (u *UA) Cert() Cert { return u.cert }

// Dir is baresip's configuration directory, where its log and recordings
// are.
func (u *UA) Dir() string { return u.dir }

// Log is baresip's output so far (SIP trace included), without colours.
func (u *UA) Log() string { return escRe.ReplaceAllString(readFile(u.p.stdout), "") }

// RTPStats are the counts of baresip's end-of-call table (rtp_stats).
type RTPStats struct {
	Sent, Received             int
	SendErrors, ReceiveErrors  int
	SentKbps, ReceivedKbps     float64
	Lost, LostReceived, Jitter string // as printed, when printed
}

var statsRe = regexp.MustCompile(`(?m)^(packets|errors|avg\. bitrate):\s+([0-9.]+)\s+([0-9.]+)`)

// CallStats are the tables baresip printed at the end of each call so far,
// in order.
func (u *UA) CallStats() []RTPStats {
	var out []RTPStats
	for _, block := range strings.Split(u.Log(), "Transmit:")[1:] {
		var st RTPStats
		found := false
		end := strings.Index(block, "\n\n")
		if end < 0 {
			end = len(block)
		}
		for _, m := range statsRe.FindAllStringSubmatch(block[:end], -1) {
			a, _ := strconv.ParseFloat(m[2], 64)
			b, _ := strconv.ParseFloat(m[3], 64)
			switch m[1] {
			case "packets":
				st.Sent, st.Received, found = int(a), int(b), true
			case "errors":
				st.SendErrors, st.ReceiveErrors = int(a), int(b)
			case "avg. bitrate":
				st.SentKbps, st.ReceivedKbps = a, b
			}
		}
		if found {
			out = append(out, st)
		}
	}
	return out
}

// Recordings are the WAV files sndfile wrote for the calls so far: the
// received audio (-dec.wav) and the sent audio (-enc.wav), oldest first.
func (u *UA) Recordings() (received, sent []string) {
	dec, _ := filepath.Glob(filepath.Join(u.dir, "dump-*-dec.wav"))
	enc, _ := filepath.Glob(filepath.Join(u.dir, "dump-*-enc.wav"))
	sort.Strings(dec)
	sort.Strings(enc)
	return dec, enc
}

// ReceivedAudio measures the audio of the last call's recording: what the
// peer's media made of it after decryption and decoding. Read it after the
// call closed (the file is complete then).
func (u *UA) ReceivedAudio() (AudioStats, error) {
	dec, _ := u.Recordings()
	if len(dec) == 0 {
		return AudioStats{}, fmt.Errorf("lab: baresip %s recorded no audio (no call got media?)", u.name)
	}
	samples, rate, err := ReadWAV(dec[len(dec)-1])
	if err != nil {
		return AudioStats{}, err
	}
	return AnalyzeAudio(samples, rate), nil
}
