package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// TestConsoleActionAfterLeaving: an action whose answer arrives after the
// user went to another page does not reload or leave that page. The
// browser holds the admin API's answer to an account's Disable (the
// server has disabled it), the user goes to the APIs page meanwhile, and
// once the answer is let through the APIs page is still the one shown, as
// it was, with the notice of the Disable.
func TestConsoleActionAfterLeaving(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg := context.Background()
	acct := consoleAccount(t, m, "nightly-report", "billing")
	p.signIn(m)

	// The browser pauses the answers to .../disable until told to go on.
	held := p.holdAnswers("*/disable", "")

	p.openAccount(acct, chromedp.Click(viewButton("Disable")))
	id := p.awaitHeld(held, "the Disable request was not held")
	if a, err := m.Server.Admin.GetAccount(bg, acct.ID); err != nil || !a.Disabled {
		t.Fatalf("the server has not disabled the account (%v) before its answer was held", err)
	}

	// Meanwhile the user goes to the APIs page, which is marked to tell
	// whether it is shown again.
	eval[string](p, `location.hash = "#/apis"`)
	p.step("go to the APIs", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="APIs"]`)))
	eval[string](p, `document.querySelector("#view > section").dataset.mark = "shown"`)

	p.release(id)
	p.waitAlert("disabled", "notice", "Disabled "+acct.Email+";")
	if h := eval[string](p, `location.hash`); h != "#/apis" {
		t.Fatalf("after the answer the page is %q, want #/apis, where the user went", h)
	}
	// A reload would have replaced the page before showing the notice.
	if !eval[bool](p, `document.querySelector("#view > section")?.dataset.mark === "shown" && !document.getElementById("view").hasAttribute("aria-busy")`) {
		t.Error("the APIs page was shown again for the answer to an action of the page before")
	}
	p.checkLogs()
}

// awaitHeld returns the ID of the next request held, failing the test
// with what when none is within 20 s.
func (p *consolePage) awaitHeld(held <-chan fetch.RequestID, what string) fetch.RequestID {
	p.t.Helper()
	select {
	case id := <-held:
		return id
	case <-time.After(20 * time.Second):
		p.t.Fatal(what)
		return ""
	}
}

// holdAnswers has the browser pause the answers to the requests whose URL
// matches urlPattern (and whose method is method, if given; others go
// through) until release lets each through; it returns their IDs as they
// are paused. It stops when the test ends.
func (p *consolePage) holdAnswers(urlPattern, method string) <-chan fetch.RequestID {
	p.t.Helper()
	return p.hold(urlPattern, method, fetch.RequestStageResponse)
}

// hold is holdAnswers at stage: before the request is sent
// (fetch.RequestStageRequest, for the test to answer it with
// fetch.FulfillRequest) or once its answer is in.
func (p *consolePage) hold(urlPattern, method string, stage fetch.RequestStage) <-chan fetch.RequestID {
	t := p.t
	t.Helper()
	evctx, stopEvents := context.WithCancel(p.ctx)
	t.Cleanup(stopEvents)
	held := make(chan fetch.RequestID, 1)
	events := chromedp.Events(evctx, fetch.RequestPaused)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			if method == "" || ev.Request.Method == method {
				held <- ev.RequestID
				continue
			}
			chromedp.Call(evctx, fetch.ContinueResponse, fetch.ContinueResponseParams{RequestID: ev.RequestID})
		}
	}()
	if _, err := chromedp.Call(p.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: urlPattern, RequestStage: stage}}}); err != nil {
		t.Fatalf("Fetch.enable: %v", err)
	}
	t.Cleanup(func() { chromedp.Call(p.ctx, fetch.Disable, struct{}{}) })
	return held
}

// release lets the answer holdAnswers paused as id through.
func (p *consolePage) release(id fetch.RequestID) {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, fetch.ContinueResponse, fetch.ContinueResponseParams{RequestID: id}); err != nil {
		p.t.Fatalf("Fetch.continueResponse: %v", err)
	}
}

// A 401 that answers a request of an earlier session, after its user
// signed out and in again, does not sign out the new session: only the
// session whose token was refused ends.
func TestConsoleLate401KeepsNewSession(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.signIn(m)
	// The browser holds the request for the APIs' list before it is sent.
	held := p.hold("*/v1/apis", "", fetch.RequestStageRequest)
	eval[string](p, `location.hash = "#/apis"`)
	id := p.awaitHeld(held, "the APIs' list was not held")

	// Sign out and in again, to the accounts page, whose requests are not held.
	p.step("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	eval[string](p, `location.hash = "#/accounts"`)
	p.step("sign in again", chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")), chromedp.WaitVisible(chromedp.CSS("#view table")))

	// The first session's request is answered 401 now.
	body := []byte(`{"error":"invalid_token","error_description":"The access token was revoked."}`)
	if _, err := chromedp.Call(p.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: id, ResponseCode: 401,
		ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}}, Body: body}); err != nil {
		t.Fatalf("Fetch.fulfillRequest: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // the console reads the answer
	if eval[bool](p, `!document.getElementById("signin").hidden || document.getElementById("view").hidden`) {
		t.Fatal("a late 401 of the earlier session signed out the new one")
	}
	p.checkLogs("401")
}
