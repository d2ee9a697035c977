package client_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/testkeyward"
)

// TestEarlyRefreshOfEveryGrant: the sources x/oauth2 provides cache their
// token until 10 s before expiry; Reuse must fetch past that cache, or the
// early, jittered refresh never happens.
func TestEarlyRefreshOfEveryGrant(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	created, err := k.Srv.Admin.CreateKey(context.Background(), testkeyward.Sys, "job@shop.iam.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	kf, _ := json.Marshal(created)
	ctx := context.Background()
	sources := map[string]func() (oauth2.TokenSource, error){
		"jwt-bearer": func() (oauth2.TokenSource, error) { return client.TokenSource(ctx, kf, "orders.read") },
		"client secret": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", ClientID: id, ClientSecret: secret, Scopes: []string{"orders.read"}})
		},
		"private_key_jwt": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", KeyFile: kf, Scopes: []string{"orders.read"}})
		},
	}
	for name, mk := range sources {
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
