package verify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/verify"
)

// TestMetadataIssuerExact: New uses the issuer's metadata only when its
// issuer is the issuer URL New was given, exactly (RFC 8414 §3.3: else
// the metadata MUST NOT be used), so that a server answering for another
// issuer, or a look-alike of the URL, never supplies the keys.
func TestMetadataIssuerExact(t *testing.T) {
	tests := []struct {
		name, named string
		ok          bool
	}{
		{"the same", stubIssuerURL, true},
		{"a trailing slash", stubIssuerURL + "/", false},
		{"another case of the host", strings.Replace(stubIssuerURL, "keyward", "Keyward", 1), false},
		{"http for https", strings.Replace(stubIssuerURL, "https:", "http:", 1), false},
		{"a path added", stubIssuerURL + "/tenant", false},
		{"an explicit port", stubIssuerURL + ":443", false},
		{"another issuer", "https://evil.internal", false},
		{"none", "", false},
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Path == "/.well-known/oauth-authorization-server" {
					return jsonResponse(r, map[string]string{"issuer": tt.named, "jwks_uri": stubIssuerURL + "/jwks"})
				}
				return jsonResponse(r, keys)
			})}
			_, err := verify.New(t.Context(), stubIssuerURL, stubAudience, verify.WithHTTPClient(client))
			if tt.ok {
				if err != nil {
					t.Fatalf("err = %v, want the metadata used", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "RFC 8414 §3.3") {
				t.Fatalf("err = %v, want the metadata of issuer %q refused", err, tt.named)
			}
		})
	}
}
