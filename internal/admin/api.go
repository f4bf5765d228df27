package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/runtime"
)

// MaxPluginBytes bounds an uploaded plugin.
const MaxPluginBytes = 64 << 20

// pipelines is the set of pipelines the API manages.
type pipelines struct {
	mu sync.Mutex
	m  map[string]*runtime.Pipeline
}

func newPipelines() pipelines { return pipelines{m: map[string]*runtime.Pipeline{}} }

func (ps *pipelines) add(p *runtime.Pipeline) {
	ps.mu.Lock()
	ps.m[p.Status().Name] = p
	ps.mu.Unlock()
}

func (ps *pipelines) get(name string) *runtime.Pipeline {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.m[name]
}

// failed returns the error of a registered pipeline whose run failed
// (the first by name), nil if none did.
func (ps *pipelines) failed() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(ps.m)) {
		if _, err := ps.m[name].Ended(); err != nil {
			return fmt.Errorf("pipeline %s stopped: %w", name, err)
		}
	}
	return nil
}

// statuses serves GET /v1/pipelines: every pipeline's status, by name.
func (ps *pipelines) statuses(w http.ResponseWriter, _ *http.Request) {
	ps.mu.Lock()
	out := make([]runtime.Status, 0, len(ps.m))
	for _, p := range ps.m {
		out = append(out, p.Status())
	}
	ps.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// Register puts p under the API's control (/v1/pipelines/NAME).
func (s *Server) Register(p *runtime.Pipeline) { s.pl.add(p) }

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *runtime.Pipeline {
	p := s.pl.get(r.PathValue("name"))
	if p == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("no pipeline %q", r.PathValue("name")))
	}
	return p
}

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/pipelines", s.pl.statuses)
	mux.HandleFunc("GET /v1/pipelines/{name}", func(w http.ResponseWriter, r *http.Request) {
		if p := s.lookup(w, r); p != nil {
			writeJSON(w, http.StatusOK, p.Status())
		}
	})
	mux.HandleFunc("POST /v1/pipelines/{name}/plugin", wasmBody(s.mutating(s.swap)))
	mux.HandleFunc("POST /v1/pipelines/{name}/rollback", s.mutating(func(w http.ResponseWriter, r *http.Request, p *runtime.Pipeline) {
		res, err := p.Rollback(r.Context())
		if err != nil {
			writeError(w, http.StatusConflict, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}))
	mux.HandleFunc("POST /v1/pipelines/{name}/pause", s.mutating(func(w http.ResponseWriter, _ *http.Request, p *runtime.Pipeline) {
		p.Pause()
		writeJSON(w, http.StatusOK, p.Status())
	}))
	mux.HandleFunc("POST /v1/pipelines/{name}/resume", s.mutating(func(w http.ResponseWriter, _ *http.Request, p *runtime.Pipeline) {
		p.Resume()
		writeJSON(w, http.StatusOK, p.Status())
	}))
}

// mutating checks the token and resolves the pipeline. An unknown name is a
// 404 before anything else happens: names from URLs never reach metric
// labels (pipelines label their metrics with their own, registered names).
func (s *Server) mutating(h func(http.ResponseWriter, *http.Request, *runtime.Pipeline)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.Authorized(r) {
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		if p := s.lookup(w, r); p != nil {
			h(w, r, p)
		}
	}
}

// wasmBody refuses an upload not sent as application/wasm: a browser cannot
// send that type cross-origin without a CORS preflight, which this server
// never grants (a form or text/plain POST needs none).
func wasmBody(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/wasm" {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Errorf("plugin upload with Content-Type %q: send the module as application/wasm", r.Header.Get("Content-Type")))
			return
		}
		h(w, r)
	}
}

// swap compiles the uploaded module (body) with ?config=k=v parameters and
// swaps it in.
func (s *Server) swap(w http.ResponseWriter, r *http.Request, p *runtime.Pipeline) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPluginBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("plugin larger than %d bytes or unreadable: %w", MaxPluginBytes, err))
		return
	}
	var cfg []abi.Header
	for _, kv := range r.URL.Query()["config"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			writeError(w, http.StatusBadRequest, fmt.Errorf("config %q: want key=value", kv))
			return
		}
		cfg = append(cfg, abi.Header{Key: []byte(k), Value: []byte(v)})
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "uploaded.wasm"
	}
	plugin, err := p.Engine().Compile(r.Context(), name, body)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	res, err := p.Swap(r.Context(), plugin, cfg)
	if err != nil {
		code := http.StatusConflict
		if host.IsLoadError(err) {
			code = http.StatusUnprocessableEntity
		}
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
