package verify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/verify"
)

// TestNewRefusesEndpointDowngrade: an https issuer whose metadata names a
// jwks_uri, or (when introspecting) an introspection_endpoint, that is
// not https is refused in New, before anything is sent there: the keys
// would come, and the API's introspection credentials and the tokens it
// introspects would go, over plain HTTP, where anyone on the path reads
// and changes them. An http issuer (local development) may name http
// endpoints, and an https issuer's endpoints on another host are its own
// choice.
func TestNewRefusesEndpointDowngrade(t *testing.T) {
	const httpIssuer = "http://keyward.local"
	intro := verify.WithIntrospection("1234", "secret")
	tests := []struct {
		name, issuer, jwks, introspection string
		opts                              []verify.Option
		refused                           string // the endpoint the error names; "" for none
	}{
		{"https endpoints", stubIssuerURL, stubIssuerURL + "/jwks", stubIssuerURL + "/introspect", []verify.Option{intro}, ""},
		{"https endpoints on another host", stubIssuerURL, "https://keys.internal/jwks", "https://intro.internal/introspect", []verify.Option{intro}, ""},
		{"http jwks_uri", stubIssuerURL, "http://keyward.internal/jwks", "", nil, "jwks_uri"},
		{"http jwks_uri in capitals", stubIssuerURL, "HTTP://keyward.internal/jwks", "", nil, "jwks_uri"},
		{"relative jwks_uri", stubIssuerURL, "/jwks", "", nil, "jwks_uri"},
		{"http introspection_endpoint", stubIssuerURL, stubIssuerURL + "/jwks", "http://keyward.internal/introspect", []verify.Option{intro}, "introspection_endpoint"},
		{"http introspection_endpoint, not introspecting", stubIssuerURL, stubIssuerURL + "/jwks", "http://keyward.internal/introspect", nil, ""},
		{"http issuer, http endpoints", httpIssuer, httpIssuer + "/jwks", httpIssuer + "/introspect", []verify.Option{intro}, ""},
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu   sync.Mutex
				sent []string
			)
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				mu.Lock()
				sent = append(sent, r.URL.String())
				mu.Unlock()
				if r.URL.Path == "/.well-known/oauth-authorization-server" {
					return jsonResponse(r, map[string]string{"issuer": tt.issuer, "jwks_uri": tt.jwks, "introspection_endpoint": tt.introspection})
				}
				return jsonResponse(r, keys)
			})}
			_, err := verify.New(t.Context(), tt.issuer, stubAudience, append(tt.opts, verify.WithHTTPClient(client))...)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("New: %v, want the metadata used", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), "https") {
				t.Fatalf("New: %v, want the %s refused as not https", err, tt.refused)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(sent) != 1 {
				t.Fatalf("requests sent: %q, want only the metadata's", sent)
			}
		})
	}
}
