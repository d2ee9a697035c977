package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/keyward/keyward/internal/admin"
)

// TestConsoleSessionEnded: a 401 to a request with the session's token
// (its token revoked elsewhere, as a view opens or as Sign out revokes
// it, a 401 without a description, or a proxy's 401 whose body is not
// JSON) signs out saying the session ended and to sign in again, then
// why; it showed the server's description alone, or the bare error code,
// and a 401 whose body is not JSON left the console signed in.
func TestConsoleSessionEnded(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	revoke := func() {
		t.Helper()
		if _, err := m.Server.Admin.RevokeAccountTokens(context.Background(), admin.Actor{ID: "test"}, adminKey.ClientID); err != nil {
			t.Fatal(err)
		}
	}
	const revoked = "The session ended: sign in again. The access token is no longer active (account's tokens revoked)."
	// answer401 opens the APIs and answers their GET with a 401 of
	// content type typ and body body, as the server or a proxy may.
	answer401 := func(typ, body string) {
		t.Helper()
		held := heldRequests(p, "*/v1/apis")
		p.step("open the APIs", chromedp.Click(chromedp.Search(`//nav//a[normalize-space()="APIs"]`)))
		var ev fetch.EventRequestPaused
		select {
		case ev = <-held:
		case <-time.After(20 * time.Second):
			t.Fatal("GET /v1/apis was not held")
		}
		if _, err := chromedp.Call(p.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 401,
			ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: typ}},
			Body:            []byte(body)}); err != nil {
			t.Fatalf("Fetch.fulfillRequest: %v", err)
		}
	}
	for _, tc := range []struct {
		name string
		end  func()
		want string
	}{
		{"revoked, a view opened", func() {
			revoke()
			p.step("open the APIs", chromedp.Click(chromedp.Search(`//nav//a[normalize-space()="APIs"]`)))
		}, revoked},
		{"revoked, Sign out", func() {
			revoke()
			p.step("sign out", chromedp.Click(chromedp.ID("signout")))
		}, revoked},
		{"a 401 without a description", func() {
			answer401("application/json", `{"error":"invalid_token"}`)
		}, "The session ended: sign in again. The server refused the access token (HTTP 401, invalid_token)."},
		{"a proxy's 401 page", func() {
			answer401("text/html", "<html><body><h1>401 Authorization Required</h1></body></html>")
		}, "The session ended: sign in again. The server refused the access token (HTTP 401)."},
	} {
		p.signIn(m)
		tc.end()
		p.step(tc.name+": signed out", chromedp.WaitVisible(chromedp.ID("keyfile-form")))
		p.waitAlert(tc.name, "error", "The session ended")
		if got := p.alert(); got != tc.want {
			t.Errorf("%s: the alert says %q, want %q", tc.name, got, tc.want)
		}
	}
	p.checkLogs("401")
}
