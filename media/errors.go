package media

import "errors"

// Errors returned by the media package. Callers branch on them with
// errors.Is; the SIP layer turns ErrNoPorts into a 503.
var (
	// ErrNoPorts reports that every RTP/RTCP port pair of the configured
	// range is in use (by ccsbc or by another process).
	ErrNoPorts = errors.New("media: no free RTP/RTCP port pair in range")
	// ErrClosed reports a call on a Manager that has been closed.
	ErrClosed = errors.New("media: manager closed")
	// ErrInvalidConfig reports a Config that NewManager cannot start with;
	// the wrapping error names the field.
	ErrInvalidConfig = errors.New("media: invalid config")

	// ErrSRTPSuite reports an SRTP crypto suite ccsbc does not support
	// (the SDP layer skips that a=crypto line, or answers 488).
	ErrSRTPSuite = errors.New("media: unsupported SRTP crypto suite")
	// ErrSRTPKeys reports SRTP keys that do not fit their suite, or a
	// peer's keys equal to ccsbc's own.
	ErrSRTPKeys = errors.New("media: bad SRTP keys")
	// ErrSRTPAuth is wrapped by the error of an SRTP or SRTCP packet that
	// did not authenticate; the relay drops it as Drops.AuthFailed.
	ErrSRTPAuth = errors.New("media: srtp: authentication failed")
	// ErrSRTPReplay is wrapped by the error of an SRTP or SRTCP packet
	// already received or older than the replay window; the relay drops it
	// as Drops.Replayed.
	ErrSRTPReplay = errors.New("media: srtp: replayed packet")

	// ErrDTLSConfig reports a DTLSConfig StartDTLS cannot use; the
	// wrapping error names the field.
	ErrDTLSConfig = errors.New("media: invalid DTLS config")
	// ErrDTLSStarted reports a StartDTLS on a side that already has a
	// DTLS session.
	ErrDTLSStarted = errors.New("media: dtls already started")
	// ErrDTLSFingerprint reports a DTLS peer whose certificate does not
	// match the a=fingerprint of its SDP (or that sent none): the leg is
	// failed closed.
	ErrDTLSFingerprint = errors.New("media: dtls: peer certificate does not match its fingerprint")
	// ErrDTLSTimeout reports a DTLS handshake that did not finish within
	// DTLSConfig.HandshakeTimeout: the leg is failed closed.
	ErrDTLSTimeout = errors.New("media: dtls: handshake timed out")
	// ErrDTLSHandshake reports a DTLS handshake that failed otherwise (an
	// alert, no common SRTP profile, no keys): the leg is failed closed.
	ErrDTLSHandshake = errors.New("media: dtls: handshake failed")
)
