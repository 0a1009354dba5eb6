package load

import "time"

// histogram counts latencies: 1 µs buckets up to 10 ms, 100 µs buckets up
// to 1 s, and one bucket above.
type histogram struct {
	fine   [10000]uint32
	coarse [10000]uint32
	over   uint64
	n      uint64
	max    time.Duration
}

func (h *histogram) add(d time.Duration) {
	h.n++
	if d > h.max {
		h.max = d
	}
	us := d.Microseconds()
	switch {
	case us < 0:
		h.fine[0]++
	case us < 10000:
		h.fine[us]++
	case us < 1000000:
		h.coarse[us/100]++
	default:
		h.over++
	}
}

func (h *histogram) merge(o *histogram) {
	for i := range h.fine {
		h.fine[i] += o.fine[i]
		h.coarse[i] += o.coarse[i]
	}
	h.over += o.over
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile is the latency below which a fraction q of the samples fall (the
// upper edge of its bucket).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.fine {
		seen += uint64(c)
		if seen >= rank {
			return time.Duration(i+1) * time.Microsecond
		}
	}
	for i, c := range h.coarse {
		seen += uint64(c)
		if seen >= rank {
			return time.Duration(i+1) * 100 * time.Microsecond
		}
	}
	return h.max
}
