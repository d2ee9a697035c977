package sqlstore

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// appendAudit chains and inserts events inside tx.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, evs []storage.AuditEvent) error {
	if err := s.lock(ctx, tx, s.d.LockAudit, "lock audit log"); err != nil {
		return err
	}
	var (
		seq  int64
		prev []byte
	)
	err := s.stmt(ctx, tx, "auditHead").QueryRowContext(ctx).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.wrap("read audit head", err)
	}
	if prev == nil {
		prev = []byte{}
	}
	storage.ChainEvents(seq, prev, evs)
	// Putting a value in an interface allocates, for every column of every
	// event in the one loop that commits them all: a row reuses the boxes
	// of the previous row's values it repeats (its prev_hash is that row's
	// hash, and a batch's events mostly share an action and outcome), and
	// its actor that of its account when they are the same, as they are
	// for a token issued.
	var last struct{ action, outcome, account, actor, hash any }
	return inChunks(rowChunks, evs, auditColumns, func(args []any, e storage.AuditEvent) []any {
		prevHash := last.hash
		if h, ok := prevHash.([]byte); !ok || !bytes.Equal(h, e.PrevHash) {
			prevHash = e.PrevHash
		}
		last.hash = e.Hash
		account, actor := reuseBox(&last.account, e.AccountID), last.account
		if e.Actor != e.AccountID {
			actor = reuseBox(&last.actor, e.Actor)
		}
		// The time as the chain hashes it, exactly: micros would store the
		// zero time and Unix time 0 alike, as 0, which reads back as one
		// of them only.
		return append(args, e.Seq, e.Time.UnixMicro(), reuseBox(&last.action, e.Action), reuseBox(&last.outcome, e.Outcome),
			account, actor, e.Source, e.DataText(), prevHash, last.hash)
	}, func(n int, args []any) error {
		_, err := s.stmt(ctx, tx, multiRowName("insertAudit", n)).ExecContext(ctx, args...)
		return s.wrap("append audit events", err)
	})
}

// reuseBox returns v in an interface: *last when that holds v already,
// else a new one, kept in *last for the next call.
func reuseBox(last *any, v string) any {
	if s, ok := (*last).(string); !ok || s != v {
		*last = v
	}
	return *last
}

// Commit implements storage.Storage.
func (s *Store) Commit(ctx context.Context, writes []storage.Write) ([]error, error) {
	results := make([]error, len(writes))
	var evs []storage.AuditEvent
	err := s.tx(ctx, func(tx *sql.Tx) error {
		evs = evs[:0]
		clear(results)
		if err := s.useJTIs(ctx, tx, writes, results); err != nil {
			return err
		}
		var tokens []*storage.TokenRecord
		for i, w := range writes {
			if results[i] != nil {
				continue
			}
			if w.Token != nil {
				tokens = append(tokens, w.Token)
			}
			evs = append(evs, w.Events...)
		}
		if err := s.insertTokens(ctx, tx, tokens); err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		return s.appendAudit(ctx, tx, evs)
	})
	if err != nil {
		if s.d.IsBusy != nil && s.d.IsBusy(err) {
			err = fmt.Errorf("%w: %w", storage.ErrBusy, err)
		}
		return nil, err
	}
	return results, nil
}

// useJTIs inserts the writes' JTIs, setting results[i] to ErrReplay for
// every write one of whose JTIs was used before, in the store or by an
// earlier accepted write of the batch: the outcome is that of committing
// the writes one by one in order. All of them go in with multi-row inserts
// in key order, so that two processes inserting the same JTIs lock them in
// the same order instead of deadlocking (PostgreSQL), whatever order each
// write lists them in (a client assertion's and a DPoP proof's); the JTIs
// that no accepted write took are then given back, so a refused write
// leaves none taken and does not count against a later write.
func (s *Store) useJTIs(ctx context.Context, tx *sql.Tx, writes []storage.Write, results []error) error {
	type key struct{ issuer, jti string }
	var all []storage.UsedJTI
	for _, w := range writes {
		all = append(all, w.JTIs...)
	}
	if len(all) == 0 {
		return nil
	}
	// Each key once, as the first write that lists it has it: a stable
	// sort keeps the writes' order among equal keys.
	slices.SortStableFunc(all, func(a, b storage.UsedJTI) int {
		return cmp.Or(strings.Compare(a.Issuer, b.Issuer), strings.Compare(a.JTI, b.JTI))
	})
	all = slices.CompactFunc(all, func(a, b storage.UsedJTI) bool { return a.Issuer == b.Issuer && a.JTI == b.JTI })
	fresh := make(map[key]bool, len(all)) // inserted by this transaction
	err := inChunks(rowChunks, all, 3, func(args []any, u storage.UsedJTI) []any {
		return append(args, u.Issuer, u.JTI, micros(u.ExpiresAt))
	}, func(n int, args []any) error {
		rows, err := s.stmt(ctx, tx, multiRowName("insertJTIs", n)).QueryContext(ctx, args...)
		if err != nil {
			return s.wrap("use jti", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.issuer, &k.jti); err != nil {
				return s.wrap("use jti", err)
			}
			fresh[k] = true
		}
		return s.wrap("use jti", rows.Err())
	})
	if err != nil {
		return err
	}
	taken := make(map[key]bool, len(all)) // by an accepted write
	for i, w := range writes {
		for j, u := range w.JTIs {
			if k := (key{u.Issuer, u.JTI}); fresh[k] && !taken[k] {
				taken[k] = true
				continue
			}
			// Used before, by an earlier write or twice in this one: the
			// write is refused and gives back what it took.
			results[i] = storage.ErrReplay
			for _, t := range w.JTIs[:j] {
				delete(taken, key{t.Issuer, t.JTI})
			}
			break
		}
	}
	// Rows this transaction inserted that no accepted write took:
	// deleting them waits for nobody.
	for _, u := range all {
		if k := (key{u.Issuer, u.JTI}); fresh[k] && !taken[k] {
			if _, err := s.stmt(ctx, tx, "deleteJTI").ExecContext(ctx, u.Issuer, u.JTI); err != nil {
				return s.wrap("use jti", err)
			}
		}
	}
	return nil
}

// PruneAudit implements storage.Storage.
func (s *Store) PruneAudit(ctx context.Context, before time.Time, limits storage.PruneLimits, ev storage.AuditEvent) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, s.d.LockAudit, "lock audit log"); err != nil {
			return err
		}
		var (
			through int64
			hash    []byte
		)
		if err := tx.QueryRowContext(ctx, s.q["auditPruneThrough"], auditBound(before)).Scan(&through); err != nil {
			return s.wrap("prune audit log", err)
		}
		if limits.ThroughSeq > 0 {
			through = min(through, limits.ThroughSeq)
		}
		if limits.MaxEvents > 0 {
			var first int64
			if err := tx.QueryRowContext(ctx, s.q["auditFirstSeq"]).Scan(&first); err != nil {
				return s.wrap("prune audit log", err)
			}
			through = min(through, first+limits.MaxEvents-1)
		}
		err := tx.QueryRowContext(ctx, s.q["auditHashAt"], through).Scan(&hash)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // pruned through there already, or nothing to prune
		} else if err != nil {
			return s.wrap("prune audit log", err)
		}
		// The gate lets the append-only trigger allow these deletes; it is
		// closed again before the transaction commits.
		if _, err := tx.ExecContext(ctx, s.q["openPruneGate"], through); err != nil {
			return s.wrap("prune audit log", err)
		}
		res, err := tx.ExecContext(ctx, s.q["pruneAudit"], through)
		if err != nil {
			return s.wrap("prune audit log", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return s.wrap("prune audit log", err)
		}
		if _, err := tx.ExecContext(ctx, s.q["closePruneGate"]); err != nil {
			return s.wrap("prune audit log", err)
		}
		return s.appendAudit(ctx, tx, []storage.AuditEvent{storage.CompletePrune(ev, through, hash, n)})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// ListAuditEvents implements storage.Storage.
func (s *Store) ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	var (
		where = []string{"seq > ?"}
		args  = []any{f.AfterSeq}
	)
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	if f.AccountID != "" {
		add("account_id = ?", f.AccountID)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	if f.Since != nil {
		add("time >= ?", auditBound(*f.Since))
	}
	if f.Until != nil {
		add("time < ?", auditBound(*f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = storage.DefaultListLimit
	}
	args = append(args, limit)
	// seq is the primary key, and the account and action indexes end with
	// it: either order is an index walk that stops after limit rows.
	order := "seq"
	if f.Newest {
		order = "seq DESC"
	}
	q := s.rebind(`SELECT ` + auditCols + ` FROM audit_events WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order + ` LIMIT ?`)
	rows, err := s.reader(ctx).QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap("list audit events", err)
	}
	defer rows.Close()
	var out []storage.AuditEvent
	for rows.Next() {
		var (
			e    storage.AuditEvent
			t    any // an integer, unless SQLite was given another type
			data string
		)
		if err := rows.Scan(&e.Seq, &t, &e.Action, &e.Outcome, &e.AccountID, &e.Actor, &e.Source, &data, &e.PrevHash, &e.Hash); err != nil {
			return nil, s.wrap("list audit events", err)
		}
		if us, ok := t.(int64); ok {
			e.Time = time.UnixMicro(us).UTC() // exactly as written: not fromMicros, whose 0 is no time
		} else {
			// A SQLite column keeps a value of any type: Keyward never
			// writes that, so the database was changed. The event is
			// listed, its time unreadable, as data that is not a JSON
			// object is: one altered row must not hide the rest of the
			// log, and VerifyChain counts it altered.
			e.SetUnreadableTime(storedValue(t))
		}
		// Data that is not a JSON object leaves the event listed, its
		// data unreadable (UnreadableData): one altered row must not hide
		// the rest of the log, and VerifyChain counts it altered.
		_ = e.SetStoredData([]byte(data))
		out = append(out, e)
	}
	return out, s.wrap("list audit events", rows.Err())
}

// auditBound is the stored time (microseconds since the Unix epoch, as
// appendAudit writes them) that a time bound t compares with exactly: t
// rounded up to the microsecond. Stored times are whole microseconds, so
// an event's time is at or after t (a since, or a prune's cut) exactly
// when it is at or after this, and before t (an until) exactly when it is
// before this; t rounded down would take an event a fraction of a
// microsecond before t for one at or after it. Unlike micros, it takes
// the zero time for itself, not for 0, Unix time 0.
func auditBound(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// storedValue is what a SQLite column holds that is not of its type, as
// text: a real number as Go writes it, text or a blob as it is.
func storedValue(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case []byte:
		return string(v)
	case string:
		return v
	case nil:
		return "NULL"
	default:
		return fmt.Sprint(v)
	}
}
