package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/heliosdb/helios-wasm/runtime"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// call sends one request to s with the given Host header (empty: the
// listen address) and headers, and returns the status and body.
func call(t *testing.T, s *Server, method, path, host string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.NewRegistry()
	}
	if cfg.Token == "" {
		cfg.Token = "s3cret"
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "helios_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	s := start(t, Config{Addr: "127.0.0.1:0", Gatherer: reg})
	base := "http://" + s.Addr()
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Fatalf("readyz before ready: %d", code)
	}
	s.SetReady(true)
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "helios_test_total 3") {
		t.Fatalf("metrics %d %q", code, body)
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
}

// TestTokenRequired: there is no tokenless mode, on loopback either, and
// only the exact bearer token authorizes.
func TestTokenRequired(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		if _, err := Start(Config{Addr: addr, Gatherer: prometheus.NewRegistry()}); !errors.Is(err, ErrNeedToken) {
			t.Fatalf("%s without a token: got %v, want ErrNeedToken", addr, err)
		}
	}
	s := start(t, Config{Addr: "127.0.0.1:0"})
	for _, tt := range []struct {
		header string
		ok     bool
	}{{"Bearer s3cret", true}, {"Bearer wrong", false}, {"", false}, {"s3cret", false}, {"Bearer s3cret2", false}} {
		r, _ := http.NewRequest("POST", "http://x/v1/pipelines", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		if s.Authorized(r) != tt.ok {
			t.Errorf("Authorization %q: authorized %v", tt.header, !tt.ok)
		}
	}
}

// TestMutatingOnLoopback: every mutating endpoint answers 401 without the
// token or with a wrong one, although the server listens on loopback; with
// it, an unknown pipeline is a 404.
func TestMutatingOnLoopback(t *testing.T) {
	s := start(t, Config{Addr: "127.0.0.1:0"})
	wasm := map[string]string{"Content-Type": "application/wasm"}
	for _, path := range []string{"/v1/pipelines/p/plugin", "/v1/pipelines/p/rollback", "/v1/pipelines/p/pause", "/v1/pipelines/p/resume"} {
		for _, auth := range []string{"", "Bearer wrong"} {
			h := map[string]string{"Content-Type": "application/wasm"}
			if auth != "" {
				h["Authorization"] = auth
			}
			if code, body := call(t, s, "POST", path, "", h, "\x00asm"); code != 401 || !strings.Contains(body, "token") {
				t.Errorf("POST %s with Authorization %q: %d %s, want 401", path, auth, code, body)
			}
		}
		wasm["Authorization"] = "Bearer s3cret"
		if code, body := call(t, s, "POST", path, "", wasm, "\x00asm"); code != 404 {
			t.Errorf("POST %s with the token: %d %s, want 404 (no such pipeline)", path, code, body)
		}
	}
}

// TestUploadNeedsWasmType: the cross-site-request shape (a text/plain or
// form POST, which browsers send without a CORS preflight) is refused,
// even carrying the token.
func TestUploadNeedsWasmType(t *testing.T) {
	s := start(t, Config{Addr: "127.0.0.1:0"})
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/octet-stream"} {
		h := map[string]string{"Authorization": "Bearer s3cret"}
		if ct != "" {
			h["Content-Type"] = ct
		}
		if code, body := call(t, s, "POST", "/v1/pipelines/p/plugin", "", h, "\x00asm"); code != http.StatusUnsupportedMediaType || !strings.Contains(body, "application/wasm") {
			t.Errorf("Content-Type %q: %d %s, want 415 naming application/wasm", ct, code, body)
		}
	}
}

// TestHostAndOrigin: requests must name the server in Host (DNS
// rebinding sends the attacker's name) and must not come from another
// origin's page; reads are guarded as well as writes.
func TestHostAndOrigin(t *testing.T) {
	s := start(t, Config{Addr: "127.0.0.1:0"})
	_, port, _ := net.SplitHostPort(s.Addr())
	for _, tt := range []struct {
		name, host string
		hdr        map[string]string
		want       int
	}{
		{"listen address", "", nil, 200},
		{"localhost", "localhost:" + port, nil, 200},
		{"LOCALHOST", "LOCALHOST:" + port, nil, 200},
		{"ipv6 loopback", "[::1]:" + port, nil, 200},
		{"rebinding name", "evil.example:" + port, nil, 421},
		{"rebinding name without port", "evil.example", nil, 421},
		{"other port", "127.0.0.1:1", nil, 421},
		{"loopback without port", "localhost", nil, 421},
		{"same origin", "", map[string]string{"Origin": "http://127.0.0.1:" + port}, 200},
		{"same origin by localhost", "", map[string]string{"Origin": "http://localhost:" + port}, 200},
		{"cross origin", "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"cross origin on another local port", "", map[string]string{"Origin": "http://localhost:3000"}, 403},
		{"null origin", "", map[string]string{"Origin": "null"}, 403},
		{"fetch cross-site", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"fetch same-site", "", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"fetch typed URL", "", map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{"fetch same-origin", "", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
	} {
		for _, path := range []string{"/v1/pipelines", "/metrics", "/healthz"} {
			code, body := call(t, s, "GET", path, tt.host, tt.hdr, "")
			if code != tt.want {
				t.Errorf("%s: GET %s: %d %s, want %d", tt.name, path, code, body, tt.want)
			}
			if code == 421 && !strings.Contains(body, "allowed: 127.0.0.1:"+port) {
				t.Errorf("%s: 421 body does not say what is allowed: %s", tt.name, body)
			}
		}
	}
	// A cross-site POST is refused before its token or body is looked at.
	h := map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain", "Authorization": "Bearer s3cret"}
	if code, _ := call(t, s, "POST", "/v1/pipelines/p/plugin", "", h, "x"); code != 403 {
		t.Errorf("cross-site POST: %d, want 403", code)
	}
}

// TestAllowedHosts: a wildcard listener answers only to the configured
// names (a Kubernetes probe's podIP, with any port or a given one).
func TestAllowedHosts(t *testing.T) {
	if _, err := Start(Config{Addr: "127.0.0.1:0", Token: "t", AllowedHosts: []string{"http://x/"}, Gatherer: prometheus.NewRegistry()}); !errors.Is(err, ErrBadAllowedHost) {
		t.Fatal("a URL as allowed host was accepted")
	}
	s := start(t, Config{Addr: "0.0.0.0:0", AllowedHosts: []string{"10.1.2.3", "admin.internal:9999"}})
	_, port, _ := net.SplitHostPort(s.Addr())
	for host, want := range map[string]int{
		"10.1.2.3:" + port:       200,
		"10.1.2.3:1234":          200,
		"admin.internal:9999":    200,
		"admin.internal:" + port: 421,
		"127.0.0.1:" + port:      421, // not a loopback listener: loopback names are not implied
		"0.0.0.0:" + port:        421,
		"evil.example:" + port:   421,
	} {
		if code, body := call(t, s, "GET", "/healthz", host, nil, ""); code != want {
			t.Errorf("Host %s: %d %s, want %d", host, code, body, want)
		}
	}
}

// TestUnknownPipelineNoMetricSeries: names taken from request URLs never
// become metric label values.
func TestUnknownPipelineNoMetricSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	runtime.NewMetrics(reg)
	s := start(t, Config{Addr: "127.0.0.1:0", Gatherer: reg})
	auth := map[string]string{"Authorization": "Bearer s3cret", "Content-Type": "application/wasm"}
	for _, r := range []struct{ method, path string }{{"GET", "/v1/pipelines/ghost"}, {"POST", "/v1/pipelines/ghost/plugin"},
		{"POST", "/v1/pipelines/ghost/rollback"}, {"POST", "/v1/pipelines/ghost/pause"}, {"POST", "/v1/pipelines/ghost/resume"}} {
		if code, _ := call(t, s, r.method, r.path, "", auth, "\x00asm"); code != 404 {
			t.Errorf("%s %s: %d, want 404", r.method, r.path, code)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "ghost" {
					t.Errorf("%s has a series labelled %s=ghost", f.GetName(), l.GetName())
				}
			}
		}
	}
	if _, body := get(t, "http://"+s.Addr()+"/metrics"); strings.Contains(body, "ghost") {
		t.Errorf("/metrics mentions the unknown pipeline:\n%s", body)
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadToken(dir); !errors.Is(err, ErrNoTokenFile) {
		t.Fatalf("empty dir: %v, want ErrNoTokenFile", err)
	}
	tok, err := LoadOrCreateToken(dir)
	if err != nil || len(tok) != 64 {
		t.Fatalf("created %q, %v", tok, err)
	}
	st, err := os.Stat(TokenPath(dir))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, %v; want 0600", st.Mode(), err)
	}
	for _, read := range []func(string) (string, error){LoadOrCreateToken, ReadToken} {
		if again, err := read(dir); again != tok || err != nil {
			t.Fatalf("read back %q, %v; want %q", again, err, tok)
		}
	}
	if other, _ := LoadOrCreateToken(t.TempDir()); other == tok {
		t.Fatal("two data directories got the same token")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(m) > 0 {
		t.Fatalf("temporary files left: %v", m)
	}
	os.Chmod(TokenPath(dir), 0o644)
	if _, err := ReadToken(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token accepted: %v", err)
	}
	os.WriteFile(TokenPath(dir), []byte("\n"), 0o600)
	os.Chmod(TokenPath(dir), 0o600)
	if _, err := LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty token file: %v", err)
	}
}
