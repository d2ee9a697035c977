package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
)

// neverAnswers is a server that accepts requests and never answers them.
func neverAnswers(t *testing.T) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // before Close, which waits for the handlers
	return srv
}

// failsWithin5s requires call, made of a server that never answers, to
// fail, and within 5 s.
func failsWithin5s(t *testing.T, what string, call func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("%s: an answer from a server that never answered", what)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still waits for a server that never answers", what)
	}
}

// TestTokenRequestTimeout: a token endpoint that never answers fails the
// token request after the default timeout, for every grant made without
// an HTTP client of the caller's and through NewDPoP's HTTPClient(nil),
// instead of holding Token (and every caller waiting on its refresh)
// forever, as http.DefaultClient would.
func TestTokenRequestTimeout(t *testing.T) {
	srv := neverAnswers(t)
	defer client.SetDefaultTimeout(200 * time.Millisecond)()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kf, _ := json.Marshal(map[string]string{
		"type": "service_account", "private_key_id": "k1", "private_key": pkcs8PEM(t, key),
		"client_email": "job@shop.iam.test", "client_id": "123", "token_uri": srv.URL + "/token",
	})
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		ts   func() (oauth2.TokenSource, error)
	}{
		{"jwt-bearer", func() (oauth2.TokenSource, error) { return client.TokenSource(ctx, kf, "orders.read") }},
		{"client secret", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL + "/token", ClientID: "1", ClientSecret: "s"})
		}},
		{"private_key_jwt", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL + "/token", KeyFile: kf})
		}},
		{"nil client in ctx", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(context.WithValue(ctx, oauth2.HTTPClient, (*http.Client)(nil)),
				client.ClientCredentialsConfig{TokenURL: srv.URL + "/token", ClientID: "1", ClientSecret: "s"})
		}},
		{"DPoP HTTPClient(nil)", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL + "/token", ClientID: "1", ClientSecret: "s",
				HTTPClient: d.HTTPClient(nil)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := tt.ts()
			if err != nil {
				t.Fatal(err)
			}
			failsWithin5s(t, "Token", func() error { _, err := ts.Token(); return err })
		})
	}
}

// TestDPoPClientTimeout: DPoP.Client(ts, nil) gives up on an API that
// never answers after the default timeout, as HTTPClient(nil) does; it
// used http.DefaultClient, which waits forever.
func TestDPoPClientTimeout(t *testing.T) {
	srv := neverAnswers(t)
	defer client.SetDefaultTimeout(200 * time.Millisecond)()
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"DPoP", "Bearer"} {
		t.Run(typ, func(t *testing.T) {
			ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: typ})
			failsWithin5s(t, "the API request", func() error {
				resp, err := d.Client(ts, nil).Get(srv.URL + "/orders")
				if err == nil {
					resp.Body.Close()
				}
				return err
			})
		})
	}
}

// TestTokenRequestFollowsNoRedirect: a token request, which carries the
// client's secret or assertion, is not sent on where a redirect points
// (a 307 or 308 resends the body, and Basic credentials to the same
// host), whichever HTTP client sends it; the caller's client is not
// changed.
func TestTokenRequestFollowsNoRedirect(t *testing.T) {
	var followed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			return
		}
		followed.Add(1)
		http.Error(w, "not here", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kf, _ := json.Marshal(map[string]string{
		"type": "service_account", "private_key_id": "k1", "private_key": pkcs8PEM(t, key),
		"client_email": "job@shop.iam.test", "client_id": "123", "token_uri": srv.URL + "/token",
	})
	own := &http.Client{Timeout: 5 * time.Second}
	ctx := context.Background()
	tests := []struct {
		name string
		ts   func() (oauth2.TokenSource, error)
	}{
		{"jwt-bearer", func() (oauth2.TokenSource, error) { return client.TokenSource(ctx, kf, "orders.read") }},
		{"jwt-bearer, the context's client", func() (oauth2.TokenSource, error) {
			return client.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, own), kf, "orders.read")
		}},
		{"client secret", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL + "/token", ClientID: "1", ClientSecret: "s"})
		}},
		{"client secret, the caller's client", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL + "/token", ClientID: "1", ClientSecret: "s", HTTPClient: own})
		}},
		{"private_key_jwt", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL + "/token", KeyFile: kf})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := tt.ts()
			if err != nil {
				t.Fatal(err)
			}
			_, err = ts.Token()
			if err == nil || !strings.Contains(err.Error(), "follow no redirect") {
				t.Fatalf("Token: %v, want an error saying token requests follow no redirect", err)
			}
			if n := followed.Load(); n != 0 {
				t.Fatalf("the redirect was followed %d times", n)
			}
		})
	}
	if own.CheckRedirect != nil {
		t.Error("the caller's client was changed")
	}
}

// TestTokenResponseNotJSON: a 2xx answer to a token request that is no
// token response (a proxy's or portal's HTML page) is an error naming the
// status and content type, not encoding/json's "invalid character '<'";
// a JSON token response under another content type is still taken.
func TestTokenResponseNotJSON(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name, ctype, body string
		want              string // in the error; "" for a token
	}{
		{"html page", "text/html; charset=utf-8", "<!DOCTYPE html><html><body>Sign in</body></html>", "200 OK with text/html"},
		{"empty html", "text/html", "", "200 OK with text/html"},
		{"json as text/html", "text/html", `{"access_token":"at","token_type":"Bearer","expires_in":3600}`, ""},
		{"json", "application/json", ` {"access_token":"at","token_type":"Bearer","expires_in":3600}`, ""},
		{"form", "application/x-www-form-urlencoded", "access_token=at&token_type=bearer&expires_in=3600", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			kf, _ := json.Marshal(map[string]string{
				"type": "service_account", "private_key_id": "k1", "private_key": pkcs8PEM(t, key),
				"client_email": "job@shop.iam.test", "client_id": "123", "token_uri": srv.URL + "/token",
			})
			ts, err := client.TokenSource(context.Background(), kf, "orders.read")
			if err != nil {
				t.Fatal(err)
			}
			tok, err := ts.Token()
			if tt.want == "" {
				if err != nil || tok.AccessToken != "at" {
					t.Fatalf("got %+v, %v; want the token", tok, err)
				}
				return
			}
			if !errors.Is(err, client.ErrNotTokenResponse) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "invalid character") {
				t.Fatalf("got %v; want an error saying %q, not a JSON syntax error", err, tt.want)
			}
		})
	}
}
