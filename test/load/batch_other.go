//go:build !(linux && (amd64 || arm64))

package load

import (
	"net"
	"net/netip"
)

// batchConn falls back to one system call per datagram where sendmmsg and
// recvmmsg are not wired up.
type batchConn struct{ conn *net.UDPConn }

func newBatchConn(c *net.UDPConn, batch int) (*batchConn, error) { return &batchConn{conn: c}, nil }

func (b *batchConn) recv(bufs [][]byte, sizes []int, srcs []netip.AddrPort) (int, error) {
	n, src, err := b.conn.ReadFromUDPAddrPort(bufs[0])
	if err != nil {
		return 0, err
	}
	sizes[0], srcs[0] = n, src
	return 1, nil
}

func (b *batchConn) send(pkts [][]byte, dsts []netip.AddrPort) error {
	for i := range pkts {
		if _, err := b.conn.WriteToUDPAddrPort(pkts[i], dsts[i]); err != nil {
			return err
		}
	}
	return nil
}
