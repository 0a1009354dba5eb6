// Package load measures ccsbc under load on loopback, against rtpengine on
// the same machine and with the same tool, so that every figure it reports
// has a baseline measured in the same run.
//
// Three tools share this package:
//
//   - The media load generator (RunMedia, cmd/loadgen): it sets up N calls
//     through a relay, by SIP through ccsbc (caller and callee user agents
//     on sipgo, in this process) or by the ng control protocol through
//     rtpengine, then sends a G.711 20 ms stream each way on every call
//     (50 packets/s per direction, the payload stamped with its send time)
//     and measures loss, one-way latency, the rate achieved, SRTP
//     authentication failures and the relay's CPU time per forwarded packet
//     (from /proc/PID/stat). Modes: RTP↔RTP, RTP↔SRTP and SRTP↔SRTP
//     re-encrypted (AES_CM_128_HMAC_SHA1_80, SDES).
//   - Signaling load (RunSIPp, RunTLSLoad): calls per second through ccsbc
//     with SIPp over UDP and TCP, with this package's own sipgo client over
//     TLS (Debian's SIPp has no TLS), and a long hold of many concurrent
//     calls for the memory per call.
//   - The suite (RunSuite, cmd/bench): every measurement repeated, medians
//     and spreads, written to BENCHMARKS.md with analysis.md (the profile
//     findings) appended.
//   - Two measuring aids: cmd/ccsbcprof (ccsbc's server with pprof on a
//     loopback port, started in place of ccsbc to profile it under load)
//     and cmd/epollrelay (the smallest Go relay built as analysis.md
//     suggests, measured beside ccsbc and rtpengine; not a product).
//
// Everything it sends goes to 127.0.0.0/8, and every loop is bounded in
// count and in time. Processes it starts (ccsbc, rtpengine, SIPp) run in a
// process group of their own and are ended by their id when a run ends.
package load
