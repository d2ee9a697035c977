package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
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
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}
	const spoof = "nobody error=none outcome=success\u202e\"x\\\t\n\x01"
	if status, _ := l.post("/token", spoof, "wrong", url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized {
		t.Fatalf("a token request of an unknown client got %d, want 401", status)
	}
	evs, err := m.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
	if err != nil || len(evs) != 1 || evs[0].Data["client_id"] != spoof {
		t.Fatalf("the refusal's audit event: %+v (%v), want one with the client_id sent", evs, err)
	}
	want := details(evs[0].Data)

	p.signIn(m)
	eval[string](p, `location.hash = "#/audit?action=token.refused"`)
	const cell = `(document.querySelector("#view #audit-filter ~ div tbody tr td:last-child")?.textContent ?? "")`
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`%s === %q`, cell, want))); err != nil {
		t.Fatalf("the event's details show %q, want %q as keyward audit list shows them (%v)\nalert: %q", eval[string](p, cell), want, err, p.alert())
	}
	p.checkLogs()
}

// TestConsoleAuditUnreadableData: an event whose stored data is not a JSON
// object (a changed database) shows in the audit log as keyward audit list
// shows it, "data unreadable:" and the stored text quoted; the admin API
// failed the whole page, so the console showed no events.
func TestConsoleAuditUnreadableData(t *testing.T) {
	p, m, _ := consoleTest(t)
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}
	if status, _ := l.post("/token", "nobody", "wrong", url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized {
		t.Fatalf("a token request of an unknown client got %d, want 401", status)
	}
	evs, err := m.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("the refusal's audit event: %+v (%v)", evs, err)
	}
	const raw = `{"client_id":`
	tamper(t, m.Config.DataDir, "DROP TRIGGER audit_events_no_update", fmt.Sprintf(`UPDATE audit_events SET data = '%s' WHERE seq = %d`, raw, evs[0].Seq))
	want := auditCells(admin.AuditEventView{DataUnreadable: true, DataRaw: raw})[7]

	p.signIn(m)
	eval[string](p, `location.hash = "#/audit?action=token.refused"`)
	const cell = `(document.querySelector("#view #audit-filter ~ div tbody tr td:last-child")?.textContent ?? "")`
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`%s === %q`, cell, want))); err != nil {
		t.Fatalf("the event's details show %q, want %q as keyward audit list shows them (%v)\nalert: %q", eval[string](p, cell), want, err, p.alert())
	}
	p.checkLogs()
}

// TestConsoleAuditUnreadableTime: an event whose stored time is not an
// integer (a changed SQLite database) shows in the audit log as keyward
// audit list shows it, "time unreadable:" and the stored value quoted;
// the admin API failed the whole page, so the console showed no events.
func TestConsoleAuditUnreadableTime(t *testing.T) {
	p, m, _ := consoleTest(t)
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}
	if status, _ := l.post("/token", "nobody", "wrong", url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized {
		t.Fatalf("a token request of an unknown client got %d, want 401", status)
	}
	evs, err := m.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("the refusal's audit event: %+v (%v)", evs, err)
	}
	tamper(t, m.Config.DataDir, "DROP TRIGGER audit_events_no_update", fmt.Sprintf(`UPDATE audit_events SET time = 'yesterday' WHERE seq = %d`, evs[0].Seq))
	want := auditCells(admin.AuditEventView{TimeUnreadable: true, TimeRaw: "yesterday"})[1]

	p.signIn(m)
	eval[string](p, `location.hash = "#/audit?action=token.refused"`)
	const cell = `(document.querySelector("#view #audit-filter ~ div tbody tr td:nth-child(2)")?.textContent ?? "")`
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`%s === %q`, cell, want))); err != nil {
		t.Fatalf("the event's time shows %q, want %q as keyward audit list shows it (%v)\nalert: %q", eval[string](p, cell), want, err, p.alert())
	}
	p.checkLogs()
}
