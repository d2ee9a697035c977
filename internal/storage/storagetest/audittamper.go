package storagetest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// TamperDB is a store opened afresh with a raw connection to its database,
// for AuditTamper to change its audit rows as an attacker with write access
// to the database would.
type TamperDB struct {
	Store storage.Storage
	DB    *sql.DB
	// Unguard drops the triggers that keep the audit log append-only.
	Unguard []string
	// Blob is the SQL literal of b in the database's dialect.
	Blob func(b []byte) string
}

// AuditTamper writes six events to a fresh store, changes its audit rows
// directly in the database, and checks what storage.VerifyLog makes of
// each change: every change of an event's content, of its place in the
// chain or of the set of events in the middle is refused. What the unkeyed
// chain cannot refuse (a cut tail, a chain rewritten from some point on, a
// prune recorded by whoever deleted the events) still verifies, but the
// head or the listed prunes then differ from what an operator recorded, as
// the README says.
func AuditTamper(t *testing.T, fresh func(t *testing.T) TamperDB) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	setup := func(t *testing.T) (TamperDB, storage.LogCheck, []storage.AuditEvent, func(...string)) {
		t.Helper()
		db := fresh(t)
		var evs []storage.AuditEvent
		for i := range 6 {
			evs = append(evs, storage.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Action: "token.issued",
				Outcome: storage.OutcomeSuccess, AccountID: "acct", Actor: "ab", Source: "c",
				Data: map[string]string{"grant": "client_credentials", "scope": "a b"}})
		}
		// Two batches, as group commit writes them.
		for _, part := range [][]storage.AuditEvent{evs[:3], evs[3:]} {
			if _, err := db.Store.Commit(ctx, []storage.Write{{Events: part}}); err != nil {
				t.Fatal(err)
			}
		}
		before, err := storage.VerifyLog(ctx, db.Store)
		if err != nil || before.Events != 6 || before.HeadSeq != 6 {
			t.Fatalf("the untouched log: %+v, %v", before, err)
		}
		stored, err := db.Store.ListAuditEvents(ctx, storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		exec := func(qs ...string) {
			t.Helper()
			for _, q := range qs {
				if _, err := db.DB.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
		exec(db.Unguard...)
		return db, before, stored, exec
	}
	// insert is the statement that adds e as it is.
	insert := func(db TamperDB, e storage.AuditEvent) string {
		return fmt.Sprintf(`INSERT INTO audit_events (seq, time, action, outcome, account_id, actor, source, data, prev_hash, hash)
			VALUES (%d, %d, '%s', '%s', '%s', '%s', '%s', '%s', %s, %s)`,
			e.Seq, e.Time.UnixMicro(), e.Action, e.Outcome, e.AccountID, e.Actor, e.Source, e.DataJSON(), db.Blob(e.PrevHash), db.Blob(e.Hash))
	}
	// forged is an event chained after prev, as anyone can compute it.
	forged := func(prev storage.AuditEvent, action string, data map[string]string) storage.AuditEvent {
		e := []storage.AuditEvent{{Time: t0.Add(time.Hour), Action: action, Outcome: storage.OutcomeSuccess, Actor: "op", Data: data}}
		storage.ChainEvents(prev.Seq, prev.Hash, e)
		return e[0]
	}

	refused := []struct {
		name   string
		tamper func(db TamperDB, evs []storage.AuditEvent) []string
		want   string
	}{
		{"time", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET time = time + 1 WHERE seq = 3`}
		}, "event 3 was altered"},
		{"action", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET action = 'token.refused' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"outcome", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET outcome = 'failure' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"account", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET account_id = '' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"actor", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET actor = 'admin' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"source", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET source = '10.0.0.1' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"a character shifted from actor to source", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET actor = 'a', source = 'bc' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"a data value", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET data = '{"grant":"client_credentials","scope":"a"}' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"a data key", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET data = '{"grant":"client_credentials","scopes":"a b"}' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"a data member added", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET data = '{"grant":"client_credentials","scope":"a b","x":""}' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"a data member removed", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET data = '{"grant":"client_credentials"}' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"data shifted between key and value", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET data = '{"grant":"client_credentials","scope a":"b"}' WHERE seq = 3`}
		}, "event 3 was altered"},
		// The stored text changed, its content not: readers of the table
		// (a LIKE, a parser that takes a key's first value) see it.
		{"a data character escaped another way", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET data = '{"grant":"client_credentials","scope":"\u0061 b"}' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"a data key twice", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET data = '{"grant":"client_credentials","scope":"admin","scope":"a b"}' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"data not a JSON object", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET data = 'not json' WHERE seq = 3`}
		}, "event 3 was altered: its stored data is not a JSON object"},
		{"data spaced out", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET data = '{"grant": "client_credentials", "scope": "a b"}' WHERE seq = 3`}
		}, "event 3 was altered"},
		{"hash", func(db TamperDB, _ []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET hash = ` + db.Blob(make([]byte, 32)) + ` WHERE seq = 3`}
		}, "event 3 was altered"},
		{"prev_hash", func(db TamperDB, _ []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET prev_hash = ` + db.Blob(make([]byte, 32)) + ` WHERE seq = 3`}
		}, "event 3 does not link"},
		{"seq of the newest", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET seq = 7 WHERE seq = 6`}
		}, "event 7 follows 5"},
		{"a middle event deleted", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`DELETE FROM audit_events WHERE seq = 3`}
		}, "event 4 follows 2"},
		{"the oldest deleted, no prune", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`DELETE FROM audit_events WHERE seq <= 2`}
		}, "audit events 1 to 2 are missing"},
		{"two events swapped", func(TamperDB, []storage.AuditEvent) []string {
			return []string{`UPDATE audit_events SET seq = 100 WHERE seq = 3`, `UPDATE audit_events SET seq = 3 WHERE seq = 4`,
				`UPDATE audit_events SET seq = 4 WHERE seq = 100`}
		}, "event 3 does not link"},
		{"an event forged in the middle", func(db TamperDB, evs []storage.AuditEvent) []string {
			e := forged(evs[2], "account.create", nil)
			return []string{`UPDATE audit_events SET seq = seq + 10 WHERE seq > 3`, `UPDATE audit_events SET seq = seq - 9 WHERE seq > 10`, insert(db, e)}
		}, "event 5 does not link"},
		{"an event appended with a made-up hash", func(db TamperDB, evs []storage.AuditEvent) []string {
			e := forged(evs[5], "account.create", nil)
			e.Hash = make([]byte, 32)
			return []string{insert(db, e)}
		}, "event 7 was altered"},
		{"an event before the first", func(db TamperDB, evs []storage.AuditEvent) []string {
			e := forged(storage.AuditEvent{Seq: -1}, "account.create", nil)
			return []string{insert(db, e)}
		}, "event 0"},
		{"events deleted under a prune record naming another hash", func(db TamperDB, evs []storage.AuditEvent) []string {
			e := forged(evs[5], storage.ActionAuditPrune, map[string]string{"through_seq": "3", "through_hash": hex.EncodeToString(evs[1].Hash), "count": "3"})
			return []string{`INSERT INTO audit_prune_gate (through) VALUES (3)`, `DELETE FROM audit_events WHERE seq <= 3`, `DELETE FROM audit_prune_gate`, insert(db, e)}
		}, "audit events 1 to 3 are missing"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			db, _, evs, exec := setup(t)
			exec(tt.tamper(db, evs)...)
			_, err := storage.VerifyLog(ctx, db.Store)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("VerifyLog after the change: %v, want an error with %q", err, tt.want)
			}
			if errors.Is(err, storage.ErrUnchecked) {
				t.Errorf("VerifyLog after the change: %v, a check it could not finish, not the log found altered", err)
			}
		})
	}

	// A batch's rows read back as written, each value with its column's
	// type: text as text, hashes as bytes (SQLite keeps a value of any
	// type in a column, and a blob is not equal to the same text), also
	// where a row repeats some of the previous row's values.
	t.Run("stored as written", func(t *testing.T) {
		db := fresh(t)
		var evs []storage.AuditEvent
		for i, v := range []string{"a", "a", "b", "a", "b", "b"} {
			evs = append(evs, storage.AuditEvent{Time: t0.Add(time.Duration(i) * time.Microsecond), Action: "token." + v,
				Outcome: map[string]string{"a": storage.OutcomeSuccess, "b": storage.OutcomeFailure}[v], AccountID: "acct-" + v,
				Actor: "actor-" + v, Source: "src-" + v, Data: map[string]string{"k": v}})
		}
		evs[2].Actor, evs[4].AccountID, evs[5].Actor = "acct-b", "", "actor-a"
		if _, err := db.Store.Commit(ctx, []storage.Write{{Events: evs[:2]}, {Events: evs[2:]}}); err != nil {
			t.Fatal(err)
		}
		storage.ChainEvents(0, []byte{}, evs)
		for _, e := range evs {
			var n int
			q := fmt.Sprintf(`SELECT count(*) FROM audit_events WHERE seq = %d AND time = %d AND action = '%s' AND outcome = '%s'
				AND account_id = '%s' AND actor = '%s' AND source = '%s' AND data = '%s' AND prev_hash = %s AND hash = %s`,
				e.Seq, e.Time.UnixMicro(), e.Action, e.Outcome, e.AccountID, e.Actor, e.Source, e.DataJSON(), db.Blob(e.PrevHash), db.Blob(e.Hash))
			if err := db.DB.QueryRowContext(ctx, q).Scan(&n); err != nil || n != 1 {
				t.Errorf("event %d: %d rows as written, %v; want 1", e.Seq, n, err)
			}
		}
	})

	// One row's data that is no JSON object hides nothing else: the event
	// is listed, its data unreadable, with the others of its page.
	t.Run("data not a JSON object listed", func(t *testing.T) {
		db, _, _, exec := setup(t)
		exec(`UPDATE audit_events SET data = 'not json' WHERE seq = 3`)
		evs, err := db.Store.ListAuditEvents(ctx, storage.AuditFilter{})
		if err != nil || len(evs) != 6 {
			t.Fatalf("ListAuditEvents: %d events, %v; want all 6", len(evs), err)
		}
		for _, e := range evs {
			raw, bad := e.UnreadableData()
			if want := e.Seq == 3; bad != want || (bad && (string(raw) != "not json" || e.Data != nil)) {
				t.Errorf("event %d: data %v, unreadable %q %v", e.Seq, e.Data, raw, bad)
			}
		}
	})

	// What DB write access can do to an unkeyed chain and still verify:
	// only the head an operator recorded, or the prunes listed, tell.
	t.Run("the newest events deleted", func(t *testing.T) {
		db, before, _, exec := setup(t)
		exec(`DELETE FROM audit_events WHERE seq >= 5`)
		c, err := storage.VerifyLog(ctx, db.Store)
		if err != nil {
			t.Fatalf("a cut tail: %v (the chain has no anchor but the head an operator recorded)", err)
		}
		if c.HeadSeq != 4 || bytes.Equal(c.Head, before.Head) {
			t.Errorf("a cut tail reports head %d %x, the recorded one was %d %x", c.HeadSeq, c.Head, before.HeadSeq, before.Head)
		}
	})
	t.Run("events deleted under a forged prune record", func(t *testing.T) {
		db, before, evs, exec := setup(t)
		e := forged(evs[5], storage.ActionAuditPrune, map[string]string{"through_seq": "3", "through_hash": hex.EncodeToString(evs[2].Hash), "count": "3"})
		exec(`INSERT INTO audit_prune_gate (through) VALUES (3)`, `DELETE FROM audit_events WHERE seq <= 3`, `DELETE FROM audit_prune_gate`, insert(db, e))
		c, err := storage.VerifyLog(ctx, db.Store)
		if err != nil {
			t.Fatalf("a forged prune: %v", err)
		}
		if len(c.Prunes) != 1 || c.Prunes[0].Actor != "op" || len(before.Prunes) != 0 {
			t.Errorf("a forged prune is not listed for the operator to disown: %+v", c.Prunes)
		}
	})
}

// AuditConcurrent appends to one audit log from two stores at once (two
// replicas), in batches as group commit writes them, while one of them
// prunes: the chain has no fork and no gap, and holds every event.
func AuditConcurrent(t *testing.T, a, b storage.Storage) {
	ctx := context.Background()
	const workers, each = 6, 30
	t0 := time.Now().Add(-time.Hour)
	var wg sync.WaitGroup
	for w := range workers {
		s := []storage.Storage{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ev := func(action string) []storage.AuditEvent {
					return []storage.AuditEvent{{Time: t0, Action: action, Outcome: storage.OutcomeSuccess, Actor: fmt.Sprint(w)}}
				}
				if _, err := s.Commit(ctx, []storage.Write{{Events: ev("x")}, {Events: ev("y")}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	prunes := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 10 {
			n, err := b.PruneAudit(ctx, time.Now(), storage.PruneLimits{MaxEvents: 17},
				storage.AuditEvent{Time: time.Now(), Outcome: storage.OutcomeSuccess, Actor: "op"})
			if err != nil {
				t.Error(err)
				return
			}
			if n > 0 {
				prunes++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	c, err := storage.VerifyLog(ctx, a)
	if err != nil {
		t.Fatalf("the chain two stores appended to: %v", err)
	}
	if want := int64(workers*each*2 + prunes); c.HeadSeq != want || c.Events != c.HeadSeq-c.FirstSeq+1 {
		t.Errorf("head %d of %d events from %d, want head %d", c.HeadSeq, c.Events, c.FirstSeq, want)
	}
}
