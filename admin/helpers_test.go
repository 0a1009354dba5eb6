package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ccsbc/ccsbc/config"
)

// The tokens of the test configuration, one per role. They are long and
// distinctive so that a test can look for them in every log field.
const (
	tokRead    = "ccsbc_TEST-read-5f1c0e0b7d7a4c1fa1b2c3d4e5f60718"
	tokOperate = "ccsbc_TEST-operate-0a9b8c7d6e5f40312233445566778899"
	tokAdmin   = "ccsbc_TEST-admin-a1b2c3d4e5f60718293a4b5c6d7e8f90"
	tokWrong   = "ccsbc_TEST-wrong-ffffffffffffffffffffffffffffffff"
)

var roleTokens = map[Role]string{RoleRead: tokRead, RoleOperate: tokOperate, RoleAdmin: tokAdmin}

// identityOf is the configured name of each role's token and client.
var identityOf = map[Role]string{RoleRead: "grafana", RoleOperate: "oncall", RoleAdmin: "root"}

// newCert makes a self-signed ECDSA certificate for 127.0.0.1, good for
// server and client authentication, and returns it with its fingerprint.
func newCert(t *testing.T, cn string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, config.Fingerprint(der)
}

// clientCerts are the admin clients of the TLS test configuration, one
// per role, and one certificate that no client pins.
type clientCerts struct {
	byRole   map[Role]tls.Certificate
	unpinned tls.Certificate
}

func newClientCerts(t *testing.T) *clientCerts {
	cc := &clientCerts{byRole: map[Role]tls.Certificate{}}
	for _, r := range []Role{RoleRead, RoleOperate, RoleAdmin} {
		cc.byRole[r], _ = newCert(t, identityOf[r]+"-cert")
	}
	cc.unpinned, _ = newCert(t, "stranger")
	return cc
}

// testConfig is a valid configuration whose admin section listens on
// 127.0.0.1:0 with one token per role and, with clients, one client per
// role (TLS).
func testConfig(t *testing.T, clients *clientCerts) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("model: 1\nlisteners:\n  - {transport: udp, address: 127.0.0.1:5060}\nadmin:\n  listen: 127.0.0.1:0\n")
	if clients != nil {
		b.WriteString("  tls: true\n")
	}
	b.WriteString("  tokens:\n")
	for _, r := range []Role{RoleRead, RoleOperate, RoleAdmin} {
		fmt.Fprintf(&b, "    - {name: %s, sha256: %s, role: %s}\n", identityOf[r], HashToken(roleTokens[r]), r)
	}
	if clients != nil {
		b.WriteString("  clients:\n")
		for _, r := range []Role{RoleRead, RoleOperate, RoleAdmin} {
			fmt.Fprintf(&b, "    - {name: %s-cert, fingerprint: %s, role: %s}\n", identityOf[r], config.Fingerprint(clients.byRole[r].Certificate[0]), r)
		}
	}
	cfg, err := config.Parse("admin-test.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fixture is an admin server serving on 127.0.0.1:0, with callbacks that
// count their calls and a log that the test reads.
type fixture struct {
	srv      *Server
	base     string // http://127.0.0.1:port or https://...
	serverFP string // the server certificate's fingerprint, with TLS
	logs     *observer.ObservedLogs
	level    zap.AtomicLevel
	reloads  atomic.Int32
	drains   atomic.Int32
}

// startOpts changes a fixture's Options before New.
type startOpts func(*Options, *fixture)

// start serves cfg until the test ends, and waits for Serve to return
// then: no goroutine is left behind.
func start(t *testing.T, cfg *config.Config, opts ...startOpts) *fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	f := &fixture{logs: logs, level: zap.NewAtomicLevelAt(zapcore.InfoLevel)}
	o := Options{
		Logger:   zap.New(core),
		Reload:   func() error { f.reloads.Add(1); return nil },
		Drain:    func() { f.drains.Add(1) },
		LogLevel: &f.level,
		Calls:    CallListerFunc(func() []Call { return nil }),
		Gatherer: NewRegistry(),
	}
	if cfg.Admin.TLS {
		cert, fp := newCert(t, "ccsbc")
		o.Certificate, f.serverFP = &cert, fp
	}
	for _, fn := range opts {
		fn(&o, f)
	}
	s, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	f.srv = s
	f.base = "http://" + s.Addr().String()
	if cfg.Admin.TLS {
		f.base = "https://" + s.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

// request is one HTTP request of a test.
type request struct {
	method, path string
	token        string           // bearer token; "" for none
	cert         *tls.Certificate // client certificate; nil for none
	body         string
	header       map[string]string
}

type response struct {
	code   int
	body   string
	header http.Header
}

// do sends r on a connection of its own, trusting the fixture's server
// certificate by its pin.
func (f *fixture) do(t *testing.T, r request) response {
	t.Helper()
	tr := &http.Transport{}
	if f.serverFP != "" {
		conf, err := PinnedTLSConfig(f.serverFP)
		if err != nil {
			t.Fatal(err)
		}
		if r.cert != nil {
			conf.Certificates = []tls.Certificate{*r.cert}
		}
		tr.TLSClientConfig = conf
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(r.method, f.base+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: res.StatusCode, body: string(body), header: res.Header}
}

// client is an admin Client for the fixture.
func (f *fixture) client(t *testing.T, token string, cert *tls.Certificate) *Client {
	t.Helper()
	c := &Client{Addr: f.base, Token: token}
	if f.serverFP != "" {
		conf, err := PinnedTLSConfig(f.serverFP)
		if err != nil {
			t.Fatal(err)
		}
		if cert != nil {
			conf.Certificates = []tls.Certificate{*cert}
		}
		c.TLSConfig = conf
	}
	return c
}

// checkNoSecrets fails if any log entry holds a test token, in its
// message or in any field.
func checkNoSecrets(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		text := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, tok := range []string{tokRead, tokOperate, tokAdmin, tokWrong} {
			if strings.Contains(text, tok) || strings.Contains(text, tok[:20]) {
				t.Errorf("log entry %q holds a token: %s", e.Message, text)
			}
		}
	}
}

func toString(v any) string { return fmt.Sprint(v) }
