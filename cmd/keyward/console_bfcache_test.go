package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
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

	p.signIn(m)
	p.pageTransition("pageshow", false)
	p.pageTransition("pagehide", false)
	if !signedIn() {
		t.Fatal("pageshow and pagehide of a page not kept signed out")
	}

	p.pageTransition("pageshow", true)
	signedOut("shown again from the cache")

	p.step("sign in again", chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")), chromedp.WaitVisible(chromedp.CSS("#view section")))
	p.pageTransition("pagehide", true)
	signedOut("kept in the cache")
	p.checkLogs()
}

// TestConsoleSignInBeforeLeaving: a sign-in still under way as the page
// is kept in the back/forward cache does not complete when its answers
// come in, on the page shown again from the cache: the page stays signed
// out and says why, and the token the console got with a key file is
// revoked (a pasted one is not: it may be in use elsewhere too). The
// browser holds GET /v1/whoami's answer while the page is left and shown
// again; the sign-in signed the page back in.
func TestConsoleSignInBeforeLeaving(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	bg := context.Background()
	now := time.Now()
	pasted, err := m.signer.Sign(kwoauth2.AccessClaims{Issuer: m.Issuer, Subject: adminKey.ClientID, ClientID: adminKey.ClientID, ClientEmail: adminKey.ClientEmail,
		Audience: kwoauth2.Audience{admin.BuiltinAPIIdentifier}, Scope: admin.AdminScope, IssuedAt: now.Unix(), Expiry: now.Add(time.Hour).Unix(), ID: rand.Text()})
	if err != nil {
		t.Fatal(err)
	}
	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	held := p.holdAnswers("*/v1/whoami", "")
	for _, tc := range []struct {
		name   string
		submit []chromedp.Action[chromedp.Void]
	}{
		{"key file", []chromedp.Action[chromedp.Void]{chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
			chromedp.Click(chromedp.CSS("#keyfile-form button"))}},
		{"pasted token", []chromedp.Action[chromedp.Void]{setInput("token", pasted), chromedp.Click(chromedp.CSS("#token-form button"))}},
	} {
		p.step("sign in with a "+tc.name, tc.submit...)
		id := p.awaitHeld(held, tc.name+": GET /v1/whoami was not held")
		p.pageTransition("pagehide", true)
		p.pageTransition("pageshow", true)
		p.release(id)
		// The sign-in ends one way or the other: signed in, or an error.
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("signin").hidden
			|| (!document.getElementById("alert").hidden && document.getElementById("alert").className === "error")`))
		cancel()
		if err != nil {
			t.Fatalf("%s: the sign-in did not end: %v; alert %q", tc.name, err, p.alert())
		}
		if eval[bool](p, `document.getElementById("signin").hidden || !document.getElementById("view").hidden`) {
			t.Fatalf("%s: a sign-in begun before the page was left signed the page shown again in", tc.name)
		}
		p.waitAlert(tc.name, "error", "The sign-in begun before the page was left was not completed: sign in again.")
		// Nor is the key file or the token kept in the sign-in form of
		// the page left.
		if eval[bool](p, `document.getElementById("keyfile").files.length > 0 || document.getElementById("token").value !== ""`) {
			t.Fatalf("%s: the page shown again keeps the key file or the pasted token in its sign-in form", tc.name)
		}
	}

	// The key file's token is revoked; the page does not wait for that,
	// the test does.
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "token.revoke"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			if len(evs) != 1 || evs[0].Outcome != storage.OutcomeSuccess || evs[0].Actor != adminKey.ClientID || evs[0].Data["result"] != "revoked" {
				t.Errorf("token.revoke events: %+v, want one: the administrator revoking the key file's token", evs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no token.revoke event: the console did not revoke the token of the sign-in it dropped")
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.checkLogs()
}

// pageTransition sends the page a PageTransitionEvent, pagehide or
// pageshow, with persisted set as the browser sets it for a page it keeps
// in (or shows again from) its back/forward cache.
func (p *consolePage) pageTransition(event string, persisted bool) {
	p.t.Helper()
	eval[bool](p, fmt.Sprintf(`window.dispatchEvent(new PageTransitionEvent(%q, { persisted: %t }))`, event, persisted))
}
