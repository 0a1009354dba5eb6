package media

import (
	"time"

	"go.uber.org/zap"
)

// Media inactivity: the sweeper looks at every stream's accepted-packet
// count each tick instead of the workers stamping a time per packet, so
// the per-packet path reads no clock.

func (m *Manager) sweeper(interval time.Duration) {
	defer close(m.sweeperDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.sweep(now)
		}
	}
}

// sweep runs onInactive for every stream that has accepted no packet for
// InactivityTimeout as of now, and is neither on hold nor already reported.
// Only the sweeper goroutine calls it (or a test, with a clock of its own).
func (m *Manager) sweep(now time.Time) {
	m.mu.Lock()
	for s := range m.streams {
		m.sweepBuf = append(m.sweepBuf, s)
	}
	m.mu.Unlock()

	for _, s := range m.sweepBuf {
		if s.fired || s.onInactive == nil || s.closing.Load() {
			continue
		}
		alive := s.alive()
		if alive != s.lastAlive || s.lastActive.IsZero() || s.hold.Load() {
			s.lastAlive, s.lastActive = alive, now
			continue
		}
		if idle := now.Sub(s.lastActive); idle >= m.cfg.InactivityTimeout {
			s.fired = true
			s.log.Info("media inactive", zap.Duration("idle", idle.Round(time.Millisecond)))
			m.callbacks.Add(1)
			go m.fire(s)
		}
	}
	clear(m.sweepBuf)
	m.sweepBuf = m.sweepBuf[:0]
}

// fire runs a stream's onInactive callback, outside any lock.
func (m *Manager) fire(s *Stream) {
	defer m.callbacks.Done()
	s.onInactive()
}
