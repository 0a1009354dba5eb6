package media

import "golang.org/x/sys/unix"

// reservedFiles are the descriptors a running ccsbc keeps besides media
// sockets: listeners, TCP and TLS connections to peers, epoll instances,
// logs. A guess with room to spare, not a count.
const reservedFiles = 256

// Capacity is how many streams (one per audio m= line, so one per call of
// a plain voice call) the relay can hold at once, and what bounds it.
type Capacity struct {
	// Ports is the limit of the port range on every bind address: a
	// stream binds 4 ports (an RTP/RTCP pair on each side), on pairs the
	// perimeter does not block.
	Ports int
	// FileLimit is the process's open-file limit (RLIMIT_NOFILE, soft;
	// Go raises it to the hard limit at start), 0 if unknown; Files is
	// the streams it leaves room for, at 4 sockets each.
	FileLimit, Files int
}

// Streams is the smaller of the two limits.
func (c Capacity) Streams() int {
	if c.FileLimit > 0 {
		return min(c.Ports, c.Files)
	}
	return c.Ports
}

// FileBound reports whether the open-file limit, not the port range, bounds
// the streams: a limit the operator should raise (systemd LimitNOFILE=).
func (c Capacity) FileBound() bool { return c.FileLimit > 0 && c.Files < c.Ports }

// PortCapacity is the capacity of the port range lo-hi on addrs addresses
// under this process's open-file limit; it fails as NewManager does on a
// bad range.
func PortCapacity(lo, hi, addrs int) (Capacity, error) {
	p, err := newPortPool(lo, hi, addrs)
	if err != nil {
		return Capacity{}, err
	}
	return capacityOf(p), nil
}

// Capacity is the capacity of m's port range under this process's
// open-file limit.
func (m *Manager) Capacity() Capacity { return capacityOf(m.ports) }

func capacityOf(p *portPool) Capacity {
	c := Capacity{Ports: p.usable / 2}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 1<<31 {
		c.FileLimit = int(rl.Cur)
		c.Files = max(0, c.FileLimit-reservedFiles) / 4
	}
	return c
}
