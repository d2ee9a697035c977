package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// End to end: the client gets a DPoP-bound token from a real Keyward and
// calls an API behind verify's middleware with it; the token alone, as a
// bearer token, is refused.
func TestDPoP(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	kf := keyFile(t, k)
	v := verifier(t, k)
	api := httptest.NewServer(verify.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		io.WriteString(w, c.KeyThumbprint)
	})))
	t.Cleanup(api.Close)
	ctx := context.Background()

	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]func() (oauth2.TokenSource, error){
		"client_credentials with a secret": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", ClientID: id, ClientSecret: secret,
				Scopes: []string{"orders.read"}, HTTPClient: d.HTTPClient(nil)})
		},
		"client_credentials with a key file": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", KeyFile: kf,
				Scopes: []string{"orders.read"}, HTTPClient: d.HTTPClient(nil)})
		},
		"jwt-bearer": func() (oauth2.TokenSource, error) {
			return client.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, d.HTTPClient(nil)), kf, "orders.read")
		},
	}
	for name, mk := range sources {
		t.Run(name, func(t *testing.T) {
			ts, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok.Type() != "DPoP" {
				t.Fatalf("token type %q, want DPoP", tok.Type())
			}
			hc := d.Client(ts, nil)
			for range 2 { // a fresh proof each time
				resp, err := hc.Get(api.URL + "/orders?x=1")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != d.JKT() {
					t.Fatalf("API: %s %s, want 200 and jkt %s", resp.Status, body, d.JKT())
				}
			}
			// The token without the key is refused.
			bearer := oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken, TokenType: "Bearer"}))
			resp, err := bearer.Get(api.URL + "/orders")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("bearer presentation: %s, want 401", resp.Status)
			}
		})
	}

	// Another key cannot use the token.
	ts, _ := client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", ClientID: id, ClientSecret: secret,
		Scopes: []string{"orders.read"}, HTTPClient: d.HTTPClient(nil)})
	thief, _ := client.NewDPoP(nil)
	resp, err := thief.Client(ts, nil).Get(api.URL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("another key: %s, want 401", resp.Status)
	}
}
