package media

import (
	"fmt"
	"sync"
)

// blockedPorts are the UDP ports the perimeter must block (Microsoft RPC,
// NetBIOS, SMB; "Network Firewall Topology" in the CCE security guide).
// ccsbc never listens on them, whatever the configured range says.
var blockedPorts = [...]int{135, 137, 138, 445}

// pair is an RTP/RTCP port pair on one of the Manager's addresses: RTP on
// port (even), RTCP on port+1.
type pair struct {
	addr int // index in the Manager's addresses
	port int
}

// portPool hands out RTP/RTCP port pairs (even RTP port, RTCP on RTP+1) from
// a range on each of addrs addresses, next-fit with wraparound: the pair
// after the one handed out last is tried first, so a pair just released is
// not reused at once and late packets of an ended call do not land in the
// next one. The addresses take turns (slot i is pair i/addrs of address
// i%addrs), so calls spread over them.
type portPool struct {
	first  int // RTP port of pair 0
	addrs  int // addresses, each with the whole range
	usable int // slots not blocked

	mu    sync.Mutex // guards inUse and next
	inUse []bool     // by slot; blocked pairs stay true forever
	next  int        // slot to try first
}

func newPortPool(lo, hi, addrs int) (*portPool, error) {
	if lo < 1 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("%w: port range %d-%d: want 1 <= PortMin <= PortMax <= 65535", ErrInvalidConfig, lo, hi)
	}
	first := lo + lo%2
	n := 0
	if hi >= first+1 {
		n = (hi - first + 1) / 2
	}
	p := &portPool{first: first, addrs: addrs, inUse: make([]bool, n*addrs)}
	usable := 0
	for i := range n {
		rtp := first + 2*i
		blocked := false
		for _, b := range blockedPorts {
			if b == rtp || b == rtp+1 {
				blocked = true
			}
		}
		for a := range addrs {
			p.inUse[i*addrs+a] = blocked
		}
		if !blocked {
			usable++
		}
	}
	if usable < 2 {
		return nil, fmt.Errorf("%w: port range %d-%d holds %d usable RTP/RTCP pairs; a stream needs 2", ErrInvalidConfig, lo, hi, usable)
	}
	p.usable = usable * addrs
	return p, nil
}

// size is the number of slots: pairs in the range times addresses.
func (p *portPool) size() int { return len(p.inUse) }

// take marks the next free pair in use and returns it.
func (p *portPool) take() (pair, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range p.inUse {
		i := p.next
		p.next = (p.next + 1) % len(p.inUse)
		if !p.inUse[i] {
			p.inUse[i] = true
			return pair{addr: i % p.addrs, port: p.first + 2*(i/p.addrs)}, true
		}
	}
	return pair{}, false
}

// put returns a pair that take handed out.
func (p *portPool) put(pr pair) {
	p.mu.Lock()
	p.inUse[(pr.port-p.first)/2*p.addrs+pr.addr] = false
	p.mu.Unlock()
}
