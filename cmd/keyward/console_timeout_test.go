package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/keyward/keyward/internal/admin"
)

// TestConsoleRequestTimeout: a request the server takes in and never
// answers is given up after a bounded time, 30 s (60 s for a batch of a
// user import), with an error that says so, and the console stays signed
// in; the page waited for ever, saying nothing. A request that changes
// something (creating a secret) says that whether the change was made is
// not known, to see before trying again: it said to try again, which
// could make a second secret; signing in, whose token request gives a new
// token each time, says to try again. An import's batch says once that
// whether it was imported is not known: it said so twice, the change's
// message inside the import's. Sign out, whose revocation of the token
// is not answered, signs out saying that the token may still be valid
// until it expires; it said to open the page again, and that the token
// stays valid. The test has the browser
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
	acct := consoleAccount(t, m, "timeout-secret", "billing")

	// Signing in asks the token endpoint for a token: asked again, it gives
	// another, and the one unanswered expires unused, so it is tried again.
	held := heldRequests(p, "*/token")
	p.step("sign in with the key file", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")))
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("sign-in: the token request was not held")
	}
	const signInWant = "The server did not answer within 30 s; try again."
	p.waitAlert("sign-in", "error", signInWant)
	if got := p.alert(); got != signInWant {
		t.Errorf("sign-in: the alert says %q, want %q", got, signInWant)
	}
	if _, err := chromedp.Call(p.ctx, fetch.Disable, struct{}{}); err != nil {
		t.Fatalf("Fetch.disable: %v", err)
	}
	p.signIn(m)
	for _, tc := range []struct {
		name, held string // the requests held
		open       func() // before they are held, if set
		send       func()
		want       string
	}{
		{"a view's GET", "*/v1/apis", nil, func() {
			p.step("open the APIs", chromedp.Click(chromedp.Search(`//nav//a[normalize-space()="APIs"]`)))
		}, "The server did not answer within 30 s; try again."},
		{"a change", "*/v1/service-accounts/" + acct.ID + "/secrets", func() { p.openAccount(acct) }, func() {
			p.step("create a secret", chromedp.Click(chromedp.Search(`//main[@id="view"]//button[normalize-space()="Create secret"]`)))
		}, "The server did not answer within 30 s, so whether the change was made is not known: " +
			"open the page again to see whether it was before trying again."},
		{"an import's batch", "*/v1/orgs/" + org + "/users", nil, func() {
			p.openImport(org)
			p.importFile("import users.csv", f)
		}, `Whether the user of "users.csv" was imported is not known (no answer, or a server error): ` +
			"The server did not answer within 60 s."},
	} {
		if tc.open != nil {
			tc.open()
		}
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
		} else if n := strings.Count(got, "not known"); n > 1 {
			t.Errorf("%s: the alert says %q, \"not known\" %d times", tc.name, got, n)
		}
		if signedIn := eval[bool](p, `!document.getElementById("nav").hidden`); !signedIn {
			t.Errorf("%s: the console signed out", tc.name)
		}
	}

	// Sign out signs out all the same when the revocation of its token is
	// not answered, saying that the token may still be valid.
	held = heldRequests(p, "*/v1/tokens/revoke")
	p.step("sign out", chromedp.Click(chromedp.ID("signout")))
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("sign out: the revocation was not held")
	}
	const signOutWant = "Signed out, but the server did not answer the revocation of the access token within 30 s, " +
		"so the token may still be valid until it expires (at most its lifetime)."
	p.step("sign out: signed out", chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	p.waitAlert("sign out", "error", signOutWant)
	if got := p.alert(); got != signOutWant {
		t.Errorf("sign out: the alert says %q, want %q", got, signOutWant)
	}
}
