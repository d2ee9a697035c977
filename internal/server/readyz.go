package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/failurelog"
	"github.com/keyward/keyward/internal/storage"
)

// readyTimeout bounds a /readyz probe's ping of the store.
const readyTimeout = 2 * time.Second

// errNoAnswer is the reason a probe gives when the store did not answer
// in time, rather than "context deadline exceeded".
var errNoAnswer = fmt.Errorf("the store did not answer within %s", readyTimeout)

// errProberGaveUp is the reason a probe gives when its prober hung up
// before the store answered, rather than "context canceled".
var errProberGaveUp = errors.New("the store did not answer before the prober gave up")

// readiness answers /readyz, and logs its transitions: the first failed
// probe (with the reason), at most one warning every failurelog.Every while
// the store stays unreachable or unable to serve (with how long, and how
// many probes failed since the last), and the first probe that succeeds
// again.
type readiness struct {
	store storage.Storage
	now   func() time.Time
	log   *slog.Logger

	// mu guards outage, the spell of failed probes: during an outage
	// every replica is probed every few seconds, and a warning per probe
	// would flood the log.
	mu     sync.Mutex
	outage failurelog.Spell
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeoutCause(r.Context(), readyTimeout, errNoAnswer)
	defer cancel()
	err := rd.store.Ping(ctx)
	switch {
	case err == nil:
	case errors.Is(context.Cause(ctx), errNoAnswer):
		err = errNoAnswer
	case r.Context().Err() != nil:
		// A kubelet gives up after its probe's timeoutSeconds, 1 s
		// unless set, and hangs up.
		err = errProberGaveUp
	}
	rd.note(err)
	if err != nil {
		http.Error(w, notReady(err), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("ok\n"))
}

// note logs what a probe's result err changes.
func (rd *readiness) note(err error) {
	now := rd.now()
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if err == nil {
		if d, ok := rd.outage.Succeeded(now); ok {
			rd.log.Info("ready again: the store answers", "down_for", d.Round(time.Second))
		}
		return
	}
	switch n := rd.outage.Failed(now); {
	case n.First:
		rd.log.Warn("not ready: "+notReady(err)+" (while it stays so, this is logged at most once a minute)", "err", err)
	case n.Again:
		rd.log.Warn("still not ready: "+notReady(err), "err", err,
			"down_for", n.For.Round(time.Second), "failed_probes", n.Failures)
	}
}

// notReady says why a probe failed with err, in /readyz's answer and its
// log lines: a store that answers but cannot read the tables token
// requests need (storage.ErrCannotServe) is not unreachable, nor is one
// whose read of them gave up waiting for a lock another transaction
// holds (storage.ErrBusy), which says nothing of the tables.
func notReady(err error) string {
	switch {
	case errors.Is(err, storage.ErrCannotServe):
		return "store cannot serve"
	case errors.Is(err, storage.ErrBusy):
		return "store busy"
	}
	return "store unreachable"
}
