// Package flow holds the seed's flow-control components: a queue-depth
// monitor, a dynamic batch sizer, credit-based flow control and a consumer
// lag monitor. The pipeline uses them between reading and commit.
package flow

import (
	"context"
	"sync"
	"time"
)

// Trend is the direction of a series over its retention window.
type Trend int

const (
	TrendStable Trend = iota
	TrendIncreasing
	TrendDecreasing
)

func (t Trend) String() string {
	return [...]string{"stable", "increasing", "decreasing"}[t]
}

type sample struct {
	at time.Time
	v  float64
}

// series keeps samples over a retention window.
type series struct{ s []sample }

func (s *series) add(at time.Time, v float64, retention time.Duration) {
	s.s = append(s.s, sample{at, v})
	cut := 0
	for cut < len(s.s) && at.Sub(s.s[cut].at) > retention {
		cut++
	}
	s.s = append(s.s[:0], s.s[cut:]...)
}

func (s *series) avg() float64 {
	if len(s.s) == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range s.s {
		sum += x.v
	}
	return sum / float64(len(s.s))
}

// trend compares the mean of the newer half of the window with the older
// half; a change under 10% of the older mean (or of 1) is stable.
func (s *series) trend() Trend {
	n := len(s.s)
	if n < 4 {
		return TrendStable
	}
	old, recent := (&series{s.s[:n/2]}).avg(), (&series{s.s[n/2:]}).avg()
	tol := 0.1 * max(old, 1)
	switch {
	case recent > old+tol:
		return TrendIncreasing
	case recent < old-tol:
		return TrendDecreasing
	}
	return TrendStable
}

// rate is the change per second between the oldest and newest sample.
func (s *series) rate() float64 {
	n := len(s.s)
	if n < 2 {
		return 0
	}
	dt := s.s[n-1].at.Sub(s.s[0].at).Seconds()
	if dt <= 0 {
		return 0
	}
	return (s.s[n-1].v - s.s[0].v) / dt
}

// QueueDepthMetrics describe one queue.
type QueueDepthMetrics struct {
	CurrentDepth       int
	MaxDepth           int
	AverageDepth       float64
	DepthTrend         Trend
	Utilization        float64       // current / max
	TimeAboveThreshold time.Duration // time spent above the threshold given to ShouldApplyBackpressure
}

// QueueDepthMonitor tracks the depth of queues (one per partition) over a
// retention window. It is safe for concurrent use.
type QueueDepthMonitor struct {
	max       int
	retention time.Duration
	now       func() time.Time

	mu     sync.Mutex
	queues map[string]*queueState
}

type queueState struct {
	depth      series
	current    int
	above      time.Duration
	aboveSince time.Time
}

// NewQueueDepthMonitor tracks queues of at most maxDepth entries over
// retention. now is the clock (nil: time.Now).
func NewQueueDepthMonitor(maxDepth int, retention time.Duration, now func() time.Time) *QueueDepthMonitor {
	if now == nil {
		now = time.Now
	}
	return &QueueDepthMonitor{max: max(maxDepth, 1), retention: retention, now: now, queues: map[string]*queueState{}}
}

func (m *QueueDepthMonitor) queue(name string) *queueState {
	q := m.queues[name]
	if q == nil {
		q = &queueState{}
		m.queues[name] = q
	}
	return q
}

// RecordDepth records the current depth of queue name.
func (m *QueueDepthMonitor) RecordDepth(name string, depth int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queue(name)
	q.current = depth
	q.depth.add(m.now(), float64(depth), m.retention)
}

// ShouldApplyBackpressure reports whether queue name is above threshold
// (a fraction of the maximum depth), and accounts time spent above it.
func (m *QueueDepthMonitor) ShouldApplyBackpressure(name string, threshold float64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queue(name)
	now := m.now()
	above := float64(q.current) >= threshold*float64(m.max)
	switch {
	case above && q.aboveSince.IsZero():
		q.aboveSince = now
	case !above && !q.aboveSince.IsZero():
		q.above += now.Sub(q.aboveSince)
		q.aboveSince = time.Time{}
	}
	return above
}

// Metrics returns queue name's metrics.
func (m *QueueDepthMonitor) Metrics(name string) QueueDepthMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queue(name)
	above := q.above
	if !q.aboveSince.IsZero() {
		above += m.now().Sub(q.aboveSince)
	}
	return QueueDepthMetrics{CurrentDepth: q.current, MaxDepth: m.max, AverageDepth: q.depth.avg(), DepthTrend: q.depth.trend(),
		Utilization: float64(q.current) / float64(m.max), TimeAboveThreshold: above}
}

// DynamicBatchSizer adapts a batch size per partition so that a batch takes
// about the target processing time, within [min, max]. It is safe for
// concurrent use.
type DynamicBatchSizer struct {
	initial, min, max int
	target            time.Duration

	mu    sync.Mutex
	sizes map[string]int
}

// NewDynamicBatchSizer starts every partition at initial.
func NewDynamicBatchSizer(initial, minSize, maxSize int, target time.Duration) *DynamicBatchSizer {
	minSize = max(minSize, 1)
	maxSize = max(maxSize, minSize)
	return &DynamicBatchSizer{initial: min(max(initial, minSize), maxSize), min: minSize, max: maxSize, target: target, sizes: map[string]int{}}
}

// BatchSize returns the current batch size of partition.
func (s *DynamicBatchSizer) BatchSize(partition string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.sizes[partition]; ok {
		return n
	}
	return s.initial
}

// RecordProcessingTime adapts partition's size after a batch of n records
// took elapsed: toward n * target/elapsed, moving at most 2x per step.
func (s *DynamicBatchSizer) RecordProcessingTime(partition string, n int, elapsed time.Duration) {
	if n <= 0 || s.target <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.sizes[partition]
	if !ok {
		cur = s.initial
	}
	var want float64
	if elapsed <= 0 {
		want = float64(cur) * 2
	} else {
		want = float64(n) * float64(s.target) / float64(elapsed)
	}
	want = min(max(want, float64(cur)/2), float64(cur)*2)
	s.sizes[partition] = min(max(int(want), s.min), s.max)
}

// CreditBasedFlowControl hands out credits (records or bytes) up to a
// maximum; consumers take credits before work and return them after commit.
// Credits also replenish at a fixed rate, so a consumer that never returns
// them (a bug) slows down instead of stopping forever. Safe for concurrent use.
type CreditBasedFlowControl struct {
	max  int64
	rate float64 // credits per second; 0: no replenishment
	now  func() time.Time

	mu        sync.Mutex
	available map[string]float64
	last      map[string]time.Time
	changed   chan struct{}
}

// NewCreditBasedFlowControl gives every consumer maxCredits, replenished at
// rate credits per second (0: only returned credits come back).
func NewCreditBasedFlowControl(maxCredits int64, rate float64, now func() time.Time) *CreditBasedFlowControl {
	if now == nil {
		now = time.Now
	}
	return &CreditBasedFlowControl{max: maxCredits, rate: rate, now: now, available: map[string]float64{}, last: map[string]time.Time{}, changed: make(chan struct{})}
}

func (f *CreditBasedFlowControl) refill(consumer string) float64 {
	a, ok := f.available[consumer]
	now := f.now()
	if !ok {
		a = float64(f.max)
	} else if f.rate > 0 {
		a = min(float64(f.max), a+f.rate*now.Sub(f.last[consumer]).Seconds())
	}
	f.available[consumer], f.last[consumer] = a, now
	return a
}

// TryConsume takes n credits if available. A request larger than the
// maximum is granted when the consumer holds all its credits, so one huge
// item cannot block forever.
func (f *CreditBasedFlowControl) TryConsume(consumer string, n int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.refill(consumer)
	if float64(n) <= a || (n > f.max && a >= float64(f.max)) {
		f.available[consumer] = a - float64(n)
		return true
	}
	return false
}

// Consume waits until n credits are available or ctx ends.
func (f *CreditBasedFlowControl) Consume(ctx context.Context, consumer string, n int64) error {
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if f.TryConsume(consumer, n) {
			return nil
		}
		wait := 50 * time.Millisecond
		select {
		case <-ch:
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ReturnCredits gives n credits back (after the work they paid for is done).
func (f *CreditBasedFlowControl) ReturnCredits(consumer string, n int64) {
	f.mu.Lock()
	a := f.refill(consumer)
	f.available[consumer] = min(float64(f.max), a+float64(n))
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Available returns consumer's current credits.
func (f *CreditBasedFlowControl) Available(consumer string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(f.refill(consumer))
}

// ConsumerLagMetrics describe one consumer on one partition.
type ConsumerLagMetrics struct {
	LatestOffset   int64
	ConsumerOffset int64
	CurrentLag     int64
	LagVelocity    float64 // change of the lag per second (positive: falling behind)
	LagTrend       Trend
}

// ConsumerLagMonitor tracks how far consumers are behind the latest offset
// of each partition. Safe for concurrent use.
type ConsumerLagMonitor struct {
	retention time.Duration
	now       func() time.Time

	mu       sync.Mutex
	latest   map[string]int64
	consumer map[[2]string]int64
	lag      map[[2]string]*series
}

// NewConsumerLagMonitor keeps lag history over retention.
func NewConsumerLagMonitor(retention time.Duration, now func() time.Time) *ConsumerLagMonitor {
	if now == nil {
		now = time.Now
	}
	return &ConsumerLagMonitor{retention: retention, now: now, latest: map[string]int64{}, consumer: map[[2]string]int64{}, lag: map[[2]string]*series{}}
}

// UpdateLatestOffset records the newest offset of partition.
func (m *ConsumerLagMonitor) UpdateLatestOffset(partition string, offset int64) {
	m.mu.Lock()
	m.latest[partition] = offset
	m.mu.Unlock()
}

// UpdateConsumerOffset records consumer's committed offset on partition.
func (m *ConsumerLagMonitor) UpdateConsumerOffset(consumer, partition string, offset int64) {
	m.mu.Lock()
	m.consumer[[2]string{consumer, partition}] = offset
	m.mu.Unlock()
}

// RecordLag adds the current lag of consumer on partition to its history.
func (m *ConsumerLagMonitor) RecordLag(consumer, partition string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{consumer, partition}
	s := m.lag[k]
	if s == nil {
		s = &series{}
		m.lag[k] = s
	}
	s.add(m.now(), float64(max(m.latest[partition]-m.consumer[k], 0)), m.retention)
}

// Metrics returns consumer's lag metrics on partition.
func (m *ConsumerLagMonitor) Metrics(consumer, partition string) ConsumerLagMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{consumer, partition}
	lm := ConsumerLagMetrics{LatestOffset: m.latest[partition], ConsumerOffset: m.consumer[k]}
	lm.CurrentLag = max(lm.LatestOffset-lm.ConsumerOffset, 0)
	if s := m.lag[k]; s != nil {
		lm.LagVelocity, lm.LagTrend = s.rate(), s.trend()
	}
	return lm
}
