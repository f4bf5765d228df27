package eventtime

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseWindowSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want WindowSpec
		errs []string
	}{
		{"tumbling:1m", WindowSpec{Kind: Tumbling, Size: time.Minute}, nil},
		{"sliding:10m/1m", WindowSpec{Kind: Sliding, Size: 10 * time.Minute, Slide: time.Minute}, nil},
		{"sliding:10m/3m", WindowSpec{Kind: Sliding, Size: 10 * time.Minute, Slide: 3 * time.Minute}, nil},
		{"session:30s", WindowSpec{Kind: Session, Gap: 30 * time.Second}, nil},
		{"tumbling:", WindowSpec{}, []string{`size "" is not a duration`}},
		{"tumbling:0s", WindowSpec{}, []string{"must be positive"}},
		{"tumbling:1.5ms", WindowSpec{}, []string{"whole number of milliseconds"}},
		{"tumbling:900000h", WindowSpec{}, []string{"exceeds 100 years"}},
		{"sliding:10m", WindowSpec{}, []string{"needs SIZE/SLIDE"}},
		{"sliding:1m/10m", WindowSpec{}, []string{"slide 10m0s exceeds size 1m0s"}},
		{"sliding:x/-1s", WindowSpec{}, []string{`size "x"`, "slide -1s must be positive"}},
		{"session:-3s", WindowSpec{}, []string{"gap -3s must be positive"}},
		{"hopping:1m", WindowSpec{}, []string{`unknown window kind "hopping"`}},
	} {
		got, err := ParseWindowSpec(tc.spec)
		if tc.errs == nil {
			if err != nil || got != tc.want {
				t.Errorf("ParseWindowSpec(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			}
			if back, err := ParseWindowSpec(got.String()); err != nil || back != got {
				t.Errorf("%q: String %q does not parse back", tc.spec, got.String())
			}
			continue
		}
		for _, e := range tc.errs {
			if err == nil || !strings.Contains(err.Error(), e) {
				t.Errorf("ParseWindowSpec(%q) error %v, want it to mention %q", tc.spec, err, e)
			}
		}
	}
}

func TestAssign(t *testing.T) {
	must := func(s string) WindowSpec {
		w, err := ParseWindowSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for _, tc := range []struct {
		spec string
		t    Time
		want []Window
	}{
		{"tumbling:1s", 0, []Window{{0, 1000}}},
		{"tumbling:1s", 999, []Window{{0, 1000}}},
		{"tumbling:1s", 1000, []Window{{1000, 2000}}},
		{"tumbling:1s", -1, []Window{{-1000, 0}}},
		{"tumbling:1s", -1000, []Window{{-1000, 0}}},
		{"sliding:3s/1s", 2500, []Window{{0, 3000}, {1000, 4000}, {2000, 5000}}},
		{"sliding:3s/1s", 3000, []Window{{1000, 4000}, {2000, 5000}, {3000, 6000}}},
		{"sliding:10s/3s", 10000, []Window{{3000, 13000}, {6000, 16000}, {9000, 19000}}},
		{"sliding:10s/3s", -1, []Window{{-9000, 1000}, {-6000, 4000}, {-3000, 7000}}},
		{"sliding:2s/2s", 1, []Window{{0, 2000}}},
		{"session:30s", 5, []Window{{5, 30005}}},
	} {
		if got := must(tc.spec).Assign(tc.t); !slices.Equal(got, tc.want) {
			t.Errorf("%s Assign(%d) = %v, want %v", tc.spec, tc.t, got, tc.want)
		}
	}
}

// TestAssignProperty: every record is assigned to exactly the windows that
// contain it, among all windows the spec defines (starts at multiples of the
// slide), across the whole event-time range.
func TestAssignProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		slide := int64(1 + rng.IntN(50))
		size := slide * int64(1+rng.IntN(5))
		if rng.IntN(2) == 0 { // size not a multiple of slide
			size += int64(rng.IntN(int(slide)))
		}
		spec := WindowSpec{Kind: Sliding, Size: time.Duration(size) * time.Millisecond, Slide: time.Duration(slide) * time.Millisecond}
		if size == slide && rng.IntN(2) == 0 {
			spec = WindowSpec{Kind: Tumbling, Size: spec.Size}
		}
		var tm Time
		switch rng.IntN(3) {
		case 0:
			tm = Time(rng.Int64N(2000) - 1000)
		case 1:
			tm = MinEventTime + Time(rng.Int64N(1000))
		default:
			tm = MaxEventTime - Time(rng.Int64N(1000))
		}
		var want []Window
		base := floorDiv(int64(tm)-10*size, slide) * slide
		for start := base; start <= int64(tm)+slide; start += slide {
			if w := (Window{Time(start), Time(start + size)}); w.Contains(tm) {
				want = append(want, w)
			}
		}
		if got := spec.Assign(tm); !slices.Equal(got, want) {
			t.Fatalf("%v Assign(%d) = %v, want %v", spec, tm, got, want)
		}
	}
}

// FuzzParseWindowSpec: no spec panics; a spec that parses prints back to an
// equal spec and assigns every time to windows that contain it.
func FuzzParseWindowSpec(f *testing.F) {
	for _, s := range []string{"tumbling:1m", "sliding:10m/1m", "session:30s", "sliding:1ms/1ms", "tumbling:-1s"} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, spec string, tm int64) {
		s, err := ParseWindowSpec(spec)
		if err != nil {
			return
		}
		if back, err := ParseWindowSpec(s.String()); err != nil || back != s {
			t.Fatalf("%q -> %q -> %+v, %v", spec, s.String(), back, err)
		}
		et := MinEventTime + Time(uint64(tm)%uint64(MaxEventTime-MinEventTime+1))
		ws := s.Assign(et)
		if len(ws) == 0 {
			t.Fatalf("%v: %d in no window", s, et)
		}
		for _, w := range ws {
			if !w.Contains(et) {
				t.Fatalf("%v: %d assigned to %v", s, et, w)
			}
		}
	})
}

func TestCloseBefore(t *testing.T) {
	for _, tc := range []struct {
		wm       Time
		lateness time.Duration
		want     Time
	}{
		{1000, 0, 1000},
		{1000, time.Second, 0},
		{NoWatermark, time.Hour, NoWatermark},
		{EndOfTime, time.Hour, EndOfTime},
	} {
		if got := CloseBefore(tc.wm, tc.lateness); got != tc.want {
			t.Errorf("CloseBefore(%v, %v) = %v, want %v", tc.wm, tc.lateness, got, tc.want)
		}
	}
}
