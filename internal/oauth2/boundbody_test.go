package oauth2

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// deadlineWriter is a ResponseWriter with a read deadline to set, as
// net/http's is.
type deadlineWriter struct {
	http.ResponseWriter
	set []time.Time
}

func (w *deadlineWriter) SetReadDeadline(t time.Time) error {
	w.set = append(w.set, t)
	return nil
}

// wrapper hides a writer's methods but Unwrap, as middleware does.
type wrapper struct{ http.ResponseWriter }

func (w wrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestBoundBodyRead: the body of a request with a deadline is read until
// RecordMargin before it, through writers that unwrap; a request without
// a deadline or a body keeps the server's read deadline. (Without a body
// net/http reads the connection itself, to see the client hang up, and a
// read deadline would end that read and the request's context with it.)
func TestBoundBodyRead(t *testing.T) {
	d := time.Now().Add(time.Minute)
	withDeadline, cancel := context.WithDeadline(context.Background(), d)
	defer cancel()
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		body    bool
		wrapped bool
		want    []time.Time
	}{
		{"deadline", withDeadline, true, false, []time.Time{d.Add(-RecordMargin)}},
		{"deadline, wrapped writer", withDeadline, true, true, []time.Time{d.Add(-RecordMargin)}},
		{"no deadline", context.Background(), true, false, nil},
		{"no body", withDeadline, false, false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(tt.ctx, http.MethodPost, "/token", strings.NewReader("a=b"))
			if !tt.body {
				r.Body = http.NoBody
			}
			dw := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
			var w http.ResponseWriter = dw
			if tt.wrapped {
				w = wrapper{wrapper{dw}}
			}
			BoundBodyRead(w, r)
			if len(dw.set) != len(tt.want) || len(tt.want) == 1 && !dw.set[0].Equal(tt.want[0]) {
				t.Errorf("read deadlines set %v, want %v", dw.set, tt.want)
			}
		})
	}
	// A writer without deadlines (httptest's recorder) is left alone, at
	// no cost: ParseForm calls this for every request.
	r := httptest.NewRequestWithContext(withDeadline, http.MethodPost, "/token", strings.NewReader("a=b"))
	var w http.ResponseWriter = wrapper{httptest.NewRecorder()}
	if n := testing.AllocsPerRun(100, func() { BoundBodyRead(w, r) }); n != 0 {
		t.Errorf("BoundBodyRead on a recorder: %v allocations, want 0", n)
	}
}
