package admin_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
)

// The server configurations that do, and do not, take CA-issued client
// certificates (tls_client_auth).
var (
	noClientCerts = func(*server.Config) {}
	clientCA      = func(c *server.Config) { c.MutualTLS, c.ClientCAs = true, x509.NewCertPool() }
	proxyClientCA = func(c *server.Config) {
		c.MutualTLS, c.ClientCAs, c.ClientCertHeader = true, x509.NewCertPool(), "X-Client-Cert"
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}
	proxyNoCA = func(c *server.Config) {
		c.MutualTLS, c.ClientCertHeader = true, "X-Client-Cert"
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}
)

// On a server that takes no CA-issued client certificates, a certificate
// binding is no way in: the admin API refuses the change that would leave
// administrators only bindings (409, saying why and what to do), the store
// checking it in the change's transaction (storage.Guard.NoCertificates).
// A server with --tls-client-ca, directly or behind a proxy, allows it.
func TestKeepsAWayInThisServerTakes(t *testing.T) {
	ctx := context.Background()
	tlsOnly, bound := []string{storage.AuthTLS}, storage.TLSBinding{SANDNS: "admin.example"}
	certOnly := admin.AccountUpdate{AuthMethods: &tlsOnly, TLS: &bound}
	secretsOnly := []string{storage.AuthSecretBasic}
	// Each sequence prepares the store with setup, all allowed anywhere,
	// and ends with last, which leaves the administrators only
	// certificate bindings; check says the refused change left the store
	// as it was.
	type env = wayInEnv
	op := admin.Actor{ID: "op"}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// certifiedSecond makes a second administrator, with only a
	// certificate binding.
	certifiedSecond := func(t *testing.T, e *env) {
		var err error
		e.second, err = e.svc.CreateAccount(ctx, op, admin.AccountInput{Name: "certified", Project: "ops", Scopes: []string{admin.AdminScope}})
		must(t, err)
		_, err = e.svc.UpdateAccount(ctx, op, e.second.ID, certOnly)
		must(t, err)
	}
	for _, seq := range []struct {
		name  string
		setup func(t *testing.T, e *env)
		last  func(t *testing.T, e *env) error
		check func(t *testing.T, e *env)
	}{
		{
			name: "switching to certificates, then deleting the last key",
			setup: func(t *testing.T, e *env) {
				// Allowed: the JWT-bearer grant takes the key whatever the methods.
				code, out, _ := e.f.call(t, "PATCH", "/v1/service-accounts/"+e.f.admin.Email, e.auth, certOnly)
				if code != 200 {
					t.Fatalf("switching to certificates with a key left: %d %v", code, out)
				}
			},
			last: func(t *testing.T, e *env) error {
				return e.call(t, "DELETE", "/v1/service-accounts/"+e.f.admin.Email+"/keys/"+e.keyID)
			},
			check: func(t *testing.T, e *env) {
				if _, err := e.f.store.GetKey(ctx, e.keyID); err != nil {
					t.Fatalf("the last key after a refused delete: %v", err)
				}
			},
		},
		{
			name: "switching to certificates, then disabling the last key",
			setup: func(t *testing.T, e *env) {
				_, err := e.svc.UpdateAccount(ctx, op, e.f.admin.ID, certOnly)
				must(t, err)
			},
			last: func(t *testing.T, e *env) error {
				_, err := e.svc.SetKeyDisabled(ctx, op, e.f.admin.ID, e.keyID, true)
				return err
			},
			check: func(t *testing.T, e *env) {
				if k, err := e.f.store.GetKey(ctx, e.keyID); err != nil || k.Disabled {
					t.Fatalf("the last key after a refused disable: %+v, %v", k, err)
				}
			},
		},
		{
			name: "trading the last secret for certificates",
			setup: func(t *testing.T, e *env) {
				_, err := e.svc.CreateSecret(ctx, op, e.f.admin.ID, 0)
				must(t, err)
				_, err = e.svc.UpdateAccount(ctx, op, e.f.admin.ID, admin.AccountUpdate{AuthMethods: &secretsOnly, TLS: &bound})
				must(t, err)
				must(t, e.svc.DeleteKey(ctx, op, e.f.admin.ID, e.keyID))
			},
			last: func(t *testing.T, e *env) error {
				_, err := e.svc.UpdateAccount(ctx, op, e.f.admin.ID, admin.AccountUpdate{AuthMethods: &tlsOnly})
				return err
			},
			check: func(t *testing.T, e *env) {
				if a, err := e.f.store.GetAccount(ctx, e.f.admin.ID); err != nil || a.AuthMethods[0] != storage.AuthSecretBasic {
					t.Fatalf("the methods after a refused change: %+v, %v", a, err)
				}
			},
		},
		{
			name: "switching to certificates, then deleting the last secret",
			setup: func(t *testing.T, e *env) {
				sec, err := e.svc.CreateSecret(ctx, op, e.f.admin.ID, 0)
				must(t, err)
				e.keyID = sec.ID // the secret is the credential in question
				_, err = e.svc.UpdateAccount(ctx, op, e.f.admin.ID, admin.AccountUpdate{AuthMethods: &[]string{storage.AuthSecretBasic, storage.AuthTLS}, TLS: &bound})
				must(t, err)
				must(t, e.svc.DeleteKey(ctx, op, e.f.admin.ID, mustKeyID(t, e)))
			},
			last: func(t *testing.T, e *env) error { return e.svc.DeleteSecret(ctx, op, e.f.admin.ID, e.keyID) },
			check: func(t *testing.T, e *env) {
				if secs, err := e.f.store.ListSecrets(ctx, e.f.admin.ID); err != nil || len(secs) != 1 {
					t.Fatalf("the secrets after a refused delete: %+v, %v", secs, err)
				}
			},
		},
		{
			name:  "disabling the administrator with a key while the other has a binding",
			setup: certifiedSecond,
			last: func(t *testing.T, e *env) error {
				_, err := e.svc.SetAccountDisabled(ctx, op, e.f.admin.ID, true)
				return err
			},
			check: func(t *testing.T, e *env) {
				if a, err := e.f.store.GetAccount(ctx, e.f.admin.ID); err != nil || a.Disabled {
					t.Fatalf("the administrator after a refused disable: %+v, %v", a, err)
				}
			},
		},
		{
			name:  "removing the scope from the administrator with a key while the other has a binding",
			setup: certifiedSecond,
			last: func(t *testing.T, e *env) error {
				_, err := e.svc.UpdateAccount(ctx, op, e.f.admin.ID, admin.AccountUpdate{Scopes: &[]string{}})
				return err
			},
			check: func(t *testing.T, e *env) {
				if a, err := e.f.store.GetAccount(ctx, e.f.admin.ID); err != nil || len(a.Scopes) != 1 {
					t.Fatalf("the administrator after a refused change: %+v, %v", a, err)
				}
			},
		},
		{
			name:  "deleting the administrator with a key while the other has a binding",
			setup: certifiedSecond,
			last:  func(t *testing.T, e *env) error { return e.svc.DeleteAccount(ctx, op, e.f.admin.ID) },
			check: func(t *testing.T, e *env) {
				if _, err := e.f.store.GetAccount(ctx, e.f.admin.ID); err != nil {
					t.Fatalf("the administrator after a refused delete: %v", err)
				}
			},
		},
	} {
		for _, srv := range []struct {
			name    string
			config  func(*server.Config)
			refused bool
		}{
			{"no client certificates", noClientCerts, true},
			{"a proxy's header without --tls-client-ca", proxyNoCA, true},
			{"--tls-client-ca", clientCA, false},
			{"--tls-client-ca behind a proxy", proxyClientCA, false},
		} {
			t.Run(seq.name+"/"+srv.name, func(t *testing.T) {
				f := newFixture(t, srv.config)
				e := &env{f: f, svc: f.srv.Admin, auth: "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)}
				e.keyID = mustKeyID(t, e)
				seq.setup(t, e)
				err := seq.last(t, e)
				if !srv.refused {
					if err != nil {
						t.Fatalf("refused on a server that takes CA-issued certificates: %v", err)
					}
					return
				}
				var oe *oauth2.Error
				if !errors.As(err, &oe) || oe.Code != admin.ErrConflict || oe.Status != 409 ||
					!strings.Contains(oe.Description, "this server has no --tls-client-ca") || !strings.Contains(oe.Description, "keyward keys create") {
					t.Fatalf("err = %v, want a 409 conflict saying this server has no --tls-client-ca and what to do", err)
				}
				seq.check(t, e)
			})
		}
	}
}

// wayInEnv is what a sequence of TestKeepsAWayInThisServerTakes works on.
type wayInEnv struct {
	f      *fixture
	svc    *admin.Service
	auth   string // the administrator's own token
	keyID  string // its key, or the credential in question
	second storage.Account
}

// mustKeyID returns the ID of the administrator's one key.
func mustKeyID(t *testing.T, e *wayInEnv) string {
	t.Helper()
	keys, err := e.f.store.ListKeys(context.Background(), e.f.admin.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("the administrator's keys: %+v, %v", keys, err)
	}
	return keys[0].ID
}

// call makes a request of the admin API as the administrator, returning
// its error as the service would.
func (e *wayInEnv) call(t *testing.T, method, path string) error {
	t.Helper()
	code, out, _ := e.f.call(t, method, path, e.auth, nil)
	if code < 300 {
		return nil
	}
	desc, _ := out["error_description"].(string)
	code2, _ := out["error"].(string)
	return &oauth2.Error{Code: code2, Description: desc, Status: code}
}
