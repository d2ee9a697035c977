package client

import (
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// SetClock replaces the clock of a source Reuse returned (tests).
func SetClock(ts oauth2.TokenSource, now func() time.Time) { ts.(*reuseSource).now = now }

// SetBeforeFlight sets a func that a source Reuse returned runs in each
// call that found no current token, before it joins or starts the
// refresh (tests). Set it before the source is used.
func SetBeforeFlight(ts oauth2.TokenSource, f func()) { ts.(*reuseSource).beforeFlight = f }

// SetDefaultTimeout sets the timeout of token requests made without an
// HTTP client of the caller's, until the returned func restores it (tests).
func SetDefaultTimeout(d time.Duration) (restore func()) {
	old := defaultHTTPClient
	defaultHTTPClient = &http.Client{Timeout: d}
	return func() { defaultHTTPClient = old }
}
