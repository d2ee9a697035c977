package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	kwadmin "github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/testkeyward"
)

// TestReplicas runs two servers on one PostgreSQL database and checks that
// they behave as one.
func TestReplicas(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	masterKey := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(masterKey, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	replica := func(m *Main) {
		m.Config.Issuer = "http://keyward.test" // the load balancer's URL, shared by the replicas
		m.Config.DB = dsn
		m.Config.MasterKeyFile = masterKey
		m.Config.CacheTTL = time.Hour // only notifications can make changes felt quickly
		m.Config.DPoPNonce = true
	}
	a := startServer(t, replica)
	b := startServer(t, replica)
	// C, a third replica, serves TLS and takes client certificates: the
	// certificate tokens of the binding test are got there. It starts with
	// the others, so that it listens for changes long before that test.
	f := newTLSFixture(t)
	c := startServer(t, replica, func(m *Main) {
		m.Config.TLSCert, m.Config.TLSKey, m.Config.TLSClientCA = f.serverCert, f.serverKey, f.caFile
	})
	if a.AdminKeyFile == "" || b.AdminKeyFile != "" {
		t.Fatalf("bootstrap ran on %q and %q; want exactly the first replica", a.AdminKeyFile, b.AdminKeyFile)
	}
	admin := []string{"--credentials", a.AdminKeyFile, "--server", a.URL()}
	acct := replicaClient(t, admin)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	runCLI(t, append([]string{"keys", "create", acct.Email, "--out", keyFile}, admin...)...)

	post := func(m *Main, path string, form url.Values) (int, map[string]any) {
		return postAs(t, m, acct.ID, acct.Secret, path, form)
	}
	token := func(m *Main) (int, string) {
		status, body := post(m, "/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}})
		tok, _ := body["access_token"].(string)
		return status, tok
	}
	active := func(m *Main, tok string) bool {
		status, body := post(m, "/introspect", url.Values{"token": {tok}})
		if status != 200 {
			t.Fatalf("introspect: %d %v", status, body)
		}
		return body["active"] == true
	}
	// waitFor polls until cond holds, and fails after 3 s (the cache TTL is
	// an hour, so only a notification can make it hold).
	waitFor := func(what string, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > 3*time.Second {
				t.Fatalf("%s: not seen by the other replica after 3s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start)
	}

	t.Run("a token from one verifies and introspects on the other", func(t *testing.T) {
		_, tok := token(a)
		if !active(b, tok) {
			t.Fatal("B does not know A's token")
		}
		var jwksA, jwksB []byte
		for _, m := range []*Main{a, b} {
			resp, err := http.Get(m.URL() + "/.well-known/jwks.json")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m == a {
				jwksA = body
			} else {
				jwksB = body
			}
		}
		if !bytes.Equal(jwksA, jwksB) {
			t.Fatal("the replicas serve different JWKS")
		}
	})

	t.Run("a jti used on one is refused on the other", func(t *testing.T) {
		assertion := clientAssertion(t, keyFile, acct.ID, a.Issuer, "once")
		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
		if status, body := postNoAuth(t, a, form); status != 200 {
			t.Fatalf("first use on A: %d %v", status, body)
		}
		if status, body := postNoAuth(t, b, form); status != 401 || body["error"] != "invalid_client" {
			t.Fatalf("the assertion used on A was accepted on B: %d %v", status, body)
		}
	})

	t.Run("disable on one is felt on the other", func(t *testing.T) {
		if status, _ := token(b); status != 200 {
			t.Fatal("B refuses before the disable")
		}
		_, tok := token(a)
		active(b, tok) // B caches the account
		runCLI(t, append([]string{"sa", "disable", acct.Email}, admin...)...)
		took := waitFor("disable", func() bool { s, _ := token(b); return s != 200 })
		t.Logf("B refused new tokens %v after A's disable", took)
		runCLI(t, append([]string{"sa", "enable", acct.Email}, admin...)...)
		waitFor("enable", func() bool { s, _ := token(b); return s == 200 })
	})

	t.Run("a revocation on one is felt on the other", func(t *testing.T) {
		_, tok := token(a)
		if !active(b, tok) { // B caches the verified token and "not revoked"
			t.Fatal("fresh token inactive on B")
		}
		if status, body := post(a, "/revoke", url.Values{"token": {tok}}); status != 200 {
			t.Fatalf("revoke on A: %d %v", status, body)
		}
		took := waitFor("revocation", func() bool { return !active(b, tok) })
		t.Logf("B saw the revocation %v after A", took)
	})

	t.Run("rotation happens once and reaches both", func(t *testing.T) {
		before := b.signer.CurrentKeyID()
		runCLI(t, append([]string{"signing-keys", "rotate"}, admin...)...)
		waitFor("rotation", func() bool {
			return b.signer.CurrentKeyID() != before && b.signer.CurrentKeyID() == a.signer.CurrentKeyID()
		})
		keys, err := a.store.ListSigningKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		current := 0
		for _, k := range keys {
			if !k.ActivatedAt.IsZero() && k.RetiredAt.IsZero() {
				current++
			}
		}
		if current != 1 {
			t.Fatalf("%d current signing keys after rotation, want 1", current)
		}
	})

	t.Run("concurrent load on both", func(t *testing.T) {
		const workers, each = 8, 25
		var (
			wg       sync.WaitGroup
			failures atomic.Int32
			jtiWins  atomic.Int32
		)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					m := a
					if (w+i)%2 == 1 {
						m = b
					}
					if status, _ := token(m); status != 200 {
						failures.Add(1)
					}
					// Every worker races for the same few jtis, on both replicas.
					jti := fmt.Sprintf("race-%d", i)
					form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
						"client_assertion": {clientAssertion(t, keyFile, acct.ID, m.Issuer, jti)}}
					if status, _ := postNoAuth(t, m, form); status == 200 {
						jtiWins.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if failures.Load() != 0 {
			t.Fatalf("%d token requests failed under load", failures.Load())
		}
		// However many racers, on whichever replica, each jti wins once.
		if jtiWins.Load() != each {
			t.Fatalf("%d uses of %d single-use jtis succeeded, want exactly %d", jtiWins.Load(), each, each)
		}
		// The audit chain written by both replicas verifies.
		if _, err := storage.VerifyLog(context.Background(), a.store); err != nil {
			t.Fatalf("the audit chain written by two replicas does not verify: %v", err)
		}
	})

	t.Run("a binding change on one ends the certificate tokens on the other", func(t *testing.T) {
		certToken := func(cn string) (int, string) {
			cert := f.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.caPool, Certificates: []tls.Certificate{cert}}}}
			resp, err := hc.PostForm(c.URL()+"/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {acct.ID}, "scope": {"orders.read"}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			tok, _ := body["access_token"].(string)
			return resp.StatusCode, tok
		}
		update := func(args ...string) {
			runCLI(t, append(append([]string{"sa", "update", acct.Email}, args...), admin...)...)
		}
		update("--auth-methods", "client_secret_basic,private_key_jwt,tls_client_auth", "--tls-subject-dn", "CN=job")
		status, certTok := certToken("job") // C reads the account first now
		if status != 200 {
			t.Fatalf("the bound certificate on C: %d", status)
		}
		_, secretTok := token(a)
		if !active(b, certTok) || !active(b, secretTok) { // B caches the account, no revocation set
			t.Fatal("fresh tokens inactive on B")
		}
		update("--tls-subject-dn", "CN=job2")
		took := waitFor("binding change", func() bool { return !active(b, certTok) })
		t.Logf("B saw the account's certificate tokens end %v after A's binding change", took)
		if !active(b, secretTok) {
			t.Error("the secret's token ended with the binding change")
		}
		// Once C too has the account as changed (its introspection says
		// so), the newly bound certificate gets a token there.
		activeOnC := func(tok string) bool {
			req, _ := http.NewRequest("POST", c.URL()+"/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(acct.ID, acct.Secret)
			resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.caPool}}}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			return body["active"] == true
		}
		waitFor("binding change on C", func() bool { return !activeOnC(certTok) })
		status, next := certToken("job2")
		if status != 200 {
			t.Fatalf("the newly bound certificate on C: %d", status)
		}
		if !active(a, next) {
			t.Error("a certificate token got after the change is inactive")
		}
	})

	t.Run("account, secret and key changes on one end what the other cached", func(t *testing.T) {
		ctx := context.Background()
		svc := a.Server.Admin
		for i, tt := range []struct {
			name   string
			change func(acctID, secretID, keyID string) error
			// Whether tokens got with the secret, and with the key, end.
			secretEnds, keyEnds bool
		}{
			{"revoke-tokens", func(id, _, _ string) error { _, err := svc.RevokeAccountTokens(ctx, changeActor, id); return err }, true, true},
			{"secret deleted", func(id, sec, _ string) error { return svc.DeleteSecret(ctx, changeActor, id, sec) }, true, false},
			{"secret disabled", func(id, sec, _ string) error {
				_, err := svc.SetSecretDisabled(ctx, changeActor, id, sec, true)
				return err
			}, true, false},
			{"key deleted", func(id, _, kid string) error { return svc.DeleteKey(ctx, changeActor, id, kid) }, false, true},
			{"key disabled", func(id, _, kid string) error {
				_, err := svc.SetKeyDisabled(ctx, changeActor, id, kid, true)
				return err
			}, false, true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				acct, err := svc.CreateAccount(ctx, changeActor, kwadmin.AccountInput{Name: fmt.Sprintf("changed-%d", i), Project: "shop", Scopes: []string{"orders.read"}})
				if err != nil {
					t.Fatal(err)
				}
				sec, err := svc.CreateSecret(ctx, changeActor, acct.ID, 0)
				if err != nil {
					t.Fatal(err)
				}
				kf, err := svc.CreateKey(ctx, changeActor, acct.ID, 0)
				if err != nil {
					t.Fatal(err)
				}
				key := filepath.Join(t.TempDir(), "key.json")
				data, _ := json.Marshal(kf)
				mustWriteFile(t, key, data)
				viaSecret := func() (int, string) {
					status, body := postAs(t, b, acct.ID, sec.Value, "/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}})
					tok, _ := body["access_token"].(string)
					return status, tok
				}
				n := 0
				viaKey := func() (int, string) {
					n++
					status, body := postNoAuth(t, b, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"},
						"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
						"client_assertion":      {clientAssertion(t, key, acct.ID, b.Issuer, fmt.Sprintf("%s-%d", acct.ID, n))}})
					tok, _ := body["access_token"].(string)
					return status, tok
				}
				// B issues and introspects both tokens: it caches the
				// account, its secrets and its keys.
				s1, secretTok := viaSecret()
				s2, keyTok := viaKey()
				if s1 != 200 || s2 != 200 || !active(b, secretTok) || !active(b, keyTok) {
					t.Fatalf("before the change: tokens %d and %d", s1, s2)
				}
				if err := tt.change(acct.ID, sec.ID, kf.PrivateKeyID); err != nil {
					t.Fatal(err)
				}
				took := waitFor(tt.name, func() bool { return active(b, secretTok) != tt.secretEnds && active(b, keyTok) != tt.keyEnds })
				t.Logf("B saw %s %v after A", tt.name, took)
				// The other credential works on B as before; the changed
				// one, but for a revocation, no longer does.
				for _, c := range []struct {
					what  string
					get   func() (int, string)
					works bool
				}{{"secret", viaSecret, !tt.secretEnds || tt.name == "revoke-tokens"}, {"key", viaKey, !tt.keyEnds || tt.name == "revoke-tokens"}} {
					status, tok := c.get()
					if c.works && (status != 200 || !active(b, tok) || !active(a, tok)) {
						t.Errorf("a token got with the %s on B after %s: %d, active on B %v", c.what, tt.name, status, status == 200 && active(b, tok))
					}
					if !c.works && status != 401 {
						t.Errorf("a token got with the %s on B after %s: %d, want 401", c.what, tt.name, status)
					}
				}
			})
		}
	})

	t.Run("an opaque token from one introspects on the other, and its revocation there ends it on the first", func(t *testing.T) {
		ctx := context.Background()
		svc := a.Server.Admin
		if _, err := svc.CreateAPI(ctx, changeActor, kwadmin.APIInput{Name: "ledger", Identifier: "https://ledger.internal", Scopes: []string{"ledger.read"}, TokenFormat: "opaque"}); err != nil {
			t.Fatal(err)
		}
		owner, err := svc.CreateAccount(ctx, changeActor, kwadmin.AccountInput{Name: "ledger-client", Project: "shop", Scopes: []string{"ledger.read"}})
		if err != nil {
			t.Fatal(err)
		}
		ownerSecret, err := svc.CreateSecret(ctx, changeActor, owner.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		postOwner := func(m *Main, path string, form url.Values) (int, map[string]any) {
			return postAs(t, m, owner.ID, ownerSecret.Value, path, form)
		}
		// Each caches the other's opaque token as active, then sees it revoked on the other.
		for _, pair := range [][2]*Main{{a, b}, {b, a}} {
			issuer, other := pair[0], pair[1]
			status, body := postOwner(issuer, "/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"ledger.read"}})
			tok, _ := body["access_token"].(string)
			if status != 200 || strings.Count(tok, ".") == 2 {
				t.Fatalf("opaque token: %d %v", status, body)
			}
			if !active(other, tok) || !active(issuer, tok) {
				t.Fatal("a fresh opaque token is inactive on a replica")
			}
			if status, body := postOwner(other, "/revoke", url.Values{"token": {tok}}); status != 200 {
				t.Fatalf("revoke: %d %v", status, body)
			}
			if active(other, tok) {
				t.Fatal("the revoked opaque token is active where it was revoked")
			}
			waitFor("opaque revocation", func() bool { return !active(issuer, tok) })
		}
	})

	t.Run("a token signed at once after a rotation on one verifies on the other", func(t *testing.T) {
		before := b.signer.CurrentKeyID()
		if err := a.signer.Rotate(context.Background(), "test", ""); err != nil {
			t.Fatal(err)
		}
		if a.signer.CurrentKeyID() == before {
			t.Fatal("A did not rotate")
		}
		// A signs with its new key at once; B, which may not have reloaded
		// yet, published that key before and verifies it.
		_, tok := token(a)
		if !active(b, tok) {
			t.Fatal("B does not verify a token A signed right after rotating")
		}
		var set struct{ Keys []struct{ Kid string } }
		getJSON(t, b.URL()+"/.well-known/jwks.json", &set)
		if !slices.ContainsFunc(set.Keys, func(k struct{ Kid string }) bool { return k.Kid == a.signer.CurrentKeyID() }) {
			t.Fatalf("B's JWKS lacks the key A signs with now, %s", a.signer.CurrentKeyID())
		}
		waitFor("rotation", func() bool { return b.signer.CurrentKeyID() == a.signer.CurrentKeyID() })
	})

	t.Run("a DPoP proof used on one is refused on the other, which takes its nonces", func(t *testing.T) {
		p := dpoptest.NewProver(t)
		send := func(m *Main, proof string) (int, map[string]any, string) {
			req, _ := http.NewRequest("POST", m.URL()+"/token", strings.NewReader("grant_type=client_credentials&scope=orders.read"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("DPoP", proof)
			req.SetBasicAuth(acct.ID, acct.Secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			return resp.StatusCode, body, resp.Header.Get("DPoP-Nonce")
		}
		proof, _ := p.Proof("POST", a.Issuer+"/token", "", time.Now())
		status, body, nonce := send(a, proof)
		if status != 400 || body["error"] != "use_dpop_nonce" || nonce == "" {
			t.Fatalf("a proof without a nonce on A: %d %v, nonce %q", status, body, nonce)
		}
		proof, _ = p.ProofWithNonce("POST", a.Issuer+"/token", "", nonce, time.Now())
		if status, body, _ := send(b, proof); status != 200 || body["token_type"] != "DPoP" {
			t.Fatalf("A's nonce on B: %d %v", status, body)
		}
		if status, body, _ := send(a, proof); status != 400 || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("the proof used on B, replayed on A: %d %v", status, body)
		}
	})
}

// changeActor is the actor of the changes the tests make through the admin service.
var changeActor = kwadmin.Actor{ID: "test"}

func postNoAuth(t *testing.T, m *Main, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(m.URL()+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// onOneStore returns the option that makes servers replicas of one new
// PostgreSQL schema: one issuer, the schema and one master key.
func onOneStore(t *testing.T) func(*Main) {
	t.Helper()
	dsn := pgtest.SchemaDSN(t)
	masterKey := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(masterKey, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(m *Main) {
		m.Config.Issuer, m.Config.DB, m.Config.MasterKeyFile = "http://keyward.test", dsn, masterKey
	}
}

// withOptions is one option that applies opts in turn.
func withOptions(opts ...func(*Main)) func(*Main) {
	return func(m *Main) {
		for _, o := range opts {
			o(m)
		}
	}
}

// openReplica opens, but does not run, a server with option replica: it
// has loaded the signing keys and may cache, and hears no notifications.
func openReplica(t *testing.T, replica func(*Main)) *Main {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	replica(m)
	t.Cleanup(func() { m.Close() })
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// replicaAccount is the service account replicaClient makes.
type replicaAccount struct{ ID, Email, Secret string }

// replicaClient makes, with the admin CLI flags admin, the API orders and
// the account job, which may get its tokens and introspect them, with a
// secret.
func replicaClient(t *testing.T, admin []string) replicaAccount {
	t.Helper()
	runCLI(t, append([]string{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read"}, admin...)...)
	var acct struct {
		ID    string `json:"client_id"`
		Email string `json:"email"`
	}
	json.Unmarshal([]byte(runCLI(t, append([]string{"sa", "create", "job", "--project", "shop", "--scopes", "orders.read,keyward.introspect", "-o", "json"}, admin...)...)), &acct)
	var sec struct {
		Secret string `json:"client_secret"`
	}
	json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "create", acct.Email, "-o", "json"}, admin...)...)), &sec)
	if acct.ID == "" || sec.Secret == "" {
		t.Fatalf("the account job and its secret were not made: %+v", acct)
	}
	return replicaAccount{acct.ID, acct.Email, sec.Secret}
}

// postAs posts form to m's path, authenticated with HTTP Basic as the
// client id with secret, and returns the answer's status and JSON body.
func postAs(t *testing.T, m *Main, id, secret, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", m.URL()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// keyFileKey reads the key file at path: its private_key_id and its
// private key (PKCS #8, as keyward keys create writes it).
func keyFileKey(t *testing.T, path string) (kid string, priv any) {
	t.Helper()
	var kf struct {
		ID  string `json:"private_key_id"`
		Key string `json:"private_key"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(kf.Key))
	if block == nil {
		t.Fatalf("%s: its private_key is not PEM", path)
	}
	priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return kf.ID, priv
}

// clientAssertion signs a private_key_jwt assertion with a key file.
func clientAssertion(t *testing.T, keyFile, clientID, issuer, jti string) string {
	t.Helper()
	kid, priv := keyFileKey(t, keyFile)
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	now := time.Now()
	raw, err := jwt.Signed(s).Claims(map[string]any{"iss": clientID, "sub": clientID, "aud": issuer + "/token",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": jti}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A replica whose notification connection was lost missed the changes made
// meanwhile: Watch then sends ChangeAll, which reloads the signing keys as
// well as dropping the cache. It only dropped the cache: after rotations
// made in the gap, the replica signed with a retired key, and did not
// publish, or verify the tokens of, the key the others signed with, until
// its next refresh a minute later.
func TestReplicaReloadsSigningKeysAfterLostNotifications(t *testing.T) {
	// What Watch sends on reconnecting; and a payload this release does
	// not know, which a later one, upgraded first, may send.
	for _, change := range []string{storage.ChangeAll, "a_later_kind"} {
		t.Run(change, func(t *testing.T) { testReloadsSigningKeysOn(t, change) })
	}
}

func testReloadsSigningKeysOn(t *testing.T, change string) {
	replica := onOneStore(t)
	a := startServer(t, replica)
	// B is opened but not run: it hears no notifications, as a replica
	// whose connection is lost.
	b := openReplica(t, replica)
	// Two rotations: A signs with a key created after B loaded its keys.
	for range 2 {
		if err := a.signer.Rotate(context.Background(), "test", ""); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := a.signer.Sign(map[string]any{"iss": "http://keyward.test"})
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := b.signer.Verify(tok, &claims); err == nil {
		t.Fatal("B verifies a key it cannot have loaded: the test proves nothing")
	}
	b.applyChange(change)
	for start := time.Now(); b.signer.CurrentKeyID() != a.signer.CurrentKeyID() || !bytes.Equal(b.signer.JWKS(), a.signer.JWKS()); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("5 s after %q B signs with %s, A with %s; JWKS equal: %v", change, b.signer.CurrentKeyID(), a.signer.CurrentKeyID(), bytes.Equal(b.signer.JWKS(), a.signer.JWKS()))
		}
	}
	if err := b.signer.Verify(tok, &claims); err != nil {
		t.Fatalf("B does not verify A's token after %q: %v", change, err)
	}
}

// TestReplicasMasterKeyRotate: `keyward master-key rotate` run while two
// replicas serve on the old key says they keep it and are to be
// restarted with the new one. They go on issuing, verifying and
// introspecting each other's tokens with the keys and pepper they hold;
// a signing-key rotation asked of one of them is refused, as a conflict
// that says to restart it with the new key, and changes nothing; a
// replica started on the new key serves the same keys and secrets.
func TestReplicasMasterKeyRotate(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	dir := t.TempDir()
	oldKey, newKey := filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	mustWriteFile(t, oldKey, []byte(strings.Repeat("ab", 32)))
	mustWriteFile(t, newKey, []byte(strings.Repeat("cd", 32)))
	replica := func(key string) func(*Main) {
		return func(m *Main) { m.Config.Issuer, m.Config.DB, m.Config.MasterKeyFile = "http://keyward.test", dsn, key }
	}
	a := startServer(t, replica(oldKey))
	b := startServer(t, replica(oldKey))
	admin := []string{"--credentials", a.AdminKeyFile, "--server", a.URL()}
	acct := replicaClient(t, admin)
	post := func(m *Main, path string, form url.Values) (int, map[string]any) {
		return postAs(t, m, acct.ID, acct.Secret, path, form)
	}
	// each gets a token from one replica and introspects it on the other.
	each := func(when string, ms ...*Main) {
		t.Helper()
		for i, m := range ms {
			other := ms[(i+1)%len(ms)]
			status, body := post(m, "/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}})
			if status != 200 {
				t.Fatalf("%s: token from %s: %d %v", when, m.URL(), status, body)
			}
			if _, in := post(other, "/introspect", url.Values{"token": {body["access_token"].(string)}}); in["active"] != true {
				t.Fatalf("%s: %s's token on %s: %v", when, m.URL(), other.URL(), in)
			}
		}
	}
	each("before the rotation", a, b)
	keysBefore, err := a.store.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := runCLI(t, "master-key", "rotate", "--db", dsn, "--master-key-file", oldKey, "--new-master-key-file", newKey)
	// It says so, and what to do: the output named only the key to start
	// with, as if no server were running.
	if want := "servers still running on this store keep the old master key in memory"; !strings.Contains(out, want) || !strings.Contains(out, "restart each one with the new key") {
		t.Errorf("rotate's output %q does not say %q and to restart each one with the new key", out, want)
	}
	time.Sleep(100 * time.Millisecond) // the replicas hear of it (and fail to reload)
	each("after the rotation", a, b)

	err = runCLIErr(t, append([]string{"signing-keys", "rotate"}, admin...)...)
	t.Logf("signing-keys rotate on a replica with the old master key: %v", err)
	if err == nil {
		t.Fatal("a replica with the old master key rotated the signing keys")
	}
	if msg := err.Error(); !strings.Contains(msg, "another master key") || !strings.Contains(msg, "(conflict)") {
		t.Fatalf("signing-keys rotate on a replica with the old master key: %v; want the conflict that says to restart it with the new key, not a failure to retry", err)
	}
	keysAfter, err := a.store.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(keysAfter) != len(keysBefore) {
		t.Fatalf("%d signing keys after the refused rotation, %d before", len(keysAfter), len(keysBefore))
	}
	for i := range keysBefore {
		if keysAfter[i].ID != keysBefore[i].ID || !keysAfter[i].ActivatedAt.Equal(keysBefore[i].ActivatedAt) || !keysAfter[i].RetiredAt.Equal(keysBefore[i].RetiredAt) {
			t.Fatalf("signing key %s changed by a refused rotation", keysBefore[i].ID)
		}
	}
	c := startServer(t, replica(newKey))
	if !bytes.Equal(c.signer.JWKS(), a.signer.JWKS()) {
		t.Fatal("the replica on the new master key publishes other keys")
	}
	each("with a replica on the new key", a, c, b)
}

// A replica whose clock is behind the one that revoked an account's tokens
// sees the revocation, through the store, before its clock reaches the
// revocation's second: a token it issues then waits for the second after
// the revocation, and is active. It was issued at once, born revoked.
func TestReplicaBehindRevokerIssuesLiveTokens(t *testing.T) {
	replica := withOptions(onOneStore(t), func(m *Main) { m.Config.CacheTTL = time.Hour })
	// A's clock is a second ahead of B's: A's revocation is in B's next second.
	a := startServer(t, replica, func(m *Main) { m.Now = func() time.Time { return time.Now().Add(time.Second) } })
	b := startServer(t, replica)
	admin := []string{"--credentials", a.AdminKeyFile, "--server", a.URL()}
	acct := replicaClient(t, admin)
	post := func(m *Main, path string, form url.Values) map[string]any {
		_, body := postAs(t, m, acct.ID, acct.Secret, path, form)
		return body
	}
	token := func() string {
		tok, _ := post(b, "/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}})["access_token"].(string)
		return tok
	}
	active := func(m *Main, tok string) bool {
		return post(m, "/introspect", url.Values{"token": {tok}})["active"] == true
	}
	old := token()
	if !active(b, old) {
		t.Fatal("B's token inactive before the revocation")
	}
	if _, err := a.Server.Admin.RevokeAccountTokens(context.Background(), changeActor, acct.ID); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); active(b, old); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 3*time.Second {
			t.Fatal("B does not see A's revocation")
		}
	}
	tok := token()
	if !active(b, tok) || !active(a, tok) {
		t.Fatal("B issued a token born revoked by A's revocation")
	}
}

// Replicas started at once on an empty database all come up: they take
// turns at the migrations, one creates the signing keys, the pepper and the
// administrator account, the others use them. Exactly one keeps an
// administrator key file, which works on every replica, and all publish
// the same keys.
func TestReplicasStartTogether(t *testing.T) {
	replica := onOneStore(t)
	const n = 3
	ms := make([]*Main, n)
	errs := make(chan error, n)
	for i := range ms {
		cfg := DefaultConfig()
		cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
		ms[i] = &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		replica(ms[i])
		t.Cleanup(func() { ms[i].Close() })
		go func() { errs <- ms[i].Open(context.Background()) }()
	}
	for range ms {
		if err := <-errs; err != nil {
			t.Fatalf("a replica failed to start: %v", err)
		}
	}
	var keyFile string
	for _, m := range ms {
		if m.AdminKeyFile != "" {
			if keyFile != "" {
				t.Fatalf("two replicas kept administrator key files: %s and %s", keyFile, m.AdminKeyFile)
			}
			keyFile = m.AdminKeyFile
		}
		if !bytes.Equal(m.signer.JWKS(), ms[0].signer.JWKS()) {
			t.Fatal("the replicas publish different signing keys")
		}
	}
	if keyFile == "" {
		t.Fatal("no replica kept an administrator key file")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, m := range ms {
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	for _, m := range ms {
		if out := runCLI(t, "whoami", "--credentials", keyFile, "--server", m.URL()); !strings.Contains(out, "keyward.admin") {
			t.Fatalf("whoami on %s with the administrator key: %q", m.URL(), out)
		}
	}
	keys, err := ms[0].store.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d signing keys after starting together, want 2 (current and next)", len(keys))
	}
	if _, err := storage.VerifyLog(context.Background(), ms[0].store); err != nil {
		t.Fatalf("the audit chain written by replicas starting together: %v", err)
	}
}

// A replica hears of the changes other replicas made between its start
// (Open, which loads the signing keys and may cache) and the moment its
// LISTEN is in place, which no notification announces: once listening it
// reloads the keys and drops its cache. It did neither: it signed with a
// retired key, without publishing the key the others signed with, until
// its refresh a minute later, and kept what it had cached until the TTL.
func TestReplicaAppliesChangesMadeWhileStarting(t *testing.T) {
	replica := withOptions(onOneStore(t), func(m *Main) { m.Config.CacheTTL = time.Hour })
	a := startServer(t, replica)
	ctx := context.Background()
	acct, err := a.Server.Admin.CreateAccount(ctx, changeActor, kwadmin.AccountInput{Name: "job", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	// B is opened, not yet run: it has loaded the keys, and caches the account.
	b := openReplica(t, replica)
	if _, err := b.Server.Cache.GetAccount(ctx, acct.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := a.signer.Rotate(ctx, "test", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Server.Admin.SetAccountDisabled(ctx, changeActor, acct.ID, true); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		got, err := b.Server.Cache.GetAccount(ctx, acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Disabled && b.signer.CurrentKeyID() == a.signer.CurrentKeyID() && bytes.Equal(b.signer.JWKS(), a.signer.JWKS()) {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("5 s after starting, B sees the account disabled: %v; signs with %s, A with %s", got.Disabled, b.signer.CurrentKeyID(), a.signer.CurrentKeyID())
		}
	}
}

// A read a starting replica began before its LISTEN was in place, which
// found the account still enabled and ends only after the catch-up that
// follows the LISTEN (its cache dropped), is not cached over that
// catch-up: the account another replica disabled meanwhile is seen
// disabled at once, not after the TTL (an hour here). The catch-up must
// drop the cache as a notification does, so that a fill begun before it
// is refused.
func TestReplicaStartingCachesNoReadBeganBeforeItListened(t *testing.T) {
	stall := &stallAfterRead{read: make(chan struct{}), release: make(chan struct{})}
	replica := withOptions(onOneStore(t), func(m *Main) { m.Config.CacheTTL = time.Hour })
	a := startServer(t, replica)
	ctx := context.Background()
	acct, err := a.Server.Admin.CreateAccount(ctx, changeActor, kwadmin.AccountInput{Name: "job", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	b := openReplica(t, withOptions(replica, func(m *Main) {
		m.wrapStore = func(s storage.Storage) storage.Storage { stall.Storage = s; return stall }
	}))
	stall.armed.Store(true)
	stale := make(chan storage.Account, 1)
	go func() {
		got, _ := b.Server.Cache.GetAccount(ctx, acct.ID)
		stale <- got
	}()
	<-stall.read // B read the account enabled, and has yet to cache it
	if _, err := a.Server.Admin.SetAccountDisabled(ctx, changeActor, acct.ID, true); err != nil {
		t.Fatal(err)
	}
	// A rotation too, unheard by B: once B signs with A's current key,
	// its catch-up, which drops the cache before it reloads the keys,
	// is done.
	if err := a.signer.Rotate(ctx, "test", ""); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	for start := time.Now(); b.signer.CurrentKeyID() != a.signer.CurrentKeyID(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("B did not catch up with A's rotation 5 s after starting")
		}
	}
	close(stall.release)
	if got := <-stale; got.Disabled {
		t.Fatal("the read that began before the change saw it: the test did not stall it")
	}
	got, err := b.Server.Cache.GetAccount(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Disabled {
		t.Fatal("B serves the account enabled: a read begun before its LISTEN was cached over its catch-up")
	}
}

// With --cache-ttl 0 a replica keeps nothing: a change another replica
// makes is felt at the next lookup, even unheard (B here never listens).
// The 0 reached the cache, whose 0 is its default: 2 s.
func TestCacheTTLZeroKeepsNothing(t *testing.T) {
	replica := withOptions(onOneStore(t), func(m *Main) { m.Config.CacheTTL = 0 })
	a, b := openReplica(t, replica), openReplica(t, replica)
	ctx := context.Background()
	acct, err := a.Server.Admin.CreateAccount(ctx, changeActor, kwadmin.AccountInput{Name: "job", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Server.Cache.GetAccount(ctx, acct.ID); err != nil || got.Disabled {
		t.Fatalf("B reads %+v, %v; want the account enabled", got, err)
	}
	if _, err := a.Server.Admin.SetAccountDisabled(ctx, changeActor, acct.ID, true); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Server.Cache.GetAccount(ctx, acct.ID); err != nil || !got.Disabled {
		t.Fatalf("B reads %+v, %v after A disabled the account; want it disabled at once", got, err)
	}
}

// stallAfterRead is a store whose next GetAccount, once armed, reads and
// then signals read and waits for release before it returns.
type stallAfterRead struct {
	storage.Storage
	armed         atomic.Bool
	read, release chan struct{}
}

func (s *stallAfterRead) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	a, err := s.Storage.GetAccount(ctx, id)
	if s.armed.CompareAndSwap(true, false) {
		close(s.read)
		<-s.release
	}
	return a, err
}

// A replica whose notification connection is cut (here by the database,
// pg_terminate_backend) reconnects; what changed while it was away is
// felt at once (its cache is dropped once it listens again), and so are
// the changes after. The cache TTL is an hour: nothing else could make
// them felt.
func TestReplicaNotificationConnectionCut(t *testing.T) {
	replica := withOptions(onOneStore(t), func(m *Main) { m.Config.CacheTTL = time.Hour })
	a := startServer(t, replica)
	b := startServer(t, replica)
	ctx := context.Background()
	svc := a.Server.Admin
	acct, secret := testkeyward.OrdersJob(t, svc, changeActor)
	token := func() int {
		status, _ := postAs(t, b, acct.ID, secret, "/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}})
		return status
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s: not felt on B after 5 s", what)
			}
		}
	}
	setDisabled := func(disabled bool) {
		t.Helper()
		if _, err := svc.SetAccountDisabled(ctx, changeActor, acct.ID, disabled); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("pgx", a.Config.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// cut ends the replicas' LISTEN connections on this schema's channel.
	cut := func() {
		t.Helper()
		var n int
		if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE query LIKE 'LISTEN %' AND query LIKE '%' || current_schema() || '%' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("ended %d LISTEN connections, want the 2 replicas'", n)
		}
	}
	listening := func() bool {
		var n int
		db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND query LIKE '%' || current_schema() || '%'`).Scan(&n)
		return n == 2
	}
	waitFor("both replicas listening", listening)
	if token() != 200 {
		t.Fatal("B refuses before the cut")
	}
	cut()
	// While B is away (it waits 100 ms before reconnecting): it caches
	// the account again, and A disables it, unheard.
	time.Sleep(20 * time.Millisecond)
	if token() != 200 {
		t.Fatal("B refuses while away, before the change")
	}
	setDisabled(true)
	waitFor("a disable made while B was away", func() bool { return token() != 200 })
	// B hears the changes on its new connection.
	waitFor("both replicas listening again", listening)
	setDisabled(false)
	waitFor("an enable made after B reconnected", func() bool { return token() == 200 })
}

// TestReplicasMasterKeyRotateCheckFails: a rotation on PostgreSQL whose
// check of the new key fails after the commit still says that servers
// running on the store keep the old key until restarted, as the store is
// sealed under the new one; it returned the check's error before saying so.
func TestReplicasMasterKeyRotateCheckFails(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	dir := t.TempDir()
	oldKey, newKey := filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	mustWriteFile(t, oldKey, []byte(strings.Repeat("ab", 32)))
	mustWriteFile(t, newKey, []byte(strings.Repeat("cd", 32)))
	startServer(t, func(m *Main) {
		m.Config.Issuer, m.Config.DB, m.Config.MasterKeyFile = "http://keyward.test", dsn, oldKey
	}) // a replica running
	closeAfterRotate(t)
	cmd := newRootCommand()
	var out strings.Builder
	cmd.SetArgs([]string{"master-key", "rotate", "--db", dsn, "--master-key-file", oldKey, "--new-master-key-file", newKey})
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	err := execute(context.Background(), cmd)
	if err == nil || !strings.Contains(err.Error(), "sealed under the new master key") {
		t.Fatalf("rotate whose check of the new key failed: %v, want the store said sealed under the new key", err)
	}
	if want := "servers still running on this store keep the old master key in memory"; !strings.Contains(out.String(), want) {
		t.Errorf("rotate's output %q does not say %q", out.String(), want)
	}
	if strings.Contains(out.String(), "start every server with the new key") {
		t.Errorf("rotate's output %q says to start with the new key as on success; the error says it", out.String())
	}
}
