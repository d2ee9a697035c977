package admin

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// AuditEventView is an audit event as the admin API shows it. Hashes are
// hex.
type AuditEventView struct {
	Seq int64 `json:"seq"`
	// Time is left out when the event's time as stored is not one
	// (TimeUnreadable).
	Time      time.Time         `json:"time,omitzero"`
	Action    string            `json:"action"`
	Outcome   string            `json:"outcome"`
	AccountID string            `json:"account_id,omitempty"`
	Actor     string            `json:"actor,omitempty"`
	Source    string            `json:"source,omitempty"`
	Data      map[string]string `json:"data,omitempty"`
	// DataUnreadable is true when the event's data as stored is not a
	// JSON object of strings, which Keyward never writes: the database
	// was changed, and audit verify reports the event altered. Data is
	// then left out, and DataRaw is the stored text (invalid UTF-8 in it
	// as U+FFFD).
	DataUnreadable bool   `json:"data_unreadable,omitempty"`
	DataRaw        string `json:"data_raw,omitempty"`
	// TimeUnreadable is true, in the same way, when the event's time as
	// stored is not an integer (SQLite keeps a value of any type): Time
	// is then left out, and TimeRaw is what is stored, as text.
	TimeUnreadable bool   `json:"time_unreadable,omitempty"`
	TimeRaw        string `json:"time_raw,omitempty"`
	PrevHash       string `json:"prev_hash"`
	Hash           string `json:"hash"`
}

// AuditView returns the view of an audit event.
func AuditView(e storage.AuditEvent) AuditEventView {
	v := AuditEventView{Seq: e.Seq, Time: e.Time, Action: e.Action, Outcome: e.Outcome, AccountID: e.AccountID,
		Actor: e.Actor, Source: e.Source, Data: e.Data, PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
	if raw, ok := e.UnreadableData(); ok {
		v.DataUnreadable, v.DataRaw = true, strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	if raw, ok := e.UnreadableTime(); ok {
		v.TimeUnreadable, v.TimeRaw = true, strings.ToValidUTF8(raw, "\uFFFD")
	}
	return v
}

// auditActions are the actions of the audit events Keyward writes,
// sorted: GET /v1/audit refuses any other action as a filter, which no
// event can match. TestAuditActionsAreWritten keeps it in step with the
// code that writes them.
var auditActions = []string{
	"account.bulk_create", "account.create", "account.delete", "account.disable", "account.enable",
	"account.import", "account.revoke_tokens", "account.update",
	ActionRefused,
	"api.create", "api.delete", "api.import", "api.update",
	storage.ActionAuditPrune,
	"delegation.grant", "delegation.import", "delegation.revoke",
	"key.create", "key.delete", "key.disable", "key.enable", "key.import", "key.upload",
	"master_key.rotate",
	"org.create", "org.delete", "org.import", "org.policy", "org.project", "org.project_import", "org.project_remove",
	"sealed_value.create", "sealed_value.import",
	"secret.create", "secret.delete", "secret.disable", "secret.enable", "secret.import",
	"signing_key.create", "signing_key.import", "signing_key.rotate",
	"token.introspect", "token.issued", "token.refused", "token.revoke",
	"user.delete", "user.import", "user.put", "user.suspend", "user.unsuspend",
}

// AuditActions returns the actions of the audit events Keyward writes,
// sorted.
func AuditActions() []string { return slices.Clone(auditActions) }

// maxAuditWait bounds a long poll; maxWaiters bounds concurrent ones.
// longPollSlack is how long a long poll may take to write its answer
// once the wait is over.
const (
	maxAuditWait  = 60 * time.Second
	maxWaiters    = 64
	longPollSlack = 15 * time.Second
)

// longPoll lets a request that asks to wait outlast the server's
// WriteTimeout, which is shorter than the longest wait: its write deadline
// is moved past the wait. The server resets it for the connection's next
// request.
func longPoll(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "" {
			// A writer without deadlines (a test recorder) has none to move.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(maxAuditWait + longPollSlack))
		}
		next.ServeHTTP(w, r)
	})
}

// auditWaiters limits concurrent long polls.
var auditWaiters = make(chan struct{}, maxWaiters)

// maxDaysAgo bounds a duration ago given in days, 10,000 years: far more
// days overflow the stores' microsecond timestamps (±292,000 years) and
// wrap around to a time to come, which made 'audit prune --before
// 999999999999d' prune its own audit.prune events without end.
const maxDaysAgo = 3_652_425

// ErrTooLongAgo is ParseTime's error for more days ago than maxDaysAgo.
var ErrTooLongAgo = errors.New("more than 10000 years ago")

// ParseTime reads an RFC 3339 time, or a duration ago: 1h is an hour ago,
// 90d ninety days ago. A negative duration, a time to come in disguise, is
// refused, and so is a count of days beyond 10,000 years.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			if n > maxDaysAgo {
				return time.Time{}, fmt.Errorf("%s is %w", s, ErrTooLongAgo)
			}
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%s is a negative duration: a duration ago such as 1h is positive", s)
		}
		return now.Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}

// listAudit serves GET /v1/audit: oldest first, or newest first with
// order=desc. next_page_token, sent back as page_token, continues in the
// same direction: oldest
// first, it is the `after` of the next page, and is there even on the last
// page, for the events still to come; newest first, it is the `before` of
// the next, older page, and is left out when there is none. With
// wait=DURATION, oldest first only, and no matching event after `after`,
// it waits up to that long for one (long polling), checking the store, so
// it works whichever replica wrote the event. A server that is shutting
// down answers at once, with what it has, and so does a poll that no
// event written from now on can match (an until long past: canCome; a
// before the log has reached, whose next_page_token is then before-1).
func (h *Handler) listAudit(r *http.Request, _ Actor) (int, any, error) {
	q := r.URL.Query()
	now := h.svc.cfg.Now()
	var f storage.AuditFilter
	var err error
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		f.Newest = true
	default:
		return 0, nil, invalid("order must be asc (oldest first, the default) or desc (newest first).")
	}
	// page_token, as on the other lists, is next_page_token handed back:
	// the after of the next page oldest first, the before newest first.
	if v := q.Get("page_token"); v != "" {
		name := "after"
		if f.Newest {
			name = "before"
		}
		if q.Get(name) != "" {
			return 0, nil, invalid("page_token continues a listing: send it or %s, not both.", name)
		}
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 || (f.Newest && n < 1) {
			return 0, nil, invalid("page_token must be the next_page_token of the previous page (a sequence number).")
		}
		q.Set(name, v)
	}
	if v := q.Get("after"); v != "" {
		if f.AfterSeq, err = strconv.ParseInt(v, 10, 64); err != nil || f.AfterSeq < 0 {
			return 0, nil, invalid("after must be a sequence number.")
		}
	}
	if v := q.Get("before"); v != "" {
		if f.BeforeSeq, err = strconv.ParseInt(v, 10, 64); err != nil || f.BeforeSeq < 1 {
			return 0, nil, invalid("before must be a sequence number from 1.")
		}
	}
	if f.Limit, err = parseLimit(q.Get("limit")); err != nil {
		return 0, nil, err
	}
	// A bound at the zero time (0001-01-01T00:00:00Z) is one too: an
	// until there selects nothing, not everything.
	for name, dst := range map[string]**time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := ParseTime(v, now)
			if err != nil {
				return 0, nil, invalid("%s must be an RFC 3339 time or a duration ago such as 1h.", name)
			}
			*dst = &t
		}
	}
	if f.Since != nil && f.Until != nil && f.Since.After(*f.Until) {
		return 0, nil, invalid("since must not be after until: events at or after since and before until are listed.")
	}
	f.Action, f.Outcome = q.Get("action"), q.Get("outcome")
	if f.Action != "" && !slices.Contains(auditActions, f.Action) {
		// A typo would match nothing, and look like a quiet log.
		return 0, nil, invalid("action %s is no audit action; the actions are %s.", quoteClip(f.Action), strings.Join(auditActions, ", "))
	}
	if f.Outcome != "" && f.Outcome != storage.OutcomeSuccess && f.Outcome != storage.OutcomeFailure {
		return 0, nil, invalid("outcome must be success or failure.")
	}
	if v := q.Get("account"); v != "" {
		a, err := h.svc.GetAccount(r.Context(), v)
		switch {
		case err == nil:
			f.AccountID = a.ID
		case oauth2.AsError(err).Code != ErrNotFound:
			return 0, nil, err
		case clientIDRE.MatchString(v):
			// An account deleted since: its events stay in the log, under
			// its client ID, and an investigation of it needs them.
			f.AccountID = v
		default:
			return 0, nil, notFound("The service account %s does not exist. The events of an account deleted since are found by its client ID (its account.delete event names its email).", quoteClip(v))
		}
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > maxAuditWait {
			return 0, nil, invalid("wait must be a duration up to %s.", maxAuditWait)
		}
		if f.Newest {
			return 0, nil, invalid("wait (long polling for new events) needs order=asc: newest first, new events would go on a page already read.")
		}
	}
	if f.Newest {
		return h.listAuditNewest(r.Context(), f, now)
	}
	// With before, the log may already reach before-1: then no event to
	// come is before it, whatever the other filters leave out of the
	// events there are. The newest is read first, so that an event
	// written before it is in the read of the page that follows.
	reached := false
	if f.BeforeSeq > 0 {
		head, err := h.svc.store.ListAuditEvents(r.Context(), storage.AuditFilter{Newest: true, Limit: 1})
		if err != nil {
			return 0, nil, err
		}
		reached = len(head) > 0 && head[0].Seq >= f.BeforeSeq-1
	}
	evs, err := h.svc.store.ListAuditEvents(r.Context(), f)
	if err == nil && len(evs) == 0 && wait > 0 && !reached && canCome(f, now) {
		// Only the wait outlasts requestTimeout: its own deadline is
		// wait, at most maxAuditWait.
		evs, err = h.waitForAudit(unbounded(r), f, wait)
	}
	if err != nil {
		return 0, nil, err
	}
	resp := map[string]any{"events": h.auditViews(r.Context(), evs)}
	next := f.AfterSeq
	if len(evs) > 0 {
		next = evs[len(evs)-1].Seq
	}
	if reached && len(evs) < cmp.Or(f.Limit, storage.DefaultListLimit) {
		// Every event before before that matches is listed: the next
		// page starts at before-1, where a follower sees the listing end.
		next = max(next, f.BeforeSeq-1)
	}
	resp["next_page_token"] = strconv.FormatInt(next, 10)
	h.readBounds(resp, f, now)
	return 200, resp, nil
}

// readBounds adds to a page of the audit log now, the server's time as it
// began to read the log, and since and until as it read them: a duration
// ago (1h) is read by the server's clock, at now, and a client sends the
// next pages the time it was for this one, exactly, so that the bound
// does not move on between pages, and tells by now when until is past
// for the server (a follower stops a minute after it). now is the time
// the request began, not the answer's: every event written before it is
// in the reads of the page, as it is not for a later time (an event
// written after the last read of a long poll, or while the page was
// read, but before the answer), by which a follower could stop before
// it; and it is the time canCome tells an until past by. A bound RFC
// 3339 cannot write (a year before 0 or after 9999) is left out: the
// client sends it as given.
func (h *Handler) readBounds(resp map[string]any, f storage.AuditFilter, now time.Time) {
	resp["now"] = now.UTC().Format(time.RFC3339Nano)
	for name, t := range map[string]*time.Time{"since": f.Since, "until": f.Until} {
		if t == nil {
			continue
		}
		if u := t.UTC(); u.Year() >= 0 && u.Year() <= 9999 {
			resp[name] = u.Format(time.RFC3339Nano)
		}
	}
}

// AuditLateness is how long after its time an audit event may still be
// written: an event has the time its request began (a token request is
// bounded 25 s, an admin request 20 s), and another replica, or the
// machine of an audit prune, stamps it by its own clock, which may be
// behind this one. An until is past, for a long poll (canCome) and for
// audit list --follow, only this long after it.
const AuditLateness = time.Minute

// canCome reports whether an event written from now on can match f, for
// a long poll to wait for: not with an until past by AuditLateness (the
// zero time among them), as events are written no later than that after
// the time they have, nor with a range of times or sequence numbers that
// is empty (after the largest sequence number there can be, say; times
// inside one microsecond, the precision they are stored with). A poll
// that cannot be answered otherwise is answered at once, with what
// matches.
func canCome(f storage.AuditFilter, now time.Time) bool {
	switch {
	case f.Until != nil && !f.Until.Add(AuditLateness).After(now):
		return false
	case f.Until != nil && f.Since != nil && !storage.AuditTimesBetween(*f.Since, *f.Until):
		return false
	case f.BeforeSeq > 0 && f.BeforeSeq-1 <= f.AfterSeq, f.AfterSeq == math.MaxInt64:
		return false
	}
	return true
}

// listAuditNewest answers a newest-first page. It reads one event more
// than it shows, to tell whether an older page follows.
func (h *Handler) listAuditNewest(ctx context.Context, f storage.AuditFilter, now time.Time) (int, any, error) {
	limit := cmp.Or(f.Limit, storage.DefaultListLimit)
	f.Limit = limit + 1
	evs, err := h.svc.store.ListAuditEvents(ctx, f)
	if err != nil {
		return 0, nil, err
	}
	resp := map[string]any{}
	if len(evs) > limit {
		evs = evs[:limit]
		resp["next_page_token"] = strconv.FormatInt(evs[limit-1].Seq, 10)
	}
	resp["events"] = h.auditViews(ctx, evs)
	h.readBounds(resp, f, now)
	return 200, resp, nil
}

// auditViews returns the views of evs, and logs each event whose data or
// time is unreadable: a page shows it with the others (data_unreadable,
// time_unreadable), but the database was changed, which an operator must
// hear of. Each such event is logged once, not again on every page or
// console refresh that lists it.
func (h *Handler) auditViews(ctx context.Context, evs []storage.AuditEvent) []AuditEventView {
	out := make([]AuditEventView, 0, len(evs))
	for _, e := range evs {
		v := AuditView(e)
		if (v.DataUnreadable || v.TimeUnreadable) && h.unreadable.first(e.Seq) {
			if v.DataUnreadable {
				h.log.ErrorContext(ctx, "audit event data is not a JSON object: the database was changed; run keyward audit verify",
					"seq", e.Seq, "data", quoteClip(v.DataRaw))
			}
			if v.TimeUnreadable {
				h.log.ErrorContext(ctx, "audit event time is not an integer: the database was changed; run keyward audit verify",
					"seq", e.Seq, "time", quoteClip(v.TimeRaw))
			}
		}
		out = append(out, v)
	}
	return out
}

// maxSeqsLogged bounds seqsLogged: past it, the set starts again, and the
// events in it may each be logged once more.
const maxSeqsLogged = 1024

// seqsLogged is a bounded set of the audit events already logged.
type seqsLogged struct {
	mu   sync.Mutex
	seqs map[int64]struct{}
}

// first adds seq, reporting whether it was not there yet.
func (s *seqsLogged) first(seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seqs[seq]; ok {
		return false
	}
	if s.seqs == nil || len(s.seqs) >= maxSeqsLogged {
		s.seqs = make(map[int64]struct{})
	}
	s.seqs[seq] = struct{}{}
	return true
}

func (h *Handler) waitForAudit(ctx context.Context, f storage.AuditFilter, wait time.Duration) ([]storage.AuditEvent, error) {
	select {
	case auditWaiters <- struct{}{}:
		defer func() { <-auditWaiters }()
	default:
		return nil, oauth2.Unavailable("Too many clients are following the audit log; retry without wait or later.")
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	// A shutdown ends the read in progress too, not only the wait between
	// reads: on a store slow to answer, the graceful shutdown would
	// otherwise sit out the rest of the wait.
	go func() {
		select {
		case <-h.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil // nothing new: an empty page
		case <-h.stopping:
			return nil, nil // shutting down: the client asks again elsewhere or later
		case <-t.C:
		}
		evs, err := h.svc.store.ListAuditEvents(ctx, f)
		if err != nil || len(evs) > 0 {
			if err != nil && ctx.Err() != nil {
				return nil, nil // the read ended with the wait: an empty page
			}
			return evs, err
		}
	}
}
