// Command epollrelay is a measuring stick, not a product: the smallest Go
// RTP relay built the way test/load/analysis.md suggests ccsbc's media path
// could be (a few workers, each with an epoll instance over many sockets,
// draining every ready socket with recvmmsg), so that the suite can show what
// that design costs per packet on the same machine, with the same generator,
// next to ccsbc and rtpengine.
//
// It relays RTP only (no RTCP, no SRTP, no source latching beyond a check of
// the signaled address) and is driven over a loopback UDP control socket:
//
//	"call <caller ip:port>"         -> "<port facing caller> <port facing callee>"
//	"peer <port facing callee> <callee ip:port>" -> "ok"
//
//	go run ./test/load/cmd/loadgen -relay epollrelay -calls 500
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

type sock struct {
	fd     int
	peer   syscall.RawSockaddrInet4 // where packets leaving this socket go
	expect netip.AddrPort           // the only source accepted here
	other  *sock                    // the socket the packets received here leave from
}

type worker struct {
	ep    int
	mu    sync.Mutex
	socks map[int32]*sock // by fd; written by the control goroutine under mu
}

const batch = 32

func main() {
	ip := flag.String("ip", "127.0.0.1", "address to bind")
	ctl := flag.String("control", "127.0.0.1:0", "control socket")
	lo := flag.Int("port-min", 36000, "lowest media port")
	workers := flag.Int("workers", runtime.NumCPU(), "epoll workers")
	flag.Parse()
	addr := netip.MustParseAddr(*ip)
	if !addr.IsLoopback() {
		fatal(fmt.Errorf("%v is not loopback", addr))
	}
	c, err := net.ListenPacket("udp4", *ctl)
	if err != nil {
		fatal(err)
	}
	fmt.Println("control", c.LocalAddr())
	ws := make([]*worker, *workers)
	for i := range ws {
		ep, err := syscall.EpollCreate1(0)
		if err != nil {
			fatal(err)
		}
		ws[i] = &worker{ep: ep, socks: map[int32]*sock{}}
		go ws[i].run()
	}
	next, n := *lo, 0
	byPort := map[int]*sock{}
	buf := make([]byte, 512)
	for {
		k, from, err := c.ReadFrom(buf)
		if err != nil {
			fatal(err)
		}
		f := strings.Fields(string(buf[:k]))
		reply := "error"
		switch {
		case len(f) == 2 && f[0] == "call":
			a, err := netip.ParseAddrPort(f[1])
			if err != nil {
				break
			}
			w := ws[n%len(ws)]
			n++
			sa, pa, err3 := bind(addr, &next)
			sb, pb, err4 := bind(addr, &next)
			if err3 != nil || err4 != nil {
				break
			}
			x := &sock{fd: sa, peer: raw(a), expect: a}
			y := &sock{fd: sb}
			x.other, y.other = y, x
			byPort[pb] = y
			w.mu.Lock()
			w.socks[int32(sa)], w.socks[int32(sb)] = x, y
			w.mu.Unlock()
			for _, fd := range []int{sa, sb} {
				ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
				_ = syscall.EpollCtl(w.ep, syscall.EPOLL_CTL_ADD, fd, &ev)
			}
			reply = fmt.Sprintf("%d %d", pa, pb)
		case len(f) == 3 && f[0] == "peer":
			var pb int
			_, err1 := fmt.Sscan(f[1], &pb)
			b, err2 := netip.ParseAddrPort(f[2])
			y := byPort[pb]
			if err1 != nil || err2 != nil || y == nil {
				break
			}
			// Set before the callee's media starts: the generator starts a
			// call's flows only once both sides are known.
			y.peer, y.expect = raw(b), b
			reply = "ok"
		}
		_, _ = c.WriteTo([]byte(reply), from)
	}
}

func raw(a netip.AddrPort) syscall.RawSockaddrInet4 {
	r := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.Addr().As4()}
	p := (*[2]byte)(unsafe.Pointer(&r.Port))
	p[0], p[1] = byte(a.Port()>>8), byte(a.Port())
	return r
}

func bind(ip netip.Addr, next *int) (int, int, error) {
	for ; *next < 65000; *next++ {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, 0, err
		}
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: *next, Addr: ip.As4()}); err != nil {
			syscall.Close(fd)
			continue
		}
		p := *next
		*next++
		return fd, p, nil
	}
	return 0, 0, fmt.Errorf("no port left")
}

type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

// run is one worker: it owns its buffers and its epoll instance.
func (w *worker) run() {
	runtime.LockOSThread()
	events := make([]syscall.EpollEvent, 256)
	bufs := make([][1500]byte, batch)
	iov := make([]syscall.Iovec, batch)
	names := make([]syscall.RawSockaddrInet4, batch)
	msgs := make([]mmsghdr, batch)
	for i := range msgs {
		iov[i].Base = &bufs[i][0]
		iov[i].SetLen(len(bufs[i]))
		msgs[i].hdr.Iov = &iov[i]
		msgs[i].hdr.Iovlen = 1
		msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
	}
	for {
		n, err := syscall.EpollWait(w.ep, events, -1)
		if err != nil {
			continue
		}
		for _, ev := range events[:n] {
			w.mu.Lock()
			s := w.socks[ev.Fd]
			w.mu.Unlock()
			if s == nil {
				continue
			}
			for {
				for i := range msgs {
					msgs[i].hdr.Namelen = uint32(unsafe.Sizeof(names[0]))
				}
				r, _, e := syscall.Syscall6(syscall.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msgs[0])), batch, syscall.MSG_DONTWAIT, 0, 0)
				if e != 0 || r == 0 {
					break
				}
				for i := range int(r) {
					nm := &names[i]
					pp := (*[2]byte)(unsafe.Pointer(&nm.Port))
					src := netip.AddrPortFrom(netip.AddrFrom4(nm.Addr), uint16(pp[0])<<8|uint16(pp[1]))
					if src != s.expect {
						continue
					}
					o := s.other
					_, _, _ = syscall.Syscall6(syscall.SYS_SENDTO, uintptr(o.fd), uintptr(unsafe.Pointer(&bufs[i][0])), uintptr(msgs[i].n),
						syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&o.peer)), unsafe.Sizeof(o.peer))
				}
				if int(r) < batch {
					break
				}
			}
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "epollrelay:", err)
	os.Exit(1)
}
