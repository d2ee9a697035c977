package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/google"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/testkeyward"
)

// backends runs fn against the embedded SQLite store and, when the DSN is
// set, PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, mod func(*Main))) {
	t.Run("sqlite", func(t *testing.T) { fn(t, func(*Main) {}) })
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.SchemaDSN(t)
		fn(t, func(m *Main) { m.Config.DB = dsn })
	})
}

type lifecycle struct {
	t      *testing.T
	m      *Main
	admin  []string
	clock  *testkeyward.Clock
	issuer string
}

// account creates an account with a secret and returns its client ID and
// secret.
func (l *lifecycle) account(name string, scopes string) (id, email, secret string) {
	l.t.Helper()
	var a struct {
		ClientID string `json:"client_id"`
		Email    string `json:"email"`
	}
	json.Unmarshal([]byte(runCLI(l.t, append([]string{"sa", "create", name, "--project", "shop", "--scopes", scopes, "-o", "json"}, l.admin...)...)), &a)
	var s struct {
		Secret string `json:"client_secret"`
	}
	json.Unmarshal([]byte(runCLI(l.t, append([]string{"secrets", "create", a.Email, "-o", "json"}, l.admin...)...)), &s)
	return a.ClientID, a.Email, s.Secret
}

func (l *lifecycle) post(path, id, secret string, form url.Values) (int, map[string]any) {
	l.t.Helper()
	req, _ := http.NewRequest("POST", l.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (l *lifecycle) token(id, secret, scope string) string {
	l.t.Helper()
	status, body := l.post("/token", id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	if status != 200 {
		l.t.Fatalf("token: %d %v", status, body)
	}
	return body["access_token"].(string)
}

func (l *lifecycle) introspect(id, secret, tok string) (int, map[string]any) {
	l.t.Helper()
	return l.post("/introspect", id, secret, url.Values{"token": {tok}})
}

func (l *lifecycle) active(id, secret, tok string) bool {
	l.t.Helper()
	status, body := l.introspect(id, secret, tok)
	if status != 200 {
		l.t.Fatalf("introspect: %d %v", status, body)
	}
	if body["active"] != true && len(body) != 1 {
		l.t.Fatalf("an inactive token's response must be {\"active\":false} only, got %v", body)
	}
	return body["active"] == true
}

// TestTokenLifecycle covers opaque tokens, introspection, revocation and
// instant disable on each storage backend.
func TestTokenLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, mod func(*Main)) {
		clk := testkeyward.NewClock(time.Now())
		l := &lifecycle{t: t, clock: clk}
		l.m = startServer(t, mod, func(m *Main) { m.Now = clk.Now })
		l.admin = []string{"--credentials", l.m.AdminKeyFile}
		l.issuer = l.m.Issuer

		runCLI(t, append([]string{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read", "--token-format", "opaque"}, l.admin...)...)
		runCLI(t, append([]string{"api", "create", "billing", "--identifier", "https://billing.internal", "--scopes", "billing.read"}, l.admin...)...)
		jobID, jobEmail, jobSecret := l.account("job", "orders.read,billing.read")
		otherID, _, otherSecret := l.account("other", "orders.read")
		ordersAPI, ordersEmail, ordersSecret := l.account("orders-api", "orders.read")
		billingAPI, billingEmail, billingSecret := l.account("billing-api", "billing.read")
		runCLI(t, append([]string{"api", "update", "orders", "--introspectors", ordersEmail}, l.admin...)...)
		runCLI(t, append([]string{"api", "update", "billing", "--introspectors", billingEmail}, l.admin...)...)
		_, _ = ordersAPI, billingAPI

		opaque := l.token(jobID, jobSecret, "orders.read")
		jwtTok := l.token(jobID, jobSecret, "billing.read")
		if !strings.HasPrefix(opaque, "kwat_") || strings.Count(jwtTok, ".") != 2 {
			t.Fatalf("formats: opaque %q…, jwt %q…", opaque[:8], jwtTok[:8])
		}

		t.Run("introspect active", func(t *testing.T) {
			status, body := l.introspect(ordersAPI, ordersSecret, opaque)
			if status != 200 || body["active"] != true || body["client_id"] != jobID || body["scope"] != "orders.read" ||
				body["aud"] != "https://orders.internal" || body["iss"] != l.issuer || body["token_type"] != "Bearer" || body["jti"] == nil {
				t.Fatalf("%d %v", status, body)
			}
			if !l.active(billingAPI, billingSecret, jwtTok) {
				t.Fatal("JWT inactive for its API")
			}
		})
		t.Run("other audience is inactive", func(t *testing.T) {
			if l.active(billingAPI, billingSecret, opaque) || l.active(ordersAPI, ordersSecret, jwtTok) {
				t.Fatal("an API learned about a token for another API")
			}
		})
		t.Run("no permission", func(t *testing.T) {
			if status, body := l.introspect(otherID, otherSecret, opaque); status != 403 || body["error"] != "access_denied" {
				t.Fatalf("%d %v, want 403", status, body)
			}
		})
		t.Run("unauthenticated", func(t *testing.T) {
			if status, body := l.introspect("", "", opaque); status != 401 || body["error"] != "invalid_client" {
				t.Fatalf("%d %v, want 401 invalid_client", status, body)
			}
		})
		t.Run("garbage is inactive", func(t *testing.T) {
			for _, tok := range []string{"kwat_nope", "a.b.c", "", "x"} {
				if tok == "" {
					if status, _ := l.introspect(ordersAPI, ordersSecret, tok); status != 400 {
						t.Fatalf("empty token: %d, want 400", status)
					}
					continue
				}
				if l.active(ordersAPI, ordersSecret, tok) {
					t.Fatalf("%q active", tok)
				}
			}
		})
		t.Run("revocation by a foreign client", func(t *testing.T) {
			status, body := l.post("/revoke", otherID, otherSecret, url.Values{"token": {opaque}})
			if status != 400 || body["error"] != "unauthorized_client" {
				t.Fatalf("%d %v, want 400 unauthorized_client", status, body)
			}
			if !l.active(ordersAPI, ordersSecret, opaque) {
				t.Fatal("a foreign client's revocation killed the token")
			}
		})
		t.Run("unknown token revokes fine", func(t *testing.T) {
			if status, _ := l.post("/revoke", jobID, jobSecret, url.Values{"token": {"kwat_unknown"}}); status != 200 {
				t.Fatalf("%d, want 200", status)
			}
		})
		t.Run("revoke then introspect", func(t *testing.T) {
			for _, tc := range []struct{ tok, id, secret string }{{opaque, ordersAPI, ordersSecret}, {jwtTok, billingAPI, billingSecret}} {
				if status, _ := l.post("/revoke", jobID, jobSecret, url.Values{"token": {tc.tok}}); status != 200 {
					t.Fatalf("revoke: %d", status)
				}
				if l.active(tc.id, tc.secret, tc.tok) {
					t.Fatal("revoked token still active")
				}
			}
			// A revoked opaque token is still known: its later uses are
			// traced to it and its account, and revoking it again says so.
			last := func(action string) storage.AuditEvent {
				t.Helper()
				evs, err := l.m.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: action})
				if err != nil || len(evs) == 0 {
					t.Fatalf("%s events: %v, %v", action, evs, err)
				}
				return slices.MaxFunc(evs, func(a, b storage.AuditEvent) int { return cmp.Compare(a.Seq, b.Seq) })
			}
			if l.active(ordersAPI, ordersSecret, opaque) {
				t.Fatal("revoked opaque token active")
			}
			if ev := last("token.introspect"); ev.Data["reason"] != "revoked" || ev.Data["token_id"] == "" || ev.AccountID != jobID {
				t.Fatalf("the introspection of the revoked opaque token: %+v, want reason revoked, its token_id and account", ev)
			}
			if status, _ := l.post("/revoke", jobID, jobSecret, url.Values{"token": {opaque}}); status != 200 {
				t.Fatalf("revoke again: %d", status)
			}
			if ev := last("token.revoke"); ev.Data["result"] != "already revoked" || ev.Data["token_id"] == "" {
				t.Fatalf("revoking it again: %+v, want result already revoked with its token_id", ev)
			}
		})
		t.Run("disable account", func(t *testing.T) {
			tok := l.token(jobID, jobSecret, "billing.read")
			runCLI(t, append([]string{"sa", "disable", jobEmail}, l.admin...)...)
			if l.active(billingAPI, billingSecret, tok) {
				t.Fatal("token of a disabled account still active")
			}
			runCLI(t, append([]string{"sa", "enable", jobEmail}, l.admin...)...)
			if !l.active(billingAPI, billingSecret, tok) {
				t.Fatal("token not active again after enabling the account")
			}
		})
		t.Run("disable the secret", func(t *testing.T) {
			tok := l.token(jobID, jobSecret, "billing.read")
			var secs struct {
				Secrets []struct {
					ID string `json:"secret_id"`
				} `json:"secrets"`
			}
			json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "list", jobEmail, "-o", "json"}, l.admin...)...)), &secs)
			runCLI(t, append([]string{"secrets", "disable", jobEmail, secs.Secrets[0].ID}, l.admin...)...)
			if l.active(billingAPI, billingSecret, tok) {
				t.Fatal("token obtained with a disabled secret still active")
			}
			runCLI(t, append([]string{"secrets", "enable", jobEmail, secs.Secrets[0].ID}, l.admin...)...)
		})
		t.Run("disable the key", func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "key.json")
			runCLI(t, append([]string{"keys", "create", jobEmail, "--out", keyFile}, l.admin...)...)
			data := mustReadFile(t, keyFile)
			conf, _ := google.JWTConfigFromJSON(data, "billing.read")
			tok, err := conf.TokenSource(context.Background()).Token()
			if err != nil {
				t.Fatal(err)
			}
			if !l.active(billingAPI, billingSecret, tok.AccessToken) {
				t.Fatal("fresh JWT-bearer token inactive")
			}
			runCLI(t, append([]string{"keys", "disable", jobEmail, conf.PrivateKeyID}, l.admin...)...)
			if l.active(billingAPI, billingSecret, tok.AccessToken) {
				t.Fatal("token obtained with a disabled key still active")
			}
		})
		t.Run("revoke all of an account's tokens", func(t *testing.T) {
			tok := l.token(jobID, jobSecret, "billing.read")
			runCLI(t, append([]string{"sa", "revoke-tokens", jobEmail}, l.admin...)...)
			if l.active(billingAPI, billingSecret, tok) {
				t.Fatal("token still active after revoke-tokens")
			}
			clk.Add(2 * time.Second)
			if fresh := l.token(jobID, jobSecret, "billing.read"); !l.active(billingAPI, billingSecret, fresh) {
				t.Fatal("a token issued after revoke-tokens is inactive")
			}
		})
		t.Run("admin revokes by jti", func(t *testing.T) {
			tok := l.token(jobID, jobSecret, "billing.read")
			_, body := l.introspect(billingAPI, billingSecret, tok)
			runCLI(t, append([]string{"tokens", "revoke", body["jti"].(string)}, l.admin...)...)
			if l.active(billingAPI, billingSecret, tok) {
				t.Fatal("token still active after tokens revoke")
			}
		})
		// Every admin API refusal is audited (admin.refused) but a read
		// of nothing; what the CLI did routinely above was refused
		// nothing.
		t.Run("admin refusals", func(t *testing.T) {
			const nobody = "nobody@shop.iam.keyward.internal"
			if err := runCLIErr(t, append([]string{"sa", "get", nobody}, l.admin...)...); err == nil {
				t.Fatal("sa get of nobody succeeded")
			}
			if err := runCLIErr(t, append([]string{"sa", "delete", nobody}, l.admin...)...); err == nil {
				t.Fatal("sa delete of nobody succeeded")
			}
			evs, err := l.m.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: admin.ActionRefused})
			if err != nil || len(evs) != 1 || evs[0].Data["method"] != "DELETE" || evs[0].Data["status"] != "404" {
				t.Fatalf("admin.refused events: %+v (%v), want only the DELETE's 404", evs, err)
			}
		})
		t.Run("expired", func(t *testing.T) {
			tok := l.token(jobID, jobSecret, "orders.read")
			clk.Add(2 * time.Hour)
			if l.active(ordersAPI, ordersSecret, tok) {
				t.Fatal("expired token active")
			}
		})
	})
}

// TestIntrospectionAudit checks when introspections reach the audit log:
// refused ones and those answered {"active":false} before their answer;
// those that find their token active before their answer with
// --introspection-audit-interval 0, and otherwise in summaries, written
// every interval and at shutdown.
func TestIntrospectionAudit(t *testing.T) {
	for _, tt := range []struct {
		name     string
		interval time.Duration
	}{
		{"each before its answer", 0},
		{"summary every interval", 20 * time.Millisecond},
		{"summary at shutdown", time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			backends(t, func(t *testing.T, mod func(*Main)) {
				// The server's clock is an hour ahead: a summary's time must
				// come from it, as its first and last do.
				m, stop := launchServer(t, mod, func(m *Main) {
					m.Config.IntrospectionAudit = tt.interval
					m.Now = func() time.Time { return time.Now().Add(time.Hour) }
				})
				defer stop()
				l := &lifecycle{t: t, m: m, admin: []string{"--credentials", m.AdminKeyFile}, issuer: m.Issuer}
				runCLI(t, append([]string{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read", "--token-format", "opaque"}, l.admin...)...)
				jobID, _, jobSecret := l.account("job", "orders.read")
				apiID, apiEmail, apiSecret := l.account("orders-api", "orders.read")
				runCLI(t, append([]string{"api", "update", "orders", "--introspectors", apiEmail}, l.admin...)...)
				tok := l.token(jobID, jobSecret, "orders.read")
				for range 3 {
					if !l.active(apiID, apiSecret, tok) {
						t.Fatal("token inactive")
					}
				}
				if status, _ := l.introspect(apiID, "kw_wrong", tok); status != http.StatusUnauthorized {
					t.Fatalf("wrong secret: status %d", status)
				}
				if l.active(apiID, apiSecret, "kwat_unknown") {
					t.Fatal("an unknown token is active")
				}

				listed := func() []map[string]any {
					return jsonLines[map[string]any](t, runCLI(t, append([]string{"audit", "list", "--action", "token.introspect", "-o", "json"}, l.admin...)...))
				}
				// counts returns the refusals, the inactive answers and the
				// active ones: written one by one, or counted in summaries.
				counts := func(evs []map[string]any) (refused, inactive, each, summarized int) {
					t.Helper()
					for _, e := range evs {
						data, _ := e["data"].(map[string]any)
						switch {
						case e["outcome"] == "failure":
							refused++
						case data["active"] == "false" && data["count"] == nil:
							inactive++
						case data["active"] == "true" && data["count"] == nil:
							each++
						case data["active"] == "true" && data["token_id"] != nil && data["first"] != nil && data["last"] != nil:
							n, _ := strconv.Atoi(data["count"].(string))
							summarized += n
							at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(e["time"]))
							last, _ := time.Parse(time.RFC3339Nano, data["last"].(string))
							if at.Before(last) {
								t.Errorf("summary written at %v, before its last event at %v", e["time"], data["last"])
							}
						default:
							t.Errorf("unexpected event %v", e)
						}
					}
					return
				}
				check := func(evs []map[string]any, wantEach bool) {
					t.Helper()
					refused, inactive, each, summarized := counts(evs)
					if refused != 1 || inactive != 1 || (wantEach && (each != 3 || summarized != 0)) || (!wantEach && (each != 0 || summarized != 3)) {
						t.Fatalf("events %v: %d refused (want 1), %d inactive (want 1), %d active one by one, %d in summaries", evs, refused, inactive, each, summarized)
					}
				}

				switch tt.interval {
				case 0:
					check(listed(), true)
				case time.Hour:
					if evs := listed(); len(evs) != 2 {
						t.Fatalf("before shutdown: %v, want the refusal and the inactive answer only", evs)
					}
					stop()
					st, err := openStore(context.Background(), m.Config, m.Logger)
					if err != nil {
						t.Fatal(err)
					}
					defer st.Close()
					stored, err := st.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.introspect"})
					if err != nil {
						t.Fatal(err)
					}
					var evs []map[string]any
					for _, e := range stored {
						data := map[string]any{}
						for k, v := range e.Data {
							data[k] = v
						}
						evs = append(evs, map[string]any{"outcome": e.Outcome, "data": data, "time": e.Time.UTC().Format(time.RFC3339Nano)})
					}
					check(evs, false)
				default:
					// The three may fall into one summary or more.
					deadline := time.Now().Add(30 * time.Second)
					for {
						if _, _, _, n := counts(listed()); n >= 3 || time.Now().After(deadline) {
							break
						}
						time.Sleep(10 * time.Millisecond)
					}
					check(listed(), false)
				}
			})
		})
	}
}
