package server_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeyward"
)

// No credential a client sends, in the right place or the wrong one,
// reaches the log (at debug, with every request's line), the audit log or
// the answer: a secret sent as the client ID, a token in the query, an
// assertion where a secret goes, and the like.
func TestNoCredentialInLogsOrAudit(t *testing.T) {
	var logs testkeyward.SyncBuffer
	f := newFixture(t, func(_ *server.Config, d *server.Deps) {
		d.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	opaque := f.accessToken(t, "opaque")
	jwtTok := f.accessToken(t, "jwt")
	assertion := f.assertion(t, "probe")
	clientAssertion := f.clientAssertion(t, "probe-ca")
	// A JWT is a credential by its signature: the part that must not leak.
	sig := func(s string) string { return s[strings.LastIndexByte(s, '.')+1:] }
	creds := map[string]string{
		"secret": f.secret, "opaque": opaque, "jwt": sig(jwtTok), "assertion": sig(assertion), "client assertion": sig(clientAssertion),
	}
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	q := url.QueryEscape
	cc := "grant_type=client_credentials&scope=orders.read"
	reqs := []struct {
		name, method, path, body, auth, dpop string
	}{
		{"secret in the query", "POST", "/token?client_id=" + f.clientID + "&client_secret=" + q(f.secret), cc, "", ""},
		{"secret as client_id", "POST", "/token", cc + "&client_id=" + q(f.secret) + "&client_secret=" + q(f.secret), "", ""},
		{"secret as Basic user", "POST", "/token", cc, basic(f.secret, ""), ""},
		{"secret and ID swapped", "POST", "/token", cc, basic(f.secret, f.clientID), ""},
		{"secret of another client", "POST", "/token", cc, basic("999", f.secret), ""},
		{"secret as client_assertion", "POST", "/token", cc + "&client_assertion_type=" + q(oauth2.ClientAssertionJWT) + "&client_assertion=" + q(f.secret), "", ""},
		{"secret as assertion", "POST", "/token", "grant_type=" + q(oauth2.GrantJWTBearer) + "&assertion=" + q(f.secret), "", ""},
		{"secret given twice", "POST", "/token", cc + "&client_id=" + f.clientID + "&client_secret=" + q(f.secret) + "&client_secret=" + q(f.secret), "", ""},
		{"token as client_secret", "POST", "/token", cc + "&client_id=" + f.clientID + "&client_secret=" + q(opaque), "", ""},
		{"assertion with the wrong grant", "POST", "/token", "grant_type=client_credentials&assertion=" + q(assertion), "", ""},
		{"assertion and a secret", "POST", "/token", "grant_type=" + q(oauth2.GrantJWTBearer) + "&assertion=" + q(assertion), basic(f.clientID, f.secret+"x"), ""},
		{"assertion with a bad scope", "POST", "/token", "grant_type=" + q(oauth2.GrantJWTBearer) + "&assertion=" + q(assertion) + "&scope=nope", "", ""},
		{"client assertion as client_id", "POST", "/token", cc + "&client_id=" + q(clientAssertion) + "&client_secret=x", "", ""},
		{"client assertion in the query", "POST", "/token?client_assertion=" + q(clientAssertion), cc, "", ""},
		{"DPoP proof that is an assertion", "POST", "/token", cc, basic(f.clientID, f.secret), assertion},
		{"introspection without credentials", "POST", "/introspect", "token=" + q(opaque), "", ""},
		{"introspection by a non-introspector", "POST", "/introspect", "token=" + q(jwtTok), basic(f.clientID, f.secret), ""},
		{"introspection, token in the query", "POST", "/introspect?token=" + q(opaque), "", basic(f.clientID, f.secret), ""},
		{"revocation without credentials", "POST", "/revoke", "token=" + q(opaque), "", ""},
		{"revocation, secret as client_id", "POST", "/revoke", "token=" + q(opaque) + "&client_id=" + q(f.secret), "", ""},
		{"admin API with a non-admin token", "GET", "/v1/whoami", "", "Bearer " + opaque, ""},
		{"admin API with a JWT", "GET", "/v1/service-accounts", "", "Bearer " + jwtTok, ""},
		{"admin API with a secret", "GET", "/v1/whoami", "", "Bearer " + f.secret, ""},
		{"admin API, token in the query", "GET", "/v1/whoami?access_token=" + q(opaque), "", "", ""},
		{"admin API with Basic", "GET", "/v1/whoami", "", basic(f.clientID, f.secret), ""},
		{"secret as a secret ID", "POST", "/v1/service-accounts/" + f.email + "/secrets/" + f.secret + "/disable", "", "", ""},
		{"token as a secret ID", "DELETE", "/v1/service-accounts/" + f.email + "/secrets/" + opaque, "", "", ""},
		{"JWT in an unknown admin path", "POST", "/v1/tokens/" + jwtTok + "/revoke", "", "", ""},
		{"unknown path with a token", "GET", "/nowhere?access_token=" + q(opaque), "", "Bearer " + opaque, ""},
	}
	for _, r := range reqs {
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
		if r.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if r.auth != "" {
			req.Header.Set("Authorization", r.auth)
		}
		if r.dpop != "" {
			req.Header.Set("DPoP", r.dpop)
		}
		w := httptest.NewRecorder()
		f.handler.ServeHTTP(w, req)
		for name, c := range creds {
			if strings.Contains(w.Body.String(), c) {
				t.Errorf("%s: the answer holds the %s: %s", r.name, name, w.Body)
			}
		}
	}
	// A credential sent as the request ID, which every line about the
	// request would carry and the answer would echo.
	// Its prefix upper-cased, or a label before it, leaves its 256 bits.
	for _, c := range []string{f.secret, opaque, "req-" + f.secret, "KW_" + f.secret[3:], "KWAT_" + opaque[5:]} {
		req := httptest.NewRequest("POST", "/token", strings.NewReader(cc))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic(f.clientID, "kw_wrong"))
		req.Header.Set("X-Request-Id", c)
		w := httptest.NewRecorder()
		f.handler.ServeHTTP(w, req)
		if got := w.Header().Get("X-Request-Id"); got == "" || got == c {
			t.Errorf("credential as X-Request-Id: answered with X-Request-Id %q, want an ID of the server's", got)
		}
	}
	// Enough failures to be throttled, whose 429 names its throttle key.
	for range 30 {
		req := httptest.NewRequest("POST", "/token", strings.NewReader(cc))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic(f.secret, ""))
		f.handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var audit strings.Builder
	for _, e := range evs {
		audit.WriteString(e.Action + " " + e.AccountID + " " + e.Actor + " " + e.Source)
		for k, v := range e.Data {
			audit.WriteString(" " + k + "=" + v)
		}
		audit.WriteString("\n")
	}
	for name, c := range creds {
		// 16 bytes of one are too many.
		part := c[len(c)/2 : len(c)/2+16]
		for _, src := range []struct{ name, text string }{{"log", logs.String()}, {"audit log", audit.String()}} {
			for line := range strings.Lines(src.text) {
				if strings.Contains(line, part) {
					t.Errorf("the %s holds the %s: %s", src.name, name, line)
				}
			}
		}
	}
}
