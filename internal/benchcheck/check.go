package benchcheck

import (
	"fmt"
	"io"
)

// Status is a ratio's outcome against its baseline.
type Status string

// The outcomes. Only Regressed and Missing (of a required ratio) fail.
const (
	OK              Status = "ok"       // within tolerance
	Improved        Status = "improved" // better than the baseline beyond tolerance
	Regressed       Status = "REGRESSED"
	Missing         Status = "MISSING"
	MissingOptional Status = "missing (optional)"
)

// Outcome is one ratio checked.
type Outcome struct {
	Ratio     Ratio
	Current   Value
	Tolerance float64
	Limit     float64 // the worst value still accepted
	Status    Status
}

// Report is the result of Check, in the baseline file's order.
type Report struct{ Outcomes []Outcome }

// Check compares the ratios computed from results with their baselines. A
// ratio regresses when it is worse than its baseline by more than its
// tolerance: above baseline×(1+t) when lower is better, below
// baseline×(1−t) when higher is better. Improvements pass.
func Check(b *Baseline, results []Result) Report {
	var rep Report
	for i, cur := range Compute(b, results) {
		r := b.Ratios[i]
		o := Outcome{Ratio: r, Current: cur, Tolerance: b.ToleranceOf(r)}
		if r.Better == Lower {
			o.Limit = r.Baseline * (1 + o.Tolerance)
		} else {
			o.Limit = r.Baseline * (1 - o.Tolerance)
		}
		worse := func(x, y float64) bool { return x > y } // x worse than y
		if r.Better == Higher {
			worse = func(x, y float64) bool { return x < y }
		}
		switch {
		case cur.Missing != "" && r.OptionalBecause != "":
			o.Status = MissingOptional
		case cur.Missing != "":
			o.Status = Missing
		case worse(cur.Value, o.Limit):
			o.Status = Regressed
		case worse(improvedLimit(r, o.Tolerance), cur.Value):
			o.Status = Improved
		default:
			o.Status = OK
		}
		rep.Outcomes = append(rep.Outcomes, o)
	}
	return rep
}

// improvedLimit mirrors the regression limit on the better side.
func improvedLimit(r Ratio, t float64) float64 {
	if r.Better == Lower {
		return r.Baseline * (1 - t)
	}
	return r.Baseline * (1 + t)
}

// Failed reports whether a ratio regressed or a required one is missing.
func (rep Report) Failed() bool {
	for _, o := range rep.Outcomes {
		if o.Status == Regressed || o.Status == Missing {
			return true
		}
	}
	return false
}

// Write prints one line per ratio, then the failures again with what to do.
func (rep Report) Write(w io.Writer) {
	for _, o := range rep.Outcomes {
		fmt.Fprintf(w, "%-19s %s\n", o.Status, o.describe())
	}
	n := map[Status]int{}
	for _, o := range rep.Outcomes {
		n[o.Status]++
	}
	summary := fmt.Sprintf("%d ratios: %d within tolerance, %d improved, %d missing (optional)",
		len(rep.Outcomes), n[OK], n[Improved], n[MissingOptional])
	if !rep.Failed() {
		fmt.Fprintf(w, "bench-check: %s; no regression\n", summary)
		return
	}
	fmt.Fprintf(w, "bench-check: FAILED: %d regressed, %d required missing (%s)\n", n[Regressed], n[Missing], summary)
	for _, o := range rep.Outcomes {
		if o.Status == Regressed || o.Status == Missing {
			fmt.Fprintf(w, "  %s %s\n", o.Status, o.describe())
		}
	}
	fmt.Fprintln(w, "A regression is a ratio worse than its baseline beyond its tolerance; rerun `make bench` to rule out noise. If the change is intended, refresh the baselines (README, Performance).")
}

func (o Outcome) describe() string {
	s := fmt.Sprintf("%s: baseline %g, ", o.Ratio.Name, o.Ratio.Baseline)
	switch o.Status {
	case Missing, MissingOptional:
		s += "current none (" + o.Current.Missing + ")"
		if o.Ratio.OptionalBecause != "" {
			s += "; optional: " + o.Ratio.OptionalBecause
		}
		return s
	}
	cmp := "<="
	if o.Ratio.Better == Higher {
		cmp = ">="
	}
	return s + fmt.Sprintf("current %.3g, tolerance %.0f%% (%s is better: want %s %.3g)",
		o.Current.Value, o.Tolerance*100, o.Ratio.Better, cmp, o.Limit)
}
