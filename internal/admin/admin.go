// Package admin serves helios-wasm's administrative HTTP endpoints:
// /metrics (Prometheus), /healthz, /readyz, and the JSON API under /v1
// (pipelines: status, plugin swap, rollback, pause, resume).
//
// Every request must name this server in its Host header and must not come
// from another origin's web page (see guard); every mutating request must
// carry the bearer token, on loopback too.
package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures a Server.
type Config struct {
	// Addr is the listen address, e.g. 127.0.0.1:8080.
	Addr string
	// Token is required (as "Authorization: Bearer TOKEN") on every
	// mutating request, also on loopback. Required: Start refuses an empty
	// one (LoadOrCreateToken keeps one in the data directory).
	Token string
	// AllowedHosts are Host header values accepted besides the listen
	// address (and, for a loopback listener, its localhost, 127.0.0.1 and
	// [::1] forms): "host:port", or "host" for any port. A listener on a
	// non-loopback or wildcard address needs the names its clients use,
	// e.g. a Kubernetes probe's podIP. Default: none.
	AllowedHosts []string
	// Gatherer provides /metrics.
	Gatherer prometheus.Gatherer
}

// Server is a running admin server.
type Server struct {
	srv   *http.Server
	ln    net.Listener
	ready atomic.Bool
	token string
	hosts hostSet
	done  chan error
	pl    pipelines
}

// ErrNeedToken means Start was called without a token.
var ErrNeedToken = errors.New("admin: a bearer token is required, also on loopback (set one, or keep one in the data directory with LoadOrCreateToken)")

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Token == "" {
		return nil, ErrNeedToken
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("admin address %q: %w", cfg.Addr, err)
	}
	extra, err := parseHosts(cfg.AllowedHosts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	s := &Server{ln: ln, token: cfg.Token, hosts: listenHosts(cfg.Addr, ln.Addr()).with(extra), done: make(chan error, 1), pl: newPipelines()}
	mux := http.NewServeMux()
	s.routes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.pl.failed(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if !s.ready.Load() {
			http.Error(w, "not ready: recovering", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	s.srv = &http.Server{Handler: s.guard(mux), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetReady switches /readyz.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Authorized reports whether r carries the token. Mutating endpoints must
// check it.
func (s *Server) Authorized(r *http.Request) bool {
	want := "Bearer " + s.token
	got := r.Header.Get("Authorization")
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Close stops the server.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
