package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// logRequests gives the handler beneath it the request's ID in its
// context, which its log lines carry (requestIDHandler), at three
// allocations: the writer that remembers the status, the request's copy
// with the new context, and the context. The context holds a pointer to
// the ID the writer keeps, which an interface holds as it is, not the
// ID, which it would copy to the heap; X-Request-Id's value is kept in
// the writer too.
func TestLogRequestsAllocs(t *testing.T) {
	var got string
	h := logRequests(slog.New(slog.DiscardHandler), http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = requestID(r.Context())
	}))
	r := httptest.NewRequest(http.MethodPost, "/token", nil)
	r.Header.Set("X-Request-Id", "incident-42")
	w := httptest.NewRecorder()
	serve := func() {
		clear(w.Header())
		h.ServeHTTP(w, r)
	}
	serve()
	if got != "incident-42" || w.Header().Get("X-Request-Id") != "incident-42" {
		t.Fatalf("the handler got request ID %q, X-Request-Id %q; want incident-42", got, w.Header().Get("X-Request-Id"))
	}
	if n := testing.AllocsPerRun(100, serve); n > 3 {
		t.Errorf("logRequests: %v allocations, want 3", n)
	}
}
