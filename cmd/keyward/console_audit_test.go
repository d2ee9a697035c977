package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleAuditDetailsQuoted: the audit log's details show what
// callers sent as keyward audit list does (details), values with a space
// or anything unprintable quoted. A refused token request's client_id,
// anyone's to choose, with spaces and a bidirectional override, shown
// raw would pass for more key=value pairs of the event.
func TestConsoleAuditDetailsQuoted(t *testing.T) {
	p, m, _ := consoleTest(t)
	const spoof = "nobody error=none outcome=success\u202e\"x\\\t\n\x01"
	ev := refuseToken(t, m, spoof)
	if ev.Data["client_id"] != spoof {
		t.Fatalf("the refusal's audit event: %+v, want one with the client_id sent", ev)
	}
	want := details(ev.Data)
	p.waitAuditCell(m, "td:last-child", want, "details show")
}

// TestConsoleAuditUnreadableData: an event whose stored data is not a JSON
// object (a changed database) shows in the audit log as keyward audit list
// shows it, "data unreadable:" and the stored text quoted; the admin API
// failed the whole page, so the console showed no events.
func TestConsoleAuditUnreadableData(t *testing.T) {
	p, m, _ := consoleTest(t)
	ev := refuseToken(t, m, "nobody")
	const raw = `{"client_id":`
	tamper(t, m.Config.DataDir, "DROP TRIGGER audit_events_no_update", fmt.Sprintf(`UPDATE audit_events SET data = '%s' WHERE seq = %d`, raw, ev.Seq))
	want := auditCells(admin.AuditEventView{DataUnreadable: true, DataRaw: raw})[7]
	p.waitAuditCell(m, "td:last-child", want, "details show")
}

// TestConsoleAuditUnreadableTime: an event whose stored time is not an
// integer (a changed SQLite database) shows in the audit log as keyward
// audit list shows it, "time unreadable:" and the stored value quoted;
// the admin API failed the whole page, so the console showed no events.
func TestConsoleAuditUnreadableTime(t *testing.T) {
	p, m, _ := consoleTest(t)
	ev := refuseToken(t, m, "nobody")
	tamper(t, m.Config.DataDir, "DROP TRIGGER audit_events_no_update", fmt.Sprintf(`UPDATE audit_events SET time = 'yesterday' WHERE seq = %d`, ev.Seq))
	want := auditCells(admin.AuditEventView{TimeUnreadable: true, TimeRaw: "yesterday"})[1]
	p.waitAuditCell(m, "td:nth-child(2)", want, "time shows")
}

// refuseToken sends m a token request of clientID, an unknown client,
// and returns the token.refused event it wrote.
func refuseToken(t *testing.T, m *Main, clientID string) storage.AuditEvent {
	t.Helper()
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}
	if status, _ := l.post("/token", clientID, "wrong", url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized {
		t.Fatalf("a token request of an unknown client got %d, want 401", status)
	}
	evs, err := m.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("the refusal's audit event: %+v (%v)", evs, err)
	}
	return evs[0]
}

// waitAuditCell signs in to the console, opens the audit log's
// token.refused events and waits for the first row's cell (a selector
// within the row, as "td:last-child") to read want; what names the cell
// in the failure ("details show").
func (p *consolePage) waitAuditCell(m *Main, cell, want, what string) {
	p.t.Helper()
	p.signIn(m)
	eval[string](p, `location.hash = "#/audit?action=token.refused"`)
	text := fmt.Sprintf(`(document.querySelector("#view #audit-filter ~ div tbody tr %s")?.textContent ?? "")`, cell)
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`%s === %q`, text, want))); err != nil {
		p.t.Fatalf("the event's %s %q, want %q as keyward audit list shows it (%v)\nalert: %q", what, eval[string](p, text), want, err, p.alert())
	}
	p.checkLogs()
}

// TestConsoleAuditOlderPagesPinned: the audit log's older pages of a
// listing filtered by a duration ago (since=1h) are sent exactly the time
// the server read it as for the newest page, which its answer says: not
// the duration again (the server read it anew at each page, the bound
// moved on, and an older page shown later left out events the listing
// had: "No older events"), nor a time by the answer's Date, which is the
// real clock's, to the second, and not the clock the server reads since
// by (the older page had events the listing did not). The server's clock
// is 10 minutes ahead of the real one once signed in, and moves on 15
// minutes between the pages.
func TestConsoleAuditOlderPagesPinned(t *testing.T) {
	chromium(t)            // without Chromium, skip before starting a server
	var ahead atomic.Int64 // the server's clock, ahead of the real one
	m := startServer(t, func(m *Main) { m.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) } })
	ctx, consoleLog := browserSession(t)
	p := &consolePage{t: t, ctx: ctx, logs: consoleLog}
	now := time.Now()
	var evs []storage.AuditEvent
	for i := range 65 {
		at := now.Add(-30 * time.Minute) // the newest page's
		switch {
		case i < 5:
			// Within the hour by the real clock, not by the server's.
			at = now.Add(-55 * time.Minute)
		case i < 15:
			at = now.Add(-45 * time.Minute) // the older page's
		}
		evs = append(evs, storage.AuditEvent{Time: at, Action: "org.policy", Outcome: storage.OutcomeSuccess, Actor: "test"})
	}
	if _, err := m.store.Commit(context.Background(), []storage.Write{{Events: evs}}); err != nil {
		t.Fatal(err)
	}
	rows := `document.querySelectorAll("#view #audit-filter ~ div tbody tr").length`
	waitRows := func(what string, n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`%s === %d`, rows, n))); err != nil {
			t.Fatalf("%s: %d rows, want %d (%v)\nview: %q\nalert: %q", what, eval[int](p, rows), n, err,
				eval[string](p, `document.getElementById("view").textContent.slice(0, 300)`), p.alert())
		}
	}
	p.signIn(m)
	ahead.Store(int64(10 * time.Minute))
	eval[string](p, `location.hash = "#/audit?action=org.policy&since=1h"`)
	waitRows("the newest page", 50)
	ahead.Store(int64(25 * time.Minute))
	eval[bool](p, `[...document.querySelectorAll("#view .pager button")].find((b) => b.textContent === "Older").click(), true`)
	waitRows("the older page, 15 minutes on", 10)
	p.checkLogs()
}

// TestConsoleAuditCellsQuoted: an event's action, account, actor and
// source show in the audit log as keyward audit list shows them (cell),
// quoted when unprintable: values a changed database holds, with a
// bidirectional override that turned the rest of the row around and a
// line break, were shown raw while the CLI showed them quoted.
func TestConsoleAuditCellsQuoted(t *testing.T) {
	p, m, _ := consoleTest(t)
	ev := refuseToken(t, m, "nobody")
	const odd = "203.0.113.7\u202e\nx"
	tamper(t, m.Config.DataDir, "DROP TRIGGER audit_events_no_update",
		fmt.Sprintf(`UPDATE audit_events SET account_id = '%[1]s', actor = '%[1]s', source = '%[1]s' WHERE seq = %[2]d`, odd, ev.Seq))
	cells := auditCells(admin.AuditEventView{AccountID: odd, Actor: odd, Source: odd})
	for i, what := range map[int]string{4: "account", 5: "actor", 6: "source"} {
		if cells[i] == odd {
			t.Fatalf("keyward audit list shows the %s raw: %q", what, cells[i])
		}
		p.waitAuditCell(m, fmt.Sprintf("td:nth-child(%d)", i+1), cells[i], what+" shows")
	}
	p.checkLogs()
}
