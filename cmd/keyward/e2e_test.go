package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2/google"

	"github.com/keyward/keyward/internal/storage"
)

// startServer runs a real server on a loopback port with a fresh SQLite
// store, as 'keyward serve' does, until the test ends.
func startServer(t *testing.T, mods ...func(*Main)) *Main {
	t.Helper()
	m, stop := launchServer(t, mods...)
	t.Cleanup(stop)
	return m
}

// launchServer is startServer with the stop left to the caller (stop may
// be called more than once).
func launchServer(t *testing.T, mods ...func(*Main)) (*Main, func()) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, mod := range mods {
		mod(m)
	}
	if err := m.Open(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return m, sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		m.Close()
	})
}

// runCLI runs a keyward command in-process and returns its standard output.
func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("keyward %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// TestEndToEnd is the walk-through of the README: the CLI creates an API, a
// service account and a key file; Google's own client library trades the
// key file for a token; the token verifies against the published JWKS.
func TestEndToEnd(t *testing.T) {
	m := startServer(t)
	if m.AdminKeyFile == "" {
		t.Fatal("first start did not write an administrator key file")
	}
	admin := []string{"--credentials", m.AdminKeyFile}
	runCLI(t, append([]string{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read,orders.write"}, admin...)...)
	var acct struct {
		ClientID string `json:"client_id"`
		Email    string `json:"email"`
	}
	out := runCLI(t, append([]string{"sa", "create", "nightly-report", "--project", "billing", "--scopes", "orders.read", "-o", "json"}, admin...)...)
	if err := json.Unmarshal([]byte(out), &acct); err != nil {
		t.Fatalf("sa create -o json printed %q: %v", out, err)
	}
	if len(acct.ClientID) != 21 || acct.Email != "nightly-report@billing.iam.keyward.internal" {
		t.Fatalf("account = %+v", acct)
	}
	keyFile := filepath.Join(t.TempDir(), "key.json")
	runCLI(t, append([]string{"keys", "create", acct.Email, "--out", keyFile}, admin...)...)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want mode 0600", err, fi.Mode().Perm())
	}

	// A job with the key file and Google's client library, unchanged.
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := google.JWTConfigFromJSON(data, "orders.read")
	if err != nil {
		t.Fatal(err)
	}
	if conf.TokenURL != m.Issuer+"/token" {
		t.Fatalf("the key file's token_uri is %s, want %s/token", conf.TokenURL, m.Issuer)
	}
	tok, err := conf.TokenSource(context.Background()).Token()
	if err != nil {
		t.Fatalf("google.JWTConfigFromJSON token: %v", err)
	}
	if tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 59*time.Minute || tok.Extra("scope") != "orders.read" {
		t.Fatalf("token = %+v scope %v", tok, tok.Extra("scope"))
	}

	// An API verifies it against the JWKS found through RFC 8414 metadata.
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, m.Issuer+"/.well-known/oauth-authorization-server", &md)
	if md.Issuer != m.Issuer {
		t.Fatalf("metadata issuer %s, want %s", md.Issuer, m.Issuer)
	}
	var jwks jose.JSONWebKeySet
	getJSON(t, md.JWKSURI, &jwks)
	parsed, err := jwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := parsed.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		t.Fatalf("typ = %v, want at+jwt", typ)
	}
	keys := jwks.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %s not in the JWKS", parsed.Headers[0].KeyID)
	}
	var claims struct {
		jwt.Claims
		ClientID    string `json:"client_id"`
		ClientEmail string `json:"client_email"`
		Scope       string `json:"scope"`
	}
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("the access token does not verify against the JWKS: %v", err)
	}
	if err := claims.Validate(jwt.Expected{Issuer: m.Issuer, AnyAudience: jwt.Audience{"https://orders.internal"}, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if claims.Subject != acct.ClientID || claims.ClientID != acct.ClientID || claims.ClientEmail != acct.Email || claims.Scope != "orders.read" || claims.ID == "" {
		t.Fatalf("claims = %+v", claims)
	}

	// The account's public keys are published as Google publishes them.
	var x509doc map[string]string
	getJSON(t, m.Issuer+"/service_accounts/v1/metadata/x509/"+acct.Email, &x509doc)
	if cert := x509doc[conf.PrivateKeyID]; !strings.HasPrefix(cert, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("x509 document = %v, want a certificate for %s", x509doc, conf.PrivateKeyID)
	}

	// keyward token prints a token the same way.
	printed := strings.TrimSpace(runCLI(t, "token", "--key-file", keyFile, "--scopes", "orders.read"))
	if strings.Count(printed, ".") != 2 {
		t.Fatalf("keyward token printed %q", printed)
	}

	// Disabling the account stops new tokens at once.
	runCLI(t, append([]string{"sa", "disable", acct.Email}, admin...)...)
	conf, _ = google.JWTConfigFromJSON(data, "orders.read")
	if _, err := conf.TokenSource(context.Background()).Token(); err == nil || !strings.Contains(err.Error(), "disabled_client") {
		t.Fatalf("token for a disabled account: %v, want disabled_client", err)
	}
	// The refusal is in the audit log.
	evs, err := m.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(e storage.AuditEvent) bool { return e.Data["error"] == "disabled_client" }) {
		t.Fatalf("no audit event for the refusal: %+v", evs)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// mustWriteFile writes data to name, private to its owner, failing t if it
// cannot: a test going on without the file fails later, for what looks
// like another reason.
func mustWriteFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// mustReadFile is name's contents, failing t if it cannot be read.
func mustReadFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
