package admin

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ccsbc/ccsbc/config"
)

// endpoint is one admin endpoint and how a test calls it.
type endpoint struct {
	method, path, body string
	action             Action
	okCode             int // the status when allowed
}

var endpoints = []endpoint{
	{"GET", "/readyz", "", ActionReady, 200},
	{"GET", "/metrics", "", ActionMetrics, 200},
	{"GET", "/calls", "", ActionCalls, 200},
	{"POST", "/reload", "", ActionReload, 200},
	{"POST", "/drain", "", ActionDrain, 202},
	{"PUT", "/log/level", "level=debug", ActionSetLogLevel, 200},
}

// allowed is the authorization table the tests hold the server to,
// written out rather than derived from roleActions.
var allowed = map[Role]map[Action]bool{
	RoleRead:    {ActionReady: true, ActionMetrics: true, ActionCalls: true},
	RoleOperate: {ActionReady: true, ActionMetrics: true, ActionCalls: true, ActionReload: true, ActionDrain: true},
	RoleAdmin:   {ActionReady: true, ActionMetrics: true, ActionCalls: true, ActionReload: true, ActionDrain: true, ActionSetLogLevel: true},
}

// TestRoleEndpointTable walks role × endpoint × authentication method:
// each role gets exactly the endpoints it should (the callback runs) and
// 403 for the rest (the callback does not run); every refusal is logged
// with who asked.
func TestRoleEndpointTable(t *testing.T) {
	certs := newClientCerts(t)
	for _, method := range []Method{MethodToken, MethodCertificate} {
		for _, role := range []Role{RoleRead, RoleOperate, RoleAdmin} {
			for _, ep := range endpoints {
				t.Run(string(method)+"/"+string(role)+"/"+ep.method+ep.path, func(t *testing.T) {
					var cfg *config.Config
					req := request{method: ep.method, path: ep.path, body: ep.body}
					name := identityOf[role]
					if method == MethodToken {
						cfg = testConfig(t, nil)
						req.token = roleTokens[role]
					} else {
						cfg = testConfig(t, certs)
						cert := certs.byRole[role]
						req.cert = &cert
						name += "-cert"
					}
					f := start(t, cfg)
					res := f.do(t, req)

					want := 403
					if allowed[role][ep.action] {
						want = ep.okCode
					}
					if res.code != want {
						t.Fatalf("%s %s as %s (%s): %d %q, want %d", ep.method, ep.path, role, method, res.code, res.body, want)
					}
					ran := map[Action]bool{ActionReload: f.reloads.Load() > 0, ActionDrain: f.drains.Load() > 0, ActionSetLogLevel: f.level.Level() == zapcore.DebugLevel}
					for a, r := range ran {
						if r != (a == ep.action && want != 403) {
							t.Errorf("%s ran: %v", a, r)
						}
					}
					if want == 403 {
						e := f.logs.FilterMessage("admin request refused").All()
						if len(e) != 1 || e[0].ContextMap()["identity"] != name || e[0].ContextMap()["status"] != int64(403) ||
							e[0].ContextMap()["auth"] != string(method) || !strings.Contains(e[0].ContextMap()["reason"].(string), string(ep.action)) {
							t.Errorf("refusal log: %+v", e)
						}
						if !strings.Contains(res.body, "does not allow "+string(ep.action)) {
							t.Errorf("403 body %q does not say why", res.body)
						}
					}
					checkNoSecrets(t, f.logs)
				})
			}
		}
	}
}

// TestUnauthenticated: without credentials only /healthz answers; every
// other path, known or not, is 401 with a WWW-Authenticate challenge.
func TestUnauthenticated(t *testing.T) {
	f := start(t, testConfig(t, nil))
	if res := f.do(t, request{method: "GET", path: "/healthz"}); res.code != 200 || res.body != "ok\n" {
		t.Errorf("/healthz: %d %q", res.code, res.body)
	}
	if res := f.do(t, request{method: "HEAD", path: "/healthz"}); res.code != 200 {
		t.Errorf("HEAD /healthz: %d", res.code)
	}
	if res := f.do(t, request{method: "POST", path: "/healthz"}); res.code != 405 {
		t.Errorf("POST /healthz: %d", res.code)
	}
	paths := []string{"/", "/nope", "/healthz/x", "/debug/pprof/"}
	for _, ep := range endpoints {
		paths = append(paths, ep.path)
	}
	for _, p := range paths {
		for _, m := range []string{"GET", "POST"} {
			res := f.do(t, request{method: m, path: p})
			if res.code != 401 || res.header.Get("WWW-Authenticate") != `Bearer realm="ccsbc admin"` {
				t.Errorf("%s %s without credentials: %d %q", m, p, res.code, res.header.Get("WWW-Authenticate"))
			}
		}
	}
	if f.reloads.Load() != 0 || f.drains.Load() != 0 {
		t.Errorf("an unauthenticated request ran an action")
	}
	e := f.logs.FilterMessage("admin request refused").FilterField(zap.String("reason", "no credentials")).All()
	if len(e) != 2*len(paths) {
		t.Errorf("%d refusals logged, want %d", len(e), 2*len(paths))
	}
	if _, ok := e[0].ContextMap()["identity"]; ok {
		t.Errorf("an unauthenticated refusal names an identity: %v", e[0].ContextMap())
	}
}

// TestWrongCredentials: a wrong token, a malformed Authorization header
// or an unpinned client certificate is 401, even for /healthz's
// neighbours and even when a good credential comes along; the log says
// why without the token.
func TestWrongCredentials(t *testing.T) {
	certs := newClientCerts(t)
	f := start(t, testConfig(t, certs))
	good := certs.byRole[RoleAdmin]
	tests := []struct {
		name   string
		req    request
		reason string
	}{
		{"wrong token", request{token: tokWrong}, "bearer token matches no admin token"},
		{"token of another case", request{token: strings.ToUpper(tokRead)}, "bearer token matches no admin token"},
		{"basic auth", request{header: map[string]string{"Authorization": "Basic " + tokRead}}, `the Authorization header is not "Bearer TOKEN"`},
		{"token without scheme", request{header: map[string]string{"Authorization": tokRead}}, `the Authorization header is not "Bearer TOKEN"`},
		{"empty bearer", request{header: map[string]string{"Authorization": "Bearer "}}, "empty bearer token"},
		{"unpinned certificate", request{cert: &certs.unpinned}, `client certificate "CN=stranger"`},
		{"unpinned certificate with a good token", request{cert: &certs.unpinned, token: tokAdmin}, "is not an admin client"},
		{"good certificate with a wrong token", request{cert: &good, token: tokWrong}, "bearer token matches no admin token"},
	}
	f.logs.TakeAll()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.method, tt.req.path = "POST", "/drain"
			res := f.do(t, tt.req)
			if res.code != 401 {
				t.Fatalf("%d %q, want 401", res.code, res.body)
			}
			e := f.logs.TakeAll()
			if len(e) != 1 || e[0].Message != "admin request refused" || !strings.Contains(e[0].ContextMap()["reason"].(string), tt.reason) {
				t.Errorf("log: %+v", e)
			}
			checkNoSecrets(t, f.logs)
			for _, entry := range e {
				if s := entry.Message + " " + strings.ToUpper(toString(entry.ContextMap())); strings.Contains(s, strings.ToUpper(tokRead)) || strings.Contains(s, strings.ToUpper(tokWrong)) {
					t.Errorf("token in log: %s", s)
				}
			}
		})
	}
	if f.drains.Load() != 0 {
		t.Errorf("a refused request drained")
	}
	// A good certificate and the token of another identity: both are
	// accepted, the token names who acted.
	res := f.do(t, request{method: "POST", path: "/reload", cert: &good, token: tokOperate})
	if res.code != 200 {
		t.Fatalf("certificate and token: %d %q", res.code, res.body)
	}
	if e := f.logs.FilterMessage("admin action").All(); len(e) != 1 || e[0].ContextMap()["identity"] != "oncall" || e[0].ContextMap()["auth"] != "token" {
		t.Errorf("action log: %+v", e)
	}
}

// TestTLSWithoutCertificate: over TLS, a client with no certificate
// authenticates by token, and the handshake asks for one without
// requiring it.
func TestTLSWithoutCertificate(t *testing.T) {
	f := start(t, testConfig(t, newClientCerts(t)))
	if res := f.do(t, request{method: "GET", path: "/calls", token: tokRead}); res.code != 200 {
		t.Errorf("token over TLS: %d %q", res.code, res.body)
	}
	if res := f.do(t, request{method: "GET", path: "/healthz"}); res.code != 200 {
		t.Errorf("/healthz over TLS: %d", res.code)
	}
	// A client that pins another certificate refuses the server.
	_, otherFP := newCert(t, "impostor")
	c := &Client{Addr: f.base, Token: tokRead}
	conf, _ := PinnedTLSConfig(otherFP)
	c.TLSConfig = conf
	if _, err := c.Calls(context.Background()); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("wrong pin: %v", err)
	}
}

// TestActionsLogged: reload, drain and a log level change are logged with
// who did them, and a failed reload with why.
func TestActionsLogged(t *testing.T) {
	f := start(t, testConfig(t, nil), func(o *Options, f *fixture) {
		o.Reload = func() error {
			f.reloads.Add(1)
			return errors.New("lab.yaml:12: routes[0].to: \"ucm\" is not a peer")
		}
	})
	res := f.do(t, request{method: "POST", path: "/reload", token: tokOperate})
	if res.code != 500 || !strings.Contains(res.body, `reload failed: lab.yaml:12: routes[0].to: "ucm" is not a peer`) {
		t.Errorf("failed reload: %d %q", res.code, res.body)
	}
	if res := f.do(t, request{method: "POST", path: "/drain", token: tokOperate}); res.code != 202 {
		t.Errorf("drain: %d %q", res.code, res.body)
	}
	if res := f.do(t, request{method: "PUT", path: "/log/level", token: tokAdmin, body: "level=warn"}); res.code != 200 || !strings.Contains(res.body, `"level":"warn"`) {
		t.Errorf("log level: %d %q", res.code, res.body)
	}
	if res := f.do(t, request{method: "PUT", path: "/log/level", token: tokAdmin, body: "level=loud"}); res.code != 400 {
		t.Errorf("bad log level: %d %q", res.code, res.body)
	}

	want := []struct {
		msg, action, identity string
		extra                 map[string]any
	}{
		{"admin action failed", "reload", "oncall", map[string]any{"error": `lab.yaml:12: routes[0].to: "ucm" is not a peer`}},
		{"admin action", "drain", "oncall", nil},
		{"admin action", "set-log-level", "root", map[string]any{"from": "info", "to": "warn"}},
		{"admin action failed", "set-log-level", "root", nil},
	}
	var got []map[string]any
	for _, e := range f.logs.All() {
		if strings.HasPrefix(e.Message, "admin action") {
			m := e.ContextMap()
			m["msg"] = e.Message
			got = append(got, m)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("action logs: %v", got)
	}
	for i, w := range want {
		g := got[i]
		if g["msg"] != w.msg || g["action"] != w.action || g["identity"] != w.identity || g["auth"] != "token" || g["method"] == nil || g["remote"] == nil {
			t.Errorf("log %d = %v, want %s %s by %s", i, g, w.msg, w.action, w.identity)
		}
		for k, v := range w.extra {
			if toString(g[k]) != toString(v) {
				t.Errorf("log %d: %s = %v, want %v", i, k, g[k], v)
			}
		}
	}
	checkNoSecrets(t, f.logs)
}

// TestReadyz: ready while Ready says so, 503 with its reason otherwise,
// and 503 for good once draining.
func TestReadyz(t *testing.T) {
	var notReady error = errors.New("SIP listeners not bound yet")
	f := start(t, testConfig(t, nil), func(o *Options, _ *fixture) { o.Ready = func() error { return notReady } })
	get := func() response { return f.do(t, request{method: "GET", path: "/readyz", token: tokRead}) }
	if res := get(); res.code != 503 || res.body != "not ready: SIP listeners not bound yet\n" {
		t.Errorf("not ready: %d %q", res.code, res.body)
	}
	notReady = nil
	if res := get(); res.code != 200 || res.body != "ready\n" {
		t.Errorf("ready: %d %q", res.code, res.body)
	}
	f.srv.SetDraining()
	if res := get(); res.code != 503 || res.body != "not ready: draining\n" {
		t.Errorf("draining: %d %q", res.code, res.body)
	}
	if res := f.do(t, request{method: "GET", path: "/healthz"}); res.code != 200 {
		t.Errorf("healthz while draining: %d", res.code)
	}
}

// TestCrossOrigin: a browser's cross-site POST is refused even with a
// credential (a browser may present a client certificate by itself).
func TestCrossOrigin(t *testing.T) {
	f := start(t, testConfig(t, nil))
	res := f.do(t, request{method: "POST", path: "/drain", token: tokAdmin, header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	if res.code != 403 || f.drains.Load() != 0 {
		t.Errorf("cross-site drain: %d %q, drains %d", res.code, res.body, f.drains.Load())
	}
	if e := f.logs.FilterMessage("admin request refused").All(); len(e) != 1 {
		t.Errorf("not logged: %v", f.logs.All())
	}
	// A cross-site GET is harmless and allowed.
	if res := f.do(t, request{method: "GET", path: "/calls", token: tokRead, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}); res.code != 200 {
		t.Errorf("cross-site GET: %d", res.code)
	}
}

// TestNotWired: endpoints whose callback the daemon did not provide
// answer 501 (after authorization).
func TestNotWired(t *testing.T) {
	f := start(t, testConfig(t, nil), func(o *Options, _ *fixture) { *o = Options{Logger: o.Logger} })
	for _, ep := range endpoints {
		if ep.action == ActionReady {
			continue
		}
		if res := f.do(t, request{method: ep.method, path: ep.path, token: tokAdmin, body: ep.body}); res.code != 501 {
			t.Errorf("%s %s: %d %q", ep.method, ep.path, res.code, res.body)
		}
	}
	if res := f.do(t, request{method: "POST", path: "/reload", token: tokRead}); res.code != 403 {
		t.Errorf("unwired but forbidden: %d", res.code)
	}
}

// TestUpdate: a reload swaps the credentials at once; a listener change
// is reported as needing a restart.
func TestUpdate(t *testing.T) {
	cfg := testConfig(t, nil)
	f := start(t, cfg)
	rotated := "ccsbc_TEST-rotated-00112233445566778899aabbccddeeff"
	next, err := config.Parse("next.yaml", []byte(`model: 1
listeners:
  - {transport: udp, address: 127.0.0.1:5060}
admin:
  listen: 127.0.0.1:0
  tokens:
    - {name: grafana, sha256: `+HashToken(rotated)+`, role: read}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Update(next); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if res := f.do(t, request{method: "GET", path: "/calls", token: tokRead}); res.code != 401 {
		t.Errorf("old token after rotation: %d", res.code)
	}
	if res := f.do(t, request{method: "GET", path: "/calls", token: rotated}); res.code != 200 {
		t.Errorf("new token: %d", res.code)
	}
	next.Admin.Listen = netip.MustParseAddrPort("127.0.0.1:9999")
	if err := f.srv.Update(next); !errors.Is(err, ErrRestartRequired) {
		t.Errorf("listen change: %v", err)
	}
}

func TestNew(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Admin.Listen = netip.AddrPort{}
	if _, err := New(cfg, Options{}); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled: %v", err)
	}
	if _, err := New(testConfig(t, newClientCerts(t)), Options{}); err == nil || !strings.Contains(err.Error(), "no instance certificate") {
		t.Errorf("tls without a certificate: %v", err)
	}

	// A port in use fails Listen, not later.
	f := start(t, testConfig(t, nil))
	cfg = testConfig(t, nil)
	cfg.Admin.Listen = f.srv.Addr()
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil || !strings.Contains(err.Error(), "admin: listen "+f.srv.Addr().String()) {
		t.Errorf("port in use: %v", err)
	}
	s.Close()
}

// TestServeShutdown: Serve returns nil once its context ends, and the
// port is released.
func TestServeShutdown(t *testing.T) {
	s, err := New(testConfig(t, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Addr().IsValid() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	addr := s.Addr()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	cfg := testConfig(t, nil)
	cfg.Admin.Listen = addr
	s2, _ := New(cfg, Options{})
	if err := s2.Listen(); err != nil {
		t.Errorf("port not released: %v", err)
	}
	s2.Close()
}
