package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/assertion"
	"github.com/keyward/keyward/internal/oauth2"
)

// TestMetadataAuthSigningAlgs: each endpoint whose auth methods list
// private_key_jwt also lists the algorithms of its assertions, as RFC 8414
// §2 requires ("MUST be present if either of these authentication methods
// are specified"): the token endpoint, and the introspection and
// revocation endpoints, which check assertions alike.
func TestMetadataAuthSigningAlgs(t *testing.T) {
	f := newFixture(t)
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/oauth-authorization-server", nil))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); w.Code != 200 || err != nil {
		t.Fatalf("metadata: %d %s", w.Code, w.Body)
	}
	list := func(name string) []string {
		var l []string
		json.Unmarshal(raw[name], &l)
		return l
	}
	want := []string{"RS256", "ES256"}
	for _, endpoint := range []string{"token_endpoint", "introspection_endpoint", "revocation_endpoint"} {
		t.Run(endpoint, func(t *testing.T) {
			methods := list(endpoint + "_auth_methods_supported")
			if !slices.Contains(methods, "private_key_jwt") {
				t.Fatalf("%s_auth_methods_supported = %q, want private_key_jwt among them", endpoint, methods)
			}
			if got := list(endpoint + "_auth_signing_alg_values_supported"); !slices.Equal(got, want) {
				t.Errorf("%s_auth_signing_alg_values_supported = %q, want %q", endpoint, got, want)
			}
		})
	}
}

// TestMetadataAuthIsTruthful: every client authentication method the
// metadata lists for the token, introspection and revocation endpoints,
// and every algorithm it lists for their private_key_jwt assertions,
// authenticates a client there (RFC 8414 §2: what the server supports);
// an assertion signed with an algorithm it does not list is refused.
func TestMetadataAuthIsTruthful(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sys := admin.Actor{ID: "test"}
	ids := []string{f.email}
	if _, err := f.admin.UpdateAPI(ctx, sys, "orders", admin.APIUpdate{Introspectors: &ids}); err != nil {
		t.Fatal(err)
	}
	// The fixture's key is RSA; an EC key and another RSA key, for ES256
	// and for an algorithm not listed.
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecKey, err := f.admin.UploadKey(ctx, sys, f.email, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0)
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]jose.Signer{"RS256": f.signer}
	es, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ec}, (&jose.SignerOptions{}).WithHeader("kid", ecKey.ID))
	if err != nil {
		t.Fatal(err)
	}
	signers["ES256"] = es
	kf, err := f.admin.CreateKey(ctx, sys, f.email, 0)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(kf.PrivateKey))
	rsaKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: rsaKey}, (&jose.SignerOptions{}).WithHeader("kid", kf.PrivateKeyID))
	if err != nil {
		t.Fatal(err)
	}
	clientAssertion := func(s jose.Signer) string {
		now := time.Now()
		raw, err := jwt.Signed(s).Claims(map[string]any{"iss": f.clientID, "sub": f.clientID, "aud": issuer,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": rand.Text()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return "&client_assertion_type=" + url.QueryEscape(oauth2.ClientAssertionJWT) + "&client_assertion=" + raw
	}

	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/oauth-authorization-server", nil))
	var md map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &md); w.Code != 200 || err != nil {
		t.Fatalf("metadata: %d %s", w.Code, w.Body)
	}
	list := func(name string) []string {
		var l []string
		for _, v := range md[name].([]any) {
			l = append(l, v.(string))
		}
		return l
	}
	bodies := map[string]string{
		"token_endpoint":         "grant_type=client_credentials&scope=orders.read",
		"introspection_endpoint": "token=" + url.QueryEscape(f.accessToken(t, "opaque")),
		"revocation_endpoint":    "token=" + url.QueryEscape(oauth2.OpaqueTokenPrefix+strings.Repeat("A", 43)), // unknown: 200
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret))
	for endpoint, body := range bodies {
		path := strings.TrimPrefix(md[endpoint].(string), issuer)
		methods := list(endpoint + "_auth_methods_supported")
		if len(methods) == 0 {
			t.Fatalf("%s lists no auth methods", endpoint)
		}
		for _, method := range methods {
			var requests map[string][2]string // name → body suffix, Authorization
			switch method {
			case "client_secret_basic":
				requests = map[string][2]string{method: {"", basic}}
			case "client_secret_post":
				requests = map[string][2]string{method: {"&client_id=" + f.clientID + "&client_secret=" + url.QueryEscape(f.secret), ""}}
			case "private_key_jwt":
				requests = map[string][2]string{}
				algs := list(endpoint + "_auth_signing_alg_values_supported")
				if want := assertion.AlgorithmNames(); !slices.Equal(algs, want) {
					t.Errorf("%s lists %q for its assertions; assertion.Parse takes %q", endpoint, algs, want)
				}
				for _, alg := range algs {
					s, ok := signers[alg]
					if !ok {
						t.Fatalf("%s lists %s for its assertions, which this test cannot sign", endpoint, alg)
					}
					requests[method+" "+alg] = [2]string{clientAssertion(s), ""}
				}
			default:
				t.Fatalf("%s lists %s, which this test does not know", endpoint, method)
			}
			for name, req := range requests {
				t.Run(endpoint+"/"+name, func(t *testing.T) {
					if w := f.doPath(path, body+req[0], req[1]); w.Code != http.StatusOK {
						t.Fatalf("%d %s, want 200", w.Code, w.Body)
					}
				})
			}
		}
		t.Run(endpoint+"/private_key_jwt PS256, not listed", func(t *testing.T) {
			if w := f.doPath(path, body+clientAssertion(ps), ""); w.Code != http.StatusUnauthorized {
				t.Fatalf("%d %s, want 401", w.Code, w.Body)
			}
		})
	}
}
