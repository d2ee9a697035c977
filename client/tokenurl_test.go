package client_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
)

// TestTokenURLChecked: a token endpoint URL that is not an http or https
// URL with a host is refused when the source is made, naming where it came
// from, instead of failing every token request with url.Parse's words; a
// password in it is not shown.
func TestTokenURLChecked(t *testing.T) {
	withTokenURI := func(u string) []byte {
		var kf client.KeyFile
		json.Unmarshal(exampleKeyFile("https://keyward.internal/token"), &kf)
		kf.TokenURI = u
		b, _ := json.Marshal(kf)
		return b
	}
	ctx := context.Background()
	good := exampleKeyFile("https://keyward.internal/token")
	for _, tt := range []struct {
		name, url string
		make      func(u string) (oauth2.TokenSource, error)
		fragment  string
	}{
		{"client secret", "127.0.0.1:8080/token", func(u string) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: u, ClientID: "id", ClientSecret: "s"})
		}, "TokenURL"},
		{"private_key_jwt", "keyward.internal/token", func(u string) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: u, KeyFile: good})
		}, "TokenURL"},
		{"private_key_jwt token_uri", "keyward.internal/token", func(u string) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{KeyFile: withTokenURI(u)})
		}, "the key file's token_uri"},
		{"JWT-bearer TokenURL", "ftp://keyward.internal/token", func(u string) (oauth2.TokenSource, error) {
			return client.JWTBearer(ctx, client.JWTBearerConfig{KeyFile: good, TokenURL: u})
		}, "TokenURL"},
		{"key file token_uri", "/token", func(u string) (oauth2.TokenSource, error) {
			return client.TokenSource(ctx, withTokenURI(u), "orders.read")
		}, "the key file's token_uri"},
		{"a password", "https://u:hunter2@/token", func(u string) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: u, ClientID: "id", ClientSecret: "s"})
		}, "TokenURL"},
		{"a password with a space", "https://u:hunter2 x@keyward.internal/token", func(u string) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: u, ClientID: "id", ClientSecret: "s"})
		}, "TokenURL"},
		{"a password with a bare %", "https://u:hunter2%@keyward.internal/token", func(u string) (oauth2.TokenSource, error) {
			return client.JWTBearer(ctx, client.JWTBearerConfig{KeyFile: good, TokenURL: u})
		}, "TokenURL"},
		{"a password, no scheme", "u:hunter2@keyward.internal/token", func(u string) (oauth2.TokenSource, error) {
			return client.TokenSource(ctx, withTokenURI(u), "orders.read")
		}, "the key file's token_uri"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.make(tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.fragment) || !strings.Contains(err.Error(), "is not an http or https URL") {
				t.Fatalf("err = %v, want %s named as not an http or https URL", err, tt.fragment)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("err = %q shows the password", err)
			}
		})
	}
}
