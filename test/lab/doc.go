// Package lab holds the helpers of ccsbc's end-to-end tests: they place real
// calls on loopback (127.0.0.1 only) with real peers that we did not write,
// and read what crossed the wire.
//
//   - SIPpUAS, SIPpUAC, StartSIPpUAC run SIPp (Debian package sip-tester,
//     3.6.1, no TLS) with the scenarios of test/scenarios and return what it
//     counted (Result).
//   - Baresip runs a headless baresip 1.0 user agent (SIP over TLS, SRTP,
//     DTLS-SRTP) driven through its ctrl_tcp socket; see baresip.go for what
//     was found about its configuration and logs.
//   - StartCapture runs tshark on lo; its methods read packets back.
//   - StartCCSBC builds cmd/ccsbc once per test process and runs it on a
//     configuration until the test ends.
//   - FreePort and friends, SelfSigned, WriteTonePCAP, WriteWAV, SIPOptions:
//     the small pieces the above are made of.
//
// Every helper is bounded in time, ends its processes in t.Cleanup (their
// process group, by id), writes its logs and captures under t.TempDir(), and
// prints their paths when the test fails. Need skips a test when a tool is
// missing (and fails it under CI, where every tool is installed).
//
// The peers need root: SIPp plays RTP through a raw socket, tshark captures
// on lo.
package lab
