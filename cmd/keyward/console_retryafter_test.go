package main

import (
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
// the operator tries again.
func TestConsoleRetryAfter(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("token-form")))
	held := p.hold("*/v1/whoami", "", fetch.RequestStageRequest)
	for _, tc := range []struct {
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
		p.step(tc.name+": paste a token", setInput("token", "a-token"), chromedp.Click(chromedp.CSS("#token-form button")))
		id := p.awaitHeld(held, tc.name+": whoami was not held")
		if _, err := chromedp.Call(p.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: id, ResponseCode: int64(tc.status),
			ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: tc.contentType}, {Name: "Retry-After", Value: tc.retryAfter}},
			Body:            []byte(tc.body)}); err != nil {
			t.Fatalf("Fetch.fulfillRequest: %v", err)
		}
		p.waitAlert(tc.name, "error", tc.want)
		if got := p.alert(); got != tc.want {
			t.Errorf("%s: the alert says %q, want %q", tc.name, got, tc.want)
		}
		select {
		case <-held:
			t.Fatalf("%s: whoami was sent again", tc.name)
		default:
		}
	}
	p.checkLogs("429", "503")
}
