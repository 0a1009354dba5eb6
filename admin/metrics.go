package admin

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ccsbc/ccsbc/policy"
)

// The metric families, all prefixed ccsbc_. Label values come from the
// configuration or from fixed sets (models, leg classes, results,
// protections, drop reasons), never from network input, so that a peer
// cannot grow the number of series.
//
//	ccsbc_calls_active                     gauge
//	ccsbc_calls_total                      counter  model, leg, result
//	ccsbc_media_packets_total              counter  protection, direction
//	ccsbc_media_bytes_total                counter  protection, direction
//	ccsbc_media_drops_total                counter  protection, reason
//	ccsbc_srtp_auth_failures_total         counter  protection
//	ccsbc_srtp_replays_total               counter  protection
//	ccsbc_tls_handshake_failures_total     counter  peer
//	ccsbc_policy_rejections_total          counter  reason
//	ccsbc_peer_up                          gauge    peer
const namespace = "ccsbc"

// CallResult is how a call ended, the result label of ccsbc_calls_total.
type CallResult string

// Call results.
const (
	// CallAnswered: the call was answered (2xx), whatever ended it later.
	CallAnswered CallResult = "answered"
	// CallCancelled: the caller gave up before an answer (CANCEL).
	CallCancelled CallResult = "cancelled"
	// CallRejected: ccsbc or the called peer refused it with a final
	// response (policy 488, no route 404, busy 486...).
	CallRejected CallResult = "rejected"
	// CallFailed: the called peer could not be reached (TLS failure, no
	// response, 503).
	CallFailed CallResult = "failed"
)

// unknownPeer labels an event that no configured peer can be blamed for,
// such as a failed inbound handshake from an unknown address.
const unknownPeer = "unknown"

// Metrics holds the metric families that sip and the daemon update, and
// reads the media relay's counters at scrape time through a StatsSource.
//
// Its methods are safe for concurrent use, and do nothing on a nil
// *Metrics, so that code under test can run without one. They are meant
// for per-call events (a few per call), never per packet: per-packet
// counts stay in the relay's own atomics and reach Prometheus through
// SetMediaSource.
type Metrics struct {
	callsActive prometheus.Gauge
	callsTotal  *prometheus.CounterVec
	tlsFailures *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	peerUp      *prometheus.GaugeVec
	media       *mediaCollector

	mu      sync.Mutex      // guards upPeers and its peerUp series
	upPeers map[string]bool // peers that have a peer_up series
}

// NewMetrics creates ccsbc's metric families and registers them with reg,
// which should be a registry of ccsbc's own (NewRegistry), not
// prometheus.DefaultRegisterer: what /metrics serves is then exactly what
// ccsbc registered. It fails if reg already holds them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		callsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "calls_active",
			Help: "Calls in progress.",
		}),
		callsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "calls_total",
			Help: "Calls ended, by deployment model, outbound leg class and result (answered, cancelled, rejected, failed).",
		}, []string{"model", "leg", "result"}),
		tlsFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tls_handshake_failures_total",
			Help: "Failed TLS handshakes, inbound and outbound, by peer (unknown when no configured peer is identified).",
		}, []string{"peer"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "policy_rejections_total",
			Help: "Calls or offers refused by the security policy, by reason.",
		}, []string{"reason"}),
		peerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "peer_up",
			Help: "1 when the peer answers keepalives, 0 when it does not.",
		}, []string{"peer"}),
		media:   newMediaCollector(),
		upPeers: map[string]bool{},
	}
	for _, c := range []prometheus.Collector{m.callsActive, m.callsTotal, m.tlsFailures, m.rejections, m.peerUp, m.media} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// NewRegistry returns a registry for NewMetrics with the Go runtime and
// process collectors (go_*, process_*) already registered, as operators
// expect to find them next to the daemon's own.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// CallStarted counts a call in progress: once per call, when its INVITE
// is accepted. Every call counted must be ended with CallEnded.
func (m *Metrics) CallStarted() {
	if m == nil {
		return
	}
	m.callsActive.Inc()
}

// CallEnded counts a call that ended, once per CallStarted. leg is the
// outbound leg's class (the route's leg).
func (m *Metrics) CallEnded(model policy.Model, leg policy.LegClass, result CallResult) {
	if m == nil {
		return
	}
	m.callsActive.Dec()
	inc(m.callsTotal, strconv.Itoa(int(model)), string(leg), string(result))
}

// TLSHandshakeFailed counts a failed TLS handshake with peer, the name of
// a configured peer, or "" when none is identified.
func (m *Metrics) TLSHandshakeFailed(peer string) {
	if m == nil {
		return
	}
	if peer == "" {
		peer = unknownPeer
	}
	inc(m.tlsFailures, peer)
}

// PolicyRejected counts a call or offer refused by policy. reason must
// come from a bounded set, a policy.Decision's Reason or a fixed string,
// never from the message: each distinct reason is a series.
func (m *Metrics) PolicyRejected(reason string) {
	if m == nil {
		return
	}
	inc(m.rejections, reason)
}

// SetPeerUp records whether peer answers its keepalives.
func (m *Metrics) SetPeerUp(peer string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if g, err := m.peerUp.GetMetricWithLabelValues(peer); err == nil {
		g.Set(v)
		m.upPeers[peer] = true
	}
}

// SetPeers tells Metrics the configured peers, at start and after each
// reload: their handshake failure counters start at 0 (so that the first
// failure shows as an increase), and the peer_up series of peers no
// longer configured are removed.
func (m *Metrics) SetPeers(names []string) {
	if m == nil {
		return
	}
	keep := map[string]bool{}
	for _, n := range names {
		keep[n] = true
		_, _ = m.tlsFailures.GetMetricWithLabelValues(n)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for n := range m.upPeers {
		if !keep[n] {
			m.peerUp.DeleteLabelValues(n)
			delete(m.upPeers, n)
		}
	}
}

// SetMediaSource sets where the media counters are read at each scrape;
// until it is called (or after it is called with nil) they are not
// exported. It may be called again (after
// the relay is rebuilt); src must then keep counting from where the
// previous one stopped, as counters never go down.
func (m *Metrics) SetMediaSource(src StatsSource) {
	if m == nil {
		return
	}
	if src == nil {
		m.media.src.Store(nil)
		return
	}
	m.media.src.Store(&src)
}

// inc increments a counter, ignoring label values Prometheus refuses
// (invalid UTF-8): a metric is never worth a panic in the daemon.
func inc(v *prometheus.CounterVec, labels ...string) {
	if c, err := v.GetMetricWithLabelValues(labels...); err == nil {
		c.Inc()
	}
}

// StatsSource gives the media relay's totals. MediaTotals is called at
// each scrape, from the scraping goroutine: it reads the relay's atomic
// counters and must not block. Totals only ever grow: they include the
// streams that have ended since start, not only the active ones.
type StatsSource interface {
	MediaTotals() MediaTotals
}

// StatsFunc adapts a function to StatsSource.
type StatsFunc func() MediaTotals

// MediaTotals implements StatsSource.
func (f StatsFunc) MediaTotals() MediaTotals { return f() }

// MediaTotals are the relay's counters since start, summed by the media
// protection of the leg (side of a stream) they were counted on.
type MediaTotals struct {
	RTP      ProtectionTotals // policy.RTP legs
	SRTP     ProtectionTotals // policy.SRTP legs (SDES keys)
	DTLSSRTP ProtectionTotals // policy.DTLSSRTP legs
}

// For returns the totals of legs with protection p, nil for an unknown
// protection; the way to add a leg's counters in:
//
//	t.For(decision.Protection).Add(...)
func (t *MediaTotals) For(p policy.Protection) *ProtectionTotals {
	switch p {
	case policy.RTP:
		return &t.RTP
	case policy.SRTP:
		return &t.SRTP
	case policy.DTLSSRTP:
		return &t.DTLSSRTP
	}
	return nil
}

// ProtectionTotals are the counters of the legs of one media protection,
// as package media counts them per side of a stream (media.SideStats).
type ProtectionTotals struct {
	// PacketsIn and BytesIn count every datagram received from the legs'
	// peers, relayed or dropped; PacketsOut and BytesOut what was sent to
	// them (after encryption).
	PacketsIn, BytesIn, PacketsOut, BytesOut uint64
	// Drops count the packets received that were not relayed, by reason.
	Drops MediaDrops
}

// MediaDrops count packets not relayed, by reason, as media.Drops does.
// On SRTP legs AuthFailed and Replayed are also exported as
// ccsbc_srtp_auth_failures_total and ccsbc_srtp_replays_total.
type MediaDrops struct {
	WrongSource, NoDestination, AuthFailed, Replayed, Transform, Malformed, SendError uint64
}

// Add adds o to t; on a nil t (For of an unknown protection) it does
// nothing.
func (t *ProtectionTotals) Add(o ProtectionTotals) {
	if t == nil {
		return
	}
	t.PacketsIn += o.PacketsIn
	t.BytesIn += o.BytesIn
	t.PacketsOut += o.PacketsOut
	t.BytesOut += o.BytesOut
	d, od := &t.Drops, o.Drops
	d.WrongSource += od.WrongSource
	d.NoDestination += od.NoDestination
	d.AuthFailed += od.AuthFailed
	d.Replayed += od.Replayed
	d.Transform += od.Transform
	d.Malformed += od.Malformed
	d.SendError += od.SendError
}

// mediaCollector turns a StatsSource into metrics at scrape time, so the
// relay never calls into Prometheus.
type mediaCollector struct {
	src                           atomic.Pointer[StatsSource]
	packets, bytes, drops         *prometheus.Desc
	srtpAuthFailures, srtpReplays *prometheus.Desc
}

func newMediaCollector() *mediaCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return &mediaCollector{
		packets: desc("media_packets_total", "Media packets (RTP and RTCP) received from (in) and sent to (out) the peers of legs of a media protection.", "protection", "direction"),
		bytes:   desc("media_bytes_total", "Media bytes received from (in) and sent to (out) the peers of legs of a media protection.", "protection", "direction"),
		drops:   desc("media_drops_total", "Media packets received and not relayed, by the protection of the leg they arrived on and reason.", "protection", "reason"),
		srtpAuthFailures: desc("srtp_auth_failures_total",
			"SRTP and SRTCP packets dropped because they failed authentication (forged, corrupted or wrong keys).", "protection"),
		srtpReplays: desc("srtp_replays_total",
			"SRTP and SRTCP packets dropped as replays (already received, or older than the replay window).", "protection"),
	}
}

// Describe implements prometheus.Collector.
func (c *mediaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.bytes, c.drops, c.srtpAuthFailures, c.srtpReplays} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one call to the source per
// scrape.
func (c *mediaCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.src.Load()
	if p == nil {
		return
	}
	t := (*p).MediaTotals()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, pt := range []struct {
		label string // the protection label: rtp, srtp, dtls-srtp
		t     *ProtectionTotals
		srtp  bool
	}{{"rtp", &t.RTP, false}, {"srtp", &t.SRTP, true}, {"dtls-srtp", &t.DTLSSRTP, true}} {
		counter(c.packets, pt.t.PacketsIn, pt.label, "in")
		counter(c.packets, pt.t.PacketsOut, pt.label, "out")
		counter(c.bytes, pt.t.BytesIn, pt.label, "in")
		counter(c.bytes, pt.t.BytesOut, pt.label, "out")
		d := pt.t.Drops
		for _, r := range []struct {
			reason string
			n      uint64
		}{
			{"wrong_source", d.WrongSource},
			{"no_destination", d.NoDestination},
			{"auth_failed", d.AuthFailed},
			{"replayed", d.Replayed},
			{"transform", d.Transform},
			{"malformed", d.Malformed},
			{"send_error", d.SendError},
		} {
			counter(c.drops, r.n, pt.label, r.reason)
		}
		if pt.srtp {
			counter(c.srtpAuthFailures, d.AuthFailed, pt.label)
			counter(c.srtpReplays, d.Replayed, pt.label)
		}
	}
}
