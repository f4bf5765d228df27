package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/storage"
)

// generation is one plugin version of a running pipeline, with an instance
// per partition. Workers switch to a new generation between batches; the
// committer never mixes generations in one transaction. A superseded
// generation is retired once every instance is released: by its worker
// switching away, or at the swap for a worker that never switched to it.
type generation struct {
	seq    uint64
	plugin *host.Plugin
	config []abi.Header
	owned  bool // the plugin came through Swap: closed once no generation uses it

	mu    sync.Mutex
	insts []*host.Instance // nil once released
	taken []bool           // the partition's worker switched to it
	open  int              // instances not released yet
}

func newGeneration(seq uint64, plugin *host.Plugin, config []abi.Header, insts []*host.Instance, owned bool) *generation {
	return &generation{seq: seq, plugin: plugin, config: config, owned: owned, insts: insts, taken: make([]bool, len(insts)), open: len(insts)}
}

// take hands partition part's instance to its worker: nil when the
// generation was superseded, and the instance released, before it got to it.
func (g *generation) take(part uint32) *host.Instance {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.insts[part] != nil {
		g.taken[part] = true
	}
	return g.insts[part]
}

// release takes partition part's instance out of g (nil if it is out
// already) and says whether it was the last one. untakenOnly releases it
// only if no worker took it.
func (g *generation) release(part int, untakenOnly bool) (inst *host.Instance, last bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	inst = g.insts[part]
	if inst == nil || (untakenOnly && g.taken[part]) {
		return nil, false
	}
	g.insts[part] = nil
	g.open--
	return inst, g.open == 0
}

// releaseInstance closes g's instance for part (see release) and retires g
// when it was the last.
func (p *Pipeline) releaseInstance(g *generation, part int, untakenOnly bool) {
	inst, last := g.release(part, untakenOnly)
	if inst != nil {
		inst.Close(context.Background())
	}
	if last {
		p.retire(g)
	}
}

// retire drops a generation whose instances are all closed from the list,
// and closes its plugin when the pipeline owns it and no other generation
// uses it.
func (p *Pipeline) retire(g *generation) {
	p.gensMu.Lock()
	p.gens = slices.DeleteFunc(p.gens, func(x *generation) bool { return x == g })
	unused := g.owned && p.unref(g.plugin)
	p.gensMu.Unlock()
	if unused {
		g.plugin.Close(context.Background())
	}
}

// unref drops one use of an owned plugin and says whether it was the last.
// The caller holds gensMu.
func (p *Pipeline) unref(plugin *host.Plugin) bool {
	p.pluginRefs[plugin]--
	if p.pluginRefs[plugin] > 0 {
		return false
	}
	delete(p.pluginRefs, plugin)
	return true
}

// useGeneration returns the current generation with a use of its plugin
// taken (a swap meanwhile does not close it), and done, which gives the
// use back.
func (p *Pipeline) useGeneration() (g *generation, done func()) {
	p.gensMu.Lock()
	defer p.gensMu.Unlock()
	g = p.gen.Load()
	if g == nil || !g.owned {
		return g, func() {}
	}
	p.pluginRefs[g.plugin]++
	return g, func() {
		p.gensMu.Lock()
		unused := p.unref(g.plugin)
		p.gensMu.Unlock()
		if unused {
			g.plugin.Close(context.Background())
		}
	}
}

// closeGenerations releases every generation at the end of Run: the
// superseded ones and cur, the current one.
func (p *Pipeline) closeGenerations(cur *generation) {
	p.gensMu.Lock()
	all := slices.Clone(p.gens)
	p.gensMu.Unlock()
	if cur != nil {
		all = append(all, cur)
	}
	for _, g := range all {
		for part := range g.insts {
			p.releaseInstance(g, part, false)
		}
	}
}

// pluginVersion is one entry of a pipeline's plugin history.
type pluginVersion struct {
	Seq    uint64       `json:"seq"`
	Hash   string       `json:"hash"`
	Name   string       `json:"name"`
	Config []abi.Header `json:"config,omitempty"`
	Time   time.Time    `json:"time"`
	Reason string       `json:"reason"` // start, swap, rollback
}

// pluginVersions lists pipeline's plugin history, oldest first.
func pluginVersions(db *storage.DB, pipeline string) ([]pluginVersion, error) {
	var out []pluginVersion
	err := db.ListSeq(storage.SeqVersion, pipeline, func(_ uint64, data []byte) error {
		var v pluginVersion
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// LatestPlugin compiles, with e, the plugin version pipeline name ran last
// (swaps and rollbacks included) from the module its data directory keeps,
// and returns it with its configuration. found is false when no version is
// recorded (a pipeline that never started).
func LatestPlugin(ctx context.Context, db *storage.DB, e *host.Engine, name string) (_ *host.Plugin, config []abi.Header, found bool, err error) {
	seq, data, found, err := db.LatestSeq(storage.SeqVersion, name)
	if err != nil || !found {
		return nil, nil, false, err
	}
	var v pluginVersion
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, nil, false, fmt.Errorf("pipeline %s: plugin version %d: %w", name, seq, err)
	}
	wasm, have, err := db.GetBlob(v.Hash)
	if err == nil && !have {
		err = errors.New("not in the data directory")
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("pipeline %s: module of plugin version %d (%s): %w", name, seq, v.Hash[:12], err)
	}
	plugin, err := e.Compile(ctx, v.Name, wasm)
	if err != nil {
		return nil, nil, false, err
	}
	return plugin, v.Config, true, nil
}

// recordVersion durably appends a version (and the module bytes) to the
// pipeline's history, and returns its sequence number.
func (p *Pipeline) recordVersion(plugin *host.Plugin, config []abi.Header, reason string) (uint64, error) {
	versionMu.Lock() // see pruneVersions
	defer versionMu.Unlock()
	seq := uint64(0)
	id, _, found, err := p.cfg.DB.LatestSeq(storage.SeqVersion, p.cfg.Name)
	if err != nil {
		return 0, err
	}
	if found {
		seq = id + 1
	}
	v, err := json.Marshal(pluginVersion{Seq: seq, Hash: plugin.Hash(), Name: plugin.Name(), Config: config, Time: time.Now().UTC(), Reason: reason})
	if err != nil {
		return 0, err
	}
	b := p.cfg.DB.NewBatch()
	// Modules are content-addressed: a version seen before costs no write
	// (a Go module is megabytes, and its synced write delays commits).
	if _, have, err := p.cfg.DB.GetBlob(plugin.Hash()); err != nil || !have {
		if err := b.PutBlob(plugin.Hash(), plugin.Bytes()); err != nil {
			b.Close()
			return 0, err
		}
	}
	if err := b.PutSeq(storage.SeqVersion, p.cfg.Name, seq, v); err != nil {
		b.Close()
		return 0, err
	}
	if err := p.pruneVersions(b, seq, plugin.Hash()); err != nil {
		b.Close()
		return 0, err
	}
	return seq, p.cfg.DB.Commit(b)
}

// startVersion records the starting plugin in the history unless it is
// already the latest version, and returns the current version number.
func (p *Pipeline) startVersion() (uint64, error) {
	id, data, found, err := p.cfg.DB.LatestSeq(storage.SeqVersion, p.cfg.Name)
	if err != nil {
		return 0, err
	}
	if found {
		var v pluginVersion
		if json.Unmarshal(data, &v) == nil && v.Hash == p.cfg.Plugin.Hash() && fmt.Sprint(v.Config) == fmt.Sprint(p.cfg.PluginConfig) {
			return id, nil
		}
	}
	return p.recordVersion(p.cfg.Plugin, p.cfg.PluginConfig, "start")
}

// Engine returns the engine that compiled the pipeline's plugin, to compile
// replacements with.
func (p *Pipeline) Engine() *host.Engine { return p.cfg.Plugin.Engine() }

// SwapResult says what a swap did.
type SwapResult struct {
	Version  uint64
	Hash     string
	Previous string
	Prepared time.Duration // compile-free preparation: instantiate and init every partition
}

// Swap replaces the running plugin. The new plugin is instantiated and
// initialised with config on every partition first, off the processing
// path; if any of that fails the swap is refused and the old plugin keeps
// running. Otherwise every partition switches between two batches: batches
// in flight finish on the old version, each record is processed by exactly
// one version, and operator state carries over. The version is recorded in
// the data directory (for rollback) before it takes effect.
//
// Swap takes plugin over (unless it is Config.Plugin): the pipeline closes
// it once no version uses it any more, or at once if the swap is refused,
// so compile a plugin for each swap.
func (p *Pipeline) Swap(ctx context.Context, plugin *host.Plugin, config []abi.Header) (SwapResult, error) {
	return p.swap(ctx, plugin, config, "swap")
}

func (p *Pipeline) swap(ctx context.Context, plugin *host.Plugin, config []abi.Header, reason string) (SwapResult, error) {
	ctx, cancel := p.untilStop(ctx)
	defer cancel()
	p.swapMu.Lock()
	defer p.swapMu.Unlock()
	owned := plugin != p.cfg.Plugin
	p.gensMu.Lock()
	if owned {
		p.pluginRefs[plugin]++ // the new generation's use, or released below
	}
	p.gensMu.Unlock()
	refuse := func() {
		p.gensMu.Lock()
		unused := owned && p.unref(plugin)
		p.gensMu.Unlock()
		if unused {
			plugin.Close(context.Background())
		}
	}
	cur := p.gen.Load()
	if cur == nil {
		refuse()
		return SwapResult{}, ErrNotRunning
	}
	if p.windows != nil && !plugin.Info().WindowClose {
		refuse()
		return SwapResult{}, fmt.Errorf("swap refused, %s keeps running: the pipeline has windows and %s does not export %s (abi.md, section Windows)",
			cur.plugin.Name(), plugin.Name(), abi.ExportWindowClose)
	}
	start := time.Now()
	insts, err := p.instantiate(ctx, plugin, config)
	if err != nil {
		refuse()
		return SwapResult{}, fmt.Errorf("swap refused, %s keeps running: %w", cur.plugin.Name(), err)
	}
	seq, err := p.recordVersion(plugin, config, reason)
	if err != nil {
		closeAll(insts)
		refuse()
		return SwapResult{}, err
	}
	p.gensMu.Lock()
	p.gens = append(p.gens, cur)
	p.gensMu.Unlock()
	p.gen.Store(newGeneration(seq, plugin, config, insts, owned))
	// Workers that never switched to cur will not: close those instances now.
	for part := range cur.insts {
		p.releaseInstance(cur, part, true)
	}
	p.swaps.Add(1)
	p.cfg.Metrics.Swaps.WithLabelValues(p.cfg.Name, reason).Inc()
	p.cfg.Logger.Info("plugin swapped", "pipeline", p.cfg.Name, "from", cur.plugin.ShortHash(), "to", plugin.ShortHash(), "version", seq, "reason", reason)
	return SwapResult{Version: seq, Hash: plugin.Hash(), Previous: cur.plugin.Hash(), Prepared: time.Since(start)}, nil
}

// Rollback swaps back to the version before the current one.
func (p *Pipeline) Rollback(ctx context.Context) (SwapResult, error) {
	versions, err := pluginVersions(p.cfg.DB, p.cfg.Name)
	if err != nil {
		return SwapResult{}, err
	}
	cur := p.gen.Load()
	if cur == nil {
		return SwapResult{}, ErrNotRunning
	}
	// The previous version is the latest entry before the current one whose
	// module differs from the current module.
	var prev *pluginVersion
	for i := len(versions) - 1; i >= 0; i-- {
		if versions[i].Seq < cur.seq && versions[i].Hash != cur.plugin.Hash() {
			prev = &versions[i]
			break
		}
	}
	if prev == nil {
		return SwapResult{}, fmt.Errorf("pipeline %s: no earlier plugin version to roll back to", p.cfg.Name)
	}
	wasm, found, err := p.cfg.DB.GetBlob(prev.Hash)
	if err != nil || !found {
		return SwapResult{}, fmt.Errorf("pipeline %s: module of version %d (%s) is missing: %v", p.cfg.Name, prev.Seq, prev.Hash[:12], err)
	}
	cctx, cancel := p.untilStop(ctx)
	plugin, err := cur.plugin.Engine().Compile(cctx, prev.Name, wasm)
	cancel()
	if err != nil {
		return SwapResult{}, err
	}
	return p.swap(ctx, plugin, prev.Config, "rollback")
}

// untilStop returns ctx, also cancelled when the pipeline stops: preparing
// a version (compiling, the start function, helios_init) stops when its
// caller gives up or the pipeline is stopped, so that a swap never holds a
// stopping pipeline up. cancel releases the watch.
func (p *Pipeline) untilStop(ctx context.Context) (_ context.Context, cancel context.CancelFunc) {
	ctx, cancel = context.WithCancel(ctx)
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// instantiate creates and initialises an instance of plugin per partition.
func (p *Pipeline) instantiate(ctx context.Context, plugin *host.Plugin, config []abi.Header) ([]*host.Instance, error) {
	parts := p.cfg.Source.Partitions()
	insts := make([]*host.Instance, parts)
	for part := range parts {
		inst, err := plugin.NewInstance(ctx, host.InstanceConfig{Config: config, Partition: int32(part), Logger: p.cfg.Logger.With("pipeline", p.cfg.Name)})
		if err != nil {
			closeAll(insts)
			return nil, err
		}
		insts[part] = inst
	}
	return insts, nil
}

func closeAll(insts []*host.Instance) {
	for _, in := range insts {
		if in != nil {
			in.Close(context.Background())
		}
	}
}

// pauser holds workers between batches while a pipeline is paused.
type pauser struct {
	mu     sync.Mutex
	paused bool
	resume chan struct{}
}

// Pause stops the pipeline from starting new batches; batches in flight
// finish and commit.
func (p *Pipeline) Pause() {
	p.pause.mu.Lock()
	if !p.pause.paused {
		p.pause.paused, p.pause.resume = true, make(chan struct{})
	}
	p.pause.mu.Unlock()
}

// Resume lets a paused pipeline continue.
func (p *Pipeline) Resume() {
	p.pause.mu.Lock()
	if p.pause.paused {
		p.pause.paused = false
		close(p.pause.resume)
	}
	p.pause.mu.Unlock()
}

// Paused reports whether the pipeline is paused.
func (p *Pipeline) Paused() bool {
	p.pause.mu.Lock()
	defer p.pause.mu.Unlock()
	return p.pause.paused
}

// waitIfPaused blocks while paused, until resumed, stopped or ctx ends
// (a partition revoked from the worker).
func (p *Pipeline) waitIfPaused(ctx context.Context) {
	p.pause.mu.Lock()
	paused, ch := p.pause.paused, p.pause.resume
	p.pause.mu.Unlock()
	if !paused {
		return
	}
	select {
	case <-ch:
	case <-p.stop:
	case <-ctx.Done():
	}
}

// Status is a snapshot for people and the admin API.
type Status struct {
	Name          string           `json:"name"`
	Source        string           `json:"source"`
	Sink          string           `json:"sink"`
	Plugin        string           `json:"plugin"`
	PluginHash    string           `json:"plugin_hash"`
	PluginVersion uint64           `json:"plugin_version"`
	Paused        bool             `json:"paused"`
	RecordsIn     int64            `json:"records_in"`
	RecordsOut    int64            `json:"records_out"`
	DeadLettered  int64            `json:"dead_lettered"`
	DLQSize       int              `json:"dlq_size"`
	Swaps         int64            `json:"swaps"`
	Offsets       map[uint32]int64 `json:"offsets"`
	Lag           map[uint32]int64 `json:"lag,omitempty"`
	// Assigned lists the input partitions a consumer group has assigned to
	// this instance of a kafka: -> kafka: pipeline (Offsets and Lag cover
	// only them); nil when the instance reads every partition.
	Assigned      []uint32 `json:"assigned,omitempty"`
	RecordsPerSec float64  `json:"records_per_second"`
	// Ended is set once the pipeline's run has returned; Error is why, if
	// it failed.
	Ended bool   `json:"ended,omitempty"`
	Error string `json:"error,omitempty"`
}

// Status reports the pipeline's current state.
func (p *Pipeline) Status() Status {
	pr := p.Progress()
	st := Status{Name: p.cfg.Name, Source: p.cfg.Source.Identity(), Sink: p.cfg.Sink.Identity(), Paused: p.Paused(),
		RecordsIn: pr.RecordsIn, RecordsOut: pr.RecordsOut, DeadLettered: p.dead.Load(), Swaps: p.swaps.Load(),
		Offsets: map[uint32]int64{}, Lag: map[uint32]int64{}}
	g := p.gen.Load()
	if g == nil {
		g = p.lastGen.Load() // ended
	}
	if g != nil {
		st.Plugin, st.PluginHash, st.PluginVersion = g.plugin.Name(), g.plugin.Hash(), g.seq
	} else {
		st.Plugin, st.PluginHash = p.cfg.Plugin.Name(), p.cfg.Plugin.Hash()
	}
	var owned func(uint32) bool
	if p.fleet != nil {
		st.Assigned = p.fleet.assignedParts()
		owned = func(part uint32) bool { return slices.Contains(st.Assigned, part) }
	}
	for part, pos := range pr.Committed {
		if owned != nil && !owned(part) {
			continue // another instance's now: this data directory's offset is stale
		}
		st.Offsets[part] = pos.Offset
		if lm := p.lag.Metrics(p.cfg.Name, partName(part)); lm.LatestOffset > 0 {
			st.Lag[part] = lm.CurrentLag
		}
	}
	if p.dlq != nil {
		st.DLQSize = p.dlq.Size()
	}
	if ended, err := p.Ended(); ended {
		st.Ended = true
		if err != nil {
			st.Error = err.Error()
		}
	}
	select {
	case <-p.ready: // p.started is set before ready closes
		if el := time.Since(p.started).Seconds(); el > 0 {
			st.RecordsPerSec = float64(pr.RecordsIn) / el
		}
	default:
	}
	return st
}
