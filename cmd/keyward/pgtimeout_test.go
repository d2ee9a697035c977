package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testkeyward"
)

// A token request whose read or write of the PostgreSQL store runs out of
// its statement_timeout (another transaction holds the table it needs),
// or whose connection the database ends in the middle of it (an
// operator's pg_terminate_backend, or the server shutting down:
// admin_shutdown, 57P01), is answered 503 temporarily_unavailable with
// Retry-After, and no token: never a server_error, nor a wait beyond the
// timeout. Once the table is free, the next request gets its token on a
// new connection.
func TestTokenRequestStatementTimeoutAndConnectionEnded(t *testing.T) {
	setup := onOneStore(t)
	a := startServer(t, setup)
	acct, secret := testkeyward.OrdersJob(t, a.Server.Admin, changeActor)
	// Server b's connections have an application_name of their own, so
	// that the test ends b's session, and no other (a's, for one).
	bApp := "keyward-pgtimeout-b-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var bLog testkeyward.SyncBuffer // server b's log, whose refusals name their cause
	b := startServer(t, setup, func(m *Main) {
		m.Logger = slog.New(slog.NewJSONHandler(&bLog, nil))
		// A timeout of this server's every statement, not of the test's:
		// long enough for its start on a loaded machine.
		u, err := url.Parse(m.Config.DB)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("statement_timeout", "2000")
		q.Set("application_name", bApp)
		u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
		m.Config.DB = u.String()
		m.Config.CacheTTL = 0 // every request reads the store
	})
	db, err := sql.Open("pgx", a.Config.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	token := func(t *testing.T) (int, http.Header, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}}
		req, _ := http.NewRequest("POST", b.URL()+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(acct.ID, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, resp.Header, body
	}
	if s, _, body := token(t); s != 200 {
		t.Fatalf("token before: %d %v", s, body)
	}
	for _, tc := range []struct {
		name  string
		table string // locked by another transaction for the request
		end   bool   // the request's connection, waiting on the lock, is ended
		// cause is the SQLSTATE of the error the request was refused
		// for, as b logs it: the path the case names, not another that
		// answers 503 too (a statement timeout where the connection was
		// to be ended first, the ended session the refusal's own write).
		cause string
	}{
		{"account read times out", "accounts", false, "57014"},
		{"audit write times out", "audit_events", false, "57014"},
		{"connection ended while reading", "accounts", true, "57P01"},
		{"connection ended while writing", "audit_events", true, "57P01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			locker, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer locker.Rollback()
			var pid int
			if err := locker.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatal(err)
			}
			if _, err := locker.ExecContext(ctx, "LOCK TABLE "+tc.table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatal(err)
			}
			ended := make(chan string, 1) // the application_name of the session ended
			if tc.end {
				// End server b's session that waits on the locker, and no
				// other: the pid and application_name of the one ended
				// are read from the same row as pg_terminate_backend's.
				// The poll stops with the subtest, should it fail first.
				pollCtx, cancel := context.WithCancel(ctx)
				t.Cleanup(cancel)
				go func() {
					for start := time.Now(); time.Since(start) < 10*time.Second && pollCtx.Err() == nil; time.Sleep(5 * time.Millisecond) {
						var app string
						var ok bool
						err := db.QueryRowContext(pollCtx, "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) AND application_name = $2 LIMIT 1", pid, bApp).Scan(&app, &ok)
						if err == nil && ok {
							ended <- app
							return
						}
					}
					ended <- ""
				}()
			}
			logStart := len(bLog.String())
			start := time.Now()
			s, h, body := token(t)
			took := time.Since(start)
			if tc.end {
				if app := <-ended; app != bApp {
					t.Fatalf("session ended: application_name %q, want server b's %q waiting on the locked table", app, bApp)
				}
			}
			if s != 503 || body["error"] != "temporarily_unavailable" || body["access_token"] != nil || h.Get("Retry-After") == "" {
				t.Errorf("token: %d %v (Retry-After %q), want 503 temporarily_unavailable with Retry-After", s, body, h.Get("Retry-After"))
			}
			if took > 15*time.Second {
				t.Errorf("token answered after %v, want within the 2 s statement_timeout and some", took)
			}
			if got := refusalCause(t, bLog.String()[logStart:]); !strings.Contains(got, "(SQLSTATE "+tc.cause+")") {
				t.Errorf("the request was refused for %q, want SQLSTATE %s", got, tc.cause)
			}
			locker.Rollback()
			if s, _, body := token(t); s != 200 {
				t.Errorf("token once the table is free: %d %v", s, body)
			}
		})
	}
}

// refusalCause returns what the one token refusal in log, a JSON log,
// was refused for: its cause, or, when its audit event could not be
// written either, the refusal that event was to record.
func refusalCause(t *testing.T, log string) string {
	t.Helper()
	var causes []string
	for line := range strings.Lines(log) {
		var rec struct{ Msg, Cause, Refusal string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if !strings.HasPrefix(rec.Msg, "token request refused") {
			continue
		}
		if rec.Refusal != "" {
			causes = append(causes, rec.Refusal)
		} else {
			causes = append(causes, rec.Cause)
		}
	}
	if len(causes) != 1 {
		t.Fatalf("%d token refusals logged, want 1: %q", len(causes), causes)
	}
	return causes[0]
}
