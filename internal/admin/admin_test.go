package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
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

func TestServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "helios_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	s, err := Start(Config{Addr: "127.0.0.1:0", Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
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

func TestTokenRequiredOffLoopback(t *testing.T) {
	if _, err := Start(Config{Addr: "0.0.0.0:0", Gatherer: prometheus.NewRegistry()}); !errors.Is(err, ErrNeedToken) {
		t.Fatalf("got %v, want ErrNeedToken", err)
	}
	s, err := Start(Config{Addr: "127.0.0.1:0", Token: "s3cret", Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	for _, tt := range []struct {
		header string
		ok     bool
	}{{"Bearer s3cret", true}, {"Bearer wrong", false}, {"", false}, {"s3cret", false}} {
		r, _ := http.NewRequest("POST", "http://x/v1/pipelines", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		if s.Authorized(r) != tt.ok {
			t.Errorf("Authorization %q: authorized %v", tt.header, !tt.ok)
		}
	}
}
