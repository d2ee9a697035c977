package server_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/oauth2"
)

// TestIntrospectionHintIgnored: introspection answers alike whatever
// token_type_hint says, one it knows, one for a type Keyward never issues
// or one it has never heard of (RFC 7662 §2.1: a server that cannot find
// the token by the hint searches all its types). A token that is not
// active is answered {"active":false} and nothing else (§2.2), as JSON.
func TestIntrospectionHintIgnored(t *testing.T) {
	f := newAuthzFixture(t)
	revoked := f.accessToken(t, "opaque")
	own := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret))
	if w := f.doPath("/revoke", "token="+url.QueryEscape(revoked), own); w.Code != http.StatusOK {
		t.Fatalf("revocation: %d %s", w.Code, w.Body)
	}
	tokens := []struct {
		name   string
		tok    string
		active bool
	}{
		{"jwt", f.accessToken(t, "jwt"), true},
		{"opaque", f.accessToken(t, "opaque"), true},
		{"revoked", revoked, false},
		{"unknown opaque", oauth2.OpaqueTokenPrefix + strings.Repeat("A", 43), false},
		{"not a token", "hello", false},
		{"malformed JWT", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", false},
	}
	for _, tk := range tokens {
		for _, hint := range []string{"", "access_token", "refresh_token", "id_token", "urn:example:unknown"} {
			t.Run(tk.name+"/"+hint, func(t *testing.T) {
				body := "token=" + url.QueryEscape(tk.tok)
				if hint != "" {
					body += "&token_type_hint=" + url.QueryEscape(hint)
				}
				w := f.doPath("/introspect", body, f.introspect)
				r := decodeResponse(t, w.Code, w.Body.Bytes())
				if r.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
					t.Fatalf("%d %q %s, want 200 application/json", r.Code, w.Header().Get("Content-Type"), r.Raw)
				}
				if tk.active {
					if r.Body["active"] != true || r.Body["client_id"] != f.clientID {
						t.Fatalf("%s, want the token active, with its client_id", r.Raw)
					}
					return
				}
				if len(r.Body) != 1 || r.Body["active"] != false {
					t.Fatalf("%s, want {\"active\":false} and no other member", r.Raw)
				}
			})
		}
	}
}
