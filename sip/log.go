package sip

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogBridge hands sipgo's slog records to zap. Attributes that can hold a
// raw SIP message ("data", "msg", "req", "res") are dropped: a raw INVITE
// may carry SDES keys, which never reach a log.
type slogBridge struct {
	log   *zap.Logger
	attrs []zap.Field
}

func newSlogBridge(l *zap.Logger) *slog.Logger { return slog.New(&slogBridge{log: l}) }

var redactedAttrs = map[string]bool{"data": true, "msg": true, "req": true, "res": true, "request": true, "response": true}

func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= slog.LevelError:
		// sipgo reports peers' garbage as errors; for ccsbc a malformed
		// packet from the network is a warning, not a fault of its own.
		return zapcore.WarnLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	case l >= slog.LevelInfo:
		// sipgo's info chatter is debug detail for an operator.
		return zapcore.DebugLevel
	}
	return zapcore.DebugLevel
}

func (b *slogBridge) Enabled(_ context.Context, l slog.Level) bool {
	return b.log.Core().Enabled(zapLevel(l))
}

func (b *slogBridge) Handle(_ context.Context, r slog.Record) error {
	ce := b.log.Check(zapLevel(r.Level), r.Message)
	if ce == nil {
		return nil
	}
	fields := append([]zap.Field(nil), b.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		if !redactedAttrs[a.Key] {
			fields = append(fields, zap.Any(a.Key, a.Value.Any()))
		}
		return true
	})
	ce.Write(fields...)
	return nil
}

func (b *slogBridge) WithAttrs(as []slog.Attr) slog.Handler {
	n := &slogBridge{log: b.log, attrs: append([]zap.Field(nil), b.attrs...)}
	for _, a := range as {
		if !redactedAttrs[a.Key] {
			n.attrs = append(n.attrs, zap.Any(a.Key, a.Value.Any()))
		}
	}
	return n
}

func (b *slogBridge) WithGroup(string) slog.Handler { return b }
