package verify_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
)

// keyward is a real Keyward server for the tests, on a fresh SQLite store.
type keyward struct {
	URL    string
	srv    *server.Server
	store  storage.Storage
	signer *signer.Signer
	clock  *clock
	// jwksFetches counts GETs of the JWKS.
	jwksFetches atomic.Int32
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startKeyward(t testing.TB) *keyward {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k := &keyward{store: st, clock: &clock{t: time.Now()}}
	hs := httptest.NewUnstartedServer(nil)
	k.URL = "http://" + hs.Listener.Addr().String()
	sealer, _ := signer.NewSealer(make([]byte, 32))
	k.signer, err = signer.New(ctx, st, sealer, signer.Config{Policy: signer.Policy{Algorithm: "ES256", RetainFor: 2 * time.Hour}, Now: k.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	j := groupcommit.New(st, groupcommit.Options{})
	t.Cleanup(j.Close)
	k.srv = server.New(server.Config{Issuer: k.URL, AccountDomain: "iam.test", DefaultTokenLifetime: time.Hour, MaxTokenLifetime: time.Hour,
		MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute}, server.Deps{Store: st, Signer: k.signer, Journal: j, Pepper: []byte("p"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: k.clock.now})
	hs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/jwks.json" {
			k.jwksFetches.Add(1)
		}
		k.srv.ServeHTTP(w, r)
	})
	hs.Start()
	t.Cleanup(hs.Close)
	return k
}

var sys = admin.Actor{ID: "test"}

// api registers an API and returns an account allowed its scopes, with a
// secret, and an introspector account for it, with a secret.
func (k *keyward) setup(t testing.TB, format string) (client, clientSecret, introspector, introspectorSecret string) {
	t.Helper()
	ctx := context.Background()
	a := k.srv.Admin
	if _, err := a.CreateAPI(ctx, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}, TokenFormat: format}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateAPI(ctx, sys, admin.APIInput{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}}); err != nil {
		t.Fatal(err)
	}
	job, err := a.CreateAccount(ctx, sys, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read", "billing.read"}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := a.CreateAccount(ctx, sys, admin.AccountInput{Name: "orders-api", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{api.ID}
	if _, err := a.UpdateAPI(ctx, sys, "orders", admin.APIUpdate{Introspectors: &ids}); err != nil {
		t.Fatal(err)
	}
	s1, err := a.CreateSecret(ctx, sys, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := a.CreateSecret(ctx, sys, api.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return job.ID, s1.Value, api.ID, s2.Value
}

// sign mints an access token directly with the server's signer.
func (k *keyward) sign(t testing.TB, mod func(*oauth2.AccessClaims)) string {
	now := k.clock.now()
	c := oauth2.AccessClaims{Issuer: k.URL, Subject: "100000000000000000001", ClientID: "100000000000000000001", ClientEmail: "job@shop.iam.test",
		Audience: oauth2.Audience{"https://orders.internal"}, Scope: "orders.read", IssuedAt: now.Unix(), Expiry: now.Add(time.Hour).Unix(), ID: "jti-x"}
	if mod != nil {
		mod(&c)
	}
	raw, err := k.signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func parsePKCS8(t testing.TB, pemKey string) any {
	block, _ := pem.Decode([]byte(pemKey))
	if block == nil {
		t.Fatal("no PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
