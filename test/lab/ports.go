package lab

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

// Ports handed out are never in these ranges: the lab's well-known SIP
// ports (PRODUCT.md, "The loopback lab"), ccsbc's default media range,
// SIPp's default control ports (8888 and up) and below 1024.
var avoidPorts = [][2]int{
	{0, 1023},
	{5060, 5099},
	{8888, 8950},
	{40000, 40999},
}

var (
	portsMu sync.Mutex
	// given are the ports this process has handed out: a port closed after
	// the check could otherwise be handed out twice to parallel tests.
	given = map[int]bool{}
)

func avoided(port int) bool {
	if port > 65535 {
		return true
	}
	for _, r := range avoidPorts {
		if port >= r[0] && port <= r[1] {
			return true
		}
	}
	return false
}

// FreeUDPPort is a UDP port free on 127.0.0.1.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	return freePorts(t, 1, 1, true, false)
}

// FreeTCPPort is a TCP port free on 127.0.0.1.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	return freePorts(t, 1, 1, false, true)
}

// FreePort is a port free on 127.0.0.1 for both UDP and TCP: a SIP listener
// that does both.
func FreePort(t testing.TB) int {
	t.Helper()
	return freePorts(t, 1, 1, true, true)
}

// FreePortPair is a port p such that p and p+1 are free for both UDP and
// TCP (baresip listens UDP/TCP on p and TLS on p+1).
func FreePortPair(t testing.TB) int {
	t.Helper()
	return freePorts(t, 2, 1, true, true)
}

// FreeMediaPort is an even UDP port p such that p..p+3 are free: RTP, RTCP,
// and SIPp's second echo stream (p+2, p+3).
func FreeMediaPort(t testing.TB) int {
	t.Helper()
	return freePorts(t, 4, 2, true, false)
}

// FreeMediaRange is an even UDP port p such that p..p+n-1 are free: a
// media range for ccsbc or baresip ("p-(p+n-1)").
func FreeMediaRange(t testing.TB, n int) int {
	t.Helper()
	return freePorts(t, n, 2, true, false)
}

// freePorts finds n consecutive ports, the first a multiple of align, free
// for the protocols asked, outside avoidPorts and not handed out before.
func freePorts(t testing.TB, n, align int, udp, tcp bool) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for attempt := 0; attempt < 500; attempt++ {
		// The kernel's pick is a port nobody holds now.
		l, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("lab: free port: %v", err)
		}
		base := l.LocalAddr().(*net.UDPAddr).Port
		l.Close()
		if base%align != 0 {
			base += align - base%align
		}
		if tryPorts(base, n, udp, tcp) {
			for p := base; p < base+n; p++ {
				given[p] = true
			}
			return base
		}
	}
	t.Fatalf("lab: no %d free consecutive ports on 127.0.0.1", n)
	return 0
}

// tryPorts binds base..base+n-1 and releases them: true if all could be.
func tryPorts(base, n int, udp, tcp bool) bool {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	for p := base; p < base+n; p++ {
		if avoided(p) || given[p] {
			return false
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		if udp {
			l, err := net.ListenPacket("udp4", addr)
			if err != nil {
				return false
			}
			closers = append(closers, l.Close)
		}
		if tcp {
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				return false
			}
			closers = append(closers, l.Close)
		}
	}
	return true
}
