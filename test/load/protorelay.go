package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EpollRelay runs cmd/epollrelay, the measuring stick of analysis.md: what
// a Go relay with epoll workers costs per packet here. RTP↔RTP only.
type EpollRelay struct {
	proc *Process
	ctl  *net.UDPConn
	mu   sync.Mutex // one control exchange at a time
}

// BuildTool builds a command of this module (e.g. "./test/load/cmd/epollrelay")
// into dir.
func BuildTool(dir, pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("load: go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// StartEpollRelay builds and starts cmd/epollrelay.
func StartEpollRelay(dir, cpus string, portMin int, mode Mode) (*EpollRelay, error) {
	if mode != RTPtoRTP {
		return nil, &ErrNotAvailable{Reason: "epollrelay relays RTP only"}
	}
	bin, err := BuildTool(dir, "./test/load/cmd/epollrelay")
	if err != nil {
		return nil, err
	}
	p, err := startProcess("epollrelay", []string{bin, "-port-min", strconv.Itoa(portMin)}, cpus, dir, filepath.Join(dir, "epollrelay.log"), nil)
	if err != nil {
		return nil, err
	}
	var addr string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && addr == ""; time.Sleep(20 * time.Millisecond) {
		f, err := os.Open(p.Log)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "control "); ok {
				addr = a
			}
		}
		f.Close()
	}
	if addr == "" {
		p.Stop(time.Second)
		return nil, fmt.Errorf("load: epollrelay did not start:\n%s", p.LogTail(1000))
	}
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		return nil, err
	}
	return &EpollRelay{proc: p, ctl: c}, nil
}

func (r *EpollRelay) do(req string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	buf := make([]byte, 256)
	for try := 0; try < 5; try++ {
		if _, err := r.ctl.Write([]byte(req)); err != nil {
			return "", err
		}
		_ = r.ctl.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := r.ctl.Read(buf)
		if err == nil {
			if s := string(buf[:n]); s != "error" {
				return s, nil
			}
			return "", fmt.Errorf("load: epollrelay refused %q", req)
		}
	}
	return "", errors.New("load: epollrelay does not answer")
}

// Name implements Relay.
func (r *EpollRelay) Name() string { return "epollrelay" }

// PID implements Relay.
func (r *EpollRelay) PID() int { return r.proc.PID() }

// Setup implements Relay.
func (r *EpollRelay) Setup(ctx context.Context, i int, offer SDP, answer func(SDP) (SDP, error)) (SDP, error) {
	rep, err := r.do("call " + offer.Addr.String())
	if err != nil {
		return SDP{}, err
	}
	var pa, pb uint16
	if _, err := fmt.Sscan(rep, &pa, &pb); err != nil {
		return SDP{}, fmt.Errorf("load: epollrelay answered %q", rep)
	}
	ip := offer.Addr.Addr()
	ans, err := answer(SDP{Addr: netip.AddrPortFrom(ip, pb), Proto: "RTP/AVP"})
	if err != nil {
		return SDP{}, err
	}
	if _, err := r.do(fmt.Sprintf("peer %d %s", pb, ans.Addr)); err != nil {
		return SDP{}, err
	}
	return SDP{Addr: netip.AddrPortFrom(ip, pa), Proto: "RTP/AVP"}, nil
}

// Teardown implements Relay (the sockets live until the relay stops).
func (r *EpollRelay) Teardown(context.Context, int) error { return nil }

// Close implements Relay.
func (r *EpollRelay) Close() error {
	r.ctl.Close()
	r.proc.Stop(2 * time.Second)
	return nil
}
