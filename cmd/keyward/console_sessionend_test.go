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
// it, or a 401 without a description) signs out saying the session ended
// and to sign in again, then why; it showed the server's description
// alone, or the bare error code.
func TestConsoleSessionEnded(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	revoke := func() {
		t.Helper()
		if _, err := m.Server.Admin.RevokeAccountTokens(context.Background(), admin.Actor{ID: "test"}, adminKey.ClientID); err != nil {
			t.Fatal(err)
		}
	}
	const revoked = "The session ended: sign in again. The access token is no longer active (account's tokens revoked)."
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
			held := heldRequests(p, "*/v1/apis")
			p.step("open the APIs", chromedp.Click(chromedp.Search(`//nav//a[normalize-space()="APIs"]`)))
			var ev fetch.EventRequestPaused
			select {
			case ev = <-held:
			case <-time.After(20 * time.Second):
				t.Fatal("GET /v1/apis was not held")
			}
			if _, err := chromedp.Call(p.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 401,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}},
				Body:            []byte(`{"error":"invalid_token"}`)}); err != nil {
				t.Fatalf("Fetch.fulfillRequest: %v", err)
			}
		}, "The session ended: sign in again. The server refused the access token (HTTP 401, invalid_token)."},
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
