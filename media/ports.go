package media

import (
	"fmt"
	"sync"
)

// blockedPorts are the UDP ports the perimeter must block (Microsoft RPC,
// NetBIOS, SMB; "Network Firewall Topology" in the CCE security guide).
// ccsbc never listens on them, whatever the configured range says.
var blockedPorts = [...]int{135, 137, 138, 445}

// portPool hands out RTP/RTCP port pairs (even RTP port, RTCP on RTP+1) from
// a range, next-fit with wraparound: the pair after the one handed out last
// is tried first, so a port pair just released is not reused at once and late
// packets of an ended call do not land in the next one.
type portPool struct {
	first  int // RTP port of pair 0
	usable int // pairs not blocked

	mu    sync.Mutex // guards inUse and next
	inUse []bool     // by pair index; blocked pairs stay true forever
	next  int        // pair index to try first
}

func newPortPool(lo, hi int) (*portPool, error) {
	if lo < 1 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("%w: port range %d-%d: want 1 <= PortMin <= PortMax <= 65535", ErrInvalidConfig, lo, hi)
	}
	first := lo + lo%2
	n := 0
	if hi >= first+1 {
		n = (hi - first + 1) / 2
	}
	p := &portPool{first: first, inUse: make([]bool, n)}
	usable := 0
	for i := range p.inUse {
		rtp := first + 2*i
		for _, b := range blockedPorts {
			if b == rtp || b == rtp+1 {
				p.inUse[i] = true
			}
		}
		if !p.inUse[i] {
			usable++
		}
	}
	if usable < 2 {
		return nil, fmt.Errorf("%w: port range %d-%d holds %d usable RTP/RTCP pairs; a stream needs 2", ErrInvalidConfig, lo, hi, usable)
	}
	p.usable = usable
	return p, nil
}

// size is the number of pairs in the range.
func (p *portPool) size() int { return len(p.inUse) }

// take marks the next free pair in use and returns its RTP port.
func (p *portPool) take() (port int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range p.inUse {
		i := p.next
		p.next = (p.next + 1) % len(p.inUse)
		if !p.inUse[i] {
			p.inUse[i] = true
			return p.first + 2*i, true
		}
	}
	return 0, false
}

// put returns the pair whose RTP port is port.
func (p *portPool) put(port int) {
	p.mu.Lock()
	p.inUse[(port-p.first)/2] = false
	p.mu.Unlock()
}
