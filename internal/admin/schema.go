package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/heliosdb/helios-wasm/runtime/schema"
	"github.com/heliosdb/helios-wasm/storage"
)

// The schema registry over the data socket, so that `schema` commands work
// while a running process holds the directory. Errors travel with their
// kind, and the client rebuilds the registry's error values from it.

// schemaFailure is an error answer.
type schemaFailure struct {
	Error   string          `json:"error"`
	Kind    string          `json:"kind"` // bad_schema, not_found, incompatible, bad_record, bad_migrator, migrator, other
	Subject string          `json:"subject,omitempty"`
	Mode    schema.Mode     `json:"mode,omitempty"`
	Changes []schema.Change `json:"changes,omitempty"`
	Index   int             `json:"index,omitempty"`
	Record  bool            `json:"record,omitempty"` // the error is a *schema.RecordError (Index)
}

var schemaKinds = []struct {
	kind string
	err  error
}{{"bad_schema", schema.ErrBadSchema}, {"not_found", schema.ErrNotFound}, {"incompatible", schema.ErrIncompatible}, {"bad_record", schema.ErrBadRecord},
	{"bad_migrator", schema.ErrBadMigrator}, {"migrator", schema.ErrMigrator}}

func writeSchemaError(w http.ResponseWriter, err error) {
	f := schemaFailure{Error: err.Error(), Kind: "other"}
	var re *schema.RecordError
	if errors.As(err, &re) {
		f.Index, f.Error, f.Record = re.Index, re.Err.Error(), true
	}
	var ie *schema.IncompatibleError
	if errors.As(err, &ie) {
		f.Subject, f.Mode, f.Changes = ie.Subject, ie.Mode, ie.Changes
	}
	for _, k := range schemaKinds {
		if errors.Is(err, k.err) {
			f.Kind = k.kind
			break
		}
	}
	writeJSON(w, http.StatusBadRequest, f)
}

// schemaRoutes serves db's schema registry on mux.
func schemaRoutes(mux *http.ServeMux, db *storage.DB) {
	reg := schema.New(db)
	body := func(r *http.Request) []byte {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		return b
	}
	mux.HandleFunc("GET /v1/schemas", func(w http.ResponseWriter, _ *http.Request) {
		s, err := reg.Subjects()
		if err != nil {
			writeSchemaError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, s)
	})
	mux.HandleFunc("GET /v1/schemas/{subject}/versions/{version}", func(w http.ResponseWriter, r *http.Request) {
		var v *schema.Version
		var err error
		if r.PathValue("version") == "latest" {
			v, err = reg.Latest(r.PathValue("subject"))
		} else {
			n, _ := strconv.Atoi(r.PathValue("version"))
			v, err = reg.Get(r.PathValue("subject"), n)
		}
		if err != nil {
			writeSchemaError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("POST /v1/schemas/{subject}/versions", func(w http.ResponseWriter, r *http.Request) {
		v, created, err := reg.Register(r.PathValue("subject"), body(r))
		if err != nil {
			writeSchemaError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"version": v, "created": created})
	})
	mux.HandleFunc("POST /v1/schemas/{subject}/migrators", func(w http.ResponseWriter, r *http.Request) {
		var req migratorRequest
		if err := json.Unmarshal(body(r), &req); err != nil {
			writeSchemaError(w, err)
			return
		}
		sample := make([][]byte, len(req.Sample))
		for i, m := range req.Sample {
			sample[i] = m
		}
		v, created, err := reg.RegisterMigrator(r.Context(), r.PathValue("subject"), []byte(req.Schema), req.Module, sample)
		if err != nil {
			writeSchemaError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"version": v, "created": created})
	})
	mux.HandleFunc("POST /v1/schemas/{subject}/check", func(w http.ResponseWriter, r *http.Request) {
		if err := reg.Check(r.PathValue("subject"), body(r)); err != nil {
			writeSchemaError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("GET /v1/schema-mode", func(w http.ResponseWriter, r *http.Request) {
		m, own, err := reg.Mode(r.URL.Query().Get("subject"))
		if err != nil {
			writeSchemaError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"mode": m, "own": own})
	})
	mux.HandleFunc("PUT /v1/schema-mode", func(w http.ResponseWriter, r *http.Request) {
		if err := reg.SetMode(r.URL.Query().Get("subject"), schema.Mode(r.URL.Query().Get("mode"))); err != nil {
			writeSchemaError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("POST /v1/schemas/{subject}/migrate", func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.Atoi(r.URL.Query().Get("from"))
		to, _ := strconv.Atoi(r.URL.Query().Get("to"))
		var in []json.RawMessage
		if err := json.Unmarshal(body(r), &in); err != nil {
			writeSchemaError(w, err)
			return
		}
		recs := make([][]byte, len(in))
		for i, m := range in {
			recs[i] = m
		}
		out, err := reg.Migrate(r.Context(), r.PathValue("subject"), from, to, recs)
		if err != nil {
			writeSchemaError(w, err)
			return
		}
		res := make([]json.RawMessage, len(out))
		for i, b := range out {
			res[i] = b
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// SchemaClient is the schema registry of a data directory held by a running
// process, reached through its socket. Its methods match schema.Registry's.
type SchemaClient struct{ c *http.Client }

// NewSchemaClient talks to the process serving dir.
func NewSchemaClient(dir string) *SchemaClient { return &SchemaClient{DataClient(dir)} }

func (s *SchemaClient) do(method, path string, q url.Values, body []byte, out any) error {
	u := "http://data" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return fmt.Errorf("data directory in use, and its process does not answer on its socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		return errors.New("the running process does not serve the schema registry (an older helios-wasm): stop it, or upgrade it")
	}
	if resp.StatusCode != http.StatusOK {
		var f schemaFailure
		if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
			return fmt.Errorf("schema registry over the data socket: status %s", resp.Status)
		}
		return f.err()
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// remoteError carries an error's text and its sentinel across the socket.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func (f schemaFailure) err() error {
	if f.Kind == "incompatible" && len(f.Changes) > 0 {
		return &schema.IncompatibleError{Subject: f.Subject, Mode: f.Mode, Changes: f.Changes}
	}
	e := &remoteError{msg: f.Error}
	for _, k := range schemaKinds {
		if k.kind == f.Kind {
			e.sentinel = k.err
		}
	}
	if f.Kind == "bad_record" || f.Record {
		return &schema.RecordError{Index: f.Index, Err: e}
	}
	return e
}

func subjectPath(subject string, rest string) string {
	return "/v1/schemas/" + url.PathEscape(subject) + rest
}

// Register is schema.Registry.Register.
func (s *SchemaClient) Register(subject string, text []byte) (*schema.Version, bool, error) {
	var res struct {
		Version *schema.Version
		Created bool
	}
	err := s.do("POST", subjectPath(subject, "/versions"), nil, text, &res)
	return res.Version, res.Created, err
}

// migratorRequest is a migrator registration over the socket.
type migratorRequest struct {
	Schema string            `json:"schema"`
	Module []byte            `json:"module"` // base64 in JSON
	Sample []json.RawMessage `json:"sample,omitempty"`
}

// RegisterMigrator is schema.Registry.RegisterMigrator.
func (s *SchemaClient) RegisterMigrator(_ context.Context, subject string, text, wasm []byte, sample [][]byte) (*schema.Version, bool, error) {
	req := migratorRequest{Schema: string(text), Module: wasm}
	for i, r := range sample {
		if !json.Valid(r) { // RawMessage would refuse to marshal it: report it as the registry would
			return nil, false, &schema.RecordError{Index: i, Err: fmt.Errorf("%w: not JSON", schema.ErrBadRecord)}
		}
		req.Sample = append(req.Sample, r)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, false, err
	}
	var res struct {
		Version *schema.Version
		Created bool
	}
	err = s.do("POST", subjectPath(subject, "/migrators"), nil, b, &res)
	return res.Version, res.Created, err
}

// Check is schema.Registry.Check.
func (s *SchemaClient) Check(subject string, text []byte) error {
	return s.do("POST", subjectPath(subject, "/check"), nil, text, &struct{}{})
}

// Subjects is schema.Registry.Subjects.
func (s *SchemaClient) Subjects() ([]string, error) {
	var out []string
	return out, s.do("GET", "/v1/schemas", nil, nil, &out)
}

// Get is schema.Registry.Get.
func (s *SchemaClient) Get(subject string, n int) (*schema.Version, error) {
	var v schema.Version
	return &v, s.do("GET", subjectPath(subject, "/versions/"+strconv.Itoa(n)), nil, nil, &v)
}

// Latest is schema.Registry.Latest.
func (s *SchemaClient) Latest(subject string) (*schema.Version, error) {
	var v schema.Version
	return &v, s.do("GET", subjectPath(subject, "/versions/latest"), nil, nil, &v)
}

// Mode is schema.Registry.Mode.
func (s *SchemaClient) Mode(subject string) (schema.Mode, bool, error) {
	var res struct {
		Mode schema.Mode
		Own  bool
	}
	err := s.do("GET", "/v1/schema-mode", url.Values{"subject": {subject}}, nil, &res)
	return res.Mode, res.Own, err
}

// SetMode is schema.Registry.SetMode.
func (s *SchemaClient) SetMode(subject string, m schema.Mode) error {
	return s.do("PUT", "/v1/schema-mode", url.Values{"subject": {subject}, "mode": {string(m)}}, nil, &struct{}{})
}

// Migrate is schema.Registry.Migrate.
func (s *SchemaClient) Migrate(_ context.Context, subject string, from, to int, records [][]byte) ([][]byte, error) {
	in := make([]json.RawMessage, len(records))
	for i, r := range records {
		if !json.Valid(r) { // RawMessage would refuse to marshal it: report it as the registry would
			return nil, &schema.RecordError{Index: i, Err: fmt.Errorf("%w: not JSON", schema.ErrBadRecord)}
		}
		in[i] = r
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	if err := s.do("POST", subjectPath(subject, "/migrate"), url.Values{"from": {strconv.Itoa(from)}, "to": {strconv.Itoa(to)}}, body, &out); err != nil {
		return nil, err
	}
	res := make([][]byte, len(out))
	for i, m := range out {
		res[i] = m
	}
	return res, nil
}
