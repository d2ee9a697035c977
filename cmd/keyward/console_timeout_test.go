package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/keyward/keyward/internal/admin"
)

// TestConsoleRequestTimeout: a request the server takes in and never
// answers is given up after a bounded time, 30 s (60 s for a batch of a
// user import), with an error that says so, and the console stays signed
// in; the page waited for ever, saying nothing. The test has the browser
// hold each request and never answer it, and AbortSignal.timeout wait a
// hundredth of what the console asks, so the test does not wait 30 s.
func TestConsoleRequestTimeout(t *testing.T) {
	p, m, _ := consoleTest(t)
	const org = "timeout.example"
	if _, err := m.Server.Admin.CreateOrg(context.Background(), admin.Actor{ID: "test"}, org); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(f, []byte("alice@"+org+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(p.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `{ const timeout = AbortSignal.timeout.bind(AbortSignal); AbortSignal.timeout = (ms) => timeout(ms / 100); }`,
	}); err != nil {
		t.Fatalf("Page.addScriptToEvaluateOnNewDocument: %v", err)
	}
	p.signIn(m)
	for _, tc := range []struct {
		name, held string // the requests held
		send       func()
		want       string
	}{
		{"a view's GET", "*/v1/apis", func() {
			p.step("open the APIs", chromedp.Click(chromedp.Search(`//nav//a[normalize-space()="APIs"]`)))
		}, "The server did not answer within 30 s; try again."},
		{"an import's batch", "*/v1/orgs/" + org + "/users", func() {
			p.openImport(org)
			p.importFile("import users.csv", f)
		}, `Whether the user of "users.csv" was imported is not known (no answer, or a server error): ` +
			"The server did not answer within 60 s; try again."},
	} {
		held := heldRequests(p, tc.held)
		tc.send()
		select {
		case <-held: // never answered
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: %s was not held", tc.name, tc.held)
		}
		p.waitAlert(tc.name, "error", tc.want)
		if got := p.alert(); got != tc.want {
			t.Errorf("%s: the alert says %q, want %q", tc.name, got, tc.want)
		}
		if signedIn := eval[bool](p, `!document.getElementById("nav").hidden`); !signedIn {
			t.Errorf("%s: the console signed out", tc.name)
		}
	}
}
