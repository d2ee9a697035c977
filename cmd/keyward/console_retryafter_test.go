package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// TestConsoleRetryAfter: an admin API answer of 429 or 503 with
// Retry-After says how long to wait, after the description, whether
// Retry-After gives seconds or a date and whether the body is the admin
// API's JSON or a proxy's page; the console showed the description alone
// ("retry later") and said nothing of the wait. It sends the request once:
// the operator tries again. Each case pastes a token of its own, so the
// next whoami held is the next paste's, not this one's sent again.
func TestConsoleRetryAfter(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("token-form")))
	held := heldRequests(p, "*/v1/whoami")
	// paste pastes token and returns the ID of the whoami then held,
	// failing if it is not token's: a whoami of a token pasted before,
	// sent again since its answer.
	paste := func(what, token string) fetch.RequestID {
		t.Helper()
		p.step(what+": paste a token", setInput("token", token), chromedp.Click(chromedp.CSS("#token-form button")))
		select {
		case ev := <-held:
			if got := ev.Request.Headers["Authorization"]; got != "Bearer "+token {
				t.Fatalf("%s: the whoami held has Authorization %q, want Bearer %s: one before was sent again", what, got, token)
			}
			return ev.RequestID
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: whoami was not held", what)
			return ""
		}
	}
	for i, tc := range []struct {
		name        string
		status      int
		retryAfter  string
		contentType string
		body        string
		want        string
	}{
		{"admin API's 429", 429, "30", "application/json",
			`{"error":"temporarily_unavailable","error_description":"Too many admin requests without a valid admin token from this address; retry later."}`,
			"Too many admin requests without a valid admin token from this address; retry later. Try again in 30 seconds."},
		{"proxy's 429 with a date", 429, time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat), "text/html", "<html>Too many requests</html>",
			"The server answered HTTP 429 Too Many Requests with a body that is not JSON. Try again in 10 minutes."},
		{"503", 503, "5", "application/json",
			`{"error":"temporarily_unavailable","error_description":"The service is temporarily unavailable."}`,
			"The service is temporarily unavailable. Try again in 5 seconds."},
		{"429 for hours", 429, "7200", "application/json",
			`{"error":"temporarily_unavailable","error_description":"Too many requests."}`,
			"Too many requests. Try again in 2 hours."},
		{"429 for an absurd time", 429, "99999999999999999999", "application/json",
			`{"error":"temporarily_unavailable","error_description":"Too many requests."}`,
			"Too many requests. Try again in more than 2 days."},
	} {
		id := paste(tc.name, fmt.Sprintf("a-token-%d", i))
		if _, err := chromedp.Call(p.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: id, ResponseCode: int64(tc.status),
			ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: tc.contentType}, {Name: "Retry-After", Value: tc.retryAfter}},
			Body:            []byte(tc.body)}); err != nil {
			t.Fatalf("Fetch.fulfillRequest: %v", err)
		}
		p.waitAlert(tc.name, "error", tc.want)
		if got := p.alert(); got != tc.want {
			t.Errorf("%s: the alert says %q, want %q", tc.name, got, tc.want)
		}
	}
	// The last case's whoami, had it been sent again, would be held
	// before this one.
	paste("after the last", "a-token-last")
	p.checkLogs("429", "503")
}

// heldRequests has the browser hold the requests whose URL matches
// urlPattern before they are sent, for the test to answer with
// fetch.FulfillRequest; it returns them, with their headers, in the
// order they were made. It stops when the test ends.
func heldRequests(p *consolePage, urlPattern string) <-chan fetch.EventRequestPaused {
	t := p.t
	t.Helper()
	evctx, stopEvents := context.WithCancel(p.ctx)
	t.Cleanup(stopEvents)
	held := make(chan fetch.EventRequestPaused, 8)
	events := chromedp.Events(evctx, fetch.RequestPaused)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			select {
			case held <- ev:
			case <-evctx.Done():
				return
			}
		}
	}()
	if _, err := chromedp.Call(p.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: urlPattern, RequestStage: fetch.RequestStageRequest}}}); err != nil {
		t.Fatalf("Fetch.enable: %v", err)
	}
	t.Cleanup(func() { chromedp.Call(p.ctx, fetch.Disable, struct{}{}) })
	return held
}
