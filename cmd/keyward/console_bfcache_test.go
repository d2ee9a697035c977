package main

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleBackForwardCache: a page the browser kept in its
// back/forward cache is never shown signed in. index.html's no-store
// keeps Chromium from keeping it, so the test sends the page the events a
// browser that kept it would: pagehide as it is kept, pageshow as it is
// shown again, each with persisted set. Either signs out, letting go of
// the view; the same events of a page not kept change nothing.
func TestConsoleBackForwardCache(t *testing.T) {
	p, m, _ := consoleTest(t)
	signedIn := func() bool {
		t.Helper()
		return eval[bool](p, `document.getElementById("signin").hidden && !document.getElementById("view").hidden && document.getElementById("view").childElementCount > 0`)
	}
	signedOut := func(what string) {
		t.Helper()
		p.waitAlert(what, "notice", "Signed out: the page was left.")
		if !eval[bool](p, `!document.getElementById("signin").hidden && document.getElementById("view").hidden
			&& document.getElementById("view").childElementCount === 0 && document.getElementById("who").textContent === ""`) {
			t.Errorf("%s: the page is not signed out", what)
		}
	}
	send := func(event string, persisted bool) {
		t.Helper()
		eval[bool](p, `window.dispatchEvent(new PageTransitionEvent("`+event+`", { persisted: `+map[bool]string{true: "true", false: "false"}[persisted]+` }))`)
	}

	p.signIn(m)
	send("pageshow", false)
	send("pagehide", false)
	if !signedIn() {
		t.Fatal("pageshow and pagehide of a page not kept signed out")
	}

	send("pageshow", true)
	signedOut("shown again from the cache")

	p.step("sign in again", chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")), chromedp.WaitVisible(chromedp.CSS("#view section")))
	send("pagehide", true)
	signedOut("kept in the cache")
	p.checkLogs()
}
