package storagetest

import (
	"database/sql"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// The concurrent tests hold one call into the store inside its
// transaction (in the fn it is given) while another call starts, and
// wait for the other to get that far too: a store that does not
// serialize them lets it in, and the test sees both act on the same
// state. A store that serializes them keeps the other waiting until the
// first commits, so the first must stop waiting at some point: when the
// store shows the other waiting for it (a Watched store), or after
// peerBound.

// peerBound is how long a call held in its transaction waits for another
// that the store neither lets in nor shows waiting.
const peerBound = 250 * time.Millisecond

// Watched is a store under test that shows when a call into it waits for
// another call's transaction to end. The concurrent tests go on as soon as
// it does, instead of after a bound; a backend's harness makes one with
// Watch or WatchPool.
type Watched interface {
	storage.Storage
	// WaitMark returns a func that reports whether a call into the store
	// has waited, since WaitMark was called, for another call's
	// transaction to end (for a lock in the database, or for the store's
	// only writer connection). The tests call it while that transaction
	// is open, so one that sees only the calls waiting at the time will do.
	WaitMark() func() bool
}

type watched struct {
	storage.Storage
	mark func() func() bool
}

func (w watched) WaitMark() func() bool { return w.mark() }

// Watch returns s as a Watched store whose WaitMark is mark.
func Watch(s storage.Storage, mark func() func() bool) Watched {
	return watched{s, mark}
}

// WatchPool returns s, whose writes go through a pool of one connection
// (SQLite's writer), as a Watched store: a call waits for another's
// transaction exactly when it waits for that connection, which stats (the
// pool's sql.DB.Stats) counts.
func WatchPool(s storage.Storage, stats func() sql.DBStats) Watched {
	return Watch(s, func() func() bool {
		base := stats().WaitCount
		return func() bool { return stats().WaitCount > base }
	})
}

// waitMark is s's WaitMark, or nil when s is not Watched.
func waitMark(s storage.Storage) func() bool {
	if w, ok := s.(Watched); ok {
		return w.WaitMark()
	}
	return nil
}

// awaitPeer returns when the peer got as far (in is closed), or returned
// (done is closed; nil for a peer whose end is not watched), or waited
// reports it waiting (waited nil: never), or after peerBound.
func awaitPeer(in, done <-chan struct{}, waited func() bool) {
	bound := time.NewTimer(peerBound)
	defer bound.Stop()
	var poll <-chan time.Time
	if waited != nil {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case <-in:
			return
		case <-done:
			return
		case <-bound.C:
			return
		case <-poll:
			if waited() {
				return
			}
		}
	}
}
