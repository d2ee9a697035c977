package introspect_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/clientauth/clientauthtest"
	"github.com/keyward/keyward/internal/introspect"
	"github.com/keyward/keyward/internal/oauth2"
)

// A flood of failed introspections writes its budget's refusals and one
// 429 a minute per throttle key, not one event per request (see
// clientauthtest.ThrottledRefusalsRecordedOnceAMinute).
func TestThrottledRefusalsRecordedOnceAMinute(t *testing.T) {
	clientauthtest.ThrottledRefusalsRecordedOnceAMinute(t, "/introspect", "token.introspect",
		func(auth *clientauth.Authenticator, d *clientauthtest.Directory, clock func() time.Time) http.Handler {
			// No resolver: a request whose client is refused never reaches it.
			return introspect.NewHandler(auth, nil, d, d, nil, clock, slog.New(slog.NewTextHandler(io.Discard, nil)), oauth2.NopObserver{})
		})
}

// A flood of refusals the throttle does not count (no credentials, a
// malformed request) writes each address's audit budget of events, the
// next one saying how many were left out, not one event per request
// (clientauthtest.CheckRefusalBudget).
func TestUncountedRefusalsBudgeted(t *testing.T) {
	clientauthtest.RefusalsBudgeted(t, "/introspect", "token.introspect", clientauthtest.UncountedRefusals,
		func(auth *clientauth.Authenticator, d *clientauthtest.Directory, clock func() time.Time) http.Handler {
			return introspect.NewHandler(auth, nil, d, d, nil, clock, slog.New(slog.NewTextHandler(io.Discard, nil)), oauth2.NopObserver{})
		})
}

// A replayed client assertion is recorded however many refusals the
// throttle does not count its address has had: its signature verified
// (clientauthtest.ReplayRecordedOverBudget).
func TestReplayRecordedOverBudget(t *testing.T) {
	clientauthtest.ReplayRecordedOverBudget(t, "/introspect", "token.introspect",
		func(auth clientauth.Requirer, d *clientauthtest.Directory, clock func() time.Time) http.Handler {
			return introspect.NewHandler(auth, nil, d, d, nil, clock, slog.New(slog.NewTextHandler(io.Discard, nil)), oauth2.NopObserver{})
		})
}
