package schema

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/heliosdb/helios-wasm/storage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2/vfs.(*diskHealthCheckingFS).startTickerLocked.func1"))
}

func TestRegistryPersistsAndReopens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := New(db)
	v1, created, err := r.Register("orders", []byte(orderV1))
	if err != nil || !created || v1.Number != 1 || v1.Format != FormatHelios {
		t.Fatalf("v1: %+v created=%v err=%v", v1, created, err)
	}
	if _, _, err := r.Register("orders", []byte(orderV2)); err != nil {
		t.Fatal(err)
	}
	// Identical text, or the same schema written differently: the existing version.
	for _, text := range []string{orderV1, strings.ReplaceAll(orderV1, ",", ", ")} {
		again, created, err := r.Register("orders", []byte(text))
		if err != nil || created || again.Number != 1 {
			t.Fatalf("re-register: %+v created=%v err=%v", again, created, err)
		}
	}
	if err := r.SetMode("orders", FullTransitive); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMode("", Forward); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r = New(db)
	latest, err := r.Latest("orders")
	if err != nil || latest.Number != 2 || latest.Text != orderV2 {
		t.Fatalf("latest after reopen: %+v %v", latest, err)
	}
	subjects, err := r.Subjects()
	if err != nil || !slices.Equal(subjects, []string{"orders"}) {
		t.Fatalf("subjects %v %v", subjects, err)
	}
	for _, c := range []struct {
		subject string
		mode    Mode
		own     bool
	}{{"orders", FullTransitive, true}, {"payments", Forward, false}, {"", Forward, true}} {
		m, own, err := r.Mode(c.subject)
		if err != nil || m != c.mode || own != c.own {
			t.Fatalf("mode %q: %s own=%v err=%v, want %s own=%v", c.subject, m, own, err, c.mode, c.own)
		}
	}
}

func TestRegistryDefaultModeIsBackward(t *testing.T) {
	r, _ := openRegistry(t)
	m, own, err := r.Mode("orders")
	if err != nil || m != Backward || own {
		t.Fatalf("%s %v %v", m, own, err)
	}
	if _, _, err := r.Register("orders", []byte(orderV1)); err != nil {
		t.Fatal(err)
	}
	// A required field added: refused under the default BACKWARD.
	_, _, err = r.Register("orders", []byte(strings.Replace(orderV2, `"optional":true,"default":0`, `"optional":false`, 1)))
	var ie *IncompatibleError
	if !errors.As(err, &ie) || ie.Mode != Backward || len(ie.Changes) != 1 || ie.Changes[0].Field != "customer_id" {
		t.Fatalf("got %v", err)
	}
	want := `subject "orders" (mode BACKWARD): 1 breaking change(s):
  backward vs version 1, field customer_id: added without a default: data written with version 1 has no value for it`
	if err.Error() != want {
		t.Fatalf("message:\n%s\nwant:\n%s", err, want)
	}
}

func TestRegistryBadInput(t *testing.T) {
	r, _ := openRegistry(t)
	if _, _, err := r.Register("orders", []byte(orderV1)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		call     func() error
		sentinel error
		want     string
	}{
		{"bad subject", func() error { _, _, err := r.Register("a/b", []byte(orderV1)); return err }, nil, `subject name "a/b" may only contain`},
		{"malformed schema", func() error { _, _, err := r.Register("orders", []byte("{\n\"name\":")); return err }, ErrBadSchema, "line 2, column 8"},
		{"check malformed", func() error { return r.Check("orders", []byte(`{"name":"o","fields":[{"name":"a"}]}`)) }, ErrBadSchema, `"a" needs a "type"`},
		{"unknown subject", func() error { _, err := r.Latest("nope"); return err }, ErrNotFound, `subject "nope": schema not found`},
		{"unknown version", func() error { _, err := r.Get("orders", 2); return err }, ErrNotFound, "latest is 1"},
		{"unknown subject version", func() error { _, err := r.Get("nope", 1); return err }, ErrNotFound, `subject "nope"`},
		{"bad mode", func() error { return r.SetMode("orders", "SIDEWAYS") }, nil, `compatibility mode "SIDEWAYS": want BACKWARD`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if err == nil || c.sentinel != nil && !errors.Is(err, c.sentinel) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %v containing %q", err, c.sentinel, c.want)
			}
		})
	}
	if vs, _ := r.Versions("orders"); len(vs) != 1 {
		t.Fatalf("bad input changed the registry: %d versions", len(vs))
	}
}

// TestRegistryConcurrentRegister: concurrent registrations, through
// several Registries of one DB, get distinct, gapless version numbers.
func TestRegistryConcurrentRegister(t *testing.T) {
	r, db := openRegistry(t)
	if err := r.SetMode("", None); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	nums := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, err := New(db).Register("orders", fmt.Appendf(nil, `{"name":"order","fields":[{"name":"f%d","type":"integer"}]}`, i))
			if err != nil {
				t.Error(err)
				return
			}
			nums[i] = v.Number
		}()
	}
	wg.Wait()
	slices.Sort(nums)
	for i, v := range nums {
		if v != i+1 {
			t.Fatalf("versions %v", nums)
		}
	}
}

func TestParseModeAcceptsEveryMode(t *testing.T) {
	for _, m := range []Mode{Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive, None} {
		if got, err := ParseMode(strings.ToLower(string(m))); err != nil || got != m {
			t.Fatalf("%s: %s %v", m, got, err)
		}
	}
}
