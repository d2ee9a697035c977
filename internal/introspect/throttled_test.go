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
