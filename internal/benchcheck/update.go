package benchcheck

import "math"

// Update sets the baseline of every ratio computed from results to its
// current value, rounded to 3 significant digits (finer would only record
// noise), and returns the ratios it could not compute (or computed as 0),
// with why, whose baselines it leaves as they were.
func Update(b *Baseline, results []Result) (missing []string) {
	for i, v := range Compute(b, results) {
		if v.Missing != "" {
			missing = append(missing, v.Name+": "+v.Missing)
			continue
		}
		if !(v.Value > 0) { // a baseline must be positive
			missing = append(missing, v.Name+": the current value is not positive")
			continue
		}
		b.Ratios[i].Baseline = round3(v.Value)
	}
	return missing
}

func round3(v float64) float64 {
	if v == 0 {
		return 0
	}
	scale := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}
