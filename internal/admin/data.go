package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/heliosdb/helios-wasm/internal/logio"
	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// SocketName is the unix socket a running process serves its data
// directory on, so that produce, consume and topics work while it holds the
// directory's lock.
const SocketName = "helios.sock"

// SocketPath is the socket of the data directory dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// DataServer serves a data directory to other commands over a unix socket.
type DataServer struct {
	srv  *http.Server
	path string
	done chan error
	pl   pipelines
}

// Register makes p's status readable over the socket.
func (s *DataServer) Register(p *runtime.Pipeline) { s.pl.add(p) }

// ServeData listens on the data directory's socket. A stale socket file
// (from a killed process; the directory lock proves nobody serves it) is
// replaced.
func ServeData(db *storage.DB) (*DataServer, error) {
	path := SocketPath(db.Dir())
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("data socket %s: %w", path, err)
	}
	s := &DataServer{path: path, done: make(chan error, 1), pl: newPipelines()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/pipelines", s.pl.statuses)
	mux.HandleFunc("GET /v1/dlq/{pipeline}", func(w http.ResponseWriter, r *http.Request) {
		q, err := runtime.NewDeadLetterQueue(db, r.PathValue("pipeline"))
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		entries := []runtime.DLQEntry{}
		if err := q.List(func(e runtime.DLQEntry) error { entries = append(entries, e); return nil }); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, entries)
	})
	mux.HandleFunc("GET /v1/late/{pipeline}", func(w http.ResponseWriter, r *http.Request) {
		rep, err := runtime.LateRecords(db, r.PathValue("pipeline"))
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	mux.HandleFunc("POST /v1/dlq/{pipeline}/purge", s.dlqOp(func(ctx context.Context, p *runtime.Pipeline, ids []uint64) (any, error) {
		n, err := p.PurgeDeadLetters(ctx, ids)
		if err != nil {
			return nil, err
		}
		return DLQPurgeResult{Purged: n, Left: p.DeadLetterQueue().Size()}, nil
	}))
	mux.HandleFunc("POST /v1/dlq/{pipeline}/retry", s.dlqOp(func(ctx context.Context, p *runtime.Pipeline, ids []uint64) (any, error) {
		return p.RetryDeadLetters(ctx, ids)
	}))
	mux.HandleFunc("GET /v1/topics", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, db.Topics()) })
	mux.HandleFunc("POST /v1/topics/{topic}/records", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		topic := r.PathValue("topic")
		parts, _ := strconv.Atoi(q.Get("partitions"))
		batch, _ := strconv.Atoi(q.Get("batch_size"))
		if _, err := db.Topic(topic); err != nil {
			if err := db.CreateTopic(topic, uint32(max(parts, 1))); err != nil {
				writeError(w, http.StatusBadRequest, err)
				return
			}
		}
		ti, err := db.Topic(topic)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		n, err := produceBody(db, ti, r.Body, q, max(batch, 1))
		res := map[string]any{"produced": n.Records, "lines": n.Lines}
		var bad *logio.BadLineError
		switch {
		case errors.As(err, &bad), errors.Is(err, errBadQuery):
			res["error"] = err.Error()
			writeJSON(w, http.StatusBadRequest, res)
		case err != nil:
			res["error"] = err.Error()
			writeJSON(w, http.StatusInternalServerError, res)
		default:
			writeJSON(w, http.StatusOK, res)
		}
	})
	mux.HandleFunc("GET /v1/topics/{topic}/records", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		part := -1
		if s := q.Get("partition"); s != "" {
			part, _ = strconv.Atoi(s)
		}
		from, _ := strconv.ParseUint(q.Get("from"), 10, 64)
		if _, err := db.Topic(r.PathValue("topic")); err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		if err := logio.Consume(db, r.PathValue("topic"), part, from, w); err != nil {
			writeError(w, http.StatusBadRequest, err)
		}
	})
	schemaRoutes(mux, db)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// DLQRequest is the body of POST /v1/dlq/{pipeline}/purge and /retry: the
// entries to act on; empty means all of them.
type DLQRequest struct {
	IDs []uint64 `json:"ids,omitempty"`
}

// DLQPurgeResult answers POST /v1/dlq/{pipeline}/purge.
type DLQPurgeResult struct {
	Purged int `json:"purged"`
	Left   int `json:"left"`
}

// dlqOp serves a dead-letter operation on a pipeline running in this
// process. The operation runs to its end even if the client goes away: its
// transaction is the pipeline's.
func (s *DataServer) dlqOp(op func(ctx context.Context, p *runtime.Pipeline, ids []uint64) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("pipeline")
		p := s.pl.get(name)
		if p == nil {
			writeError(w, http.StatusNotFound, fmt.Errorf("pipeline %q does not run in this process", name))
			return
		}
		var req DLQRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, fmt.Errorf("dead-letter request: %w", err))
			return
		}
		res, err := op(context.WithoutCancel(r.Context()), p, req.IDs)
		switch {
		case errors.Is(err, runtime.ErrNoEntry):
			writeError(w, http.StatusBadRequest, err)
		case errors.Is(err, runtime.ErrNotRunning), errors.Is(err, runtime.ErrFleetDeadLetters):
			writeError(w, http.StatusConflict, err)
		case err != nil:
			writeError(w, http.StatusInternalServerError, err)
		default:
			writeJSON(w, http.StatusOK, res)
		}
	}
}

// Close stops serving and removes the socket.
func (s *DataServer) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	os.Remove(s.path)
	return err
}

// DataClient talks to the process serving a data directory.
func DataClient(dir string) *http.Client {
	path := SocketPath(dir)
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}
