// Package kafkademo is the scenario of `make demo-kafka` (run by
// internal/cmd/demo-kafka against a local broker, and by a test against
// the tests' broker): two instances of one kafka: -> kafka: pipeline with
// the stateful count operator share a topic's partitions through a consumer
// group; one is killed mid-run, the other takes its partitions (and their
// state) over, and a read_committed read of the output checks that every
// input was counted exactly once.
package kafkademo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is one run of the demo. Brokers, CLI, Plugin and Dir are
// required; the rest has defaults.
type Config struct {
	Brokers []string // bootstrap addresses of the Kafka cluster
	CLI     string   // the helios-wasm binary
	Plugin  string   // the count operator (.wasm)
	Dir     string   // where the instances' data directories go
	Env     []string // added to the instances' environment

	// Name names the input topic (Name), the output topic (Name-counts) and
	// the pipeline (Name-counter, also its consumer group). Default "clicks".
	Name       string
	Partitions int32 // of the input topic. Default 4
	Keys       int   // inputs are keyed u0..u(Keys-1). Default 97
	First      int   // inputs produced before the instances start. Default 200,000
	Second     int   // inputs produced once instance a is killed. Default 50,000
	// KillAfter is the number of outputs after which a is killed (once both
	// instances hold partitions). Default First/2.
	KillAfter      int
	SessionTimeout time.Duration // --kafka-session-timeout. Default 6s (the broker's usual minimum)
	StepTimeout    time.Duration // how long each step may wait. Default 2 minutes
	Out            io.Writer     // the narration. Default os.Stdout
}

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 || c.CLI == "" || c.Plugin == "" || c.Dir == "" {
		return errors.New("kafkademo: Config needs Brokers, CLI, Plugin and Dir")
	}
	setDefault(&c.Name, "clicks")
	setDefault(&c.Partitions, 4)
	setDefault(&c.Keys, 97)
	setDefault(&c.First, 200_000)
	setDefault(&c.Second, 50_000)
	setDefault(&c.KillAfter, c.First/2)
	setDefault(&c.SessionTimeout, 6*time.Second)
	setDefault(&c.StepTimeout, 2*time.Minute)
	setDefault[io.Writer](&c.Out, os.Stdout)
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// txnTimeout is the instances' --transaction-timeout: the broker aborts a
// killed instance's unfinished Kafka transaction after it, and until then
// read_committed readers of its output partitions wait.
const txnTimeout = 5 * time.Second

// Result is what the demo saw. The demo passed when Problems is empty.
type Result struct {
	Inputs, Outputs int
	Keys            int
	KilledAt        int           // outputs when instance a was killed
	KilledHeld      []int32       // the partitions a held then
	Takeover        time.Duration // from the kill until b held every partition
	Restored        int           // changelog records b replayed for what it took over
	SurvivorExit    string        // how b ended after SIGTERM
	Problems        []string
}

// Pass reports whether every check held.
func (r Result) Pass() bool { return len(r.Problems) == 0 }

// Summary says in a few lines whether the demo passed and with what
// numbers.
func (r Result) Summary() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s: %s inputs, %s outputs read back (read_committed), %d keys\n", verdict, commas(r.Inputs), commas(r.Outputs), r.Keys)
	fmt.Fprintf(&b, "  a was killed (SIGKILL) at %s outputs holding %s; b held every partition %.1fs later (%s state records restored from the changelog); b after SIGTERM: %s\n",
		commas(r.KilledAt), fmtParts(r.KilledHeld), r.Takeover.Seconds(), commas(r.Restored), r.SurvivorExit)
	if r.Pass() {
		b.WriteString("  exactly one output per input, and every key's counts run 1..n in order: nothing lost, nothing duplicated, no state lost across the move\n")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  - %s\n", p)
	}
	return b.String()
}

type demo struct {
	cfg     Config
	began   time.Time
	out     *watcher
	total   int // inputs wanted in the output
	a, b    *instance
	killed  time.Time
	res     *Result
	nextBar time.Time
}

// Run runs the demo. An error means it could not run to the end (an
// instance died, a step timed out, ctx ended); the checks that failed are
// in Result.Problems.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if err := cfg.defaults(); err != nil {
		return res, err
	}
	d := &demo{cfg: cfg, began: time.Now(), res: &res, total: cfg.First}
	res.Keys = cfg.Keys
	in, out, pipeline := cfg.Name, cfg.Name+"-counts", cfg.Name+"-counter"

	if err := createTopic(ctx, cfg.Brokers, in, cfg.Partitions); err != nil {
		return res, err
	}
	if err := produce(ctx, cfg.Brokers, in, 0, cfg.First, cfg.Keys); err != nil {
		return res, err
	}
	res.Inputs = cfg.First
	d.say("== 1. topic %s: %d partitions, %s records keyed u0..u%d", in, cfg.Partitions, commas(cfg.First), cfg.Keys-1)

	if d.out, err = watch(cfg.Brokers, out); err != nil {
		return res, err
	}
	defer d.out.close()
	d.say("== 2. two instances, a and b, of pipeline %s: the count operator, kafka:%s -> kafka:%s, exactly once;", pipeline, in, out)
	d.say("      one consumer group %s shares the partitions, state follows them through the changelog %s-state", pipeline, pipeline)
	args := func(name string) []string {
		return []string{"--log-format", "json", "run", "--plugin", cfg.Plugin, "--input", "kafka:" + in, "--output", "kafka:" + out,
			"--kafka-brokers", strings.Join(cfg.Brokers, ","), "--kafka-create-topics",
			"--kafka-session-timeout", cfg.SessionTimeout.String(), "--transaction-timeout", txnTimeout.String(),
			"--follow", "--name", pipeline, "--data-dir", filepath.Join(cfg.Dir, name), "--admin", ""}
	}
	if d.a, err = startInstance("a", cfg.CLI, args("a"), cfg.Env); err != nil {
		return res, err
	}
	defer d.a.kill()
	if d.b, err = startInstance("b", cfg.CLI, args("b"), cfg.Env); err != nil {
		return res, err
	}
	defer d.b.kill()
	for _, x := range []*instance{d.a, d.b} {
		d.say("      %s: pid %d, data directory %s", x.name, x.cmd.Process.Pid, filepath.Join(cfg.Dir, x.name))
	}
	err = d.wait(ctx, "both instances hold partitions", func() bool {
		return len(d.a.partitions()) > 0 && len(d.b.partitions()) > 0 && d.out.count() >= cfg.KillAfter
	}, d.a, d.b)
	if err != nil {
		return res, err
	}

	res.KilledAt, res.KilledHeld = d.out.count(), d.a.partitions()
	d.progress()
	d.say("== 3. SIGKILL a at %s outputs, holding partitions %s. The group gives them to b once a's session times out (%s);",
		commas(res.KilledAt), fmtParts(res.KilledHeld), cfg.SessionTimeout)
	d.say("      read_committed readers see b's outputs for them once the broker has aborted a's unfinished transaction (--transaction-timeout %s)", txnTimeout)
	d.killed = time.Now()
	d.a.kill()
	if err := produce(ctx, cfg.Brokers, in, cfg.First, cfg.Second, cfg.Keys); err != nil {
		return res, err
	}
	d.total = cfg.First + cfg.Second
	res.Inputs = d.total
	d.say("      %s more records produced meanwhile (%s in all)", commas(cfg.Second), commas(d.total))
	err = d.wait(ctx, "b took over every partition", func() bool {
		return len(d.b.partitions()) == int(cfg.Partitions)
	}, d.b)
	if err != nil {
		return res, err
	}
	res.Takeover = time.Since(d.killed)
	d.say("== 4. b holds every partition %s, %.1fs after the kill", fmtParts(d.b.partitions()), res.Takeover.Seconds())
	if err := d.wait(ctx, "every input has its output", func() bool { return d.out.count() >= d.total }, d.b); err != nil {
		return res, err
	}
	d.progress()

	d.say("== 5. SIGTERM b")
	res.SurvivorExit = exitStatus(d.b.stop(30 * time.Second))
	d.showEvents()
	if res.SurvivorExit != "exit 0" {
		res.Problems = append(res.Problems, fmt.Sprintf("b ended with %s after SIGTERM, want exit 0:\n%s", res.SurvivorExit, d.b.log(20)))
	}

	d.say("== 6. read %s from the start with a new read_committed consumer and check it", out)
	rctx, cancel := context.WithTimeout(ctx, cfg.StepTimeout)
	defer cancel()
	recs, err := readCommitted(rctx, cfg.Brokers, out, d.total, 3*time.Second)
	if err != nil {
		return res, err
	}
	res.Outputs = len(recs)
	res.Problems = append(res.Problems, check(recs, d.total, cfg.Keys)...)
	return res, ctx.Err()
}

// wait shows the instances' events and a progress line every 2 s until
// cond holds. It fails when one of the live instances stops, when the
// step's timeout passes or when ctx ends.
func (d *demo) wait(ctx context.Context, what string, cond func() bool, live ...*instance) error {
	deadline := time.Now().Add(d.cfg.StepTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		d.showEvents()
		if cond() {
			return nil
		}
		for _, x := range live {
			if x.exited() {
				return fmt.Errorf("waiting until %s: instance %s stopped (%s) with %s outputs; its log ends:\n%s",
					what, x.name, exitStatus(x.err), commas(d.out.count()), x.log(30))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting until %s: not so after %s (%s of %s outputs, a holds %s, b holds %s)",
				what, d.cfg.StepTimeout, commas(d.out.count()), commas(d.total), fmtParts(d.a.partitions()), fmtParts(d.b.partitions()))
		}
		if time.Now().After(d.nextBar) {
			d.progress()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (d *demo) progress() {
	d.nextBar = time.Now().Add(2 * time.Second)
	held := func(x *instance) string {
		if x.exited() {
			return "down"
		}
		return fmtParts(x.partitions())
	}
	d.line(time.Now(), "%9s of %s outputs   a holds %-9s  b holds %s", commas(d.out.count()), commas(d.total), held(d.a), held(d.b))
}

// showEvents prints what the instances logged since the last call.
func (d *demo) showEvents() {
	evs := append(d.a.take(), d.b.take()...)
	slices.SortStableFunc(evs, func(x, y event) int { return x.at.Compare(y.at) })
	for _, ev := range evs {
		switch ev.what {
		case "assigned", "revoked", "lost":
			d.line(ev.at, "%s: partitions %s %s", ev.inst.name, ev.what, fmtParts(ev.parts))
		case "restored":
			if ev.inst == d.b && !d.killed.IsZero() {
				d.res.Restored += ev.records
			}
			d.line(ev.at, "%s: partition %d's state restored from the changelog (%s records)", ev.inst.name, ev.parts[0], commas(ev.records))
		case "error":
			d.line(ev.at, "%s: ERROR %s", ev.inst.name, ev.text)
		case "exited":
			d.line(ev.at, "%s: exited (%s)", ev.inst.name, ev.text)
		}
	}
}

func (d *demo) line(at time.Time, format string, args ...any) {
	fmt.Fprintf(d.cfg.Out, "   [%5.1fs] %s\n", at.Sub(d.began).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.cfg.Out, format+"\n", args...) }

// commas writes n with thousands separators.
func commas(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
