// Package admin serves ccsbc's admin HTTP API (health, readiness,
// Prometheus metrics, active calls, reload, drain) behind authentication
// and role-based authorization, and holds the metric families the daemon
// updates.
package admin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/ccsbc/ccsbc/config"
)

// Timeouts of the admin listener. Every request is small; the limits keep
// a slow or idle client from holding connections (slowloris).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 5 * time.Second
	maxHeaderBytes    = 16 << 10
	maxBodyBytes      = 4 << 10
	// metricsTimeout bounds a scrape; Prometheus's own default is 10s.
	metricsTimeout = 9 * time.Second
)

// Options are what the daemon plugs into the admin server. Every field is
// optional: an endpoint whose callback is nil answers 501.
type Options struct {
	// Logger receives the admin log: actions, refused requests. Default:
	// none.
	Logger *zap.Logger
	// Gatherer is what GET /metrics serves: the registry NewMetrics
	// registered with.
	Gatherer prometheus.Gatherer
	// Calls lists the calls in progress for GET /calls.
	Calls CallLister
	// Ready says whether the daemon takes calls: nil when it does, else
	// why not (GET /readyz answers 503 with it). Nil Ready: ready once
	// serving, until a drain.
	Ready func() error
	// Reload reloads the configuration (as SIGHUP does) and says why it
	// could not; POST /reload. Reloads are serialised.
	Reload func() error
	// Drain starts draining (as SIGTERM does): new calls are refused,
	// calls in progress go on. It must return promptly, without waiting
	// for the calls to end. POST /drain.
	Drain func()
	// LogLevel is the daemon's log level, which PUT /log/level changes.
	LogLevel *zap.AtomicLevel
	// Certificate is the instance certificate, served with admin.tls.
	// Required then; see config.LoadOrCreateCertificate.
	Certificate *tls.Certificate
	// Now is the clock for call durations. Default time.Now.
	Now func() time.Time
}

// Server is the admin HTTP listener. Its lifecycle: New → Listen → Serve
// (until its context ends); Close releases a listener that Serve never
// took. Update swaps the credentials on reload.
type Server struct {
	opts    Options
	log     *zap.Logger
	listen  netip.AddrPort
	tls     *tls.Config // nil for plain HTTP
	handler http.Handler
	srv     *http.Server

	guard    atomic.Pointer[guard]
	draining atomic.Bool
	reloadMu sync.Mutex // serialises Reload

	mu sync.Mutex   // guards ln
	ln net.Listener // set by Listen
}

// guard is the pair that decides every request; Update swaps it whole so
// that a request never sees new credentials with old roles.
type guard struct {
	authn Authenticator
	authz Authorizer
	empty bool // no credential configured: only /healthz can answer
}

// New prepares the admin server for cfg (validated), whose Admin section
// it serves; nothing is bound until Listen. It returns ErrDisabled when
// admin.listen is "".
func New(cfg *config.Config, o Options) (*Server, error) {
	a := &cfg.Admin
	if !a.Enabled() {
		return nil, ErrDisabled
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{opts: o, log: o.Logger, listen: a.Listen}
	g, err := newGuard(a)
	if err != nil {
		return nil, err
	}
	s.guard.Store(g)
	if a.TLS {
		if o.Certificate == nil {
			return nil, errors.New("admin: admin.tls is set but no instance certificate was given")
		}
		s.tls = &tls.Config{
			Certificates: []tls.Certificate{*o.Certificate},
			// tls.min_version may go below 1.2 for old SIP peers; no
			// admin client needs that.
			MinVersion:   tls.VersionTLS12,
			CipherSuites: config.CipherSuites(tls.VersionTLS12),
			// Ask, never require: a token holder has no certificate.
			// crypto/tls does not verify what is presented (no CA
			// would sign these); Credentials checks it against the pins
			// and a certificate that matches none is refused with 401.
			ClientAuth: tls.RequestClientCert,
		}
		if cfg.TLS.MinVersion == "1.3" {
			s.tls.MinVersion = tls.VersionTLS13
		}
	}
	s.handler = s.routes()
	s.srv = &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.tls,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// TLS handshake errors and the like, at info.
		ErrorLog: zap.NewStdLog(s.log.Named("http")),
	}
	return s, nil
}

func newGuard(a *config.Admin) (*guard, error) {
	authn, err := NewCredentials(a)
	if err != nil {
		return nil, err
	}
	authz, err := NewRoles(a)
	if err != nil {
		return nil, err
	}
	return &guard{authn: authn, authz: authz, empty: authn.Empty()}, nil
}

// Handler returns the admin API as an http.Handler, to test or mount it
// without the listener.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds admin.listen. Call it at start, before taking calls, so
// that a port in use stops the daemon rather than leaving it unobservable.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("admin: already listening")
	}
	ln, err := net.Listen("tcp", s.listen.String())
	if err != nil {
		return fmt.Errorf("admin: listen %s: %w", s.listen, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String()
	s.log.Info("admin listening", zap.String("url", url))
	if s.guard.Load().empty {
		s.log.Info("admin listener has no credentials: only /healthz answers; add admin.tokens (ccsbc admin hash-token)", zap.String("url", url))
	}
	return nil
}

// Addr is the address Listen bound (with the port chosen for port 0);
// invalid before Listen.
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return netip.AddrPort{}
	}
	return s.ln.Addr().(*net.TCPAddr).AddrPort()
}

// Serve serves on the listener Listen bound (binding it first if Listen
// was not called) until ctx ends, then shuts down, giving requests in
// flight a few seconds. It returns nil after a shutdown, else why it
// stopped serving.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
		s.mu.Lock()
		ln = s.ln
		s.mu.Unlock()
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	err := s.srv.Close()
	if ln != nil {
		ln.Close() // already closed by srv.Close if Serve took it
	}
	return err
}

// Update applies the credentials of a reloaded configuration at once:
// requests from then on are decided by the new tokens, clients and roles.
// A change of admin.listen or admin.tls is not applied; Update then
// returns an error wrapping ErrRestartRequired, after applying the rest.
func (s *Server) Update(cfg *config.Config) error {
	g, err := newGuard(&cfg.Admin)
	if err != nil {
		return err
	}
	s.guard.Store(g)
	s.log.Info("admin credentials updated", zap.Int("tokens", len(cfg.Admin.Tokens)), zap.Int("clients", len(cfg.Admin.Clients)))
	if cfg.Admin.Listen != s.listen || cfg.Admin.TLS != (s.tls != nil) {
		return fmt.Errorf("%w: admin.listen and admin.tls changes take effect at the next start", ErrRestartRequired)
	}
	return nil
}

// SetDraining marks the daemon as draining, as SIGTERM does: GET /readyz
// answers 503 from then on, so that a load balancer stops sending calls.
// POST /drain sets it too.
func (s *Server) SetDraining() { s.draining.Store(true) }

// route is one endpoint: the action it performs and its handler.
type route struct {
	pattern string
	action  Action
	h       http.HandlerFunc
}

// routes builds the handler chain:
//
//	cross-origin check (browser CSRF on POST/PUT)
//	  → /healthz, served to anyone
//	  → authenticate: who? (401 when no credential or a wrong one)
//	    → route by method and path (404, 405)
//	      → authorize: may they? (403)
//	        → the endpoint
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range []route{
		{"GET /readyz", ActionReady, s.readyz},
		{"GET /metrics", ActionMetrics, s.metrics()},
		{"GET /calls", ActionCalls, s.calls},
		{"POST /reload", ActionReload, s.reload},
		{"POST /drain", ActionDrain, s.drain},
		{"PUT /log/level", ActionSetLogLevel, s.setLogLevel},
	} {
		mux.Handle(rt.pattern, s.authorize(rt.action, rt.h))
	}
	authenticated := s.authenticate(mux)
	top := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			s.healthz(w, r)
			return
		}
		authenticated.ServeHTTP(w, r)
	})
	// A browser holding a client certificate would present it to a
	// cross-site form that POSTs /drain; CrossOriginProtection refuses
	// such requests (Sec-Fetch-Site, Origin). Tokens are safe already: a
	// browser never adds an Authorization header on its own.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.refused(r, http.StatusForbidden, nil, "cross-origin request from a browser")
		http.Error(w, "forbidden: cross-origin request", http.StatusForbidden)
	}))
	return cop.Handler(top)
}

type ctxKey struct{}

// who is what the authentication step found for a request.
type who struct {
	id    Identity
	authz Authorizer // of the same guard as the Authenticator that found id
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := s.guard.Load()
		id, err := g.authn.Authenticate(r)
		if err != nil {
			reason := trimPrefix(err)
			if errors.Is(err, ErrNoCredentials) {
				reason = "no credentials"
			}
			s.refused(r, http.StatusUnauthorized, nil, reason)
			w.Header().Set("WWW-Authenticate", `Bearer realm="ccsbc admin"`)
			http.Error(w, "unauthorized: present a bearer token or an admin client certificate", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &who{id: id, authz: g.authz})))
	})
}

func (s *Server) authorize(a Action, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wh, _ := r.Context().Value(ctxKey{}).(*who)
		if wh == nil {
			// Unreachable through routes: fail closed all the same.
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if err := wh.authz.Authorize(wh.id, a); err != nil {
			s.refused(r, http.StatusForbidden, &wh.id, trimPrefix(err))
			http.Error(w, "forbidden: "+trimPrefix(err), http.StatusForbidden)
			return
		}
		if ce := s.log.Check(zap.DebugLevel, "admin request"); ce != nil {
			ce.Write(requestFields(r, &wh.id, zap.String("action", string(a)))...)
		}
		h(w, r)
	})
}

// refused logs a refused request: who (when known, never a credential),
// from where, what and why.
func (s *Server) refused(r *http.Request, status int, id *Identity, reason string) {
	s.log.Warn("admin request refused", requestFields(r, id, zap.Int("status", status), zap.String("reason", reason))...)
}

// requestFields describe a request for the log. The path only: a query
// string may hold what a client should not have sent (?token=...).
func requestFields(r *http.Request, id *Identity, more ...zap.Field) []zap.Field {
	f := []zap.Field{
		zap.String("method", r.Method),
		zap.String("path", r.URL.Path),
		zap.String("remote", r.RemoteAddr),
	}
	if id != nil {
		f = append(f, zap.String("identity", id.Name), zap.String("auth", string(id.Method)))
	}
	return append(f, more...)
}

// acted logs an admin action and its outcome.
func (s *Server) acted(r *http.Request, a Action, err error, more ...zap.Field) {
	wh, _ := r.Context().Value(ctxKey{}).(*who)
	var id *Identity
	if wh != nil {
		id = &wh.id
	}
	f := requestFields(r, id, append([]zap.Field{zap.String("action", string(a))}, more...)...)
	if err != nil {
		s.log.Error("admin action failed", append(f, zap.Error(err))...)
		return
	}
	s.log.Info("admin action", f...)
}

// trimPrefix drops the "admin: " of an error for a response body.
func trimPrefix(err error) string {
	msg := err.Error()
	if len(msg) > 7 && msg[:7] == "admin: " {
		return msg[7:]
	}
	return msg
}

func notWired(w http.ResponseWriter, what string) {
	http.Error(w, what+" is not available in this ccsbc", http.StatusNotImplemented)
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// healthz answers while the process runs: a liveness probe, and the one
// endpoint served without credentials. It tells nothing else.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	text(w, http.StatusOK, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		text(w, http.StatusServiceUnavailable, "not ready: draining\n")
		return
	}
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			text(w, http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
			return
		}
	}
	text(w, http.StatusOK, "ready\n")
}

func (s *Server) metrics() http.HandlerFunc {
	if s.opts.Gatherer == nil {
		return func(w http.ResponseWriter, r *http.Request) { notWired(w, "metrics") }
	}
	h := promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(s.log.Named("metrics")),
		ErrorHandling: promhttp.ContinueOnError,
		// Scrapes are cheap but not free; two at once is plenty.
		MaxRequestsInFlight: 2,
		Timeout:             metricsTimeout,
	})
	return h.ServeHTTP
}

func (s *Server) listCalls() []Call {
	calls := s.opts.Calls.ListCalls()
	now := s.opts.Now()
	for i := range calls {
		calls[i].Duration = max(now.Sub(calls[i].Start), 0)
	}
	sortCalls(calls)
	return calls
}

func (s *Server) calls(w http.ResponseWriter, r *http.Request) {
	if s.opts.Calls == nil {
		notWired(w, "the call list")
		return
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		calls := s.listCalls()
		if calls == nil {
			calls = []Call{}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(calls)
	case "table":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = WriteCallsTable(w, s.listCalls())
	default:
		http.Error(w, fmt.Sprintf("format %q is not json or table", cell(f)), http.StatusBadRequest)
	}
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reload == nil {
		notWired(w, "reload")
		return
	}
	s.reloadMu.Lock()
	err := s.opts.Reload()
	s.reloadMu.Unlock()
	s.acted(r, ActionReload, err)
	if err != nil {
		// The operator asked for it and holds the operate role: the
		// reason (a config error with its file and line) is theirs to see.
		text(w, http.StatusInternalServerError, "reload failed: "+err.Error()+"\n")
		return
	}
	text(w, http.StatusOK, "reloaded\n")
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	if s.opts.Drain == nil {
		notWired(w, "drain")
		return
	}
	s.draining.Store(true)
	s.opts.Drain()
	s.acted(r, ActionDrain, nil)
	text(w, http.StatusAccepted, "draining: new calls are refused, calls in progress go on\n")
}

func (s *Server) setLogLevel(w http.ResponseWriter, r *http.Request) {
	lvl := s.opts.LogLevel
	if lvl == nil {
		notWired(w, "the log level")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	before := lvl.Level()
	// zap's handler parses level=debug (form or query) or {"level":"debug"}
	// and answers with the level in JSON.
	rec := &statusRecorder{ResponseWriter: w}
	lvl.ServeHTTP(rec, r)
	if rec.code != 0 && rec.code != http.StatusOK {
		s.acted(r, ActionSetLogLevel, fmt.Errorf("admin: log level not changed: status %d", rec.code))
		return
	}
	s.acted(r, ActionSetLogLevel, nil, zap.Stringer("from", before), zap.Stringer("to", lvl.Level()))
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
