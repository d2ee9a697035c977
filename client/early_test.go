package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/testkeyward"
)

// TestEarlyRefreshOfEveryGrant: the sources x/oauth2 provides cache their
// token until 10 s before expiry; Reuse must fetch past that cache, or the
// early, jittered refresh never happens.
func TestEarlyRefreshOfEveryGrant(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	kf := keyFile(t, k)
	for name, mk := range grantSources(context.Background(), k, id, secret, kf) {
		if name == "self-signed" {
			continue // signed anew on every call, in whole seconds
		}
		t.Run(name, func(t *testing.T) {
			ts, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			client.SetClock(ts, func() time.Time { return now })
			first, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			now = first.Expiry.Add(-2 * time.Minute) // inside the refresh window, long before x/oauth2's 10 s
			second, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			if second.AccessToken == first.AccessToken {
				t.Fatal("the token was not refreshed early")
			}
		})
	}
}
