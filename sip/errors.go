package sip

import "errors"

// Sentinel errors of the SIP layer. Each maps to one SIP answer; the text
// after "sip: " is what reaches a Warning header.
var (
	ErrSDPMalformed    = errors.New("sip: malformed SDP")
	ErrNoRoute         = errors.New("sip: no route")
	ErrPeerTLS         = errors.New("sip: TLS to peer failed")
	ErrPeerUnreachable = errors.New("sip: peer unreachable")
	ErrPeerTimeout     = errors.New("sip: peer did not answer")
	ErrMediaPorts      = errors.New("sip: no media ports left")
	ErrSDESInsecure    = errors.New("sip: SDES keys offered over a transport other than TLS")
	ErrSRTPUnsupported = errors.New("sip: SRTP is not offered on this leg")
	ErrDraining        = errors.New("sip: draining")
)
