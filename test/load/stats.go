package load

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Spread is the median of repeated measurements with their range.
type Spread struct {
	Median, Min, Max float64
	N                int
}

// spreadOf summarizes xs (NaNs, for runs without a figure, are left out).
func spreadOf(xs []float64) Spread {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Spread{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	sort.Float64s(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Spread{Median: m, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// OK reports whether the spread has a figure.
func (s Spread) OK() bool { return s.N > 0 }

// fmtSpread writes "median (min–max)" with f formatting each number.
func (s Spread) format(f func(float64) string) string {
	if !s.OK() {
		return "—"
	}
	if s.N == 1 || s.Min == s.Max {
		return f(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.Median), f(s.Min), f(s.Max))
}

func fmtMicros(x float64) string { return fmt.Sprintf("%.2f µs", x) }
func fmtMillis(x float64) string { return fmt.Sprintf("%.2f ms", x) }
func fmtPct(x float64) string    { return fmt.Sprintf("%.3f %%", x) }
func fmtInt(x float64) string    { return fmt.Sprintf("%.0f", x) }
func fmtMiB(x float64) string    { return fmt.Sprintf("%.0f MiB", x) }
func fmtKiB(x float64) string    { return fmt.Sprintf("%.1f KiB", x) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
