package load

import (
	"fmt"
	"net"
	"runtime"
)

// FreeUDPPort returns a UDP port free on ip.
func FreeUDPPort(ip string) (int, error) {
	c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// FreePort returns a port free for both UDP and TCP on ip.
func FreePort(ip string) (int, error) {
	for range 50 {
		p, err := FreeUDPPort(ip)
		if err != nil {
			return 0, err
		}
		if l, err := net.Listen("tcp4", net.JoinHostPort(ip, fmt.Sprint(p))); err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("load: no free port on %s", ip)
}

func numCPU() int { return runtime.NumCPU() }

// FreePortBlock returns an even port p with p..p+3 free for UDP on ip: SIPp
// binds audio RTP and RTCP at -mp and video at -mp+2.
func FreePortBlock(ip string) (int, error) {
	for range 200 {
		p, err := FreeUDPPort(ip)
		if err != nil {
			return 0, err
		}
		p &^= 1
		if p < 1024 || p > 65530 {
			continue
		}
		ok := true
		for q := p; q < p+4 && ok; q++ {
			c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, fmt.Sprint(q)))
			if err != nil {
				ok = false
				continue
			}
			c.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, fmt.Errorf("load: no free block of 4 UDP ports on %s", ip)
}
