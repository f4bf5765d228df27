package runtime

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/runtime/internal/kafka"
	"github.com/heliosdb/helios-wasm/storage"
)

// A fleet is the instances of one kafka: -> kafka: pipeline, on any number
// of machines, sharing the input's partitions through a Kafka consumer
// group (the Kafka Streams model; RATIONALE.md "Why the Kafka transaction
// decides in a consumer group"):
//
//   - each transaction is one Kafka transaction holding the outputs, the
//     operator's state changes (the compacted changelog topic
//     PIPELINE-state, partitioned like the input), the dead letters (the
//     topic PIPELINE-dlq) and the group's input offsets (KIP-447, so a
//     member of an older generation cannot commit);
//   - the data directory is a cache, written after the Kafka commit: when
//     a partition is assigned, its state is brought up to the changelog's
//     end before its first record is processed, whoever processed it last.
//
// fleet.run replaces the static one-worker-per-partition start of Run: a
// worker starts on assignment and, on revocation, stops and has its handed
// over batches committed before the partition is given up.
type fleet struct {
	p    *Pipeline
	src  *kafkaSource
	sink *kafkaSink

	group      string
	changelog  string // PIPELINE-state
	deadTopic  string // PIPELINE-dlq
	dedupTopic string // PIPELINE-dedup (with deduplication)
	lateTopic  string // a kafka: late output's topic (event time), "" for none
	lateParts  uint32 // its partition count

	member *kafka.Member

	mu sync.Mutex
	// owned is, per partition held, the assignment its batches were read
	// under (fleetPart.assignment). A batch commits only while that
	// assignment holds: a partition lost (the session expired) may have
	// been processed by another member since, even if it comes back.
	owned       map[int32]uint64
	assignments uint64               // the last assignment number given
	nexts       map[int32]topicNexts // per partition: the changelog and dedup offsets its committed state reaches
	closed      bool                 // stopWorkers ran: no new worker starts
	joined      chan struct{}        // closed once member is set
	parts       map[int32]*fleetPart // assigned to this instance
	ends        map[int32]int64      // bounded run: last stable offsets at start
	starts      map[int32]int64      // bounded run: log start offsets at start
	runCtx      context.Context
	readCtx     context.Context
	ch          chan<- *work
	fail        func(error)
	workers     sync.WaitGroup
}

// fleetPart is an assigned partition: the records polled for it, and its
// worker. Routing never blocks the poll loop: a partition whose reader
// falls behind (restoring, or done in a bounded run) has its fetching
// paused, and what was polled stays queued.
type fleetPart struct {
	mu     sync.Mutex
	chunks [][]*kgo.Record
	paused bool          // fetching paused: the queue is full
	ready  chan struct{} // signalled when chunks are added
	gone   chan struct{} // closed when revoked
	cancel context.CancelFunc
	done   chan struct{} // closed when its worker has returned
	next   int64         // the group's committed offset at assignment, -1 for none
	// assignment numbers this assignment of the partition: its batches
	// carry it (work.assignment) and commit only while it holds (owns).
	assignment uint64
}

// Queue bounds, in polled chunks: fetching a partition pauses at
// queueHigh and resumes at queueLow.
const queueHigh, queueLow = 8, 2

// put queues a polled chunk; it reports whether fetching must pause.
func (fp *fleetPart) put(recs []*kgo.Record) (pause bool) {
	fp.mu.Lock()
	fp.chunks = append(fp.chunks, recs)
	if len(fp.chunks) >= queueHigh && !fp.paused {
		fp.paused, pause = true, true
	}
	fp.mu.Unlock()
	select {
	case fp.ready <- struct{}{}:
	default:
	}
	return pause
}

// take returns the next chunk, or nil if none is queued; resume says
// fetching must resume.
func (fp *fleetPart) take() (recs []*kgo.Record, resume bool) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if len(fp.chunks) == 0 {
		return nil, false
	}
	recs, fp.chunks[0] = fp.chunks[0], nil
	fp.chunks = fp.chunks[1:]
	if fp.paused && len(fp.chunks) <= queueLow {
		fp.paused, resume = false, true
	}
	return recs, resume
}

// newFleet joins a kafka: source and sink into a fleet.
func newFleet(p *Pipeline, src *kafkaSource, sink *kafkaSink) *fleet {
	group := src.cfg.Group
	if group == "" {
		group = p.cfg.Name
	}
	f := &fleet{p: p, src: src, sink: sink, group: group, parts: map[int32]*fleetPart{}, owned: map[int32]uint64{}, nexts: map[int32]topicNexts{}, joined: make(chan struct{}),
		changelog: p.cfg.Name + "-state", deadTopic: fleetDeadTopic(p.cfg.Name), dedupTopic: p.cfg.Name + "-dedup"}
	src.fleet, sink.fleet = f, f
	return f
}

// prepare creates the fleet's topics when missing and, for a bounded
// run, reads the input's ends as of start.
func (f *fleet) prepare(ctx context.Context) error {
	cl, err := kafka.Connect(ctx, f.src.cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	// keyed: the topic follows the input's partitions (state, ids), so
	// its partition count must be the input's.
	type topicSpec struct {
		name  string
		cfg   map[string]*string
		keyed bool
	}
	compact := "compact"
	topics := []topicSpec{{f.changelog, map[string]*string{"cleanup.policy": &compact}, true}, {name: f.deadTopic}}
	if d := f.p.dedup; d != nil {
		// Ids expire with the window: time retention keeps the topic at
		// about a window's worth (restores skip what expired).
		retention := strconv.FormatInt(max(2*d.cfg.Window, time.Hour).Milliseconds(), 10)
		topics = append(topics, topicSpec{f.dedupTopic, map[string]*string{"retention.ms": &retention}, true})
	}
	if et := f.p.cfg.EventTime; et != nil {
		if kind, topic := parseLateOutput(et.LateOutput); kind == lateToKafka {
			f.lateTopic = topic
			topics = append(topics, topicSpec{name: topic})
		}
	}
	if !f.p.cfg.Follow { // the ends as of start, which the workers read from their first record
		if f.ends, f.starts, err = kafka.Ends(ctx, cl, f.src.topic); err != nil {
			return err
		}
	}
	for _, t := range topics {
		n, err := kafka.EnsureTopic(ctx, cl, t.name, kafka.TopicOptions{Create: true, Partitions: int32(f.src.parts), Config: t.cfg})
		if err != nil {
			return fmt.Errorf("pipeline %s: topic %s: %w", f.p.cfg.Name, t.name, err)
		}
		if t.name == f.lateTopic {
			f.lateParts = uint32(n)
		}
		if t.keyed && uint32(n) != f.src.parts {
			return fmt.Errorf("pipeline %s: topic %s has %d partitions but the input kafka:%s has %d: "+
				"state is kept per input partition; recreate the topic, or give the pipeline a new name", f.p.cfg.Name, t.name, n, f.src.topic, f.src.parts)
		}
	}
	return nil
}

// fleetDeadTopic is the Kafka topic of pipeline's dead letters.
func fleetDeadTopic(pipeline string) string { return pipeline + "-dlq" }

// refuseRetry is the fleet's answer to a dead-letter retry (see
// ErrFleetDeadLetters).
func (f *fleet) refuseRetry() error { return fleetRetryError(f.p.cfg.Name) }

// refuseFleetRetry refuses a retry of a stopped pipeline whose last
// transaction was a fleet instance's (its decision names the instance).
func refuseFleetRetry(db *storage.DB, pipeline string) error {
	_, data, found, err := db.LatestSeq(storage.SeqTxn, pipeline)
	if err != nil || !found {
		return err
	}
	var d decisionRecord
	var sd kafkaSinkData
	if json.Unmarshal(data, &d) == nil && json.Unmarshal(d.Data[sinkData], &sd) == nil && sd.Instance != "" {
		return fleetRetryError(pipeline)
	}
	return nil // a corrupt decision is reported by the retry's recovery
}

func fleetRetryError(pipeline string) error {
	dead := fleetDeadTopic(pipeline)
	return fmt.Errorf("pipeline %s: %w: they are the records of Kafka topic %s (this data directory keeps only a copy of those its instance committed), "+
		"and retried from here they would be committed outside the fleet's transactions; to process dead letters again, fix the operator, "+
		"then produce the records you want from %s to the input topic: they get new offsets, and the fleet processes them exactly once", pipeline, ErrFleetDeadLetters, dead, dead)
}

// instanceID is this instance's name in the fleet: the configured one
// (static membership), or one made up once and kept in the decision
// records of the data directory.
func (f *fleet) instanceID(recovered string) string {
	switch {
	case f.src.cfg.InstanceID != "":
		return f.src.cfg.InstanceID
	case recovered != "":
		return recovered
	}
	return uuid.NewString()
}

// run joins the group and feeds assigned partitions' workers until readCtx
// ends or, without Follow, the group's committed offsets reach the input's
// end as of start on every partition. It returns once every worker has.
func (f *fleet) run(runCtx, readCtx context.Context, ch chan<- *work, fail func(error)) error {
	cfg := &f.p.cfg
	f.mu.Lock()
	f.runCtx, f.readCtx, f.ch, f.fail = runCtx, readCtx, ch, fail
	f.mu.Unlock()
	defer f.stopWorkers()
	m, err := kafka.Join(runCtx, f.src.cfg, kafka.MemberOptions{Group: f.group, Topic: f.src.topic, InstanceID: f.sink.instance,
		SessionTimeout: f.src.cfg.SessionTimeout, Assigned: f.assigned, Revoked: f.revoked, Lost: f.lost})
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.member = m
	f.mu.Unlock()
	close(f.joined)
	checked := time.Now()
	var sessionLost time.Time // when the group session was lost, if it still is
	for readCtx.Err() == nil {
		pctx, cancel := readCtx, context.CancelFunc(func() {})
		if !cfg.Follow {
			pctx, cancel = context.WithTimeout(readCtx, 100*time.Millisecond)
		}
		fetched, err := m.Poll(pctx, 4*cfg.BatchSize)
		cancel()
		for i := range fetched {
			f.route(&fetched[i])
		}
		m.AllowRebalance()
		switch {
		case errors.Is(err, kafka.ErrNoGroupSession) && readCtx.Err() == nil:
			// A coordinator failover: the client rejoins. Give up only if
			// it cannot within a bound.
			bound := max(3*f.src.cfg.SessionTimeout, time.Minute)
			if sessionLost.IsZero() {
				sessionLost = time.Now()
				cfg.Logger.Warn("consumer group session lost: rejoining", "pipeline", cfg.Name, "group", f.group, "error", err)
			} else if time.Since(sessionLost) > bound {
				return fmt.Errorf("no consumer group session for %s: %w", bound, err)
			}
			select {
			case <-readCtx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		case err != nil && readCtx.Err() == nil && !errors.Is(err, context.DeadlineExceeded):
			return err
		default:
			sessionLost = time.Time{} // a poll without the session error: rejoined
		}
		if !cfg.Follow && time.Since(checked) > 100*time.Millisecond {
			checked = time.Now()
			done, err := f.finished(runCtx)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
		}
	}
	return nil
}

// route queues polled records for their partition's worker. It runs
// between a poll and AllowRebalance, so the partition's assignment is the
// one the records were fetched for.
func (f *fleet) route(fp *kafka.Fetched) {
	if fp.LastStable >= 0 && int(fp.Partition) < len(f.src.ends) {
		f.src.ends[fp.Partition].Store(fp.LastStable)
	}
	f.mu.Lock()
	part := f.parts[fp.Partition]
	f.mu.Unlock()
	if part == nil || len(fp.Records) == 0 {
		return
	}
	if part.put(fp.Records) {
		f.member.Pause(fp.Partition)
	}
}

// finished reports whether the group's committed offsets have reached
// the ends as of start on every partition.
func (f *fleet) finished(ctx context.Context) (bool, error) {
	committed, err := f.member.Committed(ctx, false)
	if err != nil {
		return false, err
	}
	for part, end := range f.ends {
		// Offsets below the log start were deleted by retention: nothing
		// there is left to commit past.
		at := f.starts[part]
		if c, ok := committed[part]; ok {
			at = max(at, c.At)
		}
		if at < end {
			return false, nil
		}
	}
	return true, nil
}

// assigned starts a worker per new partition; each first restores the
// partition's state.
func (f *fleet) assigned(_ context.Context, parts []int32) {
	cfg := &f.p.cfg
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg.Metrics.Rebalances.WithLabelValues(cfg.Name, "assigned").Inc()
	cfg.Logger.Info("partitions assigned", "pipeline", cfg.Name, "group", f.group, "partitions", parts)
	for _, part := range parts {
		if _, ok := f.parts[part]; ok || f.closed || f.readCtx.Err() != nil {
			continue
		}
		wctx, cancel := context.WithCancel(f.readCtx)
		f.assignments++
		fp := &fleetPart{ready: make(chan struct{}, 1), gone: make(chan struct{}), cancel: cancel, done: make(chan struct{}), next: -1,
			assignment: f.assignments}
		f.parts[part] = fp
		f.owned[part] = fp.assignment
		f.workers.Add(1)
		go func() {
			defer f.workers.Done()
			defer close(fp.done)
			select { // the callback may run before Join has returned
			case <-f.joined:
			case <-wctx.Done():
				return
			}
			f.member.Resume(part) // paused under an earlier assignment
			if err := f.restore(wctx, part, fp); err != nil {
				if wctx.Err() == nil {
					f.fail(err)
				}
				return
			}
			if err := f.p.work(f.runCtx, wctx, uint32(part), f.ch); err != nil {
				f.fail(err)
			}
		}()
	}
	cfg.Metrics.AssignedPartitions.WithLabelValues(cfg.Name).Set(float64(len(f.parts)))
}

// revoked stops the partitions' workers and returns once everything they
// handed over is committed: the next owner starts from there.
func (f *fleet) revoked(ctx context.Context, parts []int32) { f.release(ctx, parts, "revoked") }

// lost stops the partitions' workers: another member may own them
// already, so their batches not yet committed never will be (owns).
func (f *fleet) lost(ctx context.Context, parts []int32) { f.release(ctx, parts, "lost") }

func (f *fleet) release(ctx context.Context, parts []int32, change string) {
	cfg := &f.p.cfg
	cfg.Metrics.Rebalances.WithLabelValues(cfg.Name, change).Inc()
	cfg.Logger.Info("partitions "+change, "pipeline", cfg.Name, "group", f.group, "partitions", parts)
	var gone []*fleetPart
	f.mu.Lock()
	for _, part := range parts {
		if change == "lost" {
			delete(f.owned, part)
		}
		if fp := f.parts[part]; fp != nil {
			delete(f.parts, part)
			// Cancelled first: a reader woken by gone must find its
			// worker's context done, or the worker takes the wake-up for
			// a read error and fails the instance.
			fp.cancel()
			close(fp.gone)
			gone = append(gone, fp)
		}
	}
	cfg.Metrics.AssignedPartitions.WithLabelValues(cfg.Name).Set(float64(len(f.parts)))
	f.mu.Unlock()
	// Once their last commits are done (or given up), the partitions are
	// their new owner's: nothing of theirs commits here any more, and
	// their series are the new owner's to report.
	defer func() {
		f.mu.Lock()
		for _, part := range parts {
			delete(f.owned, part)
		}
		f.mu.Unlock()
		for _, part := range parts {
			pn := partName(uint32(part))
			for _, g := range []*prometheus.GaugeVec{cfg.Metrics.ConsumerLag, cfg.Metrics.LagVelocity, cfg.Metrics.BatchSize,
				cfg.Metrics.WatermarkLag, cfg.Metrics.RestoreLag} {
				g.DeleteLabelValues(cfg.Name, pn)
			}
		}
	}()
	for _, fp := range gone {
		select {
		case <-fp.done:
		case <-ctx.Done():
			return
		}
	}
	if change == "lost" {
		return // the broker refuses what is in flight for them
	}
	for _, part := range parts {
		for int(part) < len(f.p.inflight) && f.p.inflight[part].Load() > 0 {
			select {
			case <-ctx.Done():
				return
			case <-f.runCtx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// assignedParts lists the partitions assigned to this instance, sorted.
func (f *fleet) assignedParts() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]uint32, 0, len(f.parts))
	for part := range f.parts {
		out = append(out, uint32(part))
	}
	slices.Sort(out)
	return out
}

// stopWorkers stops every worker and waits for them.
func (f *fleet) stopWorkers() {
	f.mu.Lock()
	f.closed = true
	for _, fp := range f.parts {
		fp.cancel()
	}
	f.mu.Unlock()
	f.workers.Wait()
}

// close leaves the group, once nothing is left to commit.
func (f *fleet) close() {
	f.mu.Lock()
	m := f.member
	f.member = nil
	f.mu.Unlock()
	if m != nil {
		m.Close()
	}
}

// errDisowned means a transaction holds batches read under an assignment
// of their partition that has ended (its session expired): they must never
// commit, since another member may have processed the partition since.
var errDisowned = fmt.Errorf("%w: batches read under an assignment that has ended", kafka.ErrRebalanced)

// owns reports whether a batch of part read under assignment can commit:
// the partition is still held under that assignment.
func (f *fleet) owns(part uint32, assignment uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return assignment != 0 && f.owned[int32(part)] == assignment
}

// offsets returns the group offsets of a transaction's input positions,
// with the member's current generation. It fails with errDisowned if a
// position was read under an assignment that has ended: checked after the
// generation is read, and the client calls lost before it joins a newer
// generation, so a generation that the broker accepts is one in which
// every partition of marks has stayed this member's since it was read.
func (f *fleet) offsets(marks []offsetMark) (*kafka.GroupOffsets, error) {
	f.mu.Lock()
	m := f.member
	f.mu.Unlock()
	if m == nil {
		if len(marks) == 0 {
			return nil, nil
		}
		return nil, errors.New("kafka: input offsets to commit but the consumer group is not joined")
	}
	next := map[int32]int64{}
	for _, mk := range marks {
		next[int32(mk.part)] = mk.pos.Offset
	}
	o := m.Offsets(next)
	if part, ok := f.ownsAll(marks); !ok {
		return nil, fmt.Errorf("%w (partition %d of %s)", errDisowned, part, f.src.topic)
	}
	return o, nil
}

// ownsAll reports whether every batch of marks can commit, and if not, a
// partition of one that cannot.
func (f *fleet) ownsAll(marks []offsetMark) (uint32, bool) {
	for _, mk := range marks {
		if !f.owns(mk.part, mk.assignment) {
			return mk.part, false
		}
	}
	return 0, true
}

// awaitGeneration waits, for up to a second, until the member has joined a
// generation after old, or a partition of marks has been lost.
func (f *fleet) awaitGeneration(ctx context.Context, old int32, marks []offsetMark) error {
	f.mu.Lock()
	m := f.member
	f.mu.Unlock()
	pollUntil(ctx, time.Second, func() bool {
		_, owned := f.ownsAll(marks)
		return m.Generation() != old || !owned // if lost, the next attempt fails with errDisowned
	})
	return ctx.Err()
}

// awaitDisowned reports whether a batch of marks cannot commit, waiting up
// to a session timeout for it: after a pause long enough for the broker to
// abort a transaction, the client learns at its next heartbeat that its
// session has expired.
func (f *fleet) awaitDisowned(ctx context.Context, marks []offsetMark) bool {
	return pollUntil(ctx, cmp.Or(f.src.cfg.SessionTimeout, 10*time.Second), func() bool {
		_, owned := f.ownsAll(marks)
		return !owned
	})
}

// pollUntil checks cond every 10ms until it holds, d has passed or ctx
// ends, and reports whether it held.
func pollUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// open returns the reader of an assigned partition.
func (f *fleet) open(part uint32, follow bool) (Reader, error) {
	f.mu.Lock()
	fp := f.parts[int32(part)]
	f.mu.Unlock()
	if fp == nil {
		return nil, fmt.Errorf("kafka: partition %d of %s is not assigned to this instance", part, f.src.topic)
	}
	// The group's offset, not the data directory's: another instance may
	// have processed the partition since this one last did.
	r := &fleetReader{f: f, fp: fp, part: int32(part), kafkaCursor: kafkaCursor{pos: Position{Offset: max(fp.next, 0)}, end: -1,
		src: sourceHash(fmt.Sprintf("%s/%d", f.src.Identity(), part))}}
	if !follow {
		r.end = f.ends[int32(part)]
	}
	return r, nil
}

// fleetReader reads an assigned partition's polled records.
type fleetReader struct {
	kafkaCursor // end: without follow, the last stable offset at start
	f           *fleet
	fp          *fleetPart
	part        int32
}

func (r *fleetReader) Read(ctx context.Context, dst []abi.Record, max, maxBytes int) ([]abi.Record, Position, error) {
	from := r.pos.Offset // a read past transaction markers alone returns, to hand the position over
	for {
		if r.done() {
			return dst, r.pos, io.EOF
		}
		if len(r.buf) == 0 {
			recs, resume := r.fp.take()
			if resume {
				r.f.member.Resume(r.part)
			}
			if recs != nil {
				r.buf = recs
				continue
			}
			select {
			case <-r.fp.ready:
			case <-r.fp.gone:
				return dst, r.pos, context.Canceled
			case <-ctx.Done():
				return dst, r.pos, ctx.Err()
			}
			continue
		}
		var n int
		dst, n, _ = r.take(dst, max, maxBytes, func(*kgo.Record) error {
			return nil // fetched before this assignment's committed offset
		})
		if n > 0 || r.done() || r.pos.Offset != from {
			return dst, r.pos, nil
		}
	}
}

func (r *fleetReader) Close() error { return nil }

// assignment implements assignedReader.
func (r *fleetReader) assignment() uint64 { return r.fp.assignment }

// assignedReader is a reader of a partition held under one assignment (a
// fleet's): the batches it reads commit only while that assignment holds.
type assignedReader interface{ assignment() uint64 }
