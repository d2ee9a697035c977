package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward/client"
)

// TestZeroExpiresIn: a token response with expires_in 0 (Keyward's answer
// when the token expired before the answer went) is an error saying the
// token has already expired, and the next call asks again, as for a
// negative expires_in; x/oauth2 reads 0 as no expiry at all, so the token
// was reused for a year.
func TestZeroExpiresIn(t *testing.T) {
	tests := []struct{ name, ctype, body string }{
		{"json", "application/json", `{"access_token":"at","token_type":"Bearer","expires_in":0}`},
		{"json string", "application/json", `{"access_token":"at","token_type":"Bearer","expires_in":"0"}`},
		{"form", "application/x-www-form-urlencoded", "access_token=at&token_type=bearer&expires_in=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.Header().Set("Content-Type", tt.ctype)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{
				TokenURL: srv.URL + "/token", ClientID: "123", ClientSecret: "s", Scopes: []string{"orders.read"},
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if tok, err := ts.Token(); err == nil || !strings.Contains(err.Error(), "already expired") {
					t.Fatalf("call %d: got %+v, %v; want an error saying the token has already expired", i+1, tok, err)
				}
			}
			if n := requests.Load(); n != 2 {
				t.Fatalf("%d token requests for 2 calls; want 2", n)
			}
		})
	}
}

// TestExpiredMessageNamesExpiresIn: the error for a token that has
// already expired names the expires_in the server sent, in a form answer
// too (x/oauth2 fills the token's ExpiresIn only from JSON, so it said
// "expires_in 0" of a form's -5).
func TestExpiredMessageNamesExpiresIn(t *testing.T) {
	tests := []struct{ name, ctype, body string }{
		{"json", "application/json", `{"access_token":"at","token_type":"Bearer","expires_in":-5}`},
		{"json string", "application/json", `{"access_token":"at","token_type":"Bearer","expires_in":"-5"}`},
		{"form", "application/x-www-form-urlencoded", "access_token=at&token_type=bearer&expires_in=-5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{
				TokenURL: srv.URL + "/token", ClientID: "123", ClientSecret: "s", Scopes: []string{"orders.read"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if tok, err := ts.Token(); err == nil || !strings.Contains(err.Error(), "already expired (expires_in -5)") {
				t.Fatalf("got %+v, %v; want an error saying the token has already expired (expires_in -5)", tok, err)
			}
		})
	}
}
