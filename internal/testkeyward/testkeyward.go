// Package testkeyward runs a real Keyward server for the tests of the public
// packages and the examples: a fresh SQLite store, an injectable clock.
package testkeyward

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

// Server is a real Keyward server.
type Server struct {
	URL    string
	Srv    *server.Server
	Store  storage.Storage
	Signer *signer.Signer
	Clock  *Clock
	// JWKSFetches counts GETs of the JWKS.
	JWKSFetches atomic.Int32
}

// Clock is a settable time source.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the time.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Start runs a server until the test ends; opts change its configuration.
func Start(t testing.TB, opts ...func(*server.Config)) *Server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k := &Server{Store: st, Clock: &Clock{t: time.Now()}}
	hs := httptest.NewUnstartedServer(nil)
	k.URL = "http://" + hs.Listener.Addr().String()
	sealer, _ := signer.NewSealer(make([]byte, 32))
	k.Signer, err = signer.New(ctx, st, sealer, signer.Config{Policy: signer.Policy{Algorithm: "ES256", RetainFor: 2 * time.Hour}, Now: k.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	j := groupcommit.New(st, groupcommit.Options{})
	t.Cleanup(j.Close)
	cfg := server.Config{Issuer: k.URL, AccountDomain: "iam.test", DefaultTokenLifetime: time.Hour, MaxTokenLifetime: time.Hour,
		MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	k.Srv = server.New(cfg, server.Deps{Store: st, Signer: k.Signer, Journal: j, Pepper: []byte("p"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: k.Clock.Now})
	hs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/jwks.json" {
			k.JWKSFetches.Add(1)
		}
		k.Srv.ServeHTTP(w, r)
	})
	hs.Start()
	t.Cleanup(hs.Close)
	return k
}

// Sys is the actor of fixture changes.
var Sys = admin.Actor{ID: "test"}

// Setup registers the APIs orders (with the given token format) and
// billing, and returns the account job@shop, allowed orders.read and
// billing.read, with a secret, and orders-api@shop, an introspector of
// orders, with a secret.
func (k *Server) Setup(t testing.TB, format string) (client, clientSecret, introspector, introspectorSecret string) {
	t.Helper()
	ctx := context.Background()
	a := k.Srv.Admin
	if _, err := a.CreateAPI(ctx, Sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}, TokenFormat: format}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateAPI(ctx, Sys, admin.APIInput{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}}); err != nil {
		t.Fatal(err)
	}
	job, err := a.CreateAccount(ctx, Sys, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read", "billing.read"}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := a.CreateAccount(ctx, Sys, admin.AccountInput{Name: "orders-api", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{api.ID}
	if _, err := a.UpdateAPI(ctx, Sys, "orders", admin.APIUpdate{Introspectors: &ids}); err != nil {
		t.Fatal(err)
	}
	s1, err := a.CreateSecret(ctx, Sys, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := a.CreateSecret(ctx, Sys, api.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return job.ID, s1.Value, api.ID, s2.Value
}

// OrdersJob registers, through a as actor, the API orders with the one
// scope orders.read, and the account job@shop allowed it, with a secret:
// the account and its secret.
func OrdersJob(t testing.TB, a *admin.Service, actor admin.Actor) (storage.Account, string) {
	t.Helper()
	ctx := context.Background()
	if _, err := a.CreateAPI(ctx, actor, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	job, err := a.CreateAccount(ctx, actor, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := a.CreateSecret(ctx, actor, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return job, sec.Value
}

// Sign mints an access token directly with the server's signer.
func (k *Server) Sign(t testing.TB, mod func(*oauth2.AccessClaims)) string {
	now := k.Clock.Now()
	c := oauth2.AccessClaims{Issuer: k.URL, Subject: "100000000000000000001", ClientID: "100000000000000000001", ClientEmail: "job@shop.iam.test",
		Audience: oauth2.Audience{"https://orders.internal"}, Scope: "orders.read", IssuedAt: now.Unix(), Expiry: now.Add(time.Hour).Unix(), ID: "jti-x"}
	if mod != nil {
		mod(&c)
	}
	raw, err := k.Signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// ParsePKCS8 reads a PEM private key.
func ParsePKCS8(t testing.TB, pemKey string) any {
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
