package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// clientAssertion signs a private_key_jwt client assertion (RFC 7523
// §2.2) for the fixture's account.
func (f *fixture) clientAssertion(tb testing.TB, jti string) string {
	tb.Helper()
	now := time.Now()
	raw, err := jwt.Signed(f.signer).Claims(map[string]any{
		"iss": f.clientID, "sub": f.clientID, "aud": issuer,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": jti,
	}).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// TestClientAssertionSingleUse: a client assertion authenticates one
// request, at whichever endpoint: the token endpoint, introspection or
// revocation. One captured on its way to any of them is refused at all
// of them until it expires, as a replay to the token endpoint always was.
func TestClientAssertionSingleUse(t *testing.T) {
	f := newFixture(t)
	ids := []string{f.email}
	if _, err := f.admin.UpdateAPI(context.Background(), admin.Actor{ID: "test"}, "orders", admin.APIUpdate{Introspectors: &ids}); err != nil {
		t.Fatal(err)
	}
	tok := f.accessToken(t, "opaque")
	bodies := map[string]string{
		"/token":      "grant_type=client_credentials&scope=orders.read",
		"/introspect": "token=" + url.QueryEscape(tok),
		"/revoke":     "token=" + url.QueryEscape(oauth2.OpaqueTokenPrefix+strings.Repeat("A", 43)), // unknown: 200
	}
	paths := []string{"/token", "/introspect", "/revoke"}
	for _, first := range paths {
		for _, second := range paths {
			t.Run(first+" then "+second, func(t *testing.T) {
				a := f.clientAssertion(t, "jti-"+first+second)
				send := func(path string) (int, string) {
					body := bodies[path] + "&client_assertion_type=" + url.QueryEscape(oauth2.ClientAssertionJWT) + "&client_assertion=" + a
					w := f.doPath(path, body, "")
					return w.Code, w.Body.String()
				}
				if code, body := send(first); code != http.StatusOK {
					t.Fatalf("first use at %s: %d %s", first, code, body)
				}
				if code, body := send(second); code != http.StatusUnauthorized || !strings.Contains(body, `"invalid_client"`) {
					t.Fatalf("replay at %s: %d %s, want 401 invalid_client", second, code, body)
				}
			})
		}
	}
}

// TestClientAssertionReplayAuditActor: a client assertion replayed to the
// introspection or revocation endpoint proves nothing of who sent it
// again, so its refusal's event names the account it claims as client_id,
// not as the actor (as the token endpoint's token.refused does): anyone
// who saw the assertion could otherwise put refusals in its name.
func TestClientAssertionReplayAuditActor(t *testing.T) {
	f := newFixture(t)
	ids := []string{f.email}
	if _, err := f.admin.UpdateAPI(context.Background(), admin.Actor{ID: "test"}, "orders", admin.APIUpdate{Introspectors: &ids}); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, action, body string }{
		{"/introspect", "token.introspect", "token=" + url.QueryEscape(f.accessToken(t, "opaque"))},
		{"/revoke", "token.revoke", "token=" + url.QueryEscape(oauth2.OpaqueTokenPrefix+strings.Repeat("A", 43))},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			body := tt.body + "&client_assertion_type=" + url.QueryEscape(oauth2.ClientAssertionJWT) + "&client_assertion=" + f.clientAssertion(t, "once"+tt.path)
			if w := f.doPath(tt.path, body, ""); w.Code != http.StatusOK {
				t.Fatalf("first use: %d %s", w.Code, w.Body)
			}
			if w := f.doPath(tt.path, body, ""); w.Code != http.StatusUnauthorized {
				t.Fatalf("replay: %d %s, want 401", w.Code, w.Body)
			}
			evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: tt.action, Newest: true, Limit: 2})
			if err != nil || len(evs) != 2 {
				t.Fatalf("%d events, %v; want 2", len(evs), err)
			}
			if first := evs[1]; first.Actor != f.clientID {
				t.Errorf("first use: actor %q, want %q", first.Actor, f.clientID)
			}
			if replay := evs[0]; replay.Outcome != storage.OutcomeFailure || replay.Actor != "" || replay.Data["client_id"] != f.clientID {
				t.Errorf("replay: %s, actor %q, client_id %q; want a failure, no actor, client_id %q", replay.Outcome, replay.Actor, replay.Data["client_id"], f.clientID)
			}
		})
	}
}

// TestJWTBearerClientAssertionReplay: a JWT-bearer request whose client
// authenticates with private_key_jwt, and whose grant assertion has no
// jti (Google's client libraries send none), can be refused as a replay
// only for its client assertion: that is a failed client authentication,
// 401 invalid_client (RFC 7523 §3.2), not a refused grant.
func TestJWTBearerClientAssertionReplay(t *testing.T) {
	f := newFixture(t)
	c := f.clientAssertion(t, "client-once")
	send := func() (int, string) {
		body := "grant_type=" + url.QueryEscape(oauth2.GrantJWTBearer) + "&assertion=" + f.assertion(t, "") +
			"&client_assertion_type=" + url.QueryEscape(oauth2.ClientAssertionJWT) + "&client_assertion=" + c
		w := f.do(body, "")
		return w.Code, w.Body.String()
	}
	if code, body := send(); code != http.StatusOK {
		t.Fatalf("first use: %d %s", code, body)
	}
	if code, body := send(); code != http.StatusUnauthorized || !strings.Contains(body, `"invalid_client"`) {
		t.Fatalf("client assertion replayed: %d %s, want 401 invalid_client", code, body)
	}
}

// TestJWTBearerBothAssertionsReplay: a JWT-bearer request whose grant
// assertion has a jti and whose client authenticates with private_key_jwt
// may be refused as a replay of either assertion (the store does not say
// which): the description names both, so that a client that resends its
// client assertion with a new grant assertion learns which to make anew.
func TestJWTBearerBothAssertionsReplay(t *testing.T) {
	f := newFixture(t)
	c := f.clientAssertion(t, "client-twice")
	send := func(grantJTI string) (int, string) {
		body := "grant_type=" + url.QueryEscape(oauth2.GrantJWTBearer) + "&assertion=" + f.assertion(t, grantJTI) +
			"&client_assertion_type=" + url.QueryEscape(oauth2.ClientAssertionJWT) + "&client_assertion=" + c
		w := f.do(body, "")
		return w.Code, w.Body.String()
	}
	if code, body := send("grant-1"); code != http.StatusOK {
		t.Fatalf("first use: %d %s", code, body)
	}
	// A new grant assertion, the same client assertion.
	if code, body := send("grant-2"); code != http.StatusBadRequest || !strings.Contains(body, `"invalid_grant"`) ||
		!strings.Contains(body, "client assertion") {
		t.Fatalf("client assertion replayed: %d %s, want 400 invalid_grant naming the client assertion", code, body)
	}
}
