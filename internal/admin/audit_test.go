package admin_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
)

// TestAuditLongPoll: a follower's long poll is answered even when it waits
// longer than the server's WriteTimeout, and at once when the server shuts
// down.
func TestAuditLongPoll(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewUnstartedServer(f.srv)
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	poll := func(wait string) (time.Duration, error) {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/audit?after=1000000&wait="+wait, nil)
		req.Header.Set("Authorization", auth)
		start := time.Now()
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var page struct {
			Events []any `json:"events"`
		}
		b, err := io.ReadAll(resp.Body)
		if err == nil && (resp.StatusCode != 200 || json.Unmarshal(b, &page) != nil || len(page.Events) != 0) {
			t.Errorf("wait=%s: %s %s, want 200 and no events", wait, resp.Status, b)
		}
		return time.Since(start), err
	}

	t.Run("longer than the write timeout", func(t *testing.T) {
		took, err := poll("1s")
		if err != nil {
			t.Fatalf("a 1s wait on a server with a 300ms write timeout: %v", err)
		}
		if took < time.Second {
			t.Fatalf("answered after %s, before the wait was over", took)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		type result struct {
			took time.Duration
			err  error
		}
		done := make(chan result, 1)
		go func() {
			took, err := poll("50s")
			done <- result{took, err}
		}()
		time.Sleep(300 * time.Millisecond) // let it start waiting
		f.srv.StopLongPolls()
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a long poll in progress did not end when the server began to shut down")
		}
		// Later polls do not wait either.
		if took, err := poll("50s"); err != nil || took > 5*time.Second {
			t.Fatalf("a poll after shutdown began: %v after %s", err, took)
		}
	})
}

// newestSeq returns the sequence number of the newest event in f's audit
// log (the bootstrap's, in a new fixture): the events a test writes
// follow it.
func newestSeq(t *testing.T, f *fixture) int64 {
	t.Helper()
	head, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Newest: true, Limit: 1})
	if err != nil || len(head) != 1 {
		t.Fatalf("the bootstrap's events: %v %v", head, err)
	}
	return head[0].Seq
}

// listSeqs GETs /v1/audit?query and returns the sequence numbers of the
// events listed, less n, and the page; an answer other than 200 fails
// the test.
func listSeqs(t *testing.T, f *fixture, auth, query string, n int64) ([]int64, map[string]any) {
	t.Helper()
	code, out, _ := f.call(t, "GET", "/v1/audit?"+query, auth, nil)
	if code != 200 {
		t.Fatalf("status %d: %v", code, out)
	}
	var seqs []int64
	for _, e := range out["events"].([]any) {
		seqs = append(seqs, int64(e.(map[string]any)["seq"].(float64))-n)
	}
	return seqs, out
}

// TestAuditLongPollCannotMatch: a long poll that no event written from
// now on can match (an until already past, the zero time among them, or
// an empty range, one inside a microsecond among them) is answered at
// once; it waited the whole wait for nothing. Every long poll's place is
// taken, so that one that waits is refused 503 instead. On SQLite and,
// when KEYWARD_TEST_POSTGRES_DSN is set, on PostgreSQL.
func TestAuditLongPollCannotMatch(t *testing.T) {
	onBackends(t, testAuditLongPollCannotMatch)
}

func testAuditLongPollCannotMatch(t *testing.T, f *fixture) {
	n := newestSeq(t, f)
	seq := func(k int64) string { return strconv.FormatInt(n+k, 10) }
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	admin.TakeAuditWaiters(t)
	tests := []struct {
		query string
		waits bool // refused 503, as a poll that waits is when no place is left
	}{
		{"until=0001-01-01T00:00:00Z", false},
		{"until=2020-01-01T00:00:00Z", false},
		{"until=1h", false},
		{"until=2m", false},
		{"since=2999-01-01T00:00:00Z&until=2999-01-01T00:00:00Z", false},
		// Times are stored to the microsecond: none is inside one.
		{"since=2999-01-01T00:00:00.0000001Z&until=2999-01-01T00:00:00.0000009Z", false},
		{"since=2999-01-01T00:00:00.0000001Z&until=2999-01-01T00:00:00.000001Z", false},
		{"since=2999-01-01T00:00:00.0000001Z&until=2999-01-01T00:00:00.000001001Z", true},
		{"since=2999-01-01T00:00:00.000001Z&until=2999-01-01T00:00:00.000001001Z", true},
		{"before=" + seq(1), false},
		{"after=" + seq(5) + "&before=" + seq(3), false},
		{"after=9223372036854775807", false},
		{"", true},
		{"until=2999-01-01T00:00:00Z", true},
		// An event before until may still be written: it has the time
		// its request began, or another replica's clock is behind.
		{"until=0s", true},
		{"until=30s", true},
		{"since=1h&until=2999-01-01T00:00:00Z", true},
		{"before=" + seq(2), true},
		// Every event before before is there, none of them a match.
		{"after=0&action=org.delete&before=" + seq(0), false},
		{"after=0&action=org.delete&before=" + seq(1), false},
		{"after=0&action=org.delete&before=" + seq(2), true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q := "/v1/audit?wait=50s&" + tt.query
			if !strings.Contains(tt.query, "after=") {
				q += "&after=" + seq(0)
			}
			code, out, _ := f.call(t, "GET", q, auth, nil)
			if tt.waits {
				if code != 503 {
					t.Fatalf("got %d %v, want 503: the poll would wait", code, out)
				}
				return
			}
			if code != 200 || len(out["events"].([]any)) != 0 {
				t.Fatalf("got %d %v, want 200 and no events at once", code, out)
			}
		})
	}
}

// slowAuditStore answers the long poll's reads of the audit log, after its
// first, only once they are canceled: a store slow to answer.
type slowAuditStore struct {
	storage.Storage
	reads   atomic.Int32
	reading chan struct{} // closed when a slow read began
	ended   chan error    // what ended it
}

func (s *slowAuditStore) ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	if s.reads.Add(1) == 1 {
		return s.Storage.ListAuditEvents(ctx, f)
	}
	close(s.reading)
	<-ctx.Done()
	s.ended <- ctx.Err()
	return nil, ctx.Err()
}

// TestAuditLongPollShutdownEndsRead: a shutdown ends a long poll's read of
// the store in progress, not only its wait between reads, and the poll
// answers an empty page. The read was bounded by the poll's wait only, so
// a graceful shutdown sat out the rest of it on a store slow to answer.
func TestAuditLongPollShutdownEndsRead(t *testing.T) {
	st := &slowAuditStore{Storage: openSQLite(t), reading: make(chan struct{}), ended: make(chan error, 1)}
	f := newFixtureOn(t, st)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	type answer struct {
		code int
		out  map[string]any
	}
	answered := make(chan answer, 1)
	go func() {
		code, out, _ := f.call(t, "GET", "/v1/audit?after=1000000&wait=30s", auth, nil)
		answered <- answer{code, out}
	}()
	<-st.reading
	f.srv.StopLongPolls()
	if err := <-st.ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("the read in progress ended with %v, want context.Canceled by the shutdown (not the wait's deadline)", err)
	}
	if a := <-answered; a.code != 200 || len(a.out["events"].([]any)) != 0 {
		t.Errorf("the poll answered %d %v, want 200 and no events", a.code, a.out)
	}
}

// TestAuditOrder: GET /v1/audit lists oldest first, or newest first with
// order=desc, each page's next_page_token continuing in its direction.
func TestAuditOrder(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n := newestSeq(t, f)
	// Six events after n: n+1, n+3, n+5 are org.policy; n+2, n+4, n+6 org.delete.
	var evs []storage.AuditEvent
	for i := range 6 {
		evs = append(evs, storage.AuditEvent{Time: time.Now(), Action: []string{"org.policy", "org.delete"}[i%2], Outcome: storage.OutcomeSuccess, Actor: "test"})
	}
	if _, err := f.store.Commit(ctx, []storage.Write{{Events: evs}}); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	seq := func(k int64) string { return strconv.FormatInt(n+k, 10) }
	tests := []struct {
		query    string
		want     []int64 // seqs less n
		wantNext int64   // less n; -1: no next_page_token
	}{
		{"limit=2&after=" + seq(0), []int64{1, 2}, 2},
		{"order=asc&action=org.policy&after=" + seq(0), []int64{1, 3, 5}, 5},
		{"after=" + seq(0) + "&before=" + seq(3), []int64{1, 2}, 2},
		{"order=desc&limit=2", []int64{6, 5}, 5},
		{"order=desc&limit=2&before=" + seq(5), []int64{4, 3}, 3},
		{"order=desc&limit=2&after=" + seq(0) + "&before=" + seq(3), []int64{2, 1}, -1},
		{"order=desc&action=org.delete&limit=3", []int64{6, 4, 2}, -1},
		{"order=desc&action=org.policy&limit=2", []int64{5, 3}, 3},
		{"order=desc&after=" + seq(0) + "&before=" + seq(1), nil, -1},
		// page_token is next_page_token handed back, in either direction.
		{"limit=2&page_token=" + seq(2), []int64{3, 4}, 4},
		{"order=desc&limit=2&page_token=" + seq(5), []int64{4, 3}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, out := listSeqs(t, f, auth, tt.query, n)
			if !slices.Equal(got, tt.want) {
				t.Errorf("seqs less %d = %v, want %v", n, got, tt.want)
			}
			next, ok := out["next_page_token"]
			if want := strconv.FormatInt(n+tt.wantNext, 10); tt.wantNext >= 0 && next != want {
				t.Errorf("next_page_token = %v, want %s", next, want)
			} else if tt.wantNext < 0 && ok {
				t.Errorf("next_page_token = %v on the oldest page, want none", next)
			}
		})
	}

	refusals := []struct{ query, want string }{
		{"order=newest", "order must be asc (oldest first, the default) or desc (newest first)."},
		{"order=DESC", "order must be asc (oldest first, the default) or desc (newest first)."},
		{"before=0", "before must be a sequence number from 1."},
		{"before=-3", "before must be a sequence number from 1."},
		{"before=x", "before must be a sequence number from 1."},
		{"order=desc&wait=1s", "wait (long polling for new events) needs order=asc: newest first, new events would go on a page already read."},
		{"order=desc&wait=0s", "wait (long polling for new events) needs order=asc: newest first, new events would go on a page already read."},
		{"page_token=3&after=2", "page_token continues a listing: send it or after, not both."},
		{"order=desc&page_token=3&before=2", "page_token continues a listing: send it or before, not both."},
		{"page_token=x", "page_token must be the next_page_token of the previous page (a sequence number)."},
		{"page_token=-1", "page_token must be the next_page_token of the previous page (a sequence number)."},
		{"order=desc&page_token=0", "page_token must be the next_page_token of the previous page (a sequence number)."},
		{"since=1h&until=2h", "since must not be after until: events at or after since and before until are listed."},
		{"since=2020-01-01T00:00:00.000000001Z&until=2020-01-01T00:00:00Z", "since must not be after until: events at or after since and before until are listed."},
		{"since=2020-01-01T00:00:00Z&until=0001-01-01T00:00:00Z&wait=50s", "since must not be after until: events at or after since and before until are listed."},
	}
	for _, tt := range refusals {
		t.Run(tt.query, func(t *testing.T) {
			code, out, _ := f.call(t, "GET", "/v1/audit?"+tt.query, auth, nil)
			if code != 400 || out["error"] != "invalid_request" || out["error_description"] != tt.want {
				t.Fatalf("got %d %v, want 400 invalid_request %q", code, out, tt.want)
			}
		})
	}
}

// TestAuditTimeBounds: GET /v1/audit's since (inclusive) and until
// (exclusive) bound the events' times to the nanosecond, and an until at
// the zero time, however written, selects nothing: it was taken for no
// bound, and listed every event.
func TestAuditTimeBounds(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n := newestSeq(t, f)
	at := time.Date(2020, 1, 1, 0, 0, 0, 1000, time.UTC) // n+1; n+2 a microsecond later
	evs := []storage.AuditEvent{
		{Time: at, Action: "test.a", Outcome: storage.OutcomeSuccess, Actor: "test"},
		{Time: at.Add(time.Microsecond), Action: "test.b", Outcome: storage.OutcomeSuccess, Actor: "test"},
	}
	if _, err := f.store.Commit(ctx, []storage.Write{{Events: evs}}); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	after := "after=" + strconv.FormatInt(n, 10) + "&"
	tests := []struct {
		query string
		want  []int64 // seqs less n
	}{
		{"until=0001-01-01T00:00:00Z", nil},
		{"until=0001-01-01T01:00:00%2B01:00", nil},
		{"order=desc&until=0001-01-01T00:00:00Z", nil},
		{"until=1970-01-01T00:00:00Z", nil},
		{after + "since=0001-01-01T00:00:00Z", []int64{1, 2}},
		{after + "since=2020-01-01T00:00:00.000001Z", []int64{1, 2}},
		{after + "since=2020-01-01T00:00:00.000001001Z", []int64{2}},
		{after + "until=2020-01-01T00:00:00.000001Z", nil},
		{after + "until=2020-01-01T00:00:00.000001001Z", []int64{1}},
		{after + "since=2020-01-01T00:00:00.000000999Z&until=2020-01-01T00:00:00.000001001Z", []int64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, _ := listSeqs(t, f, auth, tt.query, n)
			if !slices.Equal(got, tt.want) {
				t.Errorf("seqs less %d = %v, want %v", n, got, tt.want)
			}
		})
	}
}

// TestParseTime: since, until and prune's --before take an RFC 3339 time or
// a duration ago; a negative duration, which would be a time to come, is
// refused.
func TestParseTime(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "1h", want: now.Add(-time.Hour)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "0s", want: now},
		{in: "90d", want: now.AddDate(0, 0, -90)},
		{in: "2026-01-02T03:04:05Z", want: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{in: "2030-01-01T00:00:00Z", want: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, // a time to come, given as one
		{in: "-1h", wantErr: true},
		{in: "-90d", wantErr: true},
		{in: "3652426d", wantErr: true}, // beyond 10,000 years: overflows the stores' timestamps
		{in: "-0.5s", wantErr: true},
		{in: "yesterday", wantErr: true},
		{in: "", wantErr: true},
	} {
		got, err := admin.ParseTime(tc.in, now)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseTime(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestAuditOfDeletedAccount: the events of an account deleted since stay
// in the log, and its client ID still filters them (what an investigation
// of a deleted account needs); its email, which no account has any more,
// is a 404 that points to the client ID.
func TestAuditOfDeletedAccount(t *testing.T) {
	f := newFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	gone, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "gone", Project: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Admin.DeleteAccount(ctx, op, gone.Email); err != nil {
		t.Fatal(err)
	}
	status, body, _ := f.call(t, "GET", "/v1/audit?account="+gone.ID, auth, nil)
	if status != http.StatusOK {
		t.Fatalf("by client ID: %d %v, want 200", status, body)
	}
	var actions []string
	for _, e := range body["events"].([]any) {
		ev := e.(map[string]any)
		if ev["account_id"] != gone.ID {
			t.Fatalf("by client ID: an event of %v", ev["account_id"])
		}
		actions = append(actions, ev["action"].(string))
	}
	if want := []string{"account.create", "account.delete"}; !slices.Equal(actions, want) {
		t.Fatalf("by client ID: actions %q, want %q", actions, want)
	}
	status, body, _ = f.call(t, "GET", "/v1/audit?account="+gone.Email, auth, nil)
	if desc, _ := body["error_description"].(string); status != http.StatusNotFound || !strings.Contains(desc, "client ID") {
		t.Fatalf("by email: %d %v, want 404 pointing to the client ID", status, body)
	}
}

// TestAuditListUnreadableData: an event whose stored data is not a JSON
// object, or whose stored time is not an integer (a changed database), is
// listed with the others, oldest or newest first, marked unreadable with
// what is stored shown, and is logged: it failed the whole page, so one
// altered row made the log unreadable through the admin API. It is logged
// once, not again by each listing.
func TestAuditListUnreadableData(t *testing.T) {
	tests := []struct {
		name, set, log string
		want           map[string]any // the members of the event's view
		gone           string         // the member left out
	}{
		{"data", `data = '{"x":'`, "audit event data is not a JSON object",
			map[string]any{"data_unreadable": true, "data_raw": `{"x":`}, "data"},
		{"time", `time = 'yesterday'`, "audit event time is not an integer",
			map[string]any{"time_unreadable": true, "time_raw": "yesterday"}, "time"},
		{"time a real number", `time = 1.5`, "audit event time is not an integer",
			map[string]any{"time_unreadable": true, "time_raw": "1.5"}, "time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "k.db")
			st, err := sqlite.Open(ctx, path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			f := newFixtureOn(t, st)
			if _, err := f.srv.Admin.CreateAccount(ctx, admin.Actor{ID: "op"}, admin.AccountInput{Name: "job", Project: "shop"}); err != nil {
				t.Fatal(err)
			}
			evs, err := st.ListAuditEvents(ctx, storage.AuditFilter{})
			if err != nil || len(evs) < 2 {
				t.Fatalf("events %v, %v", evs, err)
			}
			bad := evs[len(evs)-2].Seq
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range []string{`DROP TRIGGER audit_events_no_update`, fmt.Sprintf(`UPDATE audit_events SET %s WHERE seq = %d`, tt.set, bad)} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
			for _, query := range []string{"", "?order=desc"} {
				code, body, _ := f.call(t, "GET", "/v1/audit"+query, auth, nil)
				list, _ := body["events"].([]any)
				if code != 200 || len(list) != len(evs) {
					t.Fatalf("GET /v1/audit%s: %d %v, want all %d events", query, code, body, len(evs))
				}
				for _, item := range list {
					e := item.(map[string]any)
					if e["seq"] == float64(bad) {
						_, has := e[tt.gone]
						for k, v := range tt.want {
							if e[k] != v || has {
								t.Errorf("GET /v1/audit%s: the event with unreadable %s shows %v", query, tt.name, e)
								break
							}
						}
						continue
					}
					for k := range tt.want {
						if _, marked := e[k]; marked {
							t.Errorf("GET /v1/audit%s: event %v marked unreadable", query, e)
						}
					}
					if _, has := e["time"]; !has {
						t.Errorf("GET /v1/audit%s: event %v has no time", query, e)
					}
				}
			}
			// Listed twice, logged once: every page or console refresh
			// logged it again.
			if logs := f.logs.String(); strings.Count(logs, tt.log) != 1 || !strings.Contains(logs, fmt.Sprintf("seq=%d", bad)) {
				t.Errorf("the unreadable %s was not logged once: %s", tt.name, logs)
			}
		})
	}
}

// TestAuditReadBounds: a page of the audit log says the server's time as
// it answered (now) and since and until as it read them, a duration ago
// by its clock, so that a client sends the next pages exactly the bounds
// of the first and tells by the server's clock when until is past. A
// bound RFC 3339 cannot write is left out, not a failed answer.
func TestAuditReadBounds(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 123456789, time.UTC)
	f := serveFixture(t, openSQLite(t), func(d *server.Deps) { d.Now = func() time.Time { return now } })
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	tests := []struct {
		query        string
		since, until string // "" for none
	}{
		{"", "", ""},
		{"since=1h", at(-time.Hour), ""},
		{"since=1h&until=0s", at(-time.Hour), at(0)},
		{"order=desc&since=90m&until=1s", at(-90 * time.Minute), at(-time.Second)},
		{"since=2d", now.AddDate(0, 0, -2).Format(time.RFC3339Nano), ""},
		{"until=2999-01-01T00:00:00%2B01:00", "", "2998-12-31T23:00:00Z"},
		{"since=3652425d", "", ""},
		{"since=0000-01-01T00:00:00%2B01:00", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			code, out, _ := f.call(t, "GET", "/v1/audit?"+tt.query, auth, nil)
			if code != 200 {
				t.Fatalf("status %d: %v", code, out)
			}
			if got := out["now"]; got != at(0) {
				t.Errorf("now = %v, want %s", got, at(0))
			}
			for name, want := range map[string]string{"since": tt.since, "until": tt.until} {
				got, ok := out[name]
				if want == "" && ok || want != "" && got != want {
					t.Errorf("%s = %v (there: %v), want %q", name, got, ok, want)
				}
			}
		})
	}
}

// TestAuditNowIsReadTime: a page's now is the time the server read its
// durations ago by, and began to read the log at, not a later reading of
// its clock: a follower that stops by now once until is a minute past
// must have had every event written before it (one written after the
// last read of a long poll but before the answer was left out), and a
// poll canCome answered at once must say an until past by it. The
// server's clock moves on a microsecond at each reading here.
func TestAuditNowIsReadTime(t *testing.T) {
	base := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	var ticks atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Microsecond) }
	f := serveFixture(t, openSQLite(t), func(d *server.Deps) { d.Now = clock })
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for _, query := range []string{"since=1h&until=0s", "order=desc&since=1h&until=0s", "since=1h&until=0s&action=org.delete&wait=1s"} {
		t.Run(query, func(t *testing.T) {
			code, out, _ := f.call(t, "GET", "/v1/audit?"+query, auth, nil)
			if code != 200 {
				t.Fatalf("status %d: %v", code, out)
			}
			at := map[string]time.Time{}
			for _, name := range []string{"now", "since", "until"} {
				s, _ := out[name].(string)
				v, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					t.Fatalf("%s = %v: %v", name, out[name], err)
				}
				at[name] = v
			}
			if d := at["now"].Sub(at["since"]); d != time.Hour {
				t.Errorf("now %s is %s after since %s (1h ago), want 1h: not the time since was read by", at["now"], d, at["since"])
			}
			if d := at["now"].Sub(at["until"]); d != 0 {
				t.Errorf("now %s is %s after until %s, not the time until was read by", at["now"], d, at["until"])
			}
		})
	}
}
