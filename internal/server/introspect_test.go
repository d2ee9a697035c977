package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/tally"
	"github.com/keyward/keyward/internal/token"
)

// failingJournal fails every write while fail is set, as a store with a
// full disk does.
type failingJournal struct {
	token.Journal
	fail atomic.Bool
}

func (j *failingJournal) Write(ctx context.Context, w storage.Write) error {
	if j.fail.Load() {
		return errors.New("disk I/O error")
	}
	return j.Journal.Write(ctx, w)
}

// TestIntrospectionWhenTheAuditLogFails: introspections whose events go to
// summaries are answered from memory only until a write of the summaries
// fails; from then on each needs its own event, and is refused without
// one, until the log can be written again. No answered introspection is
// missing from the log in the end.
func TestIntrospectionWhenTheAuditLogFails(t *testing.T) {
	ctx := context.Background()
	var (
		j  *failingJournal
		tl *tally.Tally
	)
	f := newFixture(t, func(_ *server.Config, d *server.Deps) {
		j = &failingJournal{Journal: d.Journal}
		tl = tally.New(j, tally.Options{Interval: time.Hour}) // written when the test says
		t.Cleanup(tl.Close)
		d.Journal, d.Introspections = j, tl
	})
	callerAuth := f.introspector(t)
	body := "token=" + url.QueryEscape(f.accessToken(t, "opaque"))
	introspect := func(want int) {
		t.Helper()
		if w := f.doPath("/introspect", body, callerAuth); w.Code != want {
			t.Fatalf("introspection: %d %s, want %d", w.Code, w.Body, want)
		}
	}

	introspect(http.StatusOK)
	j.fail.Store(true)
	introspect(http.StatusOK) // its event waits in memory; the log's failure is not known yet
	if _, err := tl.Flush(ctx); err == nil {
		t.Fatal("the summaries were written to a failing journal")
	}
	introspect(http.StatusServiceUnavailable) // no summaries now: its own event, which cannot be written
	j.fail.Store(false)
	if _, err := tl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	introspect(http.StatusOK)
	tl.Close()

	evs, err := f.store.ListAuditEvents(ctx, storage.AuditFilter{Action: "token.introspect"})
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	for _, ev := range evs {
		n, err := strconv.Atoi(ev.Data[tally.CountKey])
		if err != nil || ev.Data["active"] != "true" {
			t.Fatalf("unexpected event %+v", ev)
		}
		answered += n
	}
	if answered != 3 {
		t.Errorf("the log counts %d answered introspections, want 3: %+v", answered, evs)
	}
}
