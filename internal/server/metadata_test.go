package server_test

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"
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
