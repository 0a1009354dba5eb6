package test

import (
	"encoding/xml"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// sslscanReport is the part of `sslscan --xml=-` the test reads.
type sslscanReport struct {
	Tests []struct {
		Protocols []struct {
			Type    string `xml:"type,attr"`
			Version string `xml:"version,attr"`
			Enabled string `xml:"enabled,attr"`
		} `xml:"protocol"`
		Renegotiation struct {
			Supported string `xml:"supported,attr"`
		} `xml:"renegotiation"`
		Ciphers []struct {
			Version string `xml:"sslversion,attr"`
			Name    string `xml:"cipher,attr"`
		} `xml:"cipher"`
	} `xml:"ssltest"`
}

// TestTLSListenerScan audits ccsbc's SIP TLS listener with sslscan, as an
// auditor would: no SSL, no TLS 1.0/1.1, TLS 1.2 with forward-secret AEAD
// suites only, no renegotiation; with min_version 1.3, nothing below 1.3.
func TestTLSListenerScan(t *testing.T) {
	needTool(t, "sslscan")
	for _, tc := range []struct {
		minVersion string
		enabled    []string // protocol versions that must answer; all others must not
	}{
		{"1.2", []string{"1.2", "1.3"}},
		{"1.3", []string{"1.3"}},
	} {
		t.Run("min_version "+tc.minVersion, func(t *testing.T) {
			port := freePort(t)
			lo, hi := mediaRange()
			startCCSBC(t, fmt.Sprintf(`model: 2
listeners:
  - {transport: tls, address: "127.0.0.1:%d"}
tls: {min_version: "%s"}
media: {bind: 127.0.0.1, ports: %d-%d}
peers:
  - {name: cvp, kind: cvp, address: "127.0.0.1:%d", transport: tls, verify: insecure-lab}
  - {name: cucm, kind: cucm, address: "127.0.0.1:%d", transport: tls, verify: insecure-lab}
routes:
  - {user: 1xxx, to: cucm, leg: agent}
`, port, tc.minVersion, lo, hi, freePort(t), freePort(t)))
			out, err := exec.Command("sslscan", "--no-colour", "--xml=-", fmt.Sprintf("127.0.0.1:%d", port)).Output()
			if err != nil {
				t.Fatalf("sslscan: %v\n%s", err, out)
			}
			var rep sslscanReport
			if err := xml.Unmarshal(out, &rep); err != nil || len(rep.Tests) != 1 {
				t.Fatalf("sslscan report: %v\n%s", err, out)
			}
			r := rep.Tests[0]
			want := map[string]bool{}
			for _, v := range tc.enabled {
				want[v] = true
			}
			if len(r.Protocols) < 6 {
				t.Fatalf("sslscan tested %d protocol versions:\n%s", len(r.Protocols), out)
			}
			for _, p := range r.Protocols {
				on := p.Enabled == "1"
				if p.Type == "ssl" && on || p.Type == "tls" && on != want[p.Version] {
					t.Errorf("%s %s enabled=%v", p.Type, p.Version, on)
				}
			}
			if r.Renegotiation.Supported != "0" {
				t.Errorf("TLS renegotiation is supported")
			}
			if len(r.Ciphers) == 0 {
				t.Fatalf("no cipher accepted:\n%s", out)
			}
			for _, c := range r.Ciphers {
				aead := strings.Contains(c.Name, "GCM") || strings.Contains(c.Name, "CHACHA20")
				fs := strings.HasPrefix(c.Name, "ECDHE-") || c.Version == "TLSv1.3"
				if !aead || !fs {
					t.Errorf("%s accepts %s: want forward-secret AEAD suites only", c.Version, c.Name)
				}
			}
		})
	}
}
