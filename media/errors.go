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
)
