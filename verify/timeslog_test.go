package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// TestTimeRefusalsSayByHowMuch: a token refused for its times (expired,
// not yet valid, issued in the future) carries, for the API's logs, the
// claim's time, this API's clock and the leeway, so that a clock that is
// off can be told from a token kept too long; the description the caller
// sees stays as it was.
func TestTimeRefusalsSayByHowMuch(t *testing.T) {
	k := testkeyward.Start(t)
	// On a whole second, as the claims are: the differences are exact.
	k.Clock.Add(-time.Duration(k.Clock.Now().Nanosecond()))
	v := newVerifier(t, k)
	now := k.Clock.Now()
	stamp := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339) }
	for _, tt := range []struct {
		name, raw, desc string
		log             []string
	}{
		{"expired", k.Sign(t, func(c *oauth2.AccessClaims) { c.Expiry = now.Add(-10 * time.Minute).Unix() }),
			"the token has expired", []string{"exp " + stamp(-10*time.Minute), "10m0s before this API's clock, " + stamp(0), "leeway 30s"}},
		{"not yet valid", k.Sign(t, func(c *oauth2.AccessClaims) { c.NotBefore = now.Add(10 * time.Minute).Unix() }),
			"the token is not valid yet (nbf)", []string{"nbf " + stamp(10*time.Minute), "10m0s after this API's clock, " + stamp(0)}},
		{"issued in the future", k.Sign(t, func(c *oauth2.AccessClaims) { c.IssuedAt = now.Add(10 * time.Minute).Unix() }),
			"the token was issued in the future (iat); check the clocks", []string{"iat " + stamp(10*time.Minute), "10m0s after this API's clock, " + stamp(0)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.raw)
			var ve *verify.Error
			if !errors.As(err, &ve) || ve.Code != "invalid_token" || ve.Description != tt.desc {
				t.Fatalf("err = %v, want invalid_token with description %q", err, tt.desc)
			}
			for _, want := range tt.log {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to say %q", err, want)
				}
			}
		})
	}
}
