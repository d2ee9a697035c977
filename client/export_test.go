package client

import (
	"time"

	"golang.org/x/oauth2"
)

// SetClock replaces the clock of a source Reuse returned (tests).
func SetClock(ts oauth2.TokenSource, now func() time.Time) { ts.(*reuseSource).now = now }
