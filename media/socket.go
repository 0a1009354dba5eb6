package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A stream's sockets are plain non-blocking file descriptors made with
// socket(2), not net.UDPConns: Go's netpoller never sees them, so a packet
// arriving wakes no goroutine and no scheduler. The Manager's workers wait
// for them with epoll instances of their own (worker.go).

// socket is one of a stream's four UDP sockets. Once the stream is attached
// to a worker, only that worker reads it and relays from it; the stream's
// DTLS session (another goroutine) may send on an RTP socket, under mu.
type socket struct {
	s    *Stream
	side Side
	kind sockKind
	fd   int
	v6   bool // AF_INET6: IPv4 peers are reached as v4-mapped addresses

	// slot is the socket's index in its worker's table, -1 when not
	// attached. Only the worker touches it.
	slot int32

	// ctr is written by the worker that relays for the stream (or, in
	// tests, by the goroutine driving relay by hand).
	ctr counters

	// mu orders the DTLS session's sends with Close: the worker needs no
	// lock, since Close detaches the stream from it before closing fds.
	mu     sync.RWMutex
	closed bool // guarded by mu
}

// sockaddr is large enough for struct sockaddr_in and sockaddr_in6; the
// Family field says which it holds.
type sockaddr = unix.RawSockaddrInet6

const sockaddrLen = uint32(unsafe.Sizeof(sockaddr{}))

// errAddrFamily reports an IPv6 destination for an IPv4 socket.
var errAddrFamily = errors.New("media: destination address family does not match the socket's")

// openSocket makes a non-blocking UDP socket bound to ap. An unspecified
// IPv6 address binds dual-stack (IPV6_V6ONLY off), like Go's "udp" network;
// another IPv6 address binds IPv6 only, like "udp6". zoneID is the scope of
// a link-local bind address.
func openSocket(ap netip.AddrPort, zoneID uint32) (fd int, v6 bool, err error) {
	addr := ap.Addr()
	family := unix.AF_INET
	if !addr.Is4() {
		family, v6 = unix.AF_INET6, true
	}
	fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, false, fmt.Errorf("socket: %w", err)
	}
	var sa unix.Sockaddr
	if v6 {
		v6only := 1
		if addr.IsUnspecified() {
			v6only = 0
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			unix.Close(fd)
			return -1, false, fmt.Errorf("setsockopt IPV6_V6ONLY: %w", err)
		}
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: addr.As16(), ZoneId: zoneID}
	} else {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: addr.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, false, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(ap), Err: err}
	}
	return fd, v6, nil
}

// close closes the socket's descriptor once; later sends fail.
func (k *socket) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	if err := unix.Close(k.fd); err != nil {
		return fmt.Errorf("media: close %v %v socket: %w", k.side, k.kind, err)
	}
	return nil
}

// sendLocked is send for goroutines other than the stream's worker (the
// DTLS session): it fails with net.ErrClosed once the socket is closed.
func (k *socket) sendLocked(b []byte, dst netip.AddrPort) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return net.ErrClosed
	}
	return k.send(b, dst)
}

// send sends b to dst with one sendto(2). The socket is non-blocking: a full
// send buffer is an error (the packet is dropped), never a wait. It does not
// allocate.
func (k *socket) send(b []byte, dst netip.AddrPort) error {
	var sa sockaddr
	salen, ok := putSockaddr(&sa, dst, k.v6)
	if !ok {
		return errAddrFamily
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	// RawSyscall: sendto on a non-blocking socket never blocks, so telling
	// the scheduler (entersyscall, exitsyscall) would only cost time.
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(k.fd), uintptr(p), uintptr(len(b)), 0,
		uintptr(unsafe.Pointer(&sa)), uintptr(salen))
	if e != 0 {
		return e
	}
	return nil
}

// putSockaddr writes dst into sa for a socket of the given family and
// returns its length: on an IPv6 socket an IPv4 destination becomes
// v4-mapped (dual-stack); an IPv4 socket cannot reach an IPv6 one.
func putSockaddr(sa *sockaddr, dst netip.AddrPort, v6 bool) (uint32, bool) {
	port := dst.Port()
	if !v6 {
		if !dst.Addr().Is4() {
			return 0, false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		putPort(&sa4.Port, port)
		sa4.Addr = dst.Addr().As4()
		return uint32(unsafe.Sizeof(*sa4)), true
	}
	sa.Family = unix.AF_INET6
	putPort(&sa.Port, port)
	sa.Flowinfo = 0
	sa.Addr = dst.Addr().As16()
	sa.Scope_id = 0
	return sockaddrLen, true
}

// putPort stores port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// addrPortOf reads the source address recvmmsg wrote into sa, unmapped
// (a v4-mapped source on a dual-stack socket is the IPv4 peer it is). A
// link-local source's zone is not kept: SDP addresses carry none to match.
func addrPortOf(sa *sockaddr) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), getPort(&sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), getPort(&sa.Port))
	}
	return netip.AddrPort{}
}
