package media

import "errors"

// MaxOverhead is the room the relay keeps after every packet for an egress
// Transform to grow it in place: an SRTP authentication tag (10 bytes for
// AES_CM_128_HMAC_SHA1_80, 16 for AEAD_AES_*_GCM), the 4-byte SRTCP index
// and an MKI, with margin.
const MaxOverhead = 64

// Transform is the packet protection of one leg of a Stream for one kind of
// packet, RTP or RTCP: SRTP or SRTCP with that leg's keys. A nil Transform
// is plain RTP.
//
// Unprotect is applied to what the leg's peer sent, before the packet
// leaves on the other leg; Protect to what is sent to the leg's peer. Both
// work in place on a buffer the relay owns, must not retain it, and must not
// allocate in steady state (for pion/srtp: a reused rtp.Header or
// rtcp.Header, and dst = buf). Unprotect is never called concurrently with
// itself, nor Protect with itself; Unprotect and Protect may run at the same
// time, so each direction needs its own state (one srtp.Context each way).
type Transform interface {
	// Unprotect authenticates and decrypts the packet buf[:n] in place and
	// returns its new length. An error drops the packet and keeps the leg
	// from latching onto its source: a source latches only once a packet
	// from it has authenticated. The drop is counted as Drops.AuthFailed
	// if the error wraps ErrSRTPAuth, Drops.Replayed if it wraps
	// ErrSRTPReplay, Drops.Transform otherwise.
	Unprotect(buf []byte, n int) (int, error)
	// Protect encrypts and authenticates the packet buf[:n] in place and
	// returns its new length; len(buf) >= n+MaxOverhead. An error drops the
	// packet (counted as Drops.Transform).
	Protect(buf []byte, n int) (int, error)
}

// transforms are one leg's Transforms; immutable once stored.
type transforms struct {
	rtp, rtcp Transform
}

func (t *transforms) pick(rtcp bool) Transform {
	switch {
	case t == nil:
		return nil
	case rtcp:
		return t.rtcp
	default:
		return t.rtp
	}
}

// SetTransform sets the packet protection of one leg (nil, nil for plain RTP,
// the default). It is safe to call while packets flow, as when a re-INVITE
// brings new keys: packets already being relayed finish with the previous
// Transforms.
//
// The stream's worker makes every Transform call of the relay, so calls do
// not overlap today; the contract above (Unprotect and Protect may run at
// once) is kept so that the two directions could be relayed apart. RTCP can
// reach a Transform from two sockets of a leg around an rtcp-mux change, so
// the Stream serializes every RTCP Transform call; RTCP is a few packets a
// second.
func (s *Stream) SetTransform(side Side, rtp, rtcp Transform) {
	if rtp == nil && rtcp == nil {
		s.legs[side].xform.Store(nil)
		return
	}
	s.legs[side].xform.Store(&transforms{rtp: rtp, rtcp: rtcp})
}

// errTransformLength reports a Transform that returned a length outside its
// buffer.
var errTransformLength = errors.New("media: transform returned a length out of range")

// unprotect and protect run t on the worker's buffer; a length out of range
// counts as a failure rather than panicking the worker.
func (s *Stream) unprotect(t Transform, rtcp bool, buf []byte, n int) (int, error) {
	if rtcp {
		s.rtcpMu.Lock()
		defer s.rtcpMu.Unlock()
	}
	n, err := t.Unprotect(buf, n)
	if err == nil && (n < 0 || n > len(buf)) {
		err = errTransformLength
	}
	return n, err
}

func (s *Stream) protect(t Transform, rtcp bool, buf []byte, n int) (int, error) {
	if rtcp {
		s.rtcpMu.Lock()
		defer s.rtcpMu.Unlock()
	}
	n, err := t.Protect(buf, n)
	if err == nil && (n < 0 || n > len(buf)) {
		err = errTransformLength
	}
	return n, err
}

// transformDrop is the drop counter for a Transform's error.
func transformDrop(err error) dropReason {
	switch {
	case errors.Is(err, ErrSRTPAuth):
		return dropAuthFailed
	case errors.Is(err, ErrSRTPReplay):
		return dropReplayed
	}
	return dropTransform
}
