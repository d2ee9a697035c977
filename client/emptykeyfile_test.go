package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/client"
)

// TestEmptyKeyFileIsNone: an empty KeyFile is none, as an empty TokenURL
// or ClientID is: beside a ClientSecret the secret authenticates (it was
// refused "the key file is empty"); alone it is refused, saying that it
// is empty and no ClientSecret was given.
func TestEmptyKeyFileIsNone(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "123" || secret != "s" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	ts, err := client.ClientCredentials(ctx, client.ClientCredentialsConfig{
		TokenURL: srv.URL + "/token", ClientID: "123", ClientSecret: "s", KeyFile: []byte{}, Scopes: []string{"orders.read"},
	})
	if err != nil {
		t.Fatalf("an empty KeyFile beside a ClientSecret: %v", err)
	}
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at" {
		t.Fatalf("got %+v, %v; want the token the secret gets", tok, err)
	}
	_, err = client.ClientCredentials(ctx, client.ClientCredentialsConfig{ClientID: "123", KeyFile: []byte{}, Scopes: []string{"orders.read"}})
	if err == nil || !strings.Contains(err.Error(), "KeyFile is empty") || !strings.Contains(err.Error(), "ClientSecret") {
		t.Fatalf("got %v; want an error saying the KeyFile is empty and no ClientSecret was given", err)
	}
}
