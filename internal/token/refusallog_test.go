package token_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// TestRefusalLogNamesTheClient: the log line of a refused token request
// names the client whose authentication failed, as its audit event does
// (client_id), so that an operator sees which client is failing; a client
// ID shaped like a secret is not logged, and an authenticated account is
// named as account alone.
func TestRefusalLogNamesTheClient(t *testing.T) {
	const pasted = "kw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	const jwtShaped = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiIxMDAwMDAwMDAwMDAwMDAwMDAwMDEifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
	// base64url of "{\n  \"alg\": \"ES256\"\n}": ew…, not eyJ….
	const prettyJWT = "ewogICJhbGciOiAiRVMyNTYiCn0.eyJpc3MiOiIxMDAwMDAwMDAwMDAwMDAwMDAwMDEifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
	// The first 128 bytes of a P-256 key's PEM hold its private scalar.
	const pemKey = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSecretScalarSecretScalarSecretScalarAAAAhRANCAAT\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name     string
		id, sec  string
		scope    string
		want     []string
		wantNot  []string
		wantCode int
	}{
		{"wrong secret", "100000000000000000001", "kw_wrong", "", []string{`account="" client_id=100000000000000000001 `}, nil, 401},
		{"unknown client", "999", "kw_wrong", "", []string{`account="" client_id=999 `}, nil, 401},
		{"secret as client ID", pasted, "kw_wrong", "", []string{`client_id="(not recorded: shaped like a secret or token)"`}, []string{pasted}, 401},
		// A credential that is not the whole client ID, or not in the
		// exact form Keyward gives it, is no less one (the 43 characters
		// after its prefix are its 256 bits).
		{"secret in quotes", `"` + pasted + `"`, "kw_wrong", "", []string{`client_id="(not recorded: shaped like a secret or token)"`}, []string{pasted[3:]}, 401},
		{"secret after a label", "client_secret=" + pasted, "kw_wrong", "", []string{`client_id="(not recorded: shaped like a secret or token)"`}, []string{pasted[3:]}, 401},
		{"secret with its prefix upper-cased", "KW_" + pasted[3:], "kw_wrong", "", []string{`client_id="(not recorded: shaped like a secret or token)"`}, []string{pasted[3:]}, 401},
		{"token after Bearer", "Bearer kwat_" + pasted[3:], "kw_wrong", "", []string{`client_id="(not recorded: shaped like a secret or token)"`}, []string{pasted[3:]}, 401},
		{"JWT after Bearer", "Bearer " + jwtShaped, "kw_wrong", "", []string{`client_id="(not recorded: shaped like a secret or token)"`}, []string{jwtShaped[:60]}, 401},
		{"JWT with a pretty-printed header", prettyJWT, "kw_wrong", "", []string{`client_id="(not recorded: shaped like a secret or token)"`}, []string{prettyJWT[:60]}, 401},
		{"PEM private key", pemKey, "kw_wrong", "", []string{`client_id="(not recorded: shaped like a secret or token)"`}, []string{"MIGHAgEAMBMGByqGSM49"}, 401},
		{"authenticated, scope refused", "100000000000000000001", jobSecret, "nope.read", []string{"account=100000000000000000001 source="}, []string{"client_id="}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			body := url.Values{"grant_type": {"client_credentials"}}
			if tt.scope != "" {
				body.Set("scope", tt.scope)
			}
			w := e.do(request{body: body.Encode(), header: http.Header{"Authorization": {basicAuth(tt.id, tt.sec)}}})
			if w.Code != tt.wantCode {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.wantCode)
			}
			var line string
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(l, `msg="token request refused"`) {
					line = l
				}
			}
			for _, want := range tt.want {
				if !strings.Contains(line, want) {
					t.Errorf("refusal log line %q, want it to hold %q", line, want)
				}
			}
			for _, not := range tt.wantNot {
				if strings.Contains(line, not) {
					t.Errorf("refusal log line %q holds %q", line, not)
				}
			}
		})
	}
}

// TestRefusalLogNamesTheAssertionIssuer: a refused request whose client is
// named only by an assertion's iss — private_key_jwt without client_id, or
// a JWT-bearer assertion of an unknown account, or one whose signature or
// another check failed — logs that iss as client_id, as a client_id sent
// with a secret is, so that an operator sees which client is failing; an
// iss shaped like a secret is not logged. Only an account that
// authenticated is logged as account.
func TestRefusalLogNamesTheAssertionIssuer(t *testing.T) {
	const pasted = "kw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	e := newEnv(t)
	clientAssertion := func(iss, aud string) string {
		return url.Values{
			"grant_type": {"client_credentials"}, "scope": {"orders.read"},
			"client_assertion_type": {oauth2.ClientAssertionJWT},
			"client_assertion": {sign(t, e.rsKey, jose.RS256, "rs", map[string]any{
				"iss": iss, "sub": iss, "aud": aud, "jti": "j-" + iss + aud,
				"iat": t0.Add(-10 * time.Second).Unix(), "exp": t0.Add(time.Minute).Unix()}, nil)},
		}.Encode()
	}
	bearer := func(iss string) string {
		return form(sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) { c["iss"] = iss }), nil))
	}
	// An assertion of job's (iss job@proj.iam.test) signed with key,
	// its claims changed by mod.
	jobBearer := func(key any, mod func(map[string]any)) string {
		return form(sign(t, key, jose.RS256, "rs", claims(mod), nil))
	}
	replayed := jobBearer(e.rsKey, func(c map[string]any) { c["jti"] = "used-once" })
	if w := e.do(request{body: replayed, remote: "198.51.100.1"}); w.Code != 200 {
		t.Fatalf("first use: %d %s", w.Code, w.Body)
	}
	tests := []struct {
		name, body string
		want       string
		wantNot    string
	}{
		{"client assertion, wrong aud", clientAssertion(e.job.ID, "https://elsewhere.example"), `account="" client_id=100000000000000000001 `, ""},
		{"client assertion, unknown client", clientAssertion("999", endpoint), `account="" client_id=999 `, ""},
		{"client assertion, secret as iss", clientAssertion(pasted, endpoint), `client_id="(not recorded: shaped like a secret or token)"`, pasted[3:]},
		{"JWT-bearer, unknown account", bearer("nobody@proj.iam.test"), `account="" client_id=nobody@proj.iam.test `, ""},
		{"JWT-bearer, secret as iss", bearer(pasted), `client_id="(not recorded: shaped like a secret or token)"`, pasted[3:]},
		// An account named by an assertion that fails a check is only
		// claimed: anyone may write its email in an iss.
		{"JWT-bearer, bad signature", jobBearer(e.other, nil), `account="" client_id=job@proj.iam.test `, "account=" + e.job.ID},
		{"JWT-bearer, expired", jobBearer(e.rsKey, func(c map[string]any) { c["exp"] = t0.Add(-time.Hour).Unix() }), `account="" client_id=job@proj.iam.test `, "account=" + e.job.ID},
		{"JWT-bearer, replayed", replayed, `account="" client_id=job@proj.iam.test `, "account=" + e.job.ID},
		{"JWT-bearer, verified, scope refused", jobBearer(e.rsKey, func(c map[string]any) { c["scope"] = "nope.read" }), "account=" + e.job.ID + " source=", "client_id="},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w := e.do(request{body: tt.body, remote: fmt.Sprintf("192.0.2.%d", i+1)}); w.Code < 400 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var line string
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(l, `msg="token request refused"`) {
					line = l
				}
			}
			if !strings.Contains(line, tt.want) {
				t.Errorf("refusal log line %q, want it to hold %q", line, tt.want)
			}
			if tt.wantNot != "" && strings.Contains(line, tt.wantNot) {
				t.Errorf("refusal log line %q holds %q", line, tt.wantNot)
			}
		})
	}
}

// TestRefusalLogOmitsCredentialAsScope: a client secret sent as the
// scope or resource is refused without being repeated in the refusal's
// description, which is logged and audited.
func TestRefusalLogOmitsCredentialAsScope(t *testing.T) {
	const pasted = "kw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	e := newEnv(t)
	for _, param := range []string{"scope", "resource"} {
		t.Run(param, func(t *testing.T) {
			body := url.Values{"grant_type": {"client_credentials"}, param: {pasted}}
			w := e.do(request{body: body.Encode(), header: http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}})
			if w.Code != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", w.Code, w.Body)
			}
			if strings.Contains(e.logs.String(), pasted[3:]) {
				t.Errorf("the log holds the secret sent as %s:\n%s", param, e.logs)
			}
			if strings.Contains(w.Body.String(), pasted[3:]) {
				t.Errorf("the answer repeats the secret sent as %s: %s", param, w.Body)
			}
		})
	}
}

// TestRefusalLogNamesUnsupportedGrant: the log line of a request for a
// grant type the server does not serve says which one was asked for, as
// its cause (grant is "unsupported", a closed set for metrics), quoted as
// descriptions quote a client's value, and never a credential sent as one.
func TestRefusalLogNamesUnsupportedGrant(t *testing.T) {
	const pasted = "kw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	tests := []struct {
		name, grant, want, wantNot string
	}{
		{"password", "password", `cause="grant_type 'password'" grant=unsupported `, ""},
		{"refresh_token", "refresh_token", `cause="grant_type 'refresh_token'"`, ""},
		{"secret as grant_type", pasted, `cause="grant_type '(not repeated: shaped like a secret or token)'"`, pasted[3:]},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(request{body: url.Values{"grant_type": {tt.grant}}.Encode(), remote: fmt.Sprintf("192.0.2.%d", i+1)})
			if w.Code != http.StatusBadRequest || strings.Contains(w.Body.String(), "grant_type '") {
				t.Fatalf("%d %s, want 400 unsupported_grant_type, its description unchanged", w.Code, w.Body)
			}
			var line string
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(l, `msg="token request refused"`) {
					line = l
				}
			}
			if !strings.Contains(line, tt.want) {
				t.Errorf("refusal log line %q, want it to hold %q", line, tt.want)
			}
			if tt.wantNot != "" && strings.Contains(e.logs.String(), tt.wantNot) {
				t.Errorf("the log holds %q:\n%s", tt.wantNot, e.logs)
			}
		})
	}
}

// TestRefusalLogKeys: the token endpoint's refusal line is
// clientauth.LogRefusal's, with the grant before the client: the keys
// operators query, in the order /introspect and /revoke log them, and
// grant even when the request named none.
func TestRefusalLogKeys(t *testing.T) {
	keyRE := regexp.MustCompile(`(?:^| )([a-z_]+)=`)
	tests := []struct {
		name, body, id, sec string
		want                string
	}{
		{"wrong secret", "grant_type=client_credentials", "100000000000000000001", "kw_wrong", "time level msg error description cause grant account client_id source"},
		{"scope refused", "grant_type=client_credentials&scope=nope.read", "100000000000000000001", jobSecret, "time level msg error description cause grant account source"},
		{"no grant_type", "scope=x", "100000000000000000001", jobSecret, "time level msg error description cause grant account source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.do(request{body: tt.body, header: http.Header{"Authorization": {basicAuth(tt.id, tt.sec)}}})
			var line string
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(l, `msg="token request refused"`) {
					line = l
				}
			}
			var keys []string
			for _, m := range keyRE.FindAllStringSubmatch(line, -1) {
				keys = append(keys, m[1])
			}
			if got := strings.Join(keys, " "); got != tt.want {
				t.Errorf("keys %q, want %q (line %q)", got, tt.want, line)
			}
		})
	}
}

// TestJWTBearerClientIDRefusalLog: a JWT-bearer request refused because
// its client_id is not the assertion's account logs the client_id as
// presented (clientauth.PresentedID) in its cause, never one shaped like
// a secret, and its token.refused audit event records it so too, as
// request_client_id: the event named only the assertion's account.
func TestJWTBearerClientIDRefusalLog(t *testing.T) {
	const pasted = "kw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, tt := range []struct{ name, id, want, event string }{
		{"another account", "other@proj.iam.test", `client_id \"other@proj.iam.test\" is not the assertion's account`, "other@proj.iam.test"},
		{"a secret", pasted, `client_id \"(not recorded: shaped like a secret or token)\"`, "(not recorded: shaped like a secret or token)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil), "client_id", tt.id)})
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("%d %s, want 401", w.Code, w.Body)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, tt.want) || strings.Contains(logs, pasted) {
				t.Errorf("logs %s\nwant %s in them, and no secret", logs, tt.want)
			}
			e.lastEvent(t, "token.refused", "invalid_client")
			evs, _ := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused"})
			if last := evs[len(evs)-1]; last.Data["request_client_id"] != tt.event || strings.Contains(fmt.Sprint(last.Data), pasted) {
				t.Errorf("token.refused data %v, want request_client_id %q, and no secret", last.Data, tt.event)
			}
		})
	}
	// Other refusals have no request_client_id: a bad signature's, with
	// no client_id sent.
	e := newEnv(t)
	bad := sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil)
	bad = bad[:len(bad)-4] + "AAAA"
	if w := e.do(request{body: form(bad)}); w.Code == http.StatusOK {
		t.Fatalf("a forged signature: %d %s", w.Code, w.Body)
	}
	evs, _ := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused"})
	if len(evs) == 0 {
		t.Fatal("a forged signature wrote no token.refused event")
	}
	if v, ok := evs[len(evs)-1].Data["request_client_id"]; ok {
		t.Errorf("a forged signature's event has request_client_id %q", v)
	}
}

// TestRefusalLogUnknownClientCause: a token request of a client no
// service account is logged, at info as every client's mistake is, with
// a cause an operator reads as it is, not the store's error chain ("get
// account: not found"), whether the store or the cache was asked.
func TestRefusalLogUnknownClientCause(t *testing.T) {
	for _, cached := range []bool{false, true} {
		e := newEnvOn(t, cached)
		clientAssertion := url.Values{
			"grant_type": {"client_credentials"}, "scope": {"orders.read"},
			"client_assertion_type": {oauth2.ClientAssertionJWT},
			"client_assertion": {sign(t, e.rsKey, jose.RS256, "rs", map[string]any{
				"iss": "999", "sub": "999", "aud": endpoint, "jti": "j-999",
				"iat": t0.Add(-10 * time.Second).Unix(), "exp": t0.Add(time.Minute).Unix()}, nil)},
		}.Encode()
		secret := func(id string) request {
			return request{body: "grant_type=client_credentials", header: http.Header{"Authorization": {basicAuth(id, "kw_wrong")}}}
		}
		tests := []struct {
			name string
			req  request
			want string
		}{
			{"secret, client ID", secret("999"), `cause="no service account has this client ID"`},
			{"secret, email", secret("nobody@proj.iam.test"), `cause="no service account has this email"`},
			{"client assertion", request{body: clientAssertion}, `cause="no service account has this client ID"`},
		}
		for i, tt := range tests {
			t.Run(fmt.Sprintf("%s, cached %v", tt.name, cached), func(t *testing.T) {
				tt.req.remote = fmt.Sprintf("192.0.2.%d", i+1)
				if w := e.do(tt.req); w.Code != 401 {
					t.Fatalf("%d %s, want 401", w.Code, w.Body)
				}
				var line string
				for _, l := range strings.Split(e.logs.String(), "\n") {
					if strings.Contains(l, `msg="token request refused"`) {
						line = l
					}
				}
				if !strings.Contains(line, "level=INFO") || !strings.Contains(line, tt.want) || strings.Contains(line, "not found") {
					t.Errorf("refusal log line %q, want level=INFO and %s", line, tt.want)
				}
			})
		}
	}
}
