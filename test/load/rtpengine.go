package load

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RtpengineConfig says how to run rtpengine (Debian package
// rtpengine-daemon) for a benchmark: userspace forwarding only (table=-1,
// no kernel module), one interface on loopback, its own port range and ng
// control socket, in the foreground.
type RtpengineConfig struct {
	Binary    string // default "rtpengine" on PATH
	IP        string // interface and ng address, default 127.0.0.1
	NGPort    int    // default: a free port
	PortMin   int    // media range, default 34000-37999
	PortMax   int
	Threads   int    // worker threads, default: the number of CPUs it runs on
	CPUs      string // taskset CPU list to pin it to; empty: not pinned
	Dir       string // where its config and log go (required)
	LogLevel  int    // syslog level, default 5 (notice): no per-call info lines
	ExtraArgs []string
}

// Rtpengine is a running rtpengine and an ng client to it.
type Rtpengine struct {
	proc  *Process
	ng    *NGClient
	mode  Mode
	mu    sync.Mutex
	calls map[int]string // call index -> call-id; guarded by mu
	run   string
}

// RtpengineAvailable reports why rtpengine cannot run here, or nil.
func RtpengineAvailable(binary string) error {
	if binary == "" {
		binary = "rtpengine"
	}
	if _, err := exec.LookPath(binary); err != nil {
		return &ErrNotAvailable{Reason: "rtpengine is not installed (apt-get install rtpengine-daemon)"}
	}
	return nil
}

// StartRtpengine starts rtpengine and waits until it answers an ng ping.
func StartRtpengine(ctx context.Context, cfg RtpengineConfig, mode Mode) (*Rtpengine, error) {
	if err := RtpengineAvailable(cfg.Binary); err != nil {
		return nil, err
	}
	if cfg.Binary == "" {
		cfg.Binary = "rtpengine"
	}
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	if _, err := loopback(cfg.IP); err != nil {
		return nil, err
	}
	if cfg.PortMin == 0 {
		cfg.PortMin, cfg.PortMax = 34000, 37999
	}
	if cfg.NGPort == 0 {
		p, err := FreeUDPPort(cfg.IP)
		if err != nil {
			return nil, err
		}
		cfg.NGPort = p
	}
	if cfg.Threads == 0 {
		cfg.Threads = cpuCount(cfg.CPUs)
	}
	if cfg.LogLevel == 0 {
		cfg.LogLevel = 5
	}
	// Our own config file, so that /etc/rtpengine/rtpengine.conf (kernel
	// table 0, HTTP and CLI listeners on fixed ports) plays no part.
	conf := fmt.Sprintf(`[rtpengine]
table = -1
interface = %s
listen-ng = %s:%d
port-min = %d
port-max = %d
num-threads = %d
media-num-threads = 1
timeout = 3600
silent-timeout = 3600
delete-delay = 0
log-level = %d
log-stderr = true
foreground = true
endpoint-learning = immediate
`, cfg.IP, cfg.IP, cfg.NGPort, cfg.PortMin, cfg.PortMax, cfg.Threads, cfg.LogLevel)
	confPath := filepath.Join(cfg.Dir, "rtpengine.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	argv := append([]string{cfg.Binary, "--config-file=" + confPath, "--config-section=rtpengine"}, cfg.ExtraArgs...)
	proc, err := startProcess("rtpengine", argv, cfg.CPUs, cfg.Dir, filepath.Join(cfg.Dir, "rtpengine.log"), nil)
	if err != nil {
		return nil, err
	}
	ng, err := DialNG(net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.NGPort)))
	if err != nil {
		proc.Stop(5 * time.Second)
		return nil, err
	}
	r := &Rtpengine{proc: proc, ng: ng, mode: mode, calls: map[int]string{}, run: strconv.FormatInt(time.Now().UnixNano(), 36)}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		res, err := ng.Do(pctx, map[string]any{"command": "ping"})
		cancel()
		if err == nil && res["result"] == "pong" {
			return r, nil
		}
		if proc.Exited() || time.Now().After(deadline) {
			r.Close()
			return nil, fmt.Errorf("load: rtpengine did not answer ng ping on %s:%d: %v\n%s", cfg.IP, cfg.NGPort, err, proc.LogTail(2000))
		}
	}
}

// cpuCount is the number of CPUs in a taskset list ("0", "1-3", "0,2"), or
// the machine's when the list is empty.
func cpuCount(list string) int {
	if list == "" {
		return numCPU()
	}
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if ok {
			b, _ = strconv.Atoi(hi)
		}
		n += b - a + 1
	}
	return max(n, 1)
}

// Name implements Relay.
func (r *Rtpengine) Name() string { return "rtpengine" }

// PID implements Relay.
func (r *Rtpengine) PID() int { return r.proc.PID() }

// Process is the rtpengine process.
func (r *Rtpengine) Process() *Process { return r.proc }

// Setup implements Relay: an ng offer with the caller's SDP gives the offer
// toward the callee, an ng answer with the callee's SDP the answer toward
// the caller.
//
// Flags: the SDP addresses are trusted (no "received from"), ICE and DTLS
// are off, and the transport of each side is set by the mode.
//
// In SRTP↔SRTP rtpengine offers the callee the caller's own suite and key
// (tag 1) before suites with keys of its own: a callee that takes it gets
// SRTP passed through, undecrypted, which is not the work measured. The
// callee therefore answers AES_CM_128_HMAC_SHA1_32 (CalleeSuites), and
// rtpengine decrypts AES_CM_128_HMAC_SHA1_80 on one side and encrypts
// AES_CM_128_HMAC_SHA1_32 on the other. (rtpengine 10.5 has no SDES-only-;
// SDES-no- of the caller's suite leaves the caller's answer without one.)
func (r *Rtpengine) Setup(ctx context.Context, i int, offer SDP, answer func(toB SDP) (SDP, error)) (SDP, error) {
	callID := fmt.Sprintf("load-%s-%d", r.run, i)
	fromTag, toTag := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
	flags := []any{"trust-address", "no-rtcp-attribute"}
	req := map[string]any{
		"command": "offer", "call-id": callID, "from-tag": fromTag,
		"sdp": string(offer.Marshal(uint64(i) + 1)), "ICE": "remove", "DTLS": "off",
		"replace": []any{"origin", "session-connection"},
	}
	if r.mode.srtpB() {
		req["transport-protocol"] = "RTP/SAVP"
	} else {
		req["transport-protocol"] = "RTP/AVP"
	}
	req["flags"] = flags
	res, err := r.ng.Do(ctx, req)
	if err != nil {
		return SDP{}, err
	}
	sdpB, _ := res["sdp"].(string)
	toB, err := ParseSDP([]byte(sdpB))
	if err != nil {
		return SDP{}, fmt.Errorf("load: rtpengine offer: %w\n%s", err, sdpB)
	}
	ans, err := answer(toB)
	if err != nil {
		return SDP{}, err
	}
	areq := map[string]any{
		"command": "answer", "call-id": callID, "from-tag": fromTag, "to-tag": toTag,
		"sdp": string(ans.Marshal(uint64(i) + 1)), "ICE": "remove", "DTLS": "off",
		"replace": []any{"origin", "session-connection"}, "flags": flags,
	}
	if r.mode.srtpA() {
		areq["transport-protocol"] = "RTP/SAVP"
	} else {
		areq["transport-protocol"] = "RTP/AVP"
	}
	res, err = r.ng.Do(ctx, areq)
	if err != nil {
		return SDP{}, err
	}
	sdpA, _ := res["sdp"].(string)
	toA, err := ParseSDP([]byte(sdpA))
	if err != nil {
		return SDP{}, fmt.Errorf("load: rtpengine answer: %w\n%s", err, sdpA)
	}
	r.mu.Lock()
	r.calls[i] = callID
	r.mu.Unlock()
	return toA, nil
}

// CalleeSuites is the callee's preference among the suites offered to it.
func (r *Rtpengine) CalleeSuites() []CryptoSuite {
	if r.mode == SRTPtoSRTP {
		return []CryptoSuite{SuiteAES32, SuiteAES80, SuiteGCM128, SuiteGCM256}
	}
	return nil
}

// Teardown implements Relay.
func (r *Rtpengine) Teardown(ctx context.Context, i int) error {
	r.mu.Lock()
	id, ok := r.calls[i]
	delete(r.calls, i)
	r.mu.Unlock()
	if !ok {
		return nil
	}
	_, err := r.ng.Do(ctx, map[string]any{"command": "delete", "call-id": id, "from-tag": fmt.Sprintf("a%d", i)})
	return err
}

// Close implements Relay.
func (r *Rtpengine) Close() error {
	if r.ng != nil {
		r.ng.Close()
	}
	r.proc.Stop(5 * time.Second)
	return nil
}
