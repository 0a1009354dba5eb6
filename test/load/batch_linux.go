//go:build linux && (amd64 || arm64)

package load

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// Batched datagram I/O with sendmmsg(2) and recvmmsg(2): the generator sends
// and receives tens of thousands of packets per second on one core, and a
// system call per packet would make it, not the relay, the bottleneck.

// mmsghdr is struct mmsghdr of <sys/socket.h> on 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

// sockaddrIn is struct sockaddr_in with the port kept in network order.
type sockaddrIn struct {
	family uint16
	port   [2]byte
	addr   [4]byte
	_      [8]byte
}

// batchConn is a UDP socket read by one goroutine and written by another,
// each with arrays of its own.
type batchConn struct {
	conn *net.UDPConn
	raw  syscall.RawConn

	rmsgs  []mmsghdr
	riov   []syscall.Iovec
	rnames []sockaddrIn

	wmsgs  []mmsghdr
	wiov   []syscall.Iovec
	wnames []sockaddrIn
}

func newBatchConn(c *net.UDPConn, batch int) (*batchConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batchConn{conn: c, raw: raw,
		rmsgs: make([]mmsghdr, batch), riov: make([]syscall.Iovec, batch), rnames: make([]sockaddrIn, batch),
		wmsgs: make([]mmsghdr, batch), wiov: make([]syscall.Iovec, batch), wnames: make([]sockaddrIn, batch),
	}
	for i := range batch {
		b.rmsgs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.rnames[i]))
		b.rmsgs[i].hdr.Iov = &b.riov[i]
		b.rmsgs[i].hdr.Iovlen = 1
		b.wmsgs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.wnames[i]))
		b.wmsgs[i].hdr.Namelen = uint32(unsafe.Sizeof(sockaddrIn{}))
		b.wmsgs[i].hdr.Iov = &b.wiov[i]
		b.wmsgs[i].hdr.Iovlen = 1
	}
	return b, nil
}

// recv blocks until at least one datagram is there, then reads up to
// len(bufs) of them: sizes[i] bytes into bufs[i], from srcs[i].
func (b *batchConn) recv(bufs [][]byte, sizes []int, srcs []netip.AddrPort) (int, error) {
	n := min(len(bufs), len(b.rmsgs))
	for i := range n {
		b.riov[i].Base = &bufs[i][0]
		b.riov[i].SetLen(len(bufs[i]))
		b.rmsgs[i].hdr.Namelen = uint32(unsafe.Sizeof(sockaddrIn{}))
		b.rmsgs[i].hdr.Flags = 0
	}
	var got int
	var errno syscall.Errno
	err := b.raw.Read(func(fd uintptr) bool {
		r, _, e := syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rmsgs[0])), uintptr(n), syscall.MSG_DONTWAIT, 0, 0)
		if e == syscall.EAGAIN || e == syscall.EINTR {
			return false
		}
		got, errno = int(r), e
		return true
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	for i := range got {
		sizes[i] = int(b.rmsgs[i].n)
		sa := &b.rnames[i]
		srcs[i] = netip.AddrPortFrom(netip.AddrFrom4(sa.addr), uint16(sa.port[0])<<8|uint16(sa.port[1]))
	}
	return got, nil
}

// send sends pkts[i] to dsts[i], all of them (IPv4 destinations only).
func (b *batchConn) send(pkts [][]byte, dsts []netip.AddrPort) error {
	for len(pkts) > 0 {
		n := min(len(pkts), len(b.wmsgs))
		for i := range n {
			b.wiov[i].Base = &pkts[i][0]
			b.wiov[i].SetLen(len(pkts[i]))
			sa := &b.wnames[i]
			sa.family = syscall.AF_INET
			sa.addr = dsts[i].Addr().As4()
			p := dsts[i].Port()
			sa.port = [2]byte{byte(p >> 8), byte(p)}
		}
		sent := 0
		var errno syscall.Errno
		err := b.raw.Write(func(fd uintptr) bool {
			for sent < n {
				r, _, e := syscall.Syscall6(sysSendmmsg, fd, uintptr(unsafe.Pointer(&b.wmsgs[sent])), uintptr(n-sent), syscall.MSG_DONTWAIT, 0, 0)
				if e == syscall.EAGAIN {
					return false
				}
				if e == syscall.EINTR {
					continue
				}
				if e != 0 {
					errno = e
					return true
				}
				sent += int(r)
			}
			return true
		})
		if err != nil {
			return err
		}
		if errno != 0 {
			return errno
		}
		pkts, dsts = pkts[n:], dsts[n:]
	}
	return nil
}
