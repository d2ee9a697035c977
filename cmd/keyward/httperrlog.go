package main

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// httpErrorLog is the ErrorLog of the server's listeners: net/http's own
// complaints, at warn, but for TLS handshakes that end before they begin
// (the peer closed the connection or reset it), at debug. Those are a load
// balancer's TCP health check, or a port scan, each a few seconds: at warn
// they would bury every other line of the log.
func httpErrorLog(h slog.Handler) *log.Logger {
	return slog.NewLogLogger(quietHandshakes{h}, slog.LevelWarn)
}

// quietHandshakes lowers to debug the net/http records of TLS handshakes
// the peer ended without a word.
type quietHandshakes struct{ slog.Handler }

func (q quietHandshakes) Handle(ctx context.Context, r slog.Record) error {
	if abandonedHandshake(r.Message) {
		if !q.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietHandshakes) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandshakes{q.Handler.WithAttrs(as)}
}

func (q quietHandshakes) WithGroup(name string) slog.Handler {
	return quietHandshakes{q.Handler.WithGroup(name)}
}

// abandonedHandshake reports whether msg is net/http's "http: TLS
// handshake error from ADDR: ERR" for a connection closed (EOF) or reset
// before the handshake was done.
func abandonedHandshake(msg string) bool {
	rest, ok := strings.CutPrefix(msg, "http: TLS handshake error from ")
	if !ok {
		return false
	}
	rest = strings.TrimRight(rest, "\n")
	return strings.HasSuffix(rest, ": EOF") || strings.HasSuffix(rest, "connection reset by peer")
}
