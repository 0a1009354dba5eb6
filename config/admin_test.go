package config

import (
	"net/netip"
	"strings"
	"testing"
)

// tokenHash is a well-formed admin token hash for snippets (the SHA-256 of
// "test").
const tokenHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// adminSnippet is a valid configuration followed by admin, a YAML
// fragment; the admin: key is on line 4.
func adminSnippet(admin string) string {
	return "model: 1\nlisteners:\n  - {transport: tcp, address: 127.0.0.1:5060}\n" + admin
}

func TestParseAdminErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "roles",
			yaml: adminSnippet(`admin:
  tokens:
    - {name: grafana, sha256: ` + tokenHash + `, role: reader}
    - {name: alice, sha256: ` + strings.ToUpper(tokenHash[:62]) + `ff}
`),
			want: []string{
				`lab.yaml:6: admin.tokens[0].role: "reader" is not a role; use read (metrics, calls), operate (read, reload, drain) or admin (everything)`,
				`lab.yaml:7: admin.tokens[1].role: required; one of read, operate, admin`,
			},
		},
		{
			name: "token hashes",
			yaml: adminSnippet(`admin:
  tokens:
    - name: a
      sha256: not-a-hash
      role: read
    - name: b
      sha256: ` + strings.Repeat("zz", 32) + `
      role: read
    - name: c
      role: read
    - name: d
      sha256: ` + tokenHash + `
      role: read
    - name: e
      sha256: ` + strings.ToUpper(tokenHash) + `
      role: admin
`),
			want: []string{
				"lab.yaml:7: admin.tokens[0].sha256: a value of 10 characters is not a SHA-256 (64 hex digits); tokens are stored hashed: write the SHA-256 of the token, as `ccsbc admin hash-token` prints it, never the token itself",
				"lab.yaml:10: admin.tokens[1].sha256: not hex; tokens are stored hashed",
				"lab.yaml:12: admin.tokens[2].sha256: required; tokens are stored hashed",
				"lab.yaml:18: admin.tokens[4].sha256: the same token as admin.tokens[3] (line 14); give each holder a token of their own",
			},
		},
		{
			name: "names",
			yaml: adminSnippet(`admin:
  tls: true
  tokens:
    - {name: ops, sha256: ` + tokenHash + `, role: operate}
    - {sha256: ` + strings.Repeat("ab", 32) + `, role: read}
    - {name: "jane doe", sha256: ` + strings.Repeat("cd", 32) + `, role: read}
  clients:
    - {name: ops, fingerprint: ` + pin + `, role: read}
`),
			want: []string{
				`lab.yaml:8: admin.tokens[1].name: required; logs name whoever uses the credential by it`,
				`lab.yaml:9: admin.tokens[2].name: "jane doe" has spaces or control characters; use a plain name such as grafana or alice@example.com`,
				`lab.yaml:11: admin.clients[0].name: "ops" is already the name of admin.tokens[0] (line 7); each token and client needs its own name, so that logs say who acted`,
			},
		},
		{
			name: "client fingerprints",
			yaml: adminSnippet(`admin:
  tls: true
  clients:
    - {name: a, fingerprint: ` + pin + `, role: read}
    - {name: b, fingerprint: "` + strings.ToUpper(pin[:2]) + ":" + pin[2:] + `", role: read}
    - {name: c, fingerprint: 5B:8E:51:3E:6B:32:9D:44:D7:2E:50:50:3A:0B:1D:85:02:BF:7C:E4, role: read}
    - {name: d, role: read}
`),
			want: []string{
				`lab.yaml:8: admin.clients[1].fingerprint: the same certificate as admin.clients[0] (line 7); each client needs a certificate of its own`,
				`lab.yaml:9: admin.clients[2].fingerprint: "5B:8E:51:3E:6B:32:9D:44:D7:2E:50:50:3A:0B:1D:85:02:BF:7C:E4" is 20 bytes, a SHA-1; pin the SHA-256 instead`,
				`lab.yaml:10: admin.clients[3].fingerprint: required; the SHA-256 of the client's certificate`,
			},
		},
		{
			name: "clients without tls",
			yaml: adminSnippet(`admin:
  clients:
    - {name: nms, fingerprint: ` + pin + `, role: read}
`),
			want: []string{`lab.yaml:5: admin.clients: client certificates are only asked for over TLS; set admin.tls: true, or authenticate these clients with tokens`},
		},
		{
			name: "listen addresses",
			yaml: adminSnippet(`admin:
  listen: 127.0.0.1:5060
`),
			want: []string{`lab.yaml:5: admin.listen: TCP 127.0.0.1:5060 is already bound by listeners[0] (line 3); give the admin listener another port, e.g. 9060`},
		},
		{
			name: "listen on a perimeter-blocked port",
			yaml: adminSnippet(`admin:
  listen: 0.0.0.0:445
`),
			want: []string{`lab.yaml:5: admin.listen: TCP port 445 is one the perimeter firewall blocks (Network Firewall Topology) and ccsbc never listens on it; use 9060`},
		},
		{
			name: "listen written as a boolean or a host name",
			yaml: adminSnippet(`admin:
  listen: false
  tokens:
    - {name: a, sha256: ` + tokenHash + `, role: read, token: s3cret}
`),
			want: []string{
				`lab.yaml:5: admin.listen: "false" is not an IP:port; write "" to disable the admin listener, or an address such as 127.0.0.1:9060`,
				`lab.yaml:7: admin.tokens[0].token: unknown key; the keys of an admin token are: name, sha256, role`,
			},
		},
		{
			name: "unknown admin key",
			yaml: adminSnippet(`admin:
  lisen: 127.0.0.1:9060
  tokens: {name: a}
`),
			want: []string{
				`lab.yaml:5: admin.lisen: unknown key; did you mean "listen"? The keys of admin are: listen, tls, tokens, clients`,
				`lab.yaml:6: admin.tokens: expected a list, got a mapping; write it as - {name: grafana, sha256: <from ccsbc admin hash-token>, role: read}`,
			},
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

// TestAdminTokenNotEchoed: an operator who pastes a token where its hash
// belongs gets an error that does not repeat it, since errors end up in
// logs and CI output.
func TestAdminTokenNotEchoed(t *testing.T) {
	for _, token := range []string{
		"s3cret-Token_value",
		"Qm9vdHN0cmFwVG9rZW5UaGF0SXNMb25nRW5vdWdoVG9CZTY0Q2hhcnNYWFhYWFhY", // 64 characters, not hex
	} {
		_, err := Parse("lab.yaml", []byte(adminSnippet("admin:\n  tokens:\n    - {name: a, role: read, sha256: "+token+"}\n")))
		if err == nil || !strings.Contains(err.Error(), "admin.tokens[0].sha256") {
			t.Fatalf("error: %v", err)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("the error repeats the token: %v", err)
		}
	}
}

func TestParseAdmin(t *testing.T) {
	tests := []struct {
		name   string
		admin  string
		listen string // "" for disabled
		tls    bool
	}{
		{"absent", "", "127.0.0.1:9060", false},
		{"null listen", "admin:\n  listen:\n", "127.0.0.1:9060", false},
		{"empty mapping", "admin: {}\n", "127.0.0.1:9060", false},
		{"disabled", "admin:\n  listen: \"\"\n", "", false},
		{"port 0", "admin:\n  listen: 127.0.0.1:0\n", "127.0.0.1:0", false},
		{"ipv6 loopback", "admin:\n  listen: \"[::1]:9443\"\n  tls: true\n", "[::1]:9443", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("lab.yaml", []byte(adminSnippet(tt.admin)))
			if err != nil {
				t.Fatal(err)
			}
			want := netip.AddrPort{}
			if tt.listen != "" {
				want = netip.MustParseAddrPort(tt.listen)
			}
			if c.Admin.Listen != want || c.Admin.Enabled() != (tt.listen != "") || c.Admin.TLS != tt.tls {
				t.Errorf("admin = %+v, want listen %v tls %v", c.Admin, want, tt.tls)
			}
			if w := c.Warnings(); len(w) != 0 {
				t.Errorf("warnings: %q", w)
			}
			// Defaults applied again keep a disabled listener disabled.
			c.ApplyDefaults()
			if c.Admin.Listen != want {
				t.Errorf("after ApplyDefaults again: listen %v, want %v", c.Admin.Listen, want)
			}
		})
	}

	c, err := Parse("lab.yaml", []byte(adminSnippet(`admin:
  tls: true
  tokens:
    - {name: prometheus, sha256: `+strings.ToUpper(tokenHash)+`, role: read}
    - {name: oncall, sha256: `+strings.Repeat("0f", 32)+`, role: operate}
  clients:
    - {name: nms, fingerprint: "`+strings.ToUpper(pin[:2])+":"+pin[2:]+`", role: admin}
`)))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Admin
	if len(a.Tokens) != 2 || a.Tokens[0] != (AdminToken{Name: "prometheus", SHA256: strings.ToUpper(tokenHash), Role: "read", Line: 7}) ||
		a.Tokens[1].Role != AdminRoleOperate {
		t.Errorf("tokens = %+v", a.Tokens)
	}
	if len(a.Clients) != 1 || a.Clients[0].Name != "nms" || a.Clients[0].Role != AdminRoleAdmin || a.Clients[0].Line != 10 {
		t.Errorf("clients = %+v", a.Clients)
	}
}

func TestAdminWarnings(t *testing.T) {
	tests := []struct {
		admin string
		want  string // "" for no warning
	}{
		{"admin:\n  listen: 127.0.0.1:9060\n", ""},
		{"admin:\n  listen: 127.0.0.2:9060\n", ""},
		{"admin:\n  listen: \"[::1]:9060\"\n", ""},
		{"admin:\n  listen: \"\"\n", ""},
		{"admin:\n  listen: 192.0.2.10:9060\n  tls: true\n", ""},
		{"admin:\n  listen: 192.0.2.10:9060\n", "lab.yaml:5: admin.listen: 192.0.2.10:9060 is not a loopback address and admin.tls is false: bearer tokens, metrics and call data cross the network in clear; set admin.tls: true, or bind 127.0.0.1"},
		{"admin:\n  listen: 0.0.0.0:9060\n", "lab.yaml:5: admin.listen: 0.0.0.0:9060 is not a loopback address"},
		{"admin:\n  listen: \"[::]:9060\"\n", "lab.yaml:5: admin.listen: [::]:9060 is not a loopback address"},
	}
	for _, tt := range tests {
		c, err := Parse("lab.yaml", []byte(adminSnippet(tt.admin)))
		if err != nil {
			t.Fatal(err)
		}
		w := c.Warnings()
		switch {
		case tt.want == "" && len(w) != 0:
			t.Errorf("%q: warnings %q", tt.admin, w)
		case tt.want != "" && (len(w) != 1 || !strings.HasPrefix(w[0], tt.want)):
			t.Errorf("%q: warnings %q, want %q", tt.admin, w, tt.want)
		}
	}
}

// TestAdminInCode: a Config built in code gets the default listener,
// and its errors carry the token's Line.
func TestAdminInCode(t *testing.T) {
	c := &Config{
		Model:     1,
		Listeners: []Listener{{Transport: "udp", Address: netip.MustParseAddrPort("127.0.0.1:5060")}},
		Admin:     Admin{Tokens: []AdminToken{{Name: "a", SHA256: tokenHash, Role: "root", Line: 12}}},
	}
	c.ApplyDefaults()
	if c.Admin.Listen != netip.MustParseAddrPort("127.0.0.1:9060") {
		t.Errorf("listen = %v", c.Admin.Listen)
	}
	checkErrors(t, c.Validate(), []string{`config:12: admin.tokens[0].role: "root" is not a role`})

	c.Admin.Tokens[0].Role = AdminRoleRead
	c.Admin.Listen = netip.AddrPort{}
	if err := c.Validate(); err != nil || c.Admin.Enabled() {
		t.Errorf("disabled in code: %v, enabled %v", err, c.Admin.Enabled())
	}
}
