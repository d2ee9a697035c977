package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
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
	revokes := p.trackRequests(regexp.MustCompile(`/(v1/tokens/)?revoke$`))
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

	// The key file's token is revoked, and it alone: not the pasted
	// one, and nothing else is asked to be revoked. The page does not
	// wait for that, the test does: for every revocation request the
	// page made to be answered (its token.revoke written before), at
	// least one; then it checks every token.revoke there is, and that the
	// pasted token still works. It stopped at the first token.revoke, and
	// a revocation of the pasted token that came after went unseen.
	issued, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "token.issued", AccountID: adminKey.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	if len(issued) != 1 || issued[0].Data["token_id"] == "" {
		t.Fatalf("token.issued events of the administrator: %+v, want one: the key file's sign-in", issued)
	}
	keyToken := issued[0].Data["token_id"]
	if n := revokes.wait(t, 20*time.Second); n == 0 {
		t.Fatal("no revocation request: the console did not revoke the token of the sign-in it dropped")
	}
	evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "token.revoke"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Data["token_id"] != keyToken || e.Outcome != storage.OutcomeSuccess || e.Actor != adminKey.ClientID || e.Data["result"] != "revoked" {
			t.Errorf("token.revoke event %+v, want only the administrator revoking the key file's token %s", e, keyToken)
		}
	}
	if len(evs) != 1 {
		t.Errorf("%d token.revoke events, want one: the key file's token's", len(evs))
	}
	req, _ := http.NewRequest(http.MethodGet, m.URL()+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+pasted)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the pasted token, GET /v1/whoami: %s, want 200: it was not the console's to revoke", resp.Status)
	}
	p.checkLogs()
}

// requestsTracked counts the requests of a page whose URL matches, sent
// and ended (answered or failed).
type requestsTracked struct {
	mu      sync.Mutex
	sent    map[network.RequestID]bool
	ended   map[network.RequestID]bool // of any URL
	last    time.Time                  // when a request that matches was last sent or ended
	changed chan struct{}
}

// trackRequests counts the requests the page sends from now on whose URL
// matches re, until the test ends.
func (p *consolePage) trackRequests(re *regexp.Regexp) *requestsTracked {
	p.t.Helper()
	r := &requestsTracked{sent: map[network.RequestID]bool{}, ended: map[network.RequestID]bool{}, changed: make(chan struct{}, 1)}
	evctx, stop := context.WithCancel(p.ctx)
	p.t.Cleanup(stop)
	note := func(set map[network.RequestID]bool, id network.RequestID) {
		r.mu.Lock()
		set[id] = true
		if r.sent[id] {
			r.last = time.Now()
		}
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
	sent := chromedp.Events(evctx, network.RequestWillBeSent)
	finished := chromedp.Events(evctx, network.LoadingFinished)
	failed := chromedp.Events(evctx, network.LoadingFailed)
	go func() {
		for ev, err := range sent {
			if err != nil {
				return
			}
			if re.MatchString(ev.Request.URL) {
				note(r.sent, ev.RequestID)
			}
		}
	}()
	go func() {
		for ev, err := range finished {
			if err != nil {
				return
			}
			note(r.ended, ev.RequestID)
		}
	}()
	go func() {
		for ev, err := range failed {
			if err != nil {
				return
			}
			note(r.ended, ev.RequestID)
		}
	}()
	if _, err := chromedp.Call(p.ctx, network.Enable, network.EnableParams{}); err != nil {
		p.t.Fatalf("Network.enable: %v", err)
	}
	return r
}

// requestsQuiet is how long wait wants the page's requests quiet: none
// sent, none ended, after the last one ended. The page does not say when
// it is done sending (a revocation goes out once its client assertion is
// signed, and nobody waits for it), so a request sent after every one
// before it has ended is caught only by waiting on.
const requestsQuiet = 2 * time.Second

// wait waits, up to d, until at least one request is sent, every one has
// ended, and none has been sent or ended for requestsQuiet; it returns
// how many were sent. It returned the first time every request sent so
// far had ended, and a request the page sent after went unseen.
func (r *requestsTracked) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		n, left, quiet := len(r.sent), 0, requestsQuiet-time.Since(r.last)
		for id := range r.sent {
			if !r.ended[id] {
				left++
			}
		}
		r.mu.Unlock()
		var settled <-chan time.Time
		if n > 0 && left == 0 {
			if quiet <= 0 {
				return n
			}
			settled = time.After(quiet)
		}
		select {
		case <-r.changed:
		case <-settled:
		case <-deadline:
			if left > 0 {
				t.Fatalf("%d of %d requests still unanswered after %s", left, n, d)
			}
			return n
		}
	}
}

// pageTransition sends the page a PageTransitionEvent, pagehide or
// pageshow, with persisted set as the browser sets it for a page it keeps
// in (or shows again from) its back/forward cache.
func (p *consolePage) pageTransition(event string, persisted bool) {
	p.t.Helper()
	eval[bool](p, fmt.Sprintf(`window.dispatchEvent(new PageTransitionEvent(%q, { persisted: %t }))`, event, persisted))
}
