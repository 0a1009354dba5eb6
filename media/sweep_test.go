package media

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// inactivityRig is a stream between two peers on a Manager whose sweeps the
// test drives with its own clock.
type inactivityRig struct {
	t      *testing.T
	m      *Manager
	s      *Stream
	pa, pb *peer
	fired  atomic.Int32
	now    time.Time
}

const idleTimeout = 10 * time.Second

func newInactivityRig(t *testing.T) *inactivityRig {
	g := &inactivityRig{t: t, now: time.Unix(1_000_000, 0)}
	g.m = newTestManager(t, 2, false, idleTimeout, false)
	s, err := g.m.NewStream("idle", func() { g.fired.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	g.s, g.pa, g.pb = s, newPeer(t), newPeer(t)
	s.SetRemote(A, g.pa.addr(), netip.AddrPort{}, false, lo)
	s.SetRemote(B, g.pb.addr(), netip.AddrPort{}, false, lo)
	return g
}

// sweepAt advances the clock by d, sweeps, and waits for any callback the
// sweep started, so that fired is exact.
func (g *inactivityRig) sweepAt(d time.Duration) int32 {
	g.now = g.now.Add(d)
	g.m.sweep(g.now)
	g.m.callbacks.Wait()
	return g.fired.Load()
}

// media sends one packet from pa and waits until the stream has counted it.
func (g *inactivityRig) media() {
	before := g.s.alive()
	aRTP, _ := g.s.Local(A)
	g.pa.send(aRTP, rtpPacket(0, 1, "voice"))
	waitFor(g.t, "packet counted", func() bool { return g.s.alive() > before })
}

func TestInactivity(t *testing.T) {
	t.Run("fires once after the timeout", func(t *testing.T) {
		g := newInactivityRig(t)
		g.sweepAt(0)
		if n := g.sweepAt(idleTimeout - time.Second); n != 0 {
			t.Fatalf("fired %d times before the timeout", n)
		}
		if n := g.sweepAt(time.Second); n != 1 {
			t.Fatalf("fired %d times at the timeout, want 1", n)
		}
		g.media() // too late: the call is being torn down
		for range 5 {
			if n := g.sweepAt(idleTimeout); n != 1 {
				t.Fatalf("fired %d times, want once", n)
			}
		}
	})
	t.Run("not while packets flow", func(t *testing.T) {
		g := newInactivityRig(t)
		g.sweepAt(0)
		for range 12 {
			g.media()
			if n := g.sweepAt(idleTimeout / 2); n != 0 {
				t.Fatalf("fired with media flowing")
			}
		}
		g.sweepAt(idleTimeout - time.Second)
		if n := g.sweepAt(time.Second); n != 1 {
			t.Fatalf("fired %d times once media stopped, want 1", n)
		}
	})
	t.Run("strangers do not keep a call alive", func(t *testing.T) {
		g := newInactivityRig(t)
		stranger := newPeer(t)
		aRTP, _ := g.s.Local(A)
		g.sweepAt(0)
		for range 3 {
			stranger.send(aRTP, rtpPacket(0, 1, "spray"))
			g.sweepAt(idleTimeout / 2)
		}
		waitFor(t, "drops", func() bool { return g.s.Stats().A.Drops.WrongSource == 3 })
		if n := g.fired.Load(); n != 1 {
			t.Fatalf("fired %d times, want 1", n)
		}
	})
	t.Run("early media keeps a call alive", func(t *testing.T) {
		g := newInactivityRig(t)
		g.s.SetRemote(B, netip.AddrPort{}, netip.AddrPort{}, false, lo) // B has not answered
		g.sweepAt(0)
		for range 3 {
			g.media()
			if n := g.sweepAt(idleTimeout / 2); n != 0 {
				t.Fatal("fired while the caller sent early media")
			}
		}
	})
	t.Run("not on hold", func(t *testing.T) {
		g := newInactivityRig(t)
		g.sweepAt(0)
		g.s.SetHold(true)
		for range 10 {
			if n := g.sweepAt(idleTimeout); n != 0 {
				t.Fatal("fired on hold")
			}
		}
		g.s.SetHold(false) // resume: a full timeout from now
		if n := g.sweepAt(idleTimeout - time.Second); n != 0 {
			t.Fatal("fired too soon after the hold ended")
		}
		if n := g.sweepAt(time.Second); n != 1 {
			t.Fatalf("fired %d times after the hold, want 1", n)
		}
	})
}

// TestInactivitySweeper runs the real sweeper: a silent stream's callback
// comes, from a goroutine of its own, and may close the stream.
func TestInactivitySweeper(t *testing.T) {
	m := newTestManager(t, 2, false, 100*time.Millisecond, true)
	fired := make(chan struct{})
	stream := make(chan *Stream, 1)
	s, err := m.NewStream("silent", func() {
		if err := (<-stream).Close(); err != nil {
			t.Errorf("Close from onInactive: %v", err)
		}
		close(fired)
	})
	if err != nil {
		t.Fatal(err)
	}
	stream <- s
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("onInactive not called")
	}
}

func TestSweepInterval(t *testing.T) {
	for _, c := range []struct{ timeout, want time.Duration }{
		{100 * time.Millisecond, 50 * time.Millisecond},
		{time.Second, 250 * time.Millisecond},
		{30 * time.Second, time.Second},
	} {
		if got := sweepInterval(c.timeout); got != c.want {
			t.Errorf("sweepInterval(%v) = %v, want %v", c.timeout, got, c.want)
		}
	}
}
