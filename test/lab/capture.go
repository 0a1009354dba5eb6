package lab

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Capture is a tshark capture running on an interface (lo in the lab).
//
// Reading it back (tshark 4.0): RTP and RTCP are decoded on any UDP port
// (heuristics rtp_udp and rtcp_udp enabled, and tried before the port
// table, where a random media port may belong to another protocol); SDES
// SRTP then reads as RTP with an encrypted rtp.payload, DTLS-SRTP (once the
// DTLS handshake was captured) as RTP with srtp.enc_payload. SIP is found
// on any port by heuristic, TLS as well (tls.handshake). Give DecodeAs
// ("udp.port==40000,rtp") for what it cannot guess. Capturing needs root,
// and other processes' traffic on lo is captured too: filter on your ports.
type Capture struct {
	t      testing.TB
	File   string // the pcapng file, under the test's temp dir
	Filter string // the capture (BPF) filter
	p      *proc
	// canary is the UDP port of the packets StartCapture sends to itself
	// to know the capture is live; Fields and the methods built on it
	// leave them out (Tshark does not).
	canary int
	// DecodeAs are tshark -d rules applied when reading.
	DecodeAs []string
}

// StartCapture starts tshark on iface ("lo") with a BPF capture filter
// ("udp portrange 40000-40999", "" for everything) writing to a file, and
// returns once packets are really captured (about half a second: it sends
// itself canary packets until one is in the file). Reading stops it; so
// does the end of the test.
func StartCapture(t testing.TB, iface, bpf string) *Capture {
	t.Helper()
	dir := t.TempDir()
	c := &Capture{t: t, File: filepath.Join(dir, "capture.pcapng"), Filter: bpf, canary: FreeUDPPort(t)}
	argv := []string{"tshark", "-n", "-i", iface, "-w", c.File}
	if bpf != "" {
		argv = append(argv, "-f", fmt.Sprintf("(%s) or (udp port %d)", bpf, c.canary))
	}
	p, err := startProc(t, procSpec{
		name:       "tshark",
		argv:       argv,
		dir:        dir,
		timeout:    10 * time.Minute,
		stopSignal: syscall.SIGINT,
		grace:      5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.p = p
	logOnFailure(t, "tshark capture ("+bpf+")", c.File, p.stderr)
	// tshark (through dumpcap) says "Capturing on 'Loopback: lo'" once the
	// interface is open: packets before that are not in the file.
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(readFile(p.stderr), "Capturing on") {
		if p.exited() {
			t.Fatalf("lab: tshark exited at start:\n%s", readFile(p.stderr))
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab: tshark did not start capturing within 15s:\n%s", readFile(p.stderr))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The filter is attached a little after that message (packets of the
	// next 10-20 ms are missed here, more under load). Send canaries until
	// one is in the file: dumpcap flushes it about every 500 ms.
	conn, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", c.canary))
	if err != nil {
		t.Fatalf("lab: capture canary: %v", err)
	}
	defer conn.Close()
	canary := []byte(fmt.Sprintf("ccsbc-lab capture canary %d", c.canary))
	for {
		_, _ = conn.WriteTo(canary, conn.LocalAddr())
		if b, err := os.ReadFile(c.File); err == nil && bytes.Contains(b, canary) {
			return c
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("lab: tshark captured nothing within 15s:\n%s", readFile(p.stderr))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Canary is the UDP port of StartCapture's own packets (see Tshark).
func (c *Capture) Canary() int { return c.canary }

// Stop waits a moment for packets in flight, then stops tshark (SIGINT, so
// that the file is complete). It may be called more than once.
func (c *Capture) Stop() {
	if c.p.exited() {
		return
	}
	time.Sleep(300 * time.Millisecond)
	c.p.stop(syscall.SIGINT, 5*time.Second)
}

// Tshark runs tshark -r on the capture (stopping it first) with args and
// returns its stdout. What it reads includes the canary packets that
// StartCapture sent to itself (UDP, to and from port Canary()).
func (c *Capture) Tshark(args ...string) (string, error) {
	c.Stop()
	argv := []string{"-r", c.File, "-n", "--enable-heuristic", "rtp_udp", "--enable-heuristic", "rtcp_udp",
		// A random media port may be some protocol's registered port: try
		// the heuristics (RTP) before the port table.
		"-o", "udp.try_heuristic_first:TRUE"}
	for _, d := range c.DecodeAs {
		argv = append(argv, "-d", d)
	}
	argv = append(argv, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("lab: tshark %s: %v\n%s", strings.Join(argv, " "), err, errb.String())
	}
	return out.String(), nil
}

// Fields returns, for each packet matching the display filter ("" for
// all), the values of fields (tshark -T fields), in capture order. A field
// with several values has them joined by ",".
func (c *Capture) Fields(displayFilter string, fields ...string) [][]string {
	c.t.Helper()
	args := []string{"-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	filter := displayFilter
	if c.canary != 0 {
		filter = fmt.Sprintf("!(udp.port==%d)", c.canary)
		if displayFilter != "" {
			filter += " && (" + displayFilter + ")"
		}
	}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := c.Tshark(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows
}

// Count is the number of packets matching the display filter: "sip",
// "rtp && udp.dstport==40002", "tls.handshake.type==1"...
func (c *Capture) Count(displayFilter string) int {
	c.t.Helper()
	return len(c.Fields(displayFilter, "frame.number"))
}

// Flow is one direction of a UDP conversation.
type Flow struct {
	Src, Dst netip.AddrPort
}

func (f Flow) String() string { return f.Src.String() + " -> " + f.Dst.String() }

// UDPFlows counts the UDP packets of each direction of each conversation
// (IPv4) matching the display filter ("" for all UDP).
func (c *Capture) UDPFlows(displayFilter string) map[Flow]int {
	c.t.Helper()
	filter := "udp"
	if displayFilter != "" {
		filter = "udp && (" + displayFilter + ")"
	}
	flows := map[Flow]int{}
	for _, row := range c.Fields(filter, "ip.src", "udp.srcport", "ip.dst", "udp.dstport") {
		if len(row) < 4 {
			continue
		}
		src, err1 := addrPort(row[0], row[1])
		dst, err2 := addrPort(row[2], row[3])
		if err1 != nil || err2 != nil {
			continue // IPv6 or ICMP-quoted packets
		}
		flows[Flow{Src: src, Dst: dst}]++
	}
	return flows
}

// PacketsTo counts UDP packets sent to 127.0.0.1:port.
func (c *Capture) PacketsTo(port int) int {
	c.t.Helper()
	return c.Count(fmt.Sprintf("udp.dstport==%d", port))
}

// PacketsBetween counts UDP packets from port a to port b (on any address).
func (c *Capture) PacketsBetween(a, b int) int {
	c.t.Helper()
	return c.Count(fmt.Sprintf("udp.srcport==%d && udp.dstport==%d", a, b))
}

func addrPort(ip, port string) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// Payloads returns the UDP or TCP payload of each packet matching the
// display filter (packets without one are left out): the bytes to search
// for cleartext SIP or to measure with Entropy.
func (c *Capture) Payloads(displayFilter string) [][]byte {
	c.t.Helper()
	var out [][]byte
	for _, row := range c.Fields(displayFilter, "udp.payload", "tcp.payload") {
		for _, col := range row {
			if col == "" {
				continue
			}
			b, err := hex.DecodeString(strings.ReplaceAll(col, ":", ""))
			if err != nil {
				c.t.Fatalf("lab: tshark payload %q: %v", col, err)
			}
			out = append(out, b)
			break
		}
	}
	return out
}

// RTPPayloads returns the RTP payload of each packet matching the display
// filter (say "rtp.p_type==0 && udp.dstport==17000"), in capture order:
// decode them with Codec.Decode to hear what went through, or measure their
// Entropy. tshark shows SDES-SRTP as RTP (rtp.payload, encrypted) and, when
// it saw the DTLS handshake, DTLS-SRTP as SRTP (srtp.enc_payload, without
// the auth tag): both are returned.
func (c *Capture) RTPPayloads(displayFilter string) [][]byte {
	c.t.Helper()
	filter := "rtp"
	if displayFilter != "" {
		filter = "rtp && (" + displayFilter + ")"
	}
	var out [][]byte
	for _, row := range c.Fields(filter, "rtp.payload", "srtp.enc_payload") {
		for _, col := range row {
			if col == "" {
				continue
			}
			b, err := hex.DecodeString(strings.ReplaceAll(col, ":", ""))
			if err != nil {
				c.t.Fatalf("lab: tshark RTP payload %q: %v", col, err)
			}
			out = append(out, b)
			break
		}
	}
	return out
}

// ContainsCleartext reports whether any UDP or TCP payload matching the
// display filter contains needle ("INVITE sip:", "a=crypto:"): what an
// eavesdropper on the wire would read.
func (c *Capture) ContainsCleartext(displayFilter string, needle string) bool {
	c.t.Helper()
	for _, p := range c.Payloads(displayFilter) {
		if bytes.Contains(p, []byte(needle)) {
			return true
		}
	}
	return false
}
