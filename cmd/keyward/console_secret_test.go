package main

import (
	"context"
	"strings"
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

// TestConsoleSecretNotInMarkup: a new client secret is shown in its box
// as the input's value alone, not its value attribute: it is not in the
// page's markup (what a serialization of the DOM or a page source
// saves), and autocomplete="off" keeps the browser from saving it to
// restore the form. "I have copied it" takes it away.
func TestConsoleSecretNotInMarkup(t *testing.T) {
	p, m, _ := consoleTest(t)
	acct := consoleAccount(t, m, "nightly-report", "billing")
	p.signIn(m)
	p.openAccount(acct)
	p.step("create a secret", chromedp.Click(viewButton("Create secret")), chromedp.WaitVisible(chromedp.ID("new-secret")))
	got := eval[map[string]any](p, `(() => {
		const el = document.getElementById("new-secret");
		return {value: el.value, attribute: el.getAttribute("value"), autocomplete: el.getAttribute("autocomplete"),
			inMarkup: el.value !== "" && document.documentElement.outerHTML.includes(el.value)};
	})()`)
	if v, _ := got["value"].(string); !strings.HasPrefix(v, "kw_") {
		t.Fatalf("the secret shown is %q, want a client secret", v)
	}
	if got["attribute"] != nil || got["inMarkup"] != false {
		t.Errorf("the secret is in the page's markup: value attribute %v, in the markup %v", got["attribute"], got["inMarkup"])
	}
	if got["autocomplete"] != "off" {
		t.Errorf("the secret's input has autocomplete %v, want off", got["autocomplete"])
	}
	p.step("dismiss it", chromedp.Click(viewButton("I have copied it")), chromedp.WaitNotPresent(chromedp.ID("new-secret")))
	p.checkLogs()
}
