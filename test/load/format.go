package load

import (
	"fmt"
	"time"
)

// FormatMedia is one result on one line.
func FormatMedia(r MediaResult) string {
	if r.Err != "" {
		return fmt.Sprintf("%-9s %-9s %5d calls: %s", r.Relay, r.Mode, r.Calls, r.Err)
	}
	return fmt.Sprintf("%-9s %-9s %5d calls: loss %.4f%% p50 %v p99 %v max %v | %.0f/%.0f pps sent, %.0f recv | relay cpu/pkt %v (%.0f%% of a core, rss %d MiB) | gen %.0f%% other %.0f%% | srtp fail %d unknown %d misrouted %d dead %d setup failed %d late ticks %d",
		r.Relay, r.Mode, r.Calls, 100*r.Loss, round(r.P50), round(r.P99), round(r.Max), r.SentPPS, r.TargetPPS, r.RecvPPS,
		r.CPUPerPkt, 100*r.RelayUtil, r.RelayRSS>>20, 100*r.GenUtil, 100*r.OtherUtil, r.SRTPFail, r.Unknown, r.Misrouted, r.DeadFlows, r.SetupFailed, r.LateTicks)
}

func round(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
