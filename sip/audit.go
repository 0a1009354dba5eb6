package sip

import (
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ccsbc/ccsbc/media"
	"github.com/ccsbc/ccsbc/policy"
)

// The security audit record: one JSON line per call, written when it ends,
// by the logger named "audit". For each leg: the peer, the identity its
// certificate proved, transport, TLS version and cipher, media protection
// and suite, packets relayed, authentication failures and replays, and the
// policy reason; for the call, the calling number (From user) and the
// called number (Request-URI user) of the inbound INVITE, masked when
// audit.mask_numbers says so. Never a key.

type auditLeg struct {
	side   media.Side
	l      *leg
	dec    policy.Decision
	suite  string
	ti     tlsInfo
	totals media.SideStats
}

func (a auditLeg) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("peer", a.l.peerName)
	enc.AddString("transport", a.l.transport)
	if a.ti.Version != "" {
		enc.AddString("tls_version", a.ti.Version)
		enc.AddString("tls_cipher", a.ti.Cipher)
	}
	if a.ti.Identity != "" {
		enc.AddString("peer_certificate", a.ti.Identity)
	}
	enc.AddString("media", string(a.dec.Protection))
	if a.suite != "" {
		enc.AddString("srtp_suite", a.suite)
	}
	enc.AddUint64("packets_in", a.totals.PacketsIn)
	enc.AddUint64("packets_out", a.totals.PacketsOut)
	enc.AddUint64("auth_failures", a.totals.Drops.AuthFailed)
	enc.AddUint64("replays", a.totals.Drops.Replayed)
	enc.AddString("policy", a.dec.Reason)
	return nil
}

// auditFields builds the record from the call's legs and its streams'
// final counters (summed over m= lines).
func (c *call) auditFields(reason string, answered time.Time, stats []media.StreamStats) []zap.Field {
	c.mu.Lock()
	legs := [2]auditLeg{{side: media.A, l: c.in, dec: c.dec[media.A]}, {side: media.B, l: c.out, dec: c.dec[media.B]}}
	transfers := append([]string(nil), c.xfer.done...)
	for i := range legs {
		legs[i].ti = legs[i].l.tlsInfo()
		for _, st := range c.srtp[legs[i].side] {
			if st.suite() != 0 {
				legs[i].suite = st.suite().String()
			}
		}
	}
	c.mu.Unlock()
	for _, s := range stats {
		for i, side := range []media.SideStats{s.A, s.B} {
			t := &legs[i].totals
			t.PacketsIn += side.PacketsIn
			t.PacketsOut += side.PacketsOut
			t.Drops.AuthFailed += side.Drops.AuthFailed
			t.Drops.Replayed += side.Drops.Replayed
		}
	}
	fields := []zap.Field{
		zap.String("call_id", c.id), zap.String("out_call_id", legs[1].l.callID),
		zap.String("route", c.route.Name), zap.String("leg_class", string(c.route.Leg)),
		zap.String("calling", c.auditNumber(c.from)), zap.String("called", c.auditNumber(c.user)),
		zap.Time("start", c.start), zap.String("result", reason),
		zap.Object("inbound", legs[0]), zap.Object("outbound", legs[1]),
	}
	if !answered.IsZero() {
		fields = append(fields, zap.Time("answered", answered))
	}
	if len(transfers) > 0 {
		// The legs are those at the end; the dialer's is in "transfers".
		fields = append(fields, zap.Strings("transfers", transfers))
	}
	return fields
}

// auditNumber is a number as the audit record writes it.
func (c *call) auditNumber(n string) string {
	if !c.audit.MaskNumbers {
		return n
	}
	return maskNumber(n, c.audit.KeepDigits)
}

// maskNumber replaces every character of n but a leading + and the last
// keep with *: "+14085551234" keeping 4 is "+*******1234". The length
// stays, so that an operator still tells an extension from a PSTN number.
func maskNumber(n string, keep int) string {
	b := []rune(n)
	start := 0
	if len(b) > 0 && b[0] == '+' {
		start = 1
	}
	for i := start; i < len(b)-keep; i++ {
		b[i] = '*'
	}
	return string(b)
}
