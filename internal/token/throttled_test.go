package token_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/clientauth/clientauthtest"
	"github.com/keyward/keyward/internal/storage"
)

// A throttled source is answered 429 at the rate it sends, and that is
// recorded once a minute per throttle key (an address, or a client at an
// address), the event saying so: a flood of failures writes its budget's
// refusals and one 429, not one event per request. Every other refusal
// is recorded as before (clientauthtest.CheckThrottledRefusals).
func TestThrottledRefusalsRecordedOnceAMinute(t *testing.T) {
	e := newEnv(t)
	clientauthtest.CheckThrottledRefusals(t, clientauthtest.Endpoint{
		Handler: e.h, Path: "/token", Action: "token.refused",
		Garbage: form("not-a-jwt"), GarbageStatus: http.StatusBadRequest, // fails per address
		Form: "grant_type=client_credentials", ClientID: e.job.ID,
		Events: func(t *testing.T) []storage.AuditEvent {
			evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Limit: 10_000})
			if err != nil {
				t.Fatal(err)
			}
			return evs
		},
		Advance: func(by time.Duration) { e.now = e.now.Add(by) },
	})
}
