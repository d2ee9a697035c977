package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
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

// TestHTTPClientRefreshesEarly: the HTTP clients the package documents
// for API calls ask the source for a token on every request, so its early
// refresh reaches the API. oauth2.NewClient does not: it puts x/oauth2's
// own cache in front of the source, which keeps the old token until 10 s
// before it expires.
func TestHTTPClientRefreshesEarly(t *testing.T) {
	var issued atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"t%d","token_type":"Bearer","expires_in":3600}`, issued.Add(1))
	}))
	t.Cleanup(tokens.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Authorization"))
	}))
	t.Cleanup(api.Close)
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, httpClient := range map[string]func(oauth2.TokenSource) *http.Client{
		"oauth2.Transport": func(ts oauth2.TokenSource) *http.Client {
			return &http.Client{Transport: &oauth2.Transport{Source: ts}}
		},
		"DPoP.Client": func(ts oauth2.TokenSource) *http.Client { return d.Client(ts, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{TokenURL: tokens.URL, ClientID: "1", ClientSecret: "s"})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			client.SetClock(ts, func() time.Time { return now })
			hc := httpClient(ts)
			get := func() string {
				t.Helper()
				resp, err := hc.Get(api.URL)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return string(b)
			}
			first := get()
			now = now.Add(58 * time.Minute) // inside the refresh window, long before x/oauth2's 10 s
			if second := get(); second == first {
				t.Fatalf("the API got %q again, want a token refreshed early", second)
			}
		})
	}
}
