package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the audit log",
		Long: `Every token issued or refused, every introspection and revocation, every
admin change and every admin API request refused with a 4xx (admin.refused)
is an event in an append-only, hash-chained audit log, written durably
before the response — except introspections that find their token
active, which the server writes after the answers as one token.introspect
event per API, token, authentication method and source address each
second, with count, first and last in its data (serve
--introspection-audit-interval sets the interval; 0 writes each one before
its answer). At the token, introspection and revocation endpoints and the
admin API, a source throttled for failing too often is answered 429, and
that is recorded once a minute per address (or client at an address),
with throttled in the event's data, not for every request. 'audit list'
reads the log through the admin API; 'audit verify' checks the chain and
'audit prune' deletes old events, directly in the database.`,
	}
	cmd.AddCommand(newAuditListCommand(), newAuditVerifyCommand(), newAuditPruneCommand())
	return cmd
}

// checkAuditFilters says what is wrong with the filters of 'audit list'
// before any request, as a mistake in the command line, naming the flag;
// the admin API would refuse them too, naming its query parameter.
func checkAuditFilters(since, until, outcome, after, before string) error {
	now := time.Now()
	var bounds [2]*time.Time
	for i, f := range []struct{ name, value string }{{"--since", since}, {"--until", until}} {
		if f.value == "" {
			continue
		}
		t, err := admin.ParseTime(f.value, now)
		if errors.Is(err, admin.ErrTooLongAgo) {
			return fmt.Errorf("%s %w", f.name, err)
		} else if err != nil {
			return fmt.Errorf("%s %q is neither a duration ago (24h, 7d) nor an RFC 3339 time (2026-12-01T00:00:00Z)", f.name, f.value)
		}
		bounds[i] = &t
	}
	if bounds[0] != nil && bounds[1] != nil && bounds[0].After(*bounds[1]) {
		return fmt.Errorf("--since %s is after --until %s: no event is at or after the one and before the other", since, until)
	}
	if outcome != "" && outcome != storage.OutcomeSuccess && outcome != storage.OutcomeFailure {
		return fmt.Errorf("--outcome %q must be success or failure", outcome)
	}
	for _, f := range []struct {
		name, value string
		least       int64
	}{{"--after", after, 0}, {"--before", before, 1}} {
		if f.value == "" {
			continue
		}
		if n, err := strconv.ParseInt(f.value, 10, 64); err != nil || n < f.least {
			return fmt.Errorf("%s %q must be an event's sequence number (SEQ in the list), from %d", f.name, f.value, f.least)
		}
	}
	return nil
}

func newAuditListCommand() *cobra.Command {
	var (
		f                              clientFlags
		since, until, account          string
		action, outcome, after, before string
		limit, maxEvents               int
		follow, newest                 bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events (oldest first; --newest; --follow streams)",
		Long: `List audit events through the admin API, oldest first (--newest: newest
first), fetched --limit at a time, all that match or the first --max; with
--follow, then also each new one as it is written. -o json prints one JSON
object a line (JSON Lines), an event each, so that a stream (--follow) can
be read line by line, and the lines concatenated are what 'audit prune
--export' writes.`,
		Example: `  keyward audit list --since 1h --action token.refused
  keyward audit list --newest --outcome failure --since 24h
  keyward audit list --newest --max 20
  keyward audit list --since 24h --action admin.refused
  keyward audit list --account nightly-report@billing.iam.keyward.internal \
    --follow -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if newest && follow {
				return usageError{errors.New("--newest and --follow go opposite ways: --follow streams new events after the ones there are, oldest first")}
			}
			if limit <= 0 || limit > 1000 {
				return usageError{fmt.Errorf("--limit must be from 1 to 1000")}
			}
			if maxEvents < 0 {
				return usageError{fmt.Errorf("--max must be 0 (no limit) or more")}
			}
			if err := checkAuditFilters(since, until, outcome, after, before); err != nil {
				return usageError{err}
			}
			// A duration ago (--since 1h) is sent as given for the first
			// page, and the server reads it by its clock; the later pages
			// are sent the time it read, which its answer says (since,
			// until), so that the bound does not move on between pages
			// (a busy log's events in between were left out by --since),
			// nor by this machine's clock, which may be off the
			// server's. A follower stops once --until is past (by a
			// minute, followOver) by the server's clock too (now). A
			// server from before 2026-12-07 says neither: its Date is
			// taken (pinAgo); without one, no clock is (serverTime).
			var sinceAt, untilAt *time.Time
			if t, err := time.Parse(time.RFC3339, since); err == nil {
				sinceAt = &t
			}
			if t, err := time.Parse(time.RFC3339, until); err == nil {
				untilAt = &t
			}
			pinned := false
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if newest {
				q.Set("order", "desc")
			}
			for k, v := range map[string]string{"since": since, "until": until, "account": account, "action": action, "outcome": outcome, "after": after, "before": before} {
				if v != "" {
					q.Set(k, v)
				}
			}
			shown := 0
			table := auditTable{w: c.out}
			rc := reconnect{errOut: cmd.ErrOrStderr(), server: c.base}
			var pinErr error
			for {
				if pinErr != nil {
					return pinErr
				}
				// Never ask for more events than --max leaves to show.
				pageLimit := limit
				if maxEvents > 0 {
					pageLimit = min(limit, maxEvents-shown)
				}
				q.Set("limit", strconv.Itoa(pageLimit))
				var page auditListPage
				if err := c.do(cmd.Context(), http.MethodGet, "/v1/audit?"+q.Encode(), nil, &page); err != nil {
					if cmd.Context().Err() != nil {
						return nil // interrupted while following
					}
					if !follow || !transient(err) {
						return err
					}
					if err := rc.failed(cmd.Context(), err); err != nil {
						return err
					}
					continue
				}
				rc.succeeded()
				serverNow, timeErr := page.serverTime(c.date)
				if !pinned {
					pinned = true
					// In this order: of two that cannot be pinned,
					// --since's error is the one said, every time.
					for _, b := range [...]struct{ name, v string }{{"since", since}, {"until", until}} {
						name, v := b.name, b.v
						if _, err := time.Parse(time.RFC3339, v); v == "" || err == nil {
							continue
						}
						t, send, err := page.pin(name, v, c.date)
						if err != nil {
							pinErr = cmp.Or(pinErr, err) // said once another page is asked for
							continue
						}
						if name == "until" {
							untilAt = &t
						} else {
							sinceAt = &t
						}
						// A time RFC 3339 cannot write in UTC (9000d
						// ago, before year 0) is sent as given.
						if send {
							q.Set(name, t.UTC().Format(time.RFC3339Nano))
						}
					}
				}
				if maxEvents > 0 && len(page.Events) > maxEvents-shown {
					page.Events = page.Events[:maxEvents-shown]
				}
				shown += len(page.Events)
				if c.output == "json" {
					for _, e := range page.Events {
						b, _ := json.Marshal(e)
						fmt.Fprintf(c.out, "%s\n", b)
					}
				} else {
					table.page(page.Events)
				}
				// The first request does not wait, so that the header (or
				// the events there are) shows at once; the next ones
				// long-poll for new events.
				if follow {
					q.Set("wait", followWait.String())
				}
				if maxEvents > 0 && shown == maxEvents {
					return nil
				}
				if newest {
					// Newest first, the last page has no next_page_token.
					if page.Next == "" {
						return nil
					}
					q.Set("before", page.Next)
					continue
				}
				if page.Next != "" {
					q.Set("after", page.Next)
				}
				// --until is past when it is for the server, which answers
				// at once by its own clock (canCome): by this machine's, a
				// clock ahead would stop before the server's events are all
				// in, and one behind would ask again without a wait.
				if len(page.Events) < pageLimit && follow && untilAt != nil && timeErr != nil {
					return fmt.Errorf("cannot tell when --until is past for the server: %w: follow without --until, or list without --follow", timeErr)
				}
				if len(page.Events) < pageLimit && (!follow || followOver(q.Get("after"), before, sinceAt, untilAt, serverNow)) {
					return nil
				}
				if cmd.Context().Err() != nil {
					return nil
				}
			}
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "only events at or after this time: RFC 3339, or a duration ago such as 24h or 7d")
	fl.StringVar(&until, "until", "", "only events before this time: RFC 3339, or a duration ago such as 1h or 2d")
	fl.StringVar(&account, "account", "", "only events about this service account (email or client ID; the client ID of one deleted since)")
	fl.StringVar(&action, "action", "", "only this action, e.g. token.issued, token.refused, account.disable, admin.refused")
	fl.StringVar(&outcome, "outcome", "", "only success or failure")
	fl.StringVar(&after, "after", "", "only events after sequence number `SEQ` (--since bounds by time)")
	fl.StringVar(&before, "before", "", "only events before sequence number `SEQ`; not a time, unlike 'audit prune --before' (--until bounds by time)")
	fl.IntVar(&limit, "limit", 100, "events per page (1-1000)")
	fl.IntVar(&maxEvents, "max", 0, "stop after `N` events, oldest or newest first (0: no limit)")
	fl.BoolVar(&newest, "newest", false, "list newest first, paging back to the oldest (not with --follow)")
	fl.BoolVar(&follow, "follow", false, "keep streaming new events until interrupted (or a minute after --until, or --before reached), reconnecting when the server restarts")
	return cmd
}

// auditListPage is a page of GET /v1/audit. Now, Since and Until are the
// server's time as it began to read the log and the bounds as it read
// them; a server from before 2026-12-07 sends none of them.
type auditListPage struct {
	Events []admin.AuditEventView `json:"events"`
	Next   string                 `json:"next_page_token"`
	Now    *time.Time             `json:"now"`
	Since  *time.Time             `json:"since"`
	Until  *time.Time             `json:"until"`
}

// errNoServerTime is serverTime's error for an answer that says no time.
var errNoServerTime = errors.New("the admin API's answer has neither its time (now) nor a Date header (did a proxy drop it?), and this machine's clock may be off the server's")

// serverTime is the server's time as it read the page: its now, or, from a
// server that does not say it, the latest it may have been by its Date
// (to the second, rounded down: a second on; a server that answered at
// once, its until a second past by AuditLateness, was otherwise asked
// again without a wait for that second). date is zero without a Date.
func (p auditListPage) serverTime(date time.Time) (time.Time, error) {
	switch {
	case p.Now != nil:
		return *p.Now, nil
	case !date.IsZero():
		return date.Add(time.Second), nil
	}
	return time.Time{}, errNoServerTime
}

// pin is the time the server read the duration ago v (checked) given as
// name (since or until) as: the one its answer says, exactly, or, from a
// server that says no bound, by its Date (pinAgo). send is false for a
// time RFC 3339 cannot write (before year 0), which the server leaves
// out and the later pages are sent as given; it is then the latest the
// server may have read, by its now.
func (p auditListPage) pin(name, v string, date time.Time) (t time.Time, send bool, err error) {
	read := p.Since
	if name == "until" {
		read = p.Until
	}
	switch {
	case read != nil:
		return *read, true, nil
	case p.Now != nil:
		t, _ = admin.ParseTime(v, *p.Now)
		return t, false, nil
	case date.IsZero():
		return time.Time{}, false, fmt.Errorf("cannot tell which time --%s %s was for the server: %w: give --%[1]s an RFC 3339 time instead of a duration ago", name, v, errNoServerTime)
	}
	t = pinAgo(v, date, name == "until")
	y := t.UTC().Year()
	return t, y >= 0 && y <= 9999, nil
}

// pinAgo is the time a duration ago v (1h, 2d; checked) was for a server
// that answered at date, its Date: to the second, rounded down, the
// server read it up to a second later. It is the earliest time the
// server may have read for a since, and the latest for an until (latest),
// so that a page sent it leaves out none of the events the first page's
// listing had, as the console's older pages do. Days are calendar days
// in the server's time zone, an hour more or less across a change of
// summer time: an hour wider.
func pinAgo(v string, date time.Time, latest bool) time.Time {
	t, _ := admin.ParseTime(v, date.UTC())
	var wider time.Duration
	if strings.HasSuffix(v, "d") {
		wider = time.Hour
	}
	if latest {
		return t.Add(time.Second + wider)
	}
	return t.Add(-wider)
}

// followOver reports whether a follower whose last page was short has
// every event it can get, and stops: the listing reached --before (after,
// where the next page starts, is before-1 or more) or the largest
// sequence number there can be, or --until (until, as the server read
// it for the first page: pin) is past at now, the server's time as it
// read the page (serverTime), by admin.AuditLateness: an event before
// --until may be written that much later. The server answers such a
// poll at once instead of waiting: following on would ask again without
// end. So it does for --since and --until that no stored time lies
// between (the same time, or two inside one microsecond): the follower
// stops at once.
func followOver(after, before string, since, until *time.Time, now time.Time) bool {
	if until != nil && !until.Add(admin.AuditLateness).After(now) {
		return true
	}
	if since != nil && until != nil && !storage.AuditTimesBetween(*since, *until) {
		return true
	}
	a, aerr := strconv.ParseInt(after, 10, 64)
	if aerr == nil && a == math.MaxInt64 {
		return true // no sequence number follows
	}
	b, berr := strconv.ParseInt(before, 10, 64)
	return aerr == nil && berr == nil && b-1 <= a
}

// A follower asks the server to wait this long for new events: well within
// the server's 30-second WriteTimeout and any proxy's idle timeout.
var followWait = 20 * time.Second

// A follower that cannot reach the server retries, waiting
// followBackoff, doubled after each failure up to 10 seconds, and gives up
// after followGiveUp without an answer.
var (
	followBackoff = 500 * time.Millisecond
	followGiveUp  = 2 * time.Minute
)

// reconnect paces a follower's attempts to reach a server that went away,
// a restart say: it says so once, retries ever more slowly, and gives up
// when the outage lasts followGiveUp.
type reconnect struct {
	errOut  io.Writer
	server  string
	since   time.Time // when the outage began; zero while connected
	backoff time.Duration
}

// failed reports a transient failure: it waits before the next attempt,
// or returns an error if the outage has lasted too long or ctx ended.
func (r *reconnect) failed(ctx context.Context, err error) error {
	if r.since.IsZero() {
		r.since, r.backoff = time.Now(), followBackoff
		fmt.Fprintf(r.errOut, "keyward: lost the audit log at %s (%v); reconnecting\n", r.server, err)
	} else if time.Since(r.since) >= followGiveUp {
		return fmt.Errorf("gave up following after %s without an answer: %w", followGiveUp.Round(time.Second), err)
	}
	t := time.NewTimer(r.backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	r.backoff = min(2*r.backoff, 10*time.Second)
	return nil
}

// succeeded reports an answer, ending the outage if there was one.
func (r *reconnect) succeeded() {
	if !r.since.IsZero() {
		fmt.Fprintf(r.errOut, "keyward: reconnected to %s\n", r.server)
		r.since = time.Time{}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// auditTable writes the audit list table a page at a time, as the pages
// come (--follow waits between them). A column is as wide as its widest
// cell so far, and at first as wide as the values it usually holds (a
// token event's action, a client ID, an IPv4 address), so that pages line
// up with the header and with each other; a tabwriter flushed after each
// page aligned every page on its own.
type auditTable struct {
	w      io.Writer
	widths []int // nil until the header is written
}

var (
	auditHeader = []string{"SEQ", "TIME", "ACTION", "OUTCOME", "ACCOUNT", "ACTOR", "SOURCE", "DETAILS"}
	// auditMinWidths are the first widths of the columns but the last.
	auditMinWidths = []int{3, 19, len("token.introspect"), 7, 21, 21, len("255.255.255.255")}
)

// page writes the rows of evs, after the header if they are the first:
// the header alone if the first page has none, an empty table, as the
// other list commands print one (it printed nothing at all).
func (t *auditTable) page(evs []admin.AuditEventView) {
	if len(evs) == 0 && t.widths != nil {
		return
	}
	rows := make([][]string, 0, len(evs)+1)
	if t.widths == nil {
		t.widths = slices.Clone(auditMinWidths)
		rows = append(rows, auditHeader)
	}
	for _, e := range evs {
		rows = append(rows, auditCells(e))
	}
	for _, r := range rows {
		for i, c := range r[:len(t.widths)] {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		line := make([]byte, 0, 160)
		for i, c := range r[:len(t.widths)] {
			line = append(line, c...)
			line = append(line, strings.Repeat(" ", t.widths[i]-utf8.RuneCountInString(c)+2)...)
		}
		line = append(line, r[len(t.widths)]...)
		b.Write(bytes.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	io.WriteString(t.w, b.String())
}

// auditCells are the cells of an event's row in the audit list table.
func auditCells(e admin.AuditEventView) []string {
	d := details(e.Data)
	if e.DataUnreadable {
		// Not a JSON object of strings: the database was changed (audit
		// verify says so). What it holds is shown quoted, whatever it is.
		d = "data unreadable: " + strconv.Quote(e.DataRaw)
	}
	t := fmtTime(e.Time)
	if e.TimeUnreadable {
		// Not an integer, which SQLite keeps: the database was changed.
		t = "time unreadable: " + strconv.Quote(e.TimeRaw)
	}
	return []string{strconv.FormatInt(e.Seq, 10), t, cell(e.Action), cell(e.Outcome),
		cell(dash(e.AccountID)), cell(dash(e.Actor)), cell(dash(e.Source)), d}
}

// details prints an event's data as key=value, sorted, quoting a value
// that has a space or anything unprintable.
func details(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := d[k]
		if strings.Contains(v, " ") || !printable(v) {
			v = strconv.Quote(v)
		}
		parts = append(parts, cell(k)+"="+v)
	}
	return strings.Join(parts, " ")
}

// cell returns s for a table cell on a terminal: s itself when it is
// printable, else quoted with Go escapes. An event's data holds what
// callers sent (the client_id of a refused token request, anyone's to
// choose): printed raw, an escape sequence in it would reach the
// operator's terminal, and a line break would start a line that looks
// like another event. The other admin commands' tables show what the
// server answers through it too: a stored value may hold what import
// took with a warning, or what the admin API took before it refused it.
func cell(s string) string {
	if printable(s) {
		return s
	}
	return strconv.Quote(s)
}

// shown is how the admin commands' tables show a display name or a
// description, the labels the admin API checks with validate.Label (the
// other values, emails, identifiers, key IDs, scopes, go through cell,
// so that an invisible character in them is seen): as it is when
// validate.Label takes it as one line of plain text, quoted as cell
// quotes it when not (a control character, a line
// break, an escape sequence, a bidi override, invalid UTF-8: what import
// took with a warning, or the admin API before it refused it). cell
// quotes every character unicode.IsPrint refuses, among them ZWJ, ZWNJ
// and the spaces above ASCII (U+00A0, U+3000), which labels the admin API
// accepts hold: an emoji sequence, Persian or Indic text, a Japanese
// name.
func shown(s string) string {
	if utf8.ValidString(s) && validate.Label("value", s, math.MaxInt) == nil {
		return s
	}
	return strconv.Quote(s)
}

// printable reports whether s is UTF-8 of printable characters and
// spaces only: no control characters (line breaks, tabs, escapes), no
// invisible formatting such as bidirectional overrides.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

func newAuditVerifyCommand() *cobra.Command {
	cfg := DefaultConfig()
	var applyConfig func() error
	var output, head string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain, directly in the database",
		Long: `Read the audit log straight from the database (--data-dir or --db; no server
needed, and none trusted) and check that every event links to the one
before and still has the content it was written with. It reports the number
of events and the head: the last one's sequence number and hash — keep
them somewhere else, to detect later that the tail was cut or the chain
rewritten — or the first event that does not fit, or, when the check could
not be finished (the database did not answer), why: that is no finding
that the log was altered ("altered": false in -o json). --head SEQ:HASH, a head
recorded so, also requires that the chain still pass through it: event
SEQ, or the audit.prune event that accounts for it, has that hash; a head
pruned by a prune that ended after it cannot be checked in the log (check
it against the --export file, or give a head recorded since).
A pruned log is checked from its first kept event, must hold the
audit.prune event that accounts for the rest, and every prune is listed:
each should be one you ran.

` + storeSettingsHelp,
		Example: `  keyward audit verify --data-dir keyward-data
  keyward audit verify --db postgres://keyward@db/keyward -o json
  keyward audit verify --data-dir keyward-data \
    --head 1234:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var (
				headSeq  int64
				headHash []byte
			)
			if cmd.Flags().Changed("head") {
				var err error
				if headSeq, headHash, err = parseHead(head); err != nil {
					return usageError{err}
				}
			}
			if err := applyConfig(); err != nil {
				return err
			}
			st, err := openMaintenanceStore(cmd.Context(), cfg, commandLogger(cmd))
			if err != nil {
				return err
			}
			defer st.Close()
			c, verr := verifyAudit(cmd.Context(), st, headSeq, headHash)
			prunes := make([]admin.AuditEventView, 0, len(c.Prunes))
			for _, e := range c.Prunes {
				prunes = append(prunes, admin.AuditView(e))
			}
			res := map[string]any{"events": c.Events, "first_seq": c.FirstSeq, "head_seq": c.HeadSeq, "head_hash": hex.EncodeToString(c.Head),
				"prunes": prunes, "ok": verr == nil, "altered": verr != nil && !errors.Is(verr, storage.ErrUnchecked)}
			if verr != nil {
				res["error"] = verr.Error()
			}
			if output == "json" {
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else if verr == nil && c.Events == 0 {
				// No head to print, and nothing checked: a store whose
				// events were all deleted looks the same (--head tells).
				fmt.Fprintf(cmd.OutOrStdout(), "the audit log is empty (%s): 0 events, nothing to check; a log whose events were all deleted looks the same, which --head with a head recorded before detects\n", storeName(cfg))
			} else if verr == nil {
				pruned := ""
				if c.FirstSeq > 1 {
					pruned = fmt.Sprintf(" (from event %d; the ones before were pruned, as an %s event records)", c.FirstSeq, storage.ActionAuditPrune)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "the audit log is intact (%s): %s%s, head %d with hash %x\n", storeName(cfg), counted(c.Events, "event"), pruned, c.HeadSeq, c.Head)
				if cmd.Flags().Changed("head") {
					fmt.Fprintf(cmd.OutOrStdout(), "  and passes through the recorded head %d\n", headSeq)
				}
				// Whoever can write the database can also prune it and
				// record that it did: every prune listed here should be one
				// an operator ran. What such a writer chose is quoted if
				// unprintable, so that no escape sequence hides its line.
				for _, e := range c.Prunes {
					fmt.Fprintf(cmd.OutOrStdout(), "  pruned through event %s (%s) at %s by %s\n", cell(e.Data["through_seq"]), prunedCount(e.Data["count"]),
						e.Time.Format(time.RFC3339), cell(e.Actor))
				}
			}
			if verr != nil {
				return verifyFailure(c, verr)
			}
			return nil
		},
	}
	applyConfig = cfg.addServerSettings(cmd.Flags(), "directory of the SQLite database whose audit log to check")
	addOutputFlag(cmd.Flags(), &output)
	cmd.Flags().StringVar(&head, "head", "", "a head recorded before, `SEQ:HASH`, that the chain must still pass through: the sequence number and hash verify printed as the head (head_seq, head_hash in -o json)")
	return cmd
}

// verifyAudit checks the audit log of st (storage.VerifyLog) and, unless
// headSeq is 0, that it passes through the recorded head: event headSeq
// with hash headHash (checkHead). A prune may run meanwhile (audit prune
// does not stop a verify) and delete the head's event after the log was
// checked: the log is then checked again, and the head against the
// audit.prune event, up to three times.
func verifyAudit(ctx context.Context, st storage.AuditLister, headSeq int64, headHash []byte) (storage.LogCheck, error) {
	for attempt := 1; ; attempt++ {
		c, err := storage.VerifyLog(ctx, st)
		if err != nil || headSeq == 0 {
			return c, err
		}
		err = checkHead(ctx, st, c, headSeq, headHash)
		if !errors.Is(err, errHeadGone) {
			return c, err
		}
		if attempt == 3 {
			return c, storage.Unchecked(fmt.Errorf("%w, %d times: run the check again once no prune runs", err, attempt))
		}
	}
}

// errHeadGone is checkHead finding that the recorded head's event, in the
// log it was given, is no longer in the store: pruned since, or deleted,
// which checking the log again tells.
var errHeadGone = errors.New("the recorded head's event was deleted while the log was checked")

// verifyFailure is the error audit verify fails with when verifyAudit
// found c and err: the log NOT intact, or, when err wraps
// storage.ErrUnchecked (the database did not answer, say), a check that
// could not be finished, which says nothing of the events not read. An
// operator must tell the two apart: only the first is a sign of
// tampering.
func verifyFailure(c storage.LogCheck, err error) error {
	if errors.Is(err, storage.ErrUnchecked) {
		return fmt.Errorf("could not finish checking the audit log, which is no finding that it was altered (%s checked fit): %w", counted(c.Events, "event"), err)
	}
	return fmt.Errorf("the audit log is NOT intact after %s: %w", counted(c.Events, "good event"), err)
}

// parseHead parses the SEQ:HASH of audit verify --head (storage.ParseHead).
func parseHead(s string) (int64, []byte, error) {
	seq, hash, err := storage.ParseHead(s)
	if err != nil {
		return 0, nil, fmt.Errorf("--head %w (audit verify prints the head as head SEQ with hash HASH)", err)
	}
	return seq, hash, nil
}

// checkHead says whether the verified log c passes through event seq with
// hash: the event itself, or, when it was pruned, the audit.prune event
// that names it as the last it deleted. A head pruned without such an
// event cannot be checked (storage.ErrUnchecked); one whose event is gone
// from the store since c was checked is errHeadGone.
func checkHead(ctx context.Context, st storage.AuditLister, c storage.LogCheck, seq int64, hash []byte) error {
	if c.Events == 0 {
		return fmt.Errorf("the log is empty, and the recorded head is event %d: its events were deleted", seq)
	}
	if seq > c.HeadSeq {
		return fmt.Errorf("the log ends at event %d, before the recorded head %d: its newest events were deleted", c.HeadSeq, seq)
	}
	if seq < c.FirstSeq {
		for _, p := range c.Prunes {
			if p.Data["through_seq"] == strconv.FormatInt(seq, 10) {
				if p.Data["through_hash"] != hex.EncodeToString(hash) {
					return fmt.Errorf("the %s event %d records event %d with hash %s, not the recorded %x: the chain was rewritten", storage.ActionAuditPrune, p.Seq, seq, cell(p.Data["through_hash"]), hash)
				}
				return nil
			}
		}
		// Pruned by a prune that ended elsewhere (a routine one, --before
		// 90d): the log cannot tell whether the head was in the chain.
		return storage.Unchecked(fmt.Errorf("the recorded head, event %d, was pruned (the log starts at event %d) and no %s event names it as the last it deleted, so it cannot be checked here: check it against the file audit prune --export wrote, or give a head recorded since the prune",
			seq, c.FirstSeq, storage.ActionAuditPrune))
	}
	evs, err := st.ListAuditEvents(ctx, storage.AuditFilter{AfterSeq: seq - 1, Limit: 1})
	if err != nil {
		// A listing lists an unreadable event rather than failing
		// (storage.Storage.ListAuditEvents): an error is a read that failed.
		return storage.Unchecked(fmt.Errorf("reading the recorded head, event %d: %w", seq, err))
	}
	if len(evs) == 0 || evs[0].Seq != seq {
		return errHeadGone
	}
	if !bytes.Equal(evs[0].Hash, hash) {
		return fmt.Errorf("event %d has hash %x, not the recorded %x: the chain was rewritten from there or before", seq, evs[0].Hash, hash)
	}
	return nil
}

func newAuditPruneCommand() *cobra.Command {
	cfg := DefaultConfig()
	var applyConfig func() error
	var before, export string
	var yes bool
	cmd := &cobra.Command{
		Use:   "prune --before AGE|TIME [--export FILE] [--yes]",
		Short: "Delete the oldest audit events, directly in the database",
		Long: `The audit log grows by an event for every token issued or refused (about
500 bytes each on SQLite). Working straight on the database (--data-dir or
--db; the server may keep running), delete the events older than --before
(a duration ago such as 90d or 2160h, or an RFC 3339 time) — never the
newest one. Each transaction deletes at most 20,000 events, so token
requests wait for one short transaction at a time, and appends an
audit.prune event that names the last event it deleted and its hash:
'keyward audit verify' then checks the chain from the first kept event,
requires that record and lists every prune.

--export first writes the events the prune deletes (those older than
--before, never the newest) to FILE (which must not exist), one JSON
object a line as 'audit list -o json' shows them, and syncs it; exactly
the events it wrote are then pruned. FILE appears only once complete (it
is written to a temporary file next to it first): an export that fails
or is killed part way leaves no FILE and prunes nothing. The file ends
with the event the last audit.prune record names, and the next export
starts after it: the exports, one after the other, are the chain without
a repeat. It checks their chain as 'audit verify' does, and an event
altered since it was written fails the export and prunes nothing. Keep
the file if the events must outlive the database. Without --export no
copy is kept: the events are gone for good, and deleted unread (run
'audit verify' first, or an altered one goes unreported). Give --export
unless the events are kept elsewhere.

A cut-off less than 24 hours ago (--before 0, 1h) would delete nearly the
whole log, up to now: it is refused unless --yes confirms it.

` + storeSettingsHelp + `

--before, --export and --yes are taken from the command line alone.`,
		Example: `  keyward audit prune --data-dir keyward-data --before 90d \
    --export audit-until-90d.jsonl
  keyward audit prune --db postgres://keyward@db/keyward \
    --before 2026-01-01T00:00:00Z`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			if before == "" {
				return usageError{errors.New("--before is required: how old an event must be to go, e.g. 90d")}
			}
			cut, err := admin.ParseTime(before, now)
			if errors.Is(err, admin.ErrTooLongAgo) {
				return usageError{fmt.Errorf("--before %w", err)}
			} else if err != nil {
				return usageError{fmt.Errorf("--before %q is neither a duration (90d, 2160h) nor an RFC 3339 time", before)}
			}
			if cut.After(now) {
				return usageError{fmt.Errorf("--before %s is in the future", cut.Format(time.RFC3339Nano))}
			}
			if now.Sub(cut) < recentPrune && !yes {
				return usageError{fmt.Errorf("--before %s is less than 24 hours ago: it would delete the audit log up to %s, nearly all of it; give --yes to do that, or an older cut-off such as 90d",
					before, cut.Format(time.RFC3339Nano))}
			}
			if export != "" {
				if _, err := os.Lstat(export); err == nil {
					// Not a usage error: the command line may be right,
					// the file in the way (as writeNewFile would find it).
					return fmt.Errorf("--export %s already exists; name a new file", export)
				}
			}
			if err := applyConfig(); err != nil {
				return err
			}
			st, err := openMaintenanceStore(cmd.Context(), cfg, commandLogger(cmd))
			if err != nil {
				return err
			}
			defer st.Close()
			nothingToPrune := func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "no audit event older than %s to prune (%s)\n", cut.Format(time.RFC3339Nano), storeName(cfg))
				return err
			}
			// Never the newest event as the prune starts: each batch keeps
			// the newest it finds, but from the second on that is the
			// audit.prune record of the batch before. With one event or
			// none there is nothing to prune (a ThroughSeq of 0 would be
			// no bound, and an event appended meanwhile would let the
			// first go). The bound is read before the export, which stops
			// there too: the file holds exactly the events that go, and
			// the next prune's export begins after them, not with the
			// event this one keeps.
			head, err := st.ListAuditEvents(cmd.Context(), storage.AuditFilter{Newest: true, Limit: 1})
			if err != nil {
				return fmt.Errorf("read the newest audit event (nothing was pruned): %w", err)
			}
			var limits storage.PruneLimits
			bound, ok := pruneBound(head) // 0 when nothing may go: nothing to export
			if export != "" {
				n, last, err := exportAudit(cmd.Context(), st, cut, bound, export)
				err, tempLeft := writtenTempLeft(err)
				if errors.Is(err, errNothingToExport) {
					// No empty file: a nightly prune would pile them up.
					if err := nothingToPrune(); err != nil {
						return err
					}
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "--export %s not written: no event to export\n", export)
					return err
				} else if errors.Is(err, fs.ErrExist) {
					// Made since it was checked for, and left as it is.
					return sayInstead(fmt.Errorf("--export %s already exists; name a new file (nothing was pruned)", export), err)
				} else if err != nil {
					return fmt.Errorf("--export: %w (nothing was pruned)", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "exported %s older than %s to %s\n", counted(n, "event"), cut.Format(time.RFC3339Nano), export)
				warnTempLeft(cmd.ErrOrStderr(), export, tempLeft)
				bound = last // nothing that was not exported goes
			} else if !ok {
				return nothingToPrune()
			}
			limits.ThroughSeq = bound
			ev := storage.AuditEvent{Time: now, Outcome: storage.OutcomeSuccess, Actor: localOperator("keyward audit prune"),
				Data: map[string]string{"before": cut.UTC().Format(time.RFC3339Nano)}}
			// In batches, so that writers wait for one short transaction at
			// a time, not for the whole prune.
			limits.MaxEvents = pruneBatch
			var total int64
			for {
				ev.Time = time.Now()
				n, err := st.PruneAudit(cmd.Context(), cut, limits, ev)
				if err != nil {
					return fmt.Errorf("after pruning %s: %w", counted(total, "event"), err)
				}
				if n == 0 {
					break
				}
				total += n
			}
			if total == 0 {
				return nothingToPrune()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pruned %s older than %s (%s); %s events record it\n", counted(total, "audit event"), cut.Format(time.RFC3339Nano), storeName(cfg), storage.ActionAuditPrune)
			return nil
		},
	}
	applyConfig = cfg.addServerSettings(cmd.Flags(), "directory of the SQLite database whose audit log to prune")
	cmd.Flags().StringVar(&before, "before", "", "delete events older than this: a duration ago (90d, 2160h) or an RFC 3339 time (required)")
	cmd.Flags().StringVar(&export, "export", "", "first write the events the prune deletes to this new file, as JSON lines (no file when none goes); without it no copy is kept")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm a --before less than 24 hours ago, which deletes nearly the whole log")
	return cmd
}

// recentPrune is how recent a prune cut-off may be without --yes.
const recentPrune = 24 * time.Hour

// prunedCount is the count of events an audit.prune event records, as
// "1 event" or "N events"; a count that is not a number (the database was
// written by something else) is shown quoted, as it is.
func prunedCount(count string) string {
	if n, err := strconv.ParseInt(count, 10, 64); err == nil {
		return counted(n, "event")
	}
	return "count " + strconv.Quote(count)
}

// pruneBound is the last event a prune may delete, given the newest event
// as it starts (head, none for an empty log): never that newest event.
// ok is false, and bound 0, when no event may go.
func pruneBound(head []storage.AuditEvent) (bound int64, ok bool) {
	if len(head) == 0 || head[0].Seq <= 1 {
		return 0, false
	}
	return head[0].Seq - 1, true
}

// pruneBatch is how many events one prune transaction deletes at most.
var pruneBatch int64 = 20_000

// exportAudit writes the events older than cut, and numbered through at
// most, to a new file, one JSON object a line, and syncs it: every event
// from the oldest up to the first at or after cut or after through, the
// last event the prune may delete (none when through is 0). It returns
// how many it wrote and the last one's seq, the bound of what may then be
// pruned. With no such event it writes no file and returns
// errNothingToExport. A file written whose temporary file is left
// (writtenTempLeft) is no failure: n and last are returned with that
// error.
//
// It checks the chain of what it writes as 'audit verify' does (the first
// event's link to a pruned one aside), and fails at the first event that
// does not fit: pruning it would leave an export with the altered event
// as the only copy, and a log that verifies.
func exportAudit(ctx context.Context, st storage.Storage, cut time.Time, through int64, path string) (n int, last int64, err error) {
	err = writeNewFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		var prev []byte
		for {
			page, err := st.ListAuditEvents(ctx, storage.AuditFilter{AfterSeq: last, Limit: 1000})
			if err == nil && len(page) == 0 && n == 0 {
				return errNothingToExport // the file is not made
			}
			if err != nil || len(page) == 0 {
				return err
			}
			for _, e := range page {
				if !e.Time.Before(cut) || e.Seq > through {
					if n == 0 {
						return errNothingToExport
					}
					return nil
				}
				if n == 0 {
					last, prev = e.Seq-1, e.PrevHash
				}
				if _, prev, err = storage.VerifyChain(last, prev, []storage.AuditEvent{e}); err != nil {
					return fmt.Errorf("%w; see keyward audit verify", err)
				}
				if err := enc.Encode(admin.AuditView(e)); err != nil {
					return err
				}
				n, last = n+1, e.Seq
			}
		}
	})
	if failure, _ := writtenTempLeft(err); failure != nil {
		return 0, 0, err
	}
	return n, last, err // written, even with its temporary file left
}

// errNothingToExport is exportAudit's error when no event is to be
// exported, and no file was written.
var errNothingToExport = errors.New("no audit event to export")
