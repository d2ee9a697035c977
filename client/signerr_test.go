package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// failingSigner is a key that cannot sign (a hardware key gone, say).
type failingSigner struct{}

func (failingSigner) Sign([]byte) (*jose.JSONWebSignature, error) {
	return nil, errors.New("the key is gone")
}
func (failingSigner) Options() jose.SignerOptions { return jose.SignerOptions{} }

// TestSigningErrorsNamePackage: a token source whose key cannot sign says
// so with the package's "client: " prefix and what it was signing, as
// every error of the package does.
func TestSigningErrorsNamePackage(t *testing.T) {
	ctx := context.Background()
	kf := &KeyFile{ClientEmail: "sa@example.com", TokenURI: "https://keyward.internal/token"}
	sources := map[string]oauth2.TokenSource{
		"JWT-bearer":         &bearerSource{ctx: ctx, kf: kf, tokenURL: kf.TokenURI, signer: failingSigner{}},
		"client credentials": &assertionSource{ctx: ctx, signer: failingSigner{}},
		"self-signed":        selfSigned{email: kf.ClientEmail, aud: "https://orders.internal", signer: failingSigner{}},
	}
	for name, ts := range sources {
		t.Run(name, func(t *testing.T) {
			_, err := ts.Token()
			if err == nil || !strings.HasPrefix(err.Error(), "client: sign ") || !strings.Contains(err.Error(), "the key is gone") {
				t.Fatalf("got %v; want an error beginning %q that carries the cause", err, "client: sign ")
			}
		})
	}
}
