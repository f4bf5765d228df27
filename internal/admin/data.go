package admin

import (
	"context"
	"errors"
	"fmt"
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
		q, err := runtime.NewDeadLetterQueue(db, r.PathValue("pipeline"), runtime.DLQConfig{})
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
		n, err := logio.Produce(db, ti, r.Body, q.Get("key_field"), max(batch, 1))
		res := map[string]any{"produced": n}
		var bad *logio.BadLineError
		switch {
		case errors.As(err, &bad):
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
