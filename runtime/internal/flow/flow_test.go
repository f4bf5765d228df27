package flow

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestQueueDepthMonitor(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	m := NewQueueDepthMonitor(100, 10*time.Second, clock.Now)
	steps := []struct {
		depth     int
		advance   time.Duration
		pressure  bool
		threshold float64
	}{
		{10, time.Second, false, 0.8},
		{20, time.Second, false, 0.8},
		{85, time.Second, true, 0.8},
		{90, 2 * time.Second, true, 0.8},
		{50, time.Second, false, 0.8},
	}
	for i, s := range steps {
		clock.Add(s.advance)
		m.RecordDepth("p0", s.depth)
		if got := m.ShouldApplyBackpressure("p0", s.threshold); got != s.pressure {
			t.Fatalf("step %d: backpressure %v, want %v", i, got, s.pressure)
		}
	}
	got := m.Metrics("p0")
	if got.CurrentDepth != 50 || got.MaxDepth != 100 || got.AverageDepth != 51 || got.Utilization != 0.5 {
		t.Fatalf("metrics %+v", got)
	}
	if got.TimeAboveThreshold != 3*time.Second || got.DepthTrend != TrendIncreasing {
		t.Fatalf("above %v, trend %v", got.TimeAboveThreshold, got.DepthTrend)
	}
	clock.Add(30 * time.Second) // everything older falls out of the window
	m.RecordDepth("p0", 5)
	if got := m.Metrics("p0"); got.AverageDepth != 5 || got.DepthTrend != TrendStable {
		t.Fatalf("after retention: %+v", got)
	}
}

func TestDynamicBatchSizer(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		elapsed time.Duration
		want    int
	}{
		{"too slow halves at most", 100, time.Second, 50},
		{"then exact target", 50, 100 * time.Millisecond, 50},
		{"fast doubles at most", 50, time.Millisecond, 100},
		{"bounded by max", 100, time.Millisecond, 150},
		{"bounded by min", 150, time.Hour, 75},
	}
	s := NewDynamicBatchSizer(100, 10, 150, 100*time.Millisecond)
	for _, tt := range tests {
		s.RecordProcessingTime("p", tt.n, tt.elapsed)
		if got := s.BatchSize("p"); got != tt.want {
			t.Fatalf("%s: size %d, want %d", tt.name, got, tt.want)
		}
	}
	if s.BatchSize("other") != 100 {
		t.Fatal("partitions are independent")
	}
	low := NewDynamicBatchSizer(5, 10, 20, time.Second)
	if low.BatchSize("p") != 10 {
		t.Fatal("initial is clamped into [min, max]")
	}
}

func TestCreditBasedFlowControl(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	f := NewCreditBasedFlowControl(100, 10, clock.Now)
	steps := []struct {
		op      string
		n       int64
		advance time.Duration
		ok      bool
		avail   int64
	}{
		{"consume", 60, 0, true, 40},
		{"consume", 50, 0, false, 40},
		{"consume", 40, 0, true, 0},
		{"consume", 10, time.Second, true, 0}, // replenished 10 in a second
		{"return", 70, 0, true, 70},
		{"return", 70, 0, true, 100},    // never above the maximum
		{"consume", 500, 0, true, -400}, // a huge item passes when all credits are held
		{"consume", 1, 0, false, -400},
	}
	for i, s := range steps {
		clock.Add(s.advance)
		ok := true
		if s.op == "consume" {
			ok = f.TryConsume("c", s.n)
		} else {
			f.ReturnCredits("c", s.n)
		}
		if ok != s.ok || f.Available("c") != s.avail {
			t.Fatalf("step %d %s %d: ok=%v available=%d, want %v %d", i, s.op, s.n, ok, f.Available("c"), s.ok, s.avail)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.Consume(ctx, "c", 10); err == nil {
		t.Fatal("Consume returned without credits")
	}
	go f.ReturnCredits("c", 1000)
	if err := f.Consume(context.Background(), "c", 10); err != nil {
		t.Fatal(err)
	}
}

func TestConsumerLagMonitor(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	m := NewConsumerLagMonitor(time.Minute, clock.Now)
	for i, s := range []struct{ latest, consumer int64 }{{100, 0}, {200, 50}, {300, 100}, {400, 150}} {
		if i > 0 {
			clock.Add(time.Second)
		}
		m.UpdateLatestOffset("p0", s.latest)
		m.UpdateConsumerOffset("c", "p0", s.consumer)
		m.RecordLag("c", "p0")
	}
	got := m.Metrics("c", "p0")
	if got.CurrentLag != 250 || got.LagVelocity != 50 || got.LagTrend != TrendIncreasing {
		t.Fatalf("metrics %+v", got)
	}
	m.UpdateConsumerOffset("c", "p0", 500) // ahead of the known latest: no negative lag
	if got := m.Metrics("c", "p0"); got.CurrentLag != 0 {
		t.Fatalf("lag %d", got.CurrentLag)
	}
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
