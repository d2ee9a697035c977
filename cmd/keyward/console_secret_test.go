package main

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleSecretAfterLeaving: a client secret whose creation is
// answered after the user left the account's page cannot be shown (the
// server keeps only its hash), and the console says so, naming the
// secret to delete, rather than put it in a page no longer shown and say
// nothing.
func TestConsoleSecretAfterLeaving(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg := context.Background()
	acct := consoleAccount(t, m, "nightly-report", "billing")
	p.signIn(m)
	p.openAccount(acct)

	// The browser pauses the answer to the POST …/secrets until told to
	// go on; other answers go through.
	held := p.holdAnswers("*/secrets", "POST")

	p.step("create a secret", chromedp.Click(viewButton("Create secret")))
	id := p.awaitHeld(held, "the secret's creation was not held")
	secrets, err := m.Server.Admin.ListSecrets(bg, acct.ID)
	if err != nil || len(secrets) != 1 {
		t.Fatalf("the server has %d secrets (%v) before the answer was let through, want 1", len(secrets), err)
	}

	eval[string](p, `location.hash = "#/apis"`)
	p.step("go to the APIs", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="APIs"]`)))
	p.release(id)
	p.waitAlert("secret not shown", "error", "Created the client secret "+secrets[0].ID+" of "+acct.ID+", but its page was left, shown again or signed out of")
	if h := eval[string](p, `location.hash`); h != "#/apis" {
		t.Errorf("after the answer the page is %q, want #/apis, where the user went", h)
	}
	p.checkLogs()
}
