package client_test

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
)

// TestKeyFileTokenURIRefused: a key file whose token_uri has a user name
// or password, or is plain http:// to a host that is not loopback, is
// refused when the source is made, by JWTBearer (TokenSource) and by
// ClientCredentials with a KeyFile, naming the key file's token_uri with
// its password hidden and what to do; it was used as it was, the signed
// assertion and the token sent unencrypted, the password to the token
// endpoint. Plain http:// to loopback (127.0.0.1, ::1, localhost), as
// keyward serve takes for an issuer without --insecure-http, stays
// allowed, and so does a TokenURL the caller gives: requests then go
// there, not to token_uri.
func TestKeyFileTokenURIRefused(t *testing.T) {
	ctx := context.Background()
	sources := []struct {
		name string
		make func(keyFile []byte, tokenURL string) (oauth2.TokenSource, error)
	}{
		{"JWT-bearer", func(kf []byte, u string) (oauth2.TokenSource, error) {
			return client.JWTBearer(ctx, client.JWTBearerConfig{KeyFile: kf, TokenURL: u, Scopes: []string{"orders.read"}})
		}},
		{"client credentials", func(kf []byte, u string) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{KeyFile: kf, TokenURL: u, Scopes: []string{"orders.read"}})
		}},
	}
	tests := []struct {
		name, tokenURI, tokenURL string
		want                     []string // in the error; none: accepted
	}{
		{"https", "https://keyward.internal/token", "", nil},
		{"http to 127.0.0.1", "http://127.0.0.1:8080/token", "", nil},
		{"http to ::1", "http://[::1]:8080/token", "", nil},
		{"http to localhost", "http://localhost:8080/token", "", nil},
		{"http elsewhere", "http://keyward.internal/token", "",
			[]string{`the key file's token_uri "http://keyward.internal/token" is plain http://`, "not loopback", "https://", "TokenURL"}},
		{"HTTP elsewhere", "HTTP://10.0.0.7:8080/token", "", []string{`the key file's token_uri "HTTP://10.0.0.7:8080/token" is plain http://`}},
		{"http elsewhere, TokenURL given", "http://keyward.internal/token", "http://keyward.internal/token", nil},
		{"a password", "https://admin:hunter2@keyward.internal/token", "",
			[]string{`the key file's token_uri "https://admin:xxxxx@keyward.internal/token" has a user name or password`, "keyward keys create"}},
		{"a user name", "https://admin@keyward.internal/token", "", []string{"has a user name or password"}},
		{"a password on loopback", "http://admin:hunter2@127.0.0.1:8080/token", "", []string{"has a user name or password"}},
		{"a password, TokenURL given", "https://admin:hunter2@keyward.internal/token", "https://keyward.internal/token", []string{"has a user name or password"}},
	}
	for _, src := range sources {
		for _, tt := range tests {
			t.Run(src.name+", "+tt.name, func(t *testing.T) {
				_, err := src.make(exampleKeyFile(tt.tokenURI), tt.tokenURL)
				if len(tt.want) == 0 {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %q, want it to say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("err = %q shows the password", err)
				}
			})
		}
	}
}

// TestTokenURLUserinfoRefused: a TokenURL with a user name or password is
// refused when the source is made, by JWTBearer and by ClientCredentials
// with a KeyFile or a ClientSecret, naming TokenURL with its password
// hidden, as a key file's token_uri with them is. It was accepted, and
// net/http sent them as Basic authentication with every token request
// without an Authorization header of its own (the JWT-bearer grant,
// private_key_jwt).
func TestTokenURLUserinfoRefused(t *testing.T) {
	ctx := context.Background()
	kf := exampleKeyFile("https://keyward.internal/token")
	sources := []struct {
		name string
		make func(tokenURL string) (oauth2.TokenSource, error)
	}{
		{"JWT-bearer", func(u string) (oauth2.TokenSource, error) {
			return client.JWTBearer(ctx, client.JWTBearerConfig{KeyFile: kf, TokenURL: u, Scopes: []string{"orders.read"}})
		}},
		{"private_key_jwt", func(u string) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{KeyFile: kf, TokenURL: u, Scopes: []string{"orders.read"}})
		}},
		{"client secret", func(u string) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{ClientID: "123", ClientSecret: "s", TokenURL: u, Scopes: []string{"orders.read"}})
		}},
	}
	tests := []struct {
		name, tokenURL string
		want           []string // in the error; none: accepted
	}{
		{"none", "https://replica.internal/token", nil},
		{"a password", "https://admin:hunter2@replica.internal/token",
			[]string{`TokenURL "https://admin:xxxxx@replica.internal/token" has a user name or password`, "Basic"}},
		{"a user name", "https://admin@replica.internal/token", []string{"TokenURL", "has a user name or password"}},
		{"an empty user name", "https://:hunter2@REPLICA.internal:443/token", []string{"has a user name or password"}},
		{"a password on loopback", "http://admin:hunter2@127.0.0.1:8080/token", []string{"has a user name or password"}},
	}
	for _, src := range sources {
		for _, tt := range tests {
			t.Run(src.name+", "+tt.name, func(t *testing.T) {
				_, err := src.make(tt.tokenURL)
				if len(tt.want) == 0 {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %q, want it to say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("err = %q shows the password", err)
				}
			})
		}
	}
}
