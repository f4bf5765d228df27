package host

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestStartDeadline: guest code that runs while an instance starts (a start
// section, _initialize, helios_init) is interrupted by the init deadline
// like a batch by the batch deadline, at validation (Compile) or when an
// instance is created, and a cancelled context stops it too.
func TestStartDeadline(t *testing.T) { forEachEngine(t, testStartDeadline) }

func testStartDeadline(t *testing.T, engine string) {
	defer goleak.VerifyNone(t)
	const forever = `(loop $l (br $l))`
	tests := []struct {
		name    string
		op      watOperator
		atLoad  bool   // fails in Compile (else in NewInstance)
		detail  string // in the error
		timeout time.Duration
		cancel  bool // cancel the context instead of waiting for the deadline
	}{
		{name: "start section", op: watOperator{extra: `(func $s ` + forever + `) (start $s)`}, atLoad: true, detail: "start function"},
		{name: "_initialize", op: watOperator{extra: `(func (export "_initialize") ` + forever + `)`}, atLoad: true, detail: "init timeout"},
		{name: "helios_init", op: watOperator{init: forever + ` (i64.const 0)`}, detail: "init timeout"},
		{name: "start section, cancelled", op: watOperator{extra: `(func $s ` + forever + `) (start $s)`}, atLoad: true, cancel: true},
		{name: "helios_init, cancelled", op: watOperator{init: forever + ` (i64.const 0)`}, cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout, want := 300*time.Millisecond, ErrDeadline
			if tt.cancel {
				timeout, want = time.Hour, ErrCanceled
			}
			e := newTestEngine(t, Config{Engine: engine, InitTimeout: timeout})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				time.AfterFunc(200*time.Millisecond, cancel)
			}
			begin := time.Now()
			p, err := e.Compile(ctx, "loops.wasm", tt.op.build(t))
			if err == nil {
				if tt.atLoad {
					t.Fatal("Compile accepted a module whose start never ends")
				}
				defer p.Close(context.Background())
				var inst *Instance
				inst, err = p.NewInstance(ctx, InstanceConfig{})
				if err == nil {
					inst.Close(ctx)
					t.Fatal("NewInstance returned although helios_init never ends")
				}
			} else if !tt.atLoad {
				t.Fatalf("Compile: %v", err)
			}
			if took := time.Since(begin); took > 5*time.Second {
				t.Fatalf("stopped after %v", took)
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("got %v, want %v mentioning %q", err, want, tt.detail)
			}
		})
	}
}

// TestStartTrapNamesStartFunction: a start function that overflows its stack
// is reported as the start function, not as an export it is not (wazero
// names start functions by a wrong index).
func TestStartTrapNamesStartFunction(t *testing.T) { forEachEngine(t, testStartTrapNamesStartFunction) }

func testStartTrapNamesStartFunction(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	op := watOperator{extra: `(func $s (call $s)) (start $s)`}
	_, err := e.Compile(context.Background(), "overflow.wasm", op.build(t))
	if !errors.Is(err, ErrInstantiate) || !strings.Contains(err.Error(), "start function: ") || !strings.Contains(err.Error(), "stack overflow") {
		t.Fatalf("got %v, want a trap in the start function (stack overflow)", err)
	}
	if strings.Contains(err.Error(), "helios_abi_version") {
		t.Fatalf("blamed on helios_abi_version: %v", err)
	}
}

// TestStartFunctionRunsOnce: a start section still runs, once per instance,
// before _initialize and helios_init; the export the host adds for it is not
// shown as one of the plugin's exports.
func TestStartFunctionRunsOnce(t *testing.T) { forEachEngine(t, testStartFunctionRunsOnce) }

func testStartFunctionRunsOnce(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	// The start function sets a global; helios_init refuses unless it is 1,
	// and increments it, so a second run of start would go unnoticed only if
	// init ran before it.
	op := watOperator{
		extra: `(global $started (mut i32) (i32.const 0))
  (func $s (global.set $started (i32.add (global.get $started) (i32.const 1)))) (start $s)`,
		init: `(if (result i64) (i32.eq (global.get $started) (i32.const 1)) (then (i64.const 0)) (else unreachable))`,
	}
	p := mustCompile(t, e, "start.wasm", op.build(t))
	defer p.Close(context.Background())
	mustInstance(t, p, InstanceConfig{})
	for _, f := range p.Info().Exports {
		if strings.HasPrefix(f.Name, "helios_internal") {
			t.Fatalf("internal export listed: %v", f)
		}
	}
}
