package main

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleTokenLinkQuoted: a link to the Tokens page names the token
// ID to revoke (#/tokens/ID), which anyone may craft; the confirmation and
// the notice after show it quoted, as strconv.Quote quotes it, so that
// words in it, or a bidirectional override, cannot pass for the
// console's or the server's own.
func TestConsoleTokenLinkQuoted(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.signIn(m)
	const crafted = "x? This is routine: Keyward re-issues every token weekly. Confirm to go on\u202e"
	eval[string](p, fmt.Sprintf(`location.hash = "#/tokens/" + encodeURIComponent(%s)`, jsString(crafted)))
	p.step("open the link", chromedp.WaitVisible(chromedp.ID("revoke-form")))
	if v := eval[string](p, `document.getElementById("revoke-jti").value`); v != crafted {
		t.Fatalf("the form holds %q, want the link's %q", v, crafted)
	}
	p.step("revoke", chromedp.Click(chromedp.CSS("#revoke-form button[type=submit]")), chromedp.WaitVisible(chromedp.ID("confirm")))
	want := "Revoke the token " + strconv.Quote(crafted) + "? Introspection and the admin API"
	if msg := eval[string](p, `document.getElementById("confirm-text").textContent`); len(msg) < len(want) || msg[:len(want)] != want {
		t.Errorf("the confirmation says %q, want it to begin %q", msg, want)
	}
	p.step("confirm", chromedp.Click(chromedp.ID("confirm-ok")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	p.waitAlert("revoked", "notice", "Token ID "+strconv.Quote(crafted)+": No token with this ID is on record")
	p.checkLogs()
}
