package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ccsbc/ccsbc/policy"
)

// pin is a well-formed SHA-256 fingerprint for snippets.
var pin = strings.Repeat("ab", 32)

// checkErrors asserts that err holds exactly len(want) errors, in file
// order, the i-th containing want[i].
func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error:\n%v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want:\n%s", strings.Join(want, "\n"))
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("error %d:\n got: %s\nwant: …%s…", i, got[i], want[i])
		}
	}
}

// TestParseErrors is the table of broken snippets and what an engineer
// is told about each: file, line, key path and the fix.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "peer transport not a transport",
			yaml: `model: 1
listeners:
  - transport: udp
    address: 127.0.0.1:5060
peers:
  - name: cvp
    address: 127.0.0.1:5070
  - name: cucm
    address: 127.0.0.1:5080
  - name: vvb
    address: 127.0.0.1:5090
    transport: sctp
`,
			want: []string{`lab.yaml:12: peers[2].transport: "sctp" is not one of udp, tcp, tls`},
		},
		{
			name: "srtp keying",
			yaml: `model: 1
listeners:
  - transport: udp
    address: 127.0.0.1:5060
peers:
  - name: cvp
    address: 127.0.0.1:5070
    srtp_keying: zrtp
  - name: cucm
    address: 127.0.0.1:5080
    srtp_keying: dtls
  - name: vvb
    address: 127.0.0.1:5090
    srtp: true
    srtp_keying: dtls
    srtp_suites: [AEAD_AES_128_GCM, AES_256_CM_HMAC_SHA1_80]
`,
			want: []string{
				`lab.yaml:8: peers[0].srtp_keying: "zrtp" is not one of sdes, dtls`,
				`lab.yaml:11: peers[1].srtp_keying: dtls keys SRTP, but the peer is not declared SRTP-capable; set srtp: true, or remove srtp_keying`,
				`lab.yaml:16: peers[2].srtp_suites[1]: AES_256_CM_HMAC_SHA1_80 has no DTLS-SRTP protection profile`,
			},
		},
		{
			name: "misspelled top-level key",
			yaml: `model: 1
listener:
  - {transport: udp, address: 127.0.0.1:5060}
`,
			want: []string{
				`lab.yaml:2: listener: unknown key; did you mean "listeners"? The keys of the top level are: model, log, listeners, tls, media, peers, routes`,
				`lab.yaml: listeners: at least one listener is required`,
			},
		},
		{
			name: "misspelled nested key",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
peers:
  - name: cvp
    adress: 127.0.0.1:5070
`,
			want: []string{
				`lab.yaml:5: peers[0].address: required`,
				`lab.yaml:6: peers[0].adress: unknown key; did you mean "address"? The keys of a peer are: name, kind, address,`,
			},
		},
		{
			name: "unknown key far from any",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  jitter_buffer: 40ms
`,
			want: []string{`lab.yaml:5: media.jitter_buffer: unknown key; the keys of media are: bind, advertise, ports, inactivity_timeout, latching`},
		},
		{
			name: "model missing",
			yaml: `listeners:
  - {transport: udp, address: 127.0.0.1:5060}
`,
			want: []string{`lab.yaml: model: required; set the deployment model: 1 (unsecured), 2 (secured signaling), 3 (secured signaling + agent media) or 4 (end-to-end)`},
		},
		{
			name: "model out of range",
			yaml: `model: 5
listeners:
  - {transport: tls, address: 127.0.0.1:5061}
`,
			want: []string{`lab.yaml:1: model: 5 is not a deployment model; use 1 (unsecured)`},
		},
		{
			name: "model not a number",
			yaml: `model: two
listeners:
  - {transport: tls, address: 127.0.0.1:5061}
`,
			want: []string{`lab.yaml:1: model: "two" is not a model number; use 1 (unsecured), 2 (secured signaling)`},
		},
		{
			name: "empty file",
			yaml: "# nothing yet\n",
			want: []string{
				`lab.yaml: model: required`,
				`lab.yaml: listeners: at least one listener is required, e.g. - {transport: tls, address: 127.0.0.1:5061}`,
			},
		},
		{
			name: "model 2 refuses udp listener and tcp peer",
			yaml: `model: 2
listeners:
  - transport: udp
    address: 127.0.0.1:5060
  - transport: tls
    address: 127.0.0.1:5061
peers:
  - name: cucm
    address: 127.0.0.1:5080
    transport: tcp
    fingerprint: ` + pin + `
`,
			want: []string{
				`lab.yaml:3: listeners[0].transport: UDP is not allowed: model 2 (secured signaling) requires SIP over TLS on every leg; use transport: tls`,
				`lab.yaml:10: peers[0].transport: TCP is not allowed: model 2 (secured signaling) requires SIP over TLS on every leg; use transport: tls`,
			},
		},
		{
			name: "model 4 refuses tcp listener",
			yaml: `model: 4
listeners:
  - transport: tcp
    address: 127.0.0.1:5060
`,
			want: []string{`lab.yaml:3: listeners[0].transport: TCP is not allowed: model 4 (end-to-end) requires SIP over TLS on every leg`},
		},
		{
			name: "listener transport missing",
			yaml: `model: 1
listeners:
  - address: 127.0.0.1:5060
`,
			want: []string{`lab.yaml:3: listeners[0].transport: required; one of udp, tcp, tls`},
		},
		{
			name: "listener address with a host name or no port",
			yaml: `model: 1
listeners:
  - transport: udp
    address: sbc.example.com:5060
  - transport: tcp
    address: 127.0.0.1
`,
			want: []string{
				`lab.yaml:4: listeners[0].address: "sbc.example.com:5060" names a host; ccsbc does not resolve names in its configuration, write an IP address, e.g. 127.0.0.1:5060`,
				`lab.yaml:6: listeners[1].address: "127.0.0.1" has no port; write it with one, e.g. 127.0.0.1:5060`,
			},
		},
		{
			name: "duplicate listener sockets",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
  - {transport: tcp, address: 127.0.0.1:5060}
  - {transport: tls, address: 127.0.0.1:5060}
  - {transport: udp, address: 0.0.0.0:5060}
  - {transport: udp, address: 127.0.0.1:0}
  - {transport: udp, address: 127.0.0.1:0}
`,
			want: []string{
				`lab.yaml:5: listeners[2].address: TCP 127.0.0.1:5060 is already bound by listeners[1] (line 4); remove one or change its port`,
				`lab.yaml:6: listeners[3].address: UDP 0.0.0.0:5060 is already bound by listeners[0] (line 3)`,
			},
		},
		{
			name: "listener on a perimeter-blocked port",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:137}
  - {transport: tls, address: 127.0.0.1:445}
  - {transport: udp, address: 127.0.0.1:139}
`,
			want: []string{
				`lab.yaml:3: listeners[0].address: UDP port 137 is one the perimeter firewall blocks (Network Firewall Topology) and ccsbc never listens on it`,
				`lab.yaml:4: listeners[1].address: TCP port 445 is one the perimeter firewall blocks`,
			},
		},
		{
			name: "allow list",
			yaml: `model: 1
listeners:
  - transport: udp
    address: 127.0.0.1:5060
    allow: [10.1.2.3/8, 192.0.2.10, nonsense]
  - transport: tcp
    address: 127.0.0.1:5060
    allow: 10.0.0.0/8
`,
			want: []string{
				`lab.yaml:5: listeners[0].allow[0]: "10.1.2.3/8" has host bits set; write 10.0.0.0/8 for the network or 10.1.2.3 for the host`,
				`lab.yaml:5: listeners[0].allow[2]: "nonsense" is not a CIDR prefix`,
				`lab.yaml:8: listeners[1].allow: expected a list, got "10.0.0.0/8"; write it as [127.0.0.0/8, 192.0.2.10]`,
			},
		},
		{
			name: "no listeners at all",
			yaml: `model: 1
listeners: []
`,
			want: []string{`lab.yaml:2: listeners: at least one listener is required`},
		},
		{
			name: "listeners not a list",
			yaml: `model: 1
listeners:
  transport: udp
`,
			want: []string{`lab.yaml:3: listeners: expected a list, got a mapping; write it as - {transport: tls, address: 127.0.0.1:5061}`},
		},
		{
			name: "media port range below 1024 with blocked ports",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  ports: 100-200
`,
			want: []string{`lab.yaml:5: media.ports: 100-200 is outside 1024-65535 and holds UDP ports the perimeter firewall blocks (135, 137, 138); use a range such as 40000-40999`},
		},
		{
			name: "media port range odd start",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  ports: 40001-40999
`,
			want: []string{`lab.yaml:5: media.ports: 40001-40999 starts on an odd port; RTP takes even ports and RTCP the odd one above, start it at 40002`},
		},
		{
			name: "media port range too small",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  ports: 40000-40002
`,
			want: []string{`lab.yaml:5: media.ports: 40000-40002 holds 3 ports; a call needs at least 4`},
		},
		{
			name: "media port range reversed",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  ports: 40999-40000
`,
			want: []string{`lab.yaml:5: media.ports: 40999-40000: the first port must be below the last`},
		},
		{
			name: "media port range above 65535",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  ports: 60000-70000
`,
			want: []string{`lab.yaml:5: media.ports: 60000-70000 is outside 1024-65535; use a range such as 40000-40999`},
		},
		{
			name: "media port range syntax",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  ports: "40000:40999"
`,
			want: []string{`lab.yaml:5: media.ports: "40000:40999" is not a port range; write lo-hi, e.g. 40000-40999`},
		},
		{
			name: "media addresses",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  bind: 127.0.0.1:40000
  advertise: sbc.example.com
`,
			want: []string{
				`lab.yaml:5: media.bind: "127.0.0.1:40000" has a port; write the address alone (127.0.0.1), ports go in media.ports`,
				`lab.yaml:6: media.advertise: "sbc.example.com" is not an IP address`,
			},
		},
		{
			name: "extra media addresses",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  bind: 127.0.0.1
  extra_addresses:
    - {bind: 127.0.0.2, advertise: 0.0.0.0}
    - {bind: "::1"}
    - {bind: 127.0.0.2}
    - {advertise: 192.0.2.1}
    - 127.0.0.3
`,
			want: []string{
				`lab.yaml:7: media.extra_addresses[0].advertise: 0.0.0.0 cannot be written into SDP`,
				`lab.yaml:8: media.extra_addresses[1].bind: ::1 is not of media.bind's (127.0.0.1) address family`,
				`lab.yaml:9: media.extra_addresses[2].bind: 127.0.0.2 is given twice`,
				`lab.yaml:10: media.extra_addresses[3].bind: required`,
				`lab.yaml:11: media.extra_addresses[4]: expected a media address`,
			},
		},
		{
			name: "media bound to any address without advertise",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  bind: 0.0.0.0
`,
			want: []string{`lab.yaml:4: media.advertise: defaults to media.bind (0.0.0.0), which peers cannot send media to; set media.advertise`},
		},
		{
			name: "media durations and booleans",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  inactivity_timeout: 30
  latching: yes
tls:
  handshake_timeout: soon
`,
			want: []string{
				`lab.yaml:5: media.inactivity_timeout: 30 has no unit; write 30s (or ms, m, h)`,
				`lab.yaml:6: media.latching: "yes" is not a boolean; write true or false`,
				`lab.yaml:8: tls.handshake_timeout: "soon" is not a duration; write it like 30s, 500ms or 2m`,
			},
		},
		{
			name: "negative durations",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
media:
  inactivity_timeout: -5s
tls:
  handshake_timeout: -1s
`,
			want: []string{
				`lab.yaml:5: media.inactivity_timeout: -5s is negative; write 0 to disable, or a duration such as 30s`,
				`lab.yaml:7: tls.handshake_timeout: -1s must be positive, e.g. 10s`,
			},
		},
		{
			name: "peer names",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
peers:
  - name: cucm
    address: 127.0.0.1:5080
  - name: cucm
    address: 127.0.0.1:5081
  - address: 127.0.0.1:5082
`,
			want: []string{
				`lab.yaml:7: peers[1].name: "cucm" is already the name of peers[0] (line 5); peer names must be unique`,
				`lab.yaml:9: peers[2].name: required; routes refer to the peer by its name`,
			},
		},
		{
			name: "peer kind, port and codecs",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
peers:
  - name: cucm
    kind: callmanager
    address: 127.0.0.1:0
    codecs: [PCMU, pcmu, ""]
`,
			want: []string{
				`lab.yaml:6: peers[0].kind: "callmanager" is not one of cvp, vvb, cucm, dialer, vxml-gw, other`,
				`lab.yaml:7: peers[0].address: 127.0.0.1:0 has port 0; write the port the peer receives SIP on, e.g. 127.0.0.1:5060`,
				`lab.yaml:8: peers[0].codecs[1]: pcmu is listed twice`,
				`lab.yaml:8: peers[0].codecs[2]: empty codec name`,
			},
		},
		{
			name: "peer verification",
			yaml: `model: 3
listeners:
  - {transport: tls, address: 127.0.0.1:5061}
peers:
  - name: a
    address: 127.0.0.1:5071
    verify: pinned
  - name: b
    address: 127.0.0.1:5081
    verify: fingerprint
  - name: c
    address: 127.0.0.1:5091
    fingerprint: 5B:8E:51:3E:6B:32:9D:44:D7:2E:50:50:3A:0B:1D:85:02:BF:7C:E4
  - name: d
    address: 127.0.0.1:5093
    fingerprint: not-hex
  - name: e
    address: 127.0.0.1:5096
    verify: ca
    fingerprint: ` + pin + `
`,
			want: []string{
				`lab.yaml:7: peers[0].verify: "pinned" is not one of ca, fingerprint, insecure-lab`,
				`lab.yaml:8: peers[1].fingerprint: required with verify: fingerprint; take it from the peer's certificate with: openssl x509 -noout -fingerprint -sha256 -in peer.pem`,
				`lab.yaml:13: peers[2].fingerprint: "5B:8E:51:3E:6B:32:9D:44:D7:2E:50:50:3A:0B:1D:85:02:BF:7C:E4" is 20 bytes, a SHA-1; pin the SHA-256 instead`,
				`lab.yaml:16: peers[3].fingerprint: "not-hex" is not hex`,
				`lab.yaml:19: peers[4].verify: ca needs tls.ca_bundle, the CAs that sign "e"'s certificate`,
				`lab.yaml:20: peers[4].fingerprint: set, but verify is ca so it would not be checked; set verify: fingerprint to pin it, or remove it`,
			},
		},
		{
			name: "verify ca defaulted on a tls peer without a bundle",
			yaml: `model: 2
listeners:
  - {transport: tls, address: 127.0.0.1:5061}
peers:
  - name: cucm
    address: 127.0.0.1:5081
`,
			want: []string{`lab.yaml:5: peers[0].verify: ca needs tls.ca_bundle`},
		},
		{
			name: "tls settings",
			yaml: `model: 1
listeners:
  - {transport: tls, address: 127.0.0.1:5061}
tls:
  certificate: /etc/ccsbc/sbc.crt
  min_version: 1.4
  client_auth: optional
  ca_bundle: /nonexistent/ca.pem
`,
			want: []string{
				`lab.yaml:4: tls.key: required with tls.certificate: set both, or neither to use a generated self-signed certificate`,
				`lab.yaml:6: tls.min_version: "1.4" is not one of 1.0, 1.1, 1.2, 1.3`,
				`lab.yaml:7: tls.client_auth: "optional" is not one of none, request, require`,
				`lab.yaml:8: tls.ca_bundle: cannot open /nonexistent/ca.pem: no such file or directory`,
			},
		},
		{
			name: "routes",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
peers:
  - {name: cvp, address: 127.0.0.1:5070}
  - {name: cucm, address: 127.0.0.1:5080}
routes:
  - user: 1x#x
    to: cucm
    leg: agent
  - user: 1*2
    to: ucm
    leg: agnet
  - from: [cvp, dailer]
    user: "2*"
    to: cucm
    leg: agent
  - name: empty
`,
			want: []string{
				`lab.yaml:8: routes[0].user: "1x#x": '#' at position 3 is not allowed; use digits, letters, x or X (one digit), + and an optional trailing *`,
				`lab.yaml:11: routes[1].user: "1*2": * may only end the pattern`,
				`lab.yaml:12: routes[1].to: "ucm" is not a peer; the peers are: cvp, cucm`,
				`lab.yaml:13: routes[1].leg: "agnet" is not a leg class; use one of agent, ivr, ivr-ios, mobile-agent, dialer, whisper, caller`,
				`lab.yaml:14: routes[2].from[1]: "dailer" is not a peer; the peers are: cvp, cucm`,
				`lab.yaml:18: routes[3].user: required; a Request-URI user pattern such as 1xxx (x is one digit) or 2* (* ends it)`,
				`lab.yaml:18: routes[3].to: required; the peer calls are sent to (the peers are: cvp, cucm)`,
				`lab.yaml:18: routes[3].leg: required; the outbound leg's class, one of agent, ivr,`,
			},
		},
		{
			name: "route to a peer when there are none",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
routes:
  - {user: 1xxx, to: cucm, leg: agent}
`,
			want: []string{`lab.yaml:5: routes[0].to: "cucm" is not a peer; no peers are configured`},
		},
		{
			name: "log level",
			yaml: `model: 1
log:
  level: verbose
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
`,
			want: []string{`lab.yaml:3: log.level: "verbose" is not one of debug, info, warn, error`},
		},
		{
			name: "key set twice",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
model: 2
`,
			want: []string{`lab.yaml:4: model: set twice (first at line 1); keep one`},
		},
		{
			name: "mapping where a scalar belongs",
			yaml: `model: 1
listeners:
  - transport: {name: udp}
    address: [127.0.0.1, 5060]
`,
			want: []string{
				`lab.yaml:3: listeners[0].transport: expected udp, tcp or tls, got a mapping`,
				`lab.yaml:4: listeners[0].address: expected an IP:port such as 127.0.0.1:5060, got a list`,
			},
		},
		{
			name: "tab indentation",
			yaml: "model: 1\nlisteners:\n\t- transport: udp\n",
			want: []string{`lab.yaml:3: YAML syntax: found character that cannot start any token (indent YAML with spaces, not tabs)`},
		},
		{
			name: "unclosed flow sequence",
			yaml: "model: 1\nlisteners: [\n",
			want: []string{`lab.yaml:2: YAML syntax: did not find expected node content`},
		},
		{
			name: "session timers out of range",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
session_timers:
  enabled: sometimes
  session_expires: 60s
  min_se: 1s
`,
			want: []string{
				`lab.yaml:5: session_timers.enabled: "sometimes" is not a boolean; write true or false`,
				`lab.yaml:7: session_timers.min_se: 1s is too short; write 90s (the RFC 4028 minimum), or at least 2s in a test lab`,
			},
		},
		{
			name: "session expires below min_se, fractional, too long",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
session_timers:
  session_expires: 60s
  min_se: 90s
`,
			want: []string{
				`lab.yaml:5: session_timers.session_expires: 1m0s is below session_timers.min_se (1m30s) (line 6); ccsbc would refuse its own interval, raise it to at least min_se`,
			},
		},
		{
			name: "session timer values in seconds",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
session_timers:
  session_expires: 48h
  min_se: 2.5s
`,
			want: []string{
				`lab.yaml:5: session_timers.session_expires: 48h0m0s is longer than 24h0m0s: a dead call would stay up that long`,
				`lab.yaml:6: session_timers.min_se: 2.5s is not a whole number of seconds; Session-Expires and Min-SE are written in seconds, e.g. 3s`,
			},
		},
		{
			name: "audit",
			yaml: `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
audit:
  mask_number: true
  keep_digits: 12
`,
			want: []string{
				`lab.yaml:5: audit.mask_number: unknown key; did you mean "mask_numbers"? The keys of audit are: mask_numbers, keep_digits`,
				`lab.yaml:6: audit.keep_digits: 12 is out of range; write how many trailing digits stay readable, from 0 (mask all) to 8 (4 is usual)`,
			},
		},
		{
			name: "second document",
			yaml: "model: 1\nlisteners:\n  - {transport: udp, address: 127.0.0.1:5060}\n---\nmodel: 2\n",
			want: []string{`lab.yaml:4: a second YAML document starts here; ccsbc reads one document per file`},
		},
		{
			name: "top level is a list",
			yaml: "- model: 1\n",
			want: []string{`lab.yaml:1: the file must be a mapping of keys (model, log, listeners, tls, media, peers, routes, session_timers, audit, admin), got a list`},
		},
		{
			name: "bad merge",
			yaml: `model: 1
listeners:
  - <<: 5060
    transport: udp
    address: 127.0.0.1:5060
`,
			want: []string{`lab.yaml:3: listeners[0].<<: a merge (<<) takes an alias to a mapping, or a list of them; got "5060"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("lab.yaml", []byte(tt.yaml))
			t.Logf("\n%v", err)
			checkErrors(t, err, tt.want)
			if c != nil {
				t.Errorf("Parse returned a Config with errors")
			}
		})
	}
}

// TestParseValid decodes a model 3 configuration that uses every spelling
// the decoder accepts.
func TestParseValid(t *testing.T) {
	src := `model: 3
listeners:
  - transport: TLS
    address: "[::1]:5061"
    allow: [127.0.0.1, "::1", 10.0.0.0/8]
tls:
  min_version: 1.3
  client_auth: require
  handshake_timeout: 2.5s
media:
  bind: 0.0.0.0
  advertise: 192.0.2.10
  ports: 20000 - 20099
  inactivity_timeout: 0
  latching: true
peers:
  - &tlspeer
    name: vxml-gw
    address: 127.0.0.1:5096
    transport: tls
    verify: fingerprint
    fingerprint: ` + strings.ToUpper(pin[:2]) + ":" + pin[2:] + `
  - <<: *tlspeer
    name: cucm
    kind: cucm
    address: 127.0.0.1:5081
    srtp: true
  - <<: *tlspeer
    name: lab-vvb
    address: 127.0.0.1:5091
    verify: insecure-lab
    fingerprint: ""
routes:
  - user: 1xxx
    from: [cucm]
    to: cucm
    leg: agent
  - user: "*"
    to: lab-vvb
    leg: ivr
`
	c, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}

	if c.Model != policy.ModelSecureAgentMedia || c.File != "lab.yaml" {
		t.Errorf("model %v file %q", c.Model, c.File)
	}
	l := c.Listeners[0]
	wantAllow := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.0.0.0/8")}
	if l.Transport != policy.TLS || l.Address != netip.MustParseAddrPort("[::1]:5061") || !reflect.DeepEqual(l.Allow, wantAllow) || l.Line != 3 {
		t.Errorf("listener = %+v", l)
	}
	if c.TLS.MinVersion != "1.3" || c.TLS.ClientAuth != "require" || c.TLS.HandshakeTimeout != 2500*time.Millisecond {
		t.Errorf("tls = %+v", c.TLS)
	}
	m := c.Media
	if m.Bind != netip.IPv4Unspecified() || m.Advertise != netip.MustParseAddr("192.0.2.10") ||
		m.PortMin != 20000 || m.PortMax != 20099 || m.InactivityTimeout != 0 || !m.Latching {
		t.Errorf("media = %+v (explicit inactivity_timeout: 0 must stay 0)", m)
	}
	if len(c.Peers) != 3 {
		t.Fatalf("peers = %+v", c.Peers)
	}
	cucm, ok := c.Peer("cucm")
	if !ok || cucm.Transport != policy.TLS || cucm.Verify != VerifyFingerprint || cucm.Fingerprint == "" || !cucm.SRTP || cucm.Kind != "cucm" {
		t.Errorf("cucm (merged from an anchor) = %+v", cucm)
	}
	vvb, _ := c.Peer("lab-vvb")
	if vvb.Verify != VerifyInsecureLab || vvb.Fingerprint != "" || vvb.Kind != "other" {
		t.Errorf("lab-vvb (own keys win over merged) = %+v", vvb)
	}
	if c.Routes[0].Name != "route 1" || c.Routes[1].Name != "route 2" || c.Routes[1].User != "*" {
		t.Errorf("routes = %+v", c.Routes)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "lab.yaml:") || !strings.Contains(w[0], "peers[2].verify: insecure-lab") {
		t.Errorf("warnings = %q", w)
	}
}

// TestDecodeCoversSchema decodes testdata/full.yaml, which sets every key
// of the schema to a non-zero value: a field added to config.go but not
// to the decoder shows up here as zero.
func TestDecodeCoversSchema(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// set[path] records whether the field at path is non-zero somewhere
	// (in some element, for lists).
	set := map[string]bool{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			if v.Type().PkgPath() != "github.com/ccsbc/ccsbc/config" {
				break // netip and friends are values, not schema
			}
			for i := 0; i < v.NumField(); i++ {
				f := v.Type().Field(i)
				tag := f.Tag.Get("yaml")
				if !f.IsExported() || tag == "-" && f.Name != "PortMin" && f.Name != "PortMax" {
					continue
				}
				walk(v.Field(i), path+"."+f.Name)
			}
			return
		case reflect.Slice:
			set[path] = set[path] || v.Len() > 0
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), path+"[]")
			}
			return
		}
		set[path] = set[path] || !v.IsZero()
	}
	walk(reflect.ValueOf(*c), "Config")
	for path, ok := range set {
		if !ok {
			t.Errorf("%s is never set: testdata/full.yaml must set it, and the decoder decode it", path)
		}
	}
	if len(set) < 38 {
		t.Errorf("only %d schema fields walked", len(set))
	}
}

func TestApplyDefaults(t *testing.T) {
	for _, model := range []policy.Model{policy.ModelUnsecured, policy.ModelSecureSignaling} {
		c := &Config{
			Model:  model,
			Peers:  []Peer{{Name: "a"}, {Name: "b", Fingerprint: pin}},
			Routes: []Route{{}, {Name: "kept"}},
		}
		c.ApplyDefaults()
		wantTransport := policy.TLS
		if model == policy.ModelUnsecured {
			wantTransport = policy.UDP
		}
		for _, check := range []struct {
			name      string
			got, want any
		}{
			{"log.level", c.Log.Level, "info"},
			{"tls.min_version", c.TLS.MinVersion, "1.2"},
			{"tls.client_auth", c.TLS.ClientAuth, "request"},
			{"tls.handshake_timeout", c.TLS.HandshakeTimeout, 10 * time.Second},
			{"tls.state_dir", c.TLS.StateDir, ""}, // resolved at load time
			{"media.bind", c.Media.Bind, netip.MustParseAddr("127.0.0.1")},
			{"media.advertise", c.Media.Advertise, netip.MustParseAddr("127.0.0.1")},
			{"media.ports", [2]int{c.Media.PortMin, c.Media.PortMax}, [2]int{40000, 40999}},
			{"media.inactivity_timeout", c.Media.InactivityTimeout, 30 * time.Second},
			{"media.latching", c.Media.Latching, false},
			{"peers[0].kind", c.Peers[0].Kind, "other"},
			{"peers[0].transport", c.Peers[0].Transport, wantTransport},
			{"peers[0].verify", c.Peers[0].Verify, VerifyCA},
			{"peers[1].verify", c.Peers[1].Verify, VerifyFingerprint},
			{"routes[0].name", c.Routes[0].Name, "route 1"},
			{"routes[1].name", c.Routes[1].Name, "kept"},
			{"admin.listen", c.Admin.Listen, netip.MustParseAddrPort("127.0.0.1:9060")},
			{"admin.tls", c.Admin.TLS, false},
			{"session_timers.enabled", c.SessionTimers.Enabled, true},
			{"session_timers.session_expires", c.SessionTimers.SessionExpires, 1800 * time.Second},
			{"session_timers.min_se", c.SessionTimers.MinSE, 90 * time.Second},
			{"audit.mask_numbers", c.Audit.MaskNumbers, false},
			{"audit.keep_digits", c.Audit.KeepDigits, 4},
		} {
			if check.got != check.want {
				t.Errorf("model %d: %s = %v, want %v", model, check.name, check.got, check.want)
			}
		}
		before := *c
		c.ApplyDefaults()
		if !reflect.DeepEqual(before, *c) {
			t.Errorf("ApplyDefaults is not idempotent")
		}
	}

	// advertise defaults to bind, whatever bind is; an extra address's
	// to its own bind.
	c := &Config{Media: Media{Bind: netip.MustParseAddr("192.0.2.7"),
		ExtraAddresses: []MediaAddress{{Bind: netip.MustParseAddr("192.0.2.8")}}}}
	c.ApplyDefaults()
	if c.Media.Advertise != c.Media.Bind {
		t.Errorf("advertise = %v, want bind %v", c.Media.Advertise, c.Media.Bind)
	}
	if x := c.Media.ExtraAddresses[0]; x.Advertise != x.Bind {
		t.Errorf("extra address: advertise = %v, want its bind %v", x.Advertise, x.Bind)
	}
}

// TestValidateInCode checks a Config built in code: errors still carry
// the item's Line when there is one, and the key path always.
func TestValidateInCode(t *testing.T) {
	c := &Config{
		Model:     policy.ModelSecureSignaling,
		Listeners: []Listener{{Transport: policy.UDP, Address: netip.MustParseAddrPort("127.0.0.1:5060"), Line: 7}},
	}
	c.ApplyDefaults()
	checkErrors(t, c.Validate(), []string{"config:7: listeners[0].transport: UDP is not allowed: model 2 (secured signaling) requires SIP over TLS on every leg"})

	c.Listeners[0].Transport = "sctp"
	checkErrors(t, c.Validate(), []string{`listeners[0].transport: "sctp" is not one of udp, tcp, tls`})
}

func TestErrorsUnwrap(t *testing.T) {
	_, err := Parse("lab.yaml", []byte("model: 1\nlistners: []\nlisteners:\n  - {transport: udp, address: 127.0.0.1:5060}\npeers:\n  - {name: x, address: 127.0.0.1:1, kind: y}\n"))
	if !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrInvalid) || errors.Is(err, ErrSyntax) {
		t.Errorf("errors.Is: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "lab.yaml" || e.Line != 2 || e.Key != "listners" {
		t.Errorf("errors.As: %+v", e)
	}
	_, err = Parse("lab.yaml", []byte("model: [\n"))
	if !errors.Is(err, ErrSyntax) {
		t.Errorf("syntax error does not unwrap to ErrSyntax: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	src := `model: 2
listeners:
  - {transport: tls, address: 127.0.0.1:5061}
tls:
  min_version: "1.1"
  client_auth: none
peers:
  - name: cucm
    address: 127.0.0.1:5081
    verify: insecure-lab
  - name: vvb
    address: 127.0.0.1:5091
    fingerprint: ` + pin + `
`
	c, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Warnings()
	want := []string{
		`lab.yaml:5: tls.min_version: TLS 1.1 is below the TLS 1.2 minimum`,
		`lab.yaml:6: tls.client_auth: none: TLS clients are not asked for a certificate`,
		`lab.yaml:10: peers[0].verify: insecure-lab accepts any certificate from peer "cucm"`,
	}
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d:\n got: %s\nwant: …%s…", i, got[i], want[i])
		}
	}
}

// TestExplicitOffStaysOff: session_timers.enabled: false and
// audit.keep_digits: 0 are choices, not unset keys; a Min-SE for tests
// is accepted with a warning.
func TestExplicitOffStaysOff(t *testing.T) {
	src := `model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
session_timers:
  enabled: false
audit:
  mask_numbers: true
  keep_digits: 0
`
	c, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionTimers.Enabled || c.SessionTimers.SessionExpires != 1800*time.Second || !c.Audit.MaskNumbers || c.Audit.KeepDigits != 0 {
		t.Errorf("session_timers %+v audit %+v", c.SessionTimers, c.Audit)
	}
	c, err = Parse("lab.yaml", []byte("model: 1\nlisteners:\n  - {transport: udp, address: 127.0.0.1:5060}\nsession_timers:\n  session_expires: 4s\n  min_se: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "lab.yaml:6: session_timers.min_se: 2s is below the 90s minimum of RFC 4028") {
		t.Errorf("warnings = %q", w)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}

	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte("model: 1\nlisteners:\n  - {transport: udp, address: 127.0.0.1:99999}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	checkErrors(t, err, []string{path + `:3: listeners[0].address: "127.0.0.1:99999": "99999" is not a port; write a number from 1 to 65535`})
}

// TestTLSFiles checks that Validate loads the TLS files it names.
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "sbc.crt"), filepath.Join(dir, "sbc.key")
	certPEM, keyPEM, err := generateCertificate(time.Now(), "sbc")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, _, err := generateCertificate(time.Now(), "other")
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.crt")
	notPEM := filepath.Join(dir, "ca.txt")
	for name, data := range map[string][]byte{crt: certPEM, key: keyPEM, other: otherCert, notPEM: []byte("hello")} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snippet := func(cert, key, bundle string) string {
		return "model: 1\nlisteners:\n  - {transport: tls, address: 127.0.0.1:5061}\ntls:\n" +
			"  certificate: " + cert + "\n  key: " + key + "\n  ca_bundle: " + bundle + "\n"
	}
	_, err = Parse("lab.yaml", []byte(snippet(crt, key, other)))
	checkErrors(t, err, nil)

	_, err = Parse("lab.yaml", []byte(snippet(other, key, notPEM)))
	checkErrors(t, err, []string{
		"lab.yaml:5: tls.certificate: " + other + " and " + key + " do not load as a certificate and its key: tls: private key does not match public key",
		"lab.yaml:7: tls.ca_bundle: " + notPEM + " holds no PEM certificate",
	})
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("error shows key material: %v", err)
	}

	_, err = Parse("lab.yaml", []byte(snippet(dir, key, "")))
	checkErrors(t, err, []string{"lab.yaml:5: tls.certificate: " + dir + " is a directory; name the PEM file"})
}
