package config

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzParse: whatever the file holds, Parse returns a valid Config or
// errors that each name the file, and never panics or hangs.
func FuzzParse(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte("model: 2\nlisteners:\n  - {transport: tls, address: 127.0.0.1:5061}\n"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\npeers: [*b, *b]\n"))
	f.Add([]byte("peers:\n  - &p {name: a, <<: *p}\n"))
	f.Add([]byte("- [\n"))
	f.Add([]byte("admin:\n  listen: \"\"\n  tls: true\n  tokens: [{name: a, sha256: x, role: y}]\n  clients: [{name: a, fingerprint: zz}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil Config and nil error")
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse accepted what Validate refuses: %v", err)
			}
			c.Warnings()
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml") {
				t.Fatalf("error line does not name the file: %q", line)
			}
		}
	})
}

// TestAliasBomb: merges of merges that would double at each level are
// refused once the file expands too far, not walked for ever.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("model: 1\nlisteners: [{transport: udp, address: 127.0.0.1:5060}]\npeers:\n  - &m0 {name: a}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "  - &m%d {<<: [*m%d, *m%d]}\n", i, i-1, i-1)
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "expands to more than") || strings.Count(err.Error(), "\n") > 0 {
		t.Fatalf("alias bomb: %v", err)
	}
}
