package server

import (
	"context"
	"log/slog"
)

// requestIDKey is the context key of the ID logRequests gives a request.
type requestIDKey struct{}

// withRequestID returns ctx carrying the request ID *id, which must not
// change: a pointer, which an interface holds as it is, where a string
// would be copied to the heap, once more for each request.
func withRequestID(ctx context.Context, id *string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestID returns the request ID ctx carries, or "".
func requestID(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey{}).(*string); ok {
		return *id
	}
	return ""
}

// requestIDHandler adds to each record logged with a request's context
// the request's ID, as id, the key of the request's own line: the line a
// handler logs about a request (a refusal's cause, a failed write) is then
// found by the ID the client got in X-Request-Id.
type requestIDHandler struct{ slog.Handler }

// logWithRequestIDs returns log, adding the request ID to what is logged
// with a request's context.
func logWithRequestIDs(log *slog.Logger) *slog.Logger {
	return slog.New(requestIDHandler{log.Handler()})
}

// Handle implements slog.Handler.
func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestID(ctx); id != "" {
		r.AddAttrs(slog.String("id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
