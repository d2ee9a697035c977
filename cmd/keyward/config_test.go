package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeyward"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // fragments of the error; none means valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"loopback v6", func(c *Config) { c.Listen = "[::1]:8080" }, nil},
		{"localhost", func(c *Config) { c.Listen = "localhost:8080" }, nil},
		{"public address needs TLS", func(c *Config) { c.Listen = "10.0.0.5:8080"; c.Issuer = "https://kw.example" }, []string{"not a loopback address"}},
		{"public address with TLS", func(c *Config) {
			c.Listen, c.Issuer, c.TLSCert, c.TLSKey = "10.0.0.5:8443", "https://kw.example", "c.pem", "k.pem"
		}, nil},
		{"public address, insecure", func(c *Config) { c.Listen, c.Issuer, c.InsecureHTTP = "10.0.0.5:8080", "https://kw.example", true }, nil},
		{"all interfaces need an issuer", func(c *Config) { c.Listen, c.InsecureHTTP = ":8080", true }, []string{"set --issuer"}},
		{"half TLS", func(c *Config) { c.TLSCert = "c.pem" }, []string{"--tls-cert and --tls-key"}},
		{"bad listen", func(c *Config) { c.Listen = "8080" }, []string{"--listen"}},
		{"issuer with slash", func(c *Config) { c.Issuer = "http://127.0.0.1:8080/" }, []string{"trailing slash"}},
		{"issuer not a URL", func(c *Config) { c.Issuer = "keyward" }, []string{"absolute http(s) URL"}},
		{"http issuer elsewhere", func(c *Config) { c.Issuer = "http://kw.example" }, []string{"uses http"}},
		{"issuer with a password", func(c *Config) { c.Issuer = "https://op:hunter2@kw.example" }, []string{`"https://op:xxxxx@kw.example" must have no user or password`}},
		{"issuer with a user", func(c *Config) { c.Issuer = "https://op@kw.example" }, []string{"must have no user or password"}},
		{"issuer with a password url.Parse refuses", func(c *Config) { c.Issuer = "https://op:hunter2 x@kw.example" }, []string{"xxxxx", "absolute http(s) URL"}},
		{"issuer with an empty query", func(c *Config) { c.Issuer = "https://kw.example?" }, []string{"no query"}},
		{"issuer with a fragment", func(c *Config) { c.Issuer = "https://kw.example#f" }, []string{"no query, fragment"}},
		{"issuer with an empty fragment", func(c *Config) { c.Issuer = "https://kw.example#" }, []string{"no query, fragment"}},
		{"db not postgres", func(c *Config) { c.DB = "mysql://x" }, []string{"postgres:// URL"}},
		{"db password redacted", func(c *Config) { c.DB = "mysql://u:hunter2@x" }, []string{"xxxxx"}},
		{"signing alg", func(c *Config) { c.SigningAlg = "HS256" }, []string{"--signing-alg"}},
		{"rotation too short", func(c *Config) { c.SigningKeyRotation = time.Minute }, []string{"--signing-key-rotation"}},
		{"lifetimes", func(c *Config) { c.DefaultTokenTTL = 13 * time.Hour }, []string{"--default-token-lifetime"}},
		{"skew", func(c *Config) { c.ClockSkew = time.Hour }, []string{"--clock-skew"}},
		{"introspections audited one by one", func(c *Config) { c.IntrospectionAudit = 0 }, nil},
		{"introspection audit interval negative", func(c *Config) { c.IntrospectionAudit = -time.Second }, []string{"--introspection-audit-interval"}},
		{"introspection audit interval too long", func(c *Config) { c.IntrospectionAudit = time.Hour }, []string{"--introspection-audit-interval"}},
		{"HSTS dropped", func(c *Config) { c.HSTSMaxAge = 0 }, nil},
		{"HSTS negative", func(c *Config) { c.HSTSMaxAge = -time.Second }, []string{"--hsts-max-age -1s must be whole seconds"}},
		{"HSTS part of a second", func(c *Config) { c.HSTSMaxAge = 1500 * time.Millisecond }, []string{"--hsts-max-age 1.5s must be whole seconds"}},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, []string{"--log-format"}},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, []string{"--log-level"}},
		{"domain", func(c *Config) { c.AccountDomain = "nodots" }, []string{"--account-domain"}},
		{"client CA without TLS", func(c *Config) { c.TLSClientCA = "ca.pem" }, []string{"--tls-client-ca"}},
		{"cert header without proxies", func(c *Config) { c.ClientCertHeader = "X-Client-Cert" }, []string{"--trusted-proxies"}},
		{"cert header with a space", func(c *Config) { c.ClientCertHeader, c.TrustedProxies = "X Client Cert", []string{"10.0.0.1"} }, []string{`--client-cert-header "X Client Cert" is not a header name`}},
		{"cert header with a colon", func(c *Config) { c.ClientCertHeader, c.TrustedProxies = "X-Client-Cert:", []string{"10.0.0.1"} }, []string{"is not a header name"}},
		{"bad proxy", func(c *Config) { c.ClientCertHeader, c.TrustedProxies = "X", []string{"10.0.0.0/33"} }, []string{"10.0.0.0/33"}},
		{"proxy with a zone", func(c *Config) { c.TrustedProxies = []string{"fe80::1%eth0"} }, []string{`--trusted-proxies: "fe80::1%eth0" has a zone`, "never trusted"}},
		{"mapped proxy range shorter than /96", func(c *Config) { c.TrustedProxies = []string{"::ffff:10.0.0.0/95"} }, []string{`--trusted-proxies: "::ffff:10.0.0.0/95" is an IPv4-mapped range shorter than /96`}},
		{"metrics address", func(c *Config) { c.MetricsListen = "9090" }, []string{`--metrics-listen "9090" is not host:port: give 127.0.0.1:9090 for loopback alone, or :9090 for every interface`}},
		{"listen a bare port", func(c *Config) { c.Listen = "8443" }, []string{`--listen "8443" is not host:port: give 127.0.0.1:8443 for loopback alone, or :8443 for every interface`}},
		{"listen without a port", func(c *Config) { c.Listen = "localhost" }, []string{`--listen "localhost" is not host:port: address localhost: missing port in address`}},
		{"listen port out of range", func(c *Config) { c.Listen = "127.0.0.1:99999" }, []string{"--listen", "0 to 65535 or a service name"}},
		{"listen port negative", func(c *Config) { c.Listen = "127.0.0.1:-1" }, []string{"--listen", "0 to 65535"}},
		{"listen port any", func(c *Config) { c.Listen = "127.0.0.1:0" }, nil},
		{"listen port by service name", func(c *Config) { c.Listen = "127.0.0.1:https" }, nil},
		{"metrics port out of range", func(c *Config) { c.MetricsListen = "127.0.0.1:70000" }, []string{"--metrics-listen", "0 to 65535 or a service name"}},
		{"every problem at once", func(c *Config) {
			c.SigningAlg, c.LogFormat, c.ClockSkew = "none", "xml", -time.Second
		}, []string{"--signing-alg", "--log-format", "--clock-skew"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Error("the error shows a password")
			}
		})
	}
}

// TestServingLogRedactsIssuer: the startup line shows --issuer without its
// password, should a Main be given one that Validate did not check.
func TestServingLogRedactsIssuer(t *testing.T) {
	var logs testkeyward.SyncBuffer
	startServer(t, func(m *Main) {
		m.Config.Issuer = "http://op:hunter2@127.0.0.1:1"
		m.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "keyward is serving"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said it is serving:\n%s", logs.String())
		}
	}
	if got := logs.String(); strings.Contains(got, "hunter2") || !strings.Contains(got, "op:xxxxx@127.0.0.1:1") {
		t.Errorf("the log does not show the issuer redacted:\n%s", got)
	}
}

// TestBootstrap: the first start writes the admin key file (0600) and a
// generated master key (0600); later starts leave both alone.
func TestBootstrap(t *testing.T) {
	dir := t.TempDir()
	open := func() *Main {
		cfg := DefaultConfig()
		cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := m.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := open()
	if m.AdminKeyFile != filepath.Join(dir, "admin-key.json") {
		t.Fatalf("admin key file %q", m.AdminKeyFile)
	}
	for _, f := range []string{"admin-key.json", "master.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	first := mustReadFile(t, filepath.Join(dir, "admin-key.json"))
	master := mustReadFile(t, filepath.Join(dir, "master.key"))
	m.Close()

	m = open()
	defer m.Close()
	if m.AdminKeyFile != "" {
		t.Fatal("the second start bootstrapped again")
	}
	again := mustReadFile(t, filepath.Join(dir, "admin-key.json"))
	master2 := mustReadFile(t, filepath.Join(dir, "master.key"))
	if string(first) != string(again) || string(master) != string(master2) {
		t.Fatal("the second start rewrote the admin key or the master key")
	}
}

func TestHealth(t *testing.T) {
	m := startServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(m.Issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
	}
	m.store.Close() // the store goes away
	resp, err := http.Get(m.Issuer + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the store closed: %s, want 503", resp.Status)
	}
}

// TestRecoverAdmin: with the admin key file lost, recover-admin writes a new
// one straight into the store of a running server, and the CLI works with it.
func TestRecoverAdmin(t *testing.T) {
	m := startServer(t)
	dir := m.Config.DataDir
	if err := os.Remove(m.AdminKeyFile); err != nil {
		t.Fatal(err)
	}
	newKey := filepath.Join(t.TempDir(), "admin-key-new.json")
	out := runCLI(t, "recover-admin", "--data-dir", dir, "--issuer", m.Issuer, "--key-file", newKey)
	if !strings.Contains(out, "wrote a new key for admin@keyward.") {
		t.Fatalf("output %q", out)
	}
	if fi, err := os.Stat(newKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v", err)
	}
	list := runCLI(t, "keys", "list", "admin@keyward."+m.Config.AccountDomain, "--credentials", newKey, "-o", "json")
	var keys struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(list), &keys); err != nil || len(keys.Keys) != 2 {
		t.Fatalf("keys list with the new key: %q %v", list, err)
	}
	audit := runCLI(t, "audit", "list", "--action", "key.create", "--credentials", newKey, "-o", "json")
	if !strings.Contains(audit, "keyward recover-admin") {
		t.Fatalf("the audit log does not name the operator: %s", audit)
	}

	// Refusals: an existing key file, a missing --key-file, an empty store.
	if err := runCLIErr(t, "recover-admin", "--data-dir", dir, "--key-file", newKey); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("existing key file: %v", err)
	}
	if err := runCLIErr(t, "recover-admin", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "--key-file is required") {
		t.Errorf("no --key-file: %v", err)
	}
	empty := t.TempDir()
	// migrate says when it created the database rather than found it.
	if out := runCLI(t, "migrate", "--data-dir", empty); out != "created the database "+filepath.Join(empty, "keyward.db")+", with the schema up to date\n" {
		t.Errorf("migrate of a new directory said %q", out)
	}
	if out := runCLI(t, "migrate", "--data-dir", empty); out != "the database schema is up to date\n" {
		t.Errorf("migrate of a migrated store said %q", out)
	}
	stray := filepath.Join(t.TempDir(), "k.json")
	if err := runCLIErr(t, "recover-admin", "--data-dir", empty, "--key-file", stray); err == nil || !strings.Contains(err.Error(), "no administrator account") {
		t.Errorf("empty store: %v", err)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Error("a key file was left behind for a key that was not stored")
	}

	// Settings that would put an unusable token_uri in the key file are
	// refused before anything is written or stored.
	for _, args := range [][]string{
		{"--issuer", "ftp://x"},
		{"--listen", "garbage"},
		{"--listen", "0.0.0.0:8080", "--insecure-http"}, // all interfaces: no URL to reach
		{"--account-domain", "BAD DOMAIN"},
	} {
		bad := filepath.Join(t.TempDir(), "k.json")
		err := runCLIErr(t, append([]string{"recover-admin", "--data-dir", dir, "--key-file", bad}, args...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "invalid configuration") {
			t.Errorf("recover-admin %v: %v, want a configuration error", args, err)
		}
		if _, err := os.Stat(bad); !os.IsNotExist(err) {
			t.Errorf("recover-admin %v wrote a key file", args)
		}
	}
	after := runCLI(t, "keys", "list", "admin@keyward."+m.Config.AccountDomain, "--credentials", newKey, "-o", "json")
	if err := json.Unmarshal([]byte(after), &keys); err != nil || len(keys.Keys) != 2 {
		t.Fatalf("keys after the refused runs: %q %v", after, err)
	}
}

// TestRecoverAdminOtherKeysDisabled: recover-admin says only of the
// administrator's keys that still work that they stay valid: run after
// its only key was disabled (or had expired), the way back in it is for,
// it said "its other key stays valid" of a key that opens nothing.
func TestRecoverAdminOtherKeysDisabled(t *testing.T) {
	m := startServer(t)
	ctx := context.Background()
	a, err := m.store.GetAccountByEmail(ctx, "admin@keyward."+m.Config.AccountDomain)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := m.store.ListKeys(ctx, a.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("the administrator's keys: %v %v, want one", keys, err)
	}
	ev := storage.AuditEvent{Time: time.Now(), Action: "key.disable", Outcome: storage.OutcomeSuccess, Actor: "test"}
	if _, err := m.store.UpdateKey(ctx, keys[0].ID, func(k storage.Key) (storage.Key, error) { k.Disabled = true; return k, nil }, ev); err != nil {
		t.Fatal(err)
	}
	out := runCLI(t, "recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", filepath.Join(t.TempDir(), "admin.json"))
	if strings.Contains(out, "valid") || strings.Count(out, "\n") != 2 || !strings.Contains(out, "the key file is for the issuer") {
		t.Errorf("recover-admin with the only other key disabled printed:\n%s\nwant only the key file written and its issuer", out)
	}
	// Run again, the new key now enabled: it is the other key that stays.
	out = runCLI(t, "recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", filepath.Join(t.TempDir(), "admin.json"))
	if !strings.Contains(out, "its other key stays valid") {
		t.Errorf("recover-admin with one other key enabled printed:\n%s\nwant it named as staying valid", out)
	}
}

// TestRecoverAdminKeyFileNotStored: a --key-file in the way that is a
// key file of the administrator with a key the store does not have, as a
// recover-admin killed before it stored the key leaves, is named as one
// that opens nothing, to delete; it was refused as any file in the way,
// and looked like the key file asked for. Any other file is refused as
// before.
func TestRecoverAdminKeyFileNotStored(t *testing.T) {
	m := startServer(t)
	var kf map[string]any
	if err := json.Unmarshal(mustReadFile(t, m.AdminKeyFile), &kf); err != nil {
		t.Fatal(err)
	}
	kf["private_key_id"] = strings.Repeat("ab", 20) // no key of the store's
	orphan, err := json.Marshal(kf)
	if err != nil {
		t.Fatal(err)
	}
	const notStored = "holds a key of admin@keyward.iam.keyward.internal that the store does not have"
	for _, tt := range []struct {
		name string
		file []byte
		hint bool
	}{
		{"key not stored", orphan, true},
		{"the administrator's key file", mustReadFile(t, m.AdminKeyFile), false},
		{"another file", []byte("notes\n"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "admin.json")
			mustWriteFile(t, path, tt.file)
			err := runCLIErr(t, "recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", path)
			if err == nil || !strings.Contains(err.Error(), "--key-file "+path+" already exists") || strings.Contains(err.Error(), notStored) != tt.hint {
				t.Errorf("%v, want %q refused as in the way (saying it %s: %v)", err, path, notStored, tt.hint)
			}
			if got := mustReadFile(t, path); string(got) != string(tt.file) {
				t.Errorf("%s was changed", path)
			}
		})
	}
}

// TestOpenStoreFails: a store that cannot be opened is reported, and the
// half-opened server closes without a panic.
func TestOpenStoreFails(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	mustWriteFile(t, notADir, nil)
	tests := []struct {
		name string
		cfg  func(*Config)
	}{
		{"postgres unreachable", func(c *Config) { c.DB = "postgres://keyward@127.0.0.1:1/keyward?connect_timeout=2" }},
		{"sqlite data dir is a file", func(c *Config) { c.DataDir = notADir }},
		{"sqlite database is a directory", func(c *Config) { os.MkdirAll(filepath.Join(c.DataDir, "keyward.db"), 0o700) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
			tt.cfg(&cfg)
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if err := m.Open(context.Background()); err == nil {
				t.Fatal("Open succeeded")
			}
			m.Close()
		})
	}
}

// TestClientCertHeaderHelp: serve --help names every form
// --client-cert-header reads, not nginx's alone.
func TestClientCertHeaderHelp(t *testing.T) {
	c, _, err := newRootCommand().Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	f := c.Flags().Lookup("client-cert-header")
	if f == nil {
		t.Fatal("serve has no --client-cert-header")
	}
	for _, want := range []string{"URL-encoded PEM", "spaces for line breaks", "base64 DER", "intermediates"} {
		if !strings.Contains(f.Usage, want) {
			t.Errorf("--client-cert-header help %q does not say %q", f.Usage, want)
		}
	}
}

// TestStoreFlagsHelp: --data-dir says what each command does with it, and
// --no-migrate shows only where it does something.
func TestStoreFlagsHelp(t *testing.T) {
	root := newRootCommand()
	serveDataDir := ""
	if c, _, err := root.Find([]string{"serve"}); err == nil {
		serveDataDir = c.Flags().Lookup("data-dir").Usage
	}
	tests := []struct {
		cmd           []string
		wantNoMigrate bool // shown in --help
	}{
		{[]string{"serve"}, true},
		{[]string{"import"}, true},
		{[]string{"migrate"}, false},
		{[]string{"export"}, false},
		{[]string{"audit", "verify"}, false},
		{[]string{"audit", "prune"}, false},
		{[]string{"master-key", "rotate"}, false},
		{[]string{"recover-admin"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.cmd, " "), func(t *testing.T) {
			c, _, err := root.Find(tt.cmd)
			if err != nil {
				t.Fatal(err)
			}
			dd := c.Flags().Lookup("data-dir")
			if dd == nil || dd.Hidden || (tt.cmd[0] != "serve" && dd.Usage == serveDataDir) {
				t.Errorf("--data-dir: %+v, want help of its own", dd)
			}
			if tt.cmd[0] != "serve" && !strings.Contains(c.Long, storeSettingsHelp) {
				t.Errorf("--help does not say where the store settings come from:\n%s", c.Long)
			}
			if cf := c.Flags().Lookup("config"); cf == nil || cf.Hidden {
				t.Errorf("--config: %+v, want it shown", cf)
			} else if tt.cmd[0] != "serve" && !strings.Contains(cf.Usage, "'keyward serve'") {
				// The settings are serve's, not this command's flags.
				t.Errorf("--config help %q does not name serve's flags as the settings", cf.Usage)
			}
			nm := c.Flags().Lookup("no-migrate")
			if shown := nm != nil && !nm.Hidden; shown != tt.wantNoMigrate {
				t.Errorf("--no-migrate shown: %v, want %v", shown, tt.wantNoMigrate)
			}
		})
	}
	// migrate --no-migrate is a contradiction, not a silent no-op.
	err := runCLIErr(t, "migrate", "--no-migrate", "--data-dir", t.TempDir())
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("migrate --no-migrate: %v, want a usage error", err)
	}
}

// TestRecoverAdminIssuerFlagsHelp: recover-admin checks the settings the
// key file's token_uri comes from as serve does, so every one of them that
// its refusals name (--tls-cert and --tls-key must be given together; a
// --listen that is not loopback needs TLS or --insecure-http) is in its
// --help, described as what it is there: the server's setting, from which
// the issuer is derived, not an address recover-admin listens on.
func TestRecoverAdminIssuerFlagsHelp(t *testing.T) {
	c, _, err := newRootCommand().Find([]string{"recover-admin"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		flag string
		want string // in its usage
	}{
		{"issuer", "token_uri"},
		{"listen", "--issuer"},
		{"tls-cert", "--issuer"},
		{"tls-key", "--tls-cert"},
		{"insecure-http", "--listen"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			fl := c.Flags().Lookup(tt.flag)
			if fl == nil || fl.Hidden {
				t.Fatalf("--%s: %+v, want it shown", tt.flag, fl)
			}
			if !strings.Contains(fl.Usage, tt.want) {
				t.Errorf("--%s help %q does not mention %s", tt.flag, fl.Usage, tt.want)
			}
			if strings.Contains(fl.Usage, "to listen on") {
				t.Errorf("--%s help %q: recover-admin listens on nothing", tt.flag, fl.Usage)
			}
		})
	}
}

// TestOptInSettingSources: each opt-in boolean setting of serve is off by
// default and is turned on, like every setting of serve, by its flag, its
// KEYWARD_ variable or its --config file key (with - or _), in that order
// of precedence.
func TestOptInSettingSources(t *testing.T) {
	file := func(content string) string {
		f := filepath.Join(t.TempDir(), "keyward.yaml")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, s := range []struct {
		flag string
		get  func(Config) bool
	}{
		{"require-assertion-jti", func(c Config) bool { return c.RequireAssertionJTI }},
		{"strict-client-assertion-audience", func(c Config) bool { return c.StrictClientAssertionAudience }},
	} {
		env := "KEYWARD_" + strings.ToUpper(strings.ReplaceAll(s.flag, "-", "_"))
		tests := []struct {
			name string
			args []string
			env  map[string]string
			want bool
		}{
			{"default", []string{"serve"}, nil, false},
			{"flag", []string{"serve", "--" + s.flag}, nil, true},
			{"environment", []string{"serve"}, map[string]string{env: "true"}, true},
			{"config file", []string{"serve", "--config", file(s.flag + ": true\n")}, nil, true},
			{"config file, underscores", []string{"serve", "--config", file(strings.ReplaceAll(s.flag, "-", "_") + ": true\n")}, nil, true},
			{"environment beats config file", []string{"serve", "--config", file(s.flag + ": true\n")}, map[string]string{env: "false"}, false},
			{"flag beats environment", []string{"serve", "--" + s.flag + "=false"}, map[string]string{env: "true"}, false},
		}
		for _, tt := range tests {
			t.Run(s.flag+"/"+tt.name, func(t *testing.T) {
				if got := s.get(checkServeArgs(t, tt.args, tt.env)); got != tt.want {
					t.Fatalf("--%s = %v, want %v", s.flag, got, tt.want)
				}
			})
		}
	}
}

// A retired signing key stays published as long as any token it signed
// may live, whatever --max-token-lifetime is now: lowered since, or
// shorter on this replica than on another, it must not end the keys of
// tokens issued under a longer one.
func TestSigningKeysRetainedForTheLongestToken(t *testing.T) {
	for _, maxTTL := range []time.Duration{time.Minute, time.Hour, admin.LongestTokenLifetime} {
		c := DefaultConfig()
		c.MaxTokenTTL = maxTTL
		if got, want := signingPolicy(c).RetainFor, admin.LongestTokenLifetime+c.ClockSkew; got <= want {
			t.Errorf("--max-token-lifetime %s: retired keys kept %s, want more than %s", maxTTL, got, want)
		}
	}
}

// TestValidationErrorsNameTheSource: a setting refused for its value is
// named by where the value came from — --name on the command line,
// KEYWARD_<NAME> in the environment, "name in FILE" in the --config file
// (or the one KEYWARD_CONFIG names) — in serve and in the commands that
// take the server's settings. They all said --name, a flag the operator
// may never have given.
func TestValidationErrorsNameTheSource(t *testing.T) {
	dir := t.TempDir()
	file := func(content string) string {
		f, err := os.CreateTemp(dir, "keyward-*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(content); err != nil {
			t.Fatal(err)
		}
		return f.Name()
	}
	type source struct {
		name    string
		args    []string          // after the command's name
		env     map[string]string // set for the case
		want    string            // a fragment of the error, %s the file
		notWant string            // not in the error
	}
	for _, s := range []struct {
		setting, value, wantAfter string
	}{
		{"cache-ttl", "2h", " 2h0m0s must be between 0 and 1h"},                                  // a duration
		{"trusted-proxies", "10.0.0.0/33", `: "10.0.0.0/33" is not an IP address or CIDR range`}, // a list
		{"issuer", "keyward", ` "keyward" must be an absolute http(s) URL`},                      // a URL
		{"tls-client-ca", "ca.pem", " needs client certificates"},                                // a path
	} {
		env := envName(s.setting)
		f := file(s.setting + ": " + s.value + "\n")
		sources := []source{
			{name: "flag", args: []string{"--" + s.setting, s.value}, want: "--" + s.setting + s.wantAfter},
			{name: "environment", env: map[string]string{env: s.value}, want: env + s.wantAfter, notWant: "--" + s.setting},
			{name: "config file", args: []string{"--config", f}, want: s.setting + " in " + f + s.wantAfter, notWant: "--" + s.setting},
			{name: "KEYWARD_CONFIG", env: map[string]string{configEnv: f}, want: s.setting + " in " + f + s.wantAfter, notWant: "--" + s.setting},
		}
		for _, src := range sources {
			for _, command := range []string{"serve", "recover-admin"} {
				t.Run(s.setting+"/"+src.name+"/"+command, func(t *testing.T) {
					for k, v := range src.env {
						t.Setenv(k, v)
					}
					args := append([]string{command, "--data-dir", t.TempDir()}, src.args...)
					if command == "recover-admin" {
						args = append(args, "--key-file", filepath.Join(t.TempDir(), "k.json"))
					}
					err := runCLIErr(t, args...)
					if _, ok := errors.AsType[usageError](err); !ok {
						t.Fatalf("keyward %s: %v; want a usage error", strings.Join(args, " "), err)
					}
					if !strings.Contains(err.Error(), src.want) {
						t.Errorf("keyward %s: %v\nwant %q", strings.Join(args, " "), err, src.want)
					}
					if src.notWant != "" && strings.Contains(err.Error(), src.notWant) {
						t.Errorf("keyward %s: %v\nnames %s, which was not given", strings.Join(args, " "), err, src.notWant)
					}
				})
			}
		}
	}
	// An empty data directory, refused before Validate by the commands
	// that work on the store.
	f := file("data-dir:\n")
	err := runCLIErr(t, "migrate", "--config", f)
	if want := "data-dir in " + f + " must not be empty"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("keyward migrate with an empty data-dir in the file: %v; want %q", err, want)
	}
}

// TestStartErrorsNameTheSource: a setting serve refuses once it starts
// (an address in use, a CA file it cannot read, an account domain for a
// new store) is named by where its value came from, as Validate names
// it: these said --listen, --tls-client-ca and --account-domain whatever
// the source.
func TestStartErrorsNameTheSource(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing-ca.pem")
	proxy := []string{"--client-cert-header", "X-Client-Cert", "--trusted-proxies", "127.0.0.1"}
	for _, s := range []struct {
		setting, value, wantAfter string
		args                      []string // more, on the command line
	}{
		{"listen", busy.Addr().String(), " " + busy.Addr().String() + ": the address is in use", nil},
		{"tls-client-ca", missing, ": open " + missing, proxy},
		{"account-domain", "IAM.example.com", `: The account domain "IAM.example.com" has upper-case letters`, nil},
	} {
		f := filepath.Join(dir, s.setting+".yaml")
		if err := os.WriteFile(f, []byte(s.setting+": "+s.value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := envName(s.setting)
		for _, src := range []struct {
			name, want string
			args       []string
			env        string
		}{
			{"flag", "--" + s.setting + s.wantAfter, []string{"--" + s.setting, s.value}, ""},
			{"environment", env + s.wantAfter, nil, s.value},
			{"config file", s.setting + " in " + f + s.wantAfter, []string{"--config", f}, ""},
		} {
			t.Run(s.setting+"/"+src.name, func(t *testing.T) {
				if src.env != "" {
					t.Setenv(env, src.env)
				}
				args := append([]string{"serve", "--data-dir", t.TempDir()}, src.args...)
				if s.setting != "listen" {
					args = append(args, "--listen", "127.0.0.1:0")
				}
				args = append(args, s.args...)
				err := runCLIErr(t, args...)
				if err == nil || !strings.Contains(err.Error(), src.want) {
					t.Fatalf("keyward %s: %v\nwant %q", strings.Join(args, " "), err, src.want)
				}
				if src.name != "flag" && strings.Contains(err.Error(), "--"+s.setting) {
					t.Errorf("keyward %s: %v\nnames --%s, which was not given", strings.Join(args, " "), err, s.setting)
				}
			})
		}
	}
}

// TestServeFlagBoundsHelp: serve --help names the bounds Validate holds
// its duration settings to, which --help left out (--signing-key-rotation
// said only that 0 disables it, not that it must then be at least 1h): a
// flag's help names its bounds, Validate takes them, and refuses a value
// just past either.
func TestServeFlagBoundsHelp(t *testing.T) {
	c, _, err := newRootCommand().Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		flag     string
		words    []string      // in its help, naming the bounds
		min, max time.Duration // max 0: none
		also     []string      // other flags the bounds need
	}{
		{"signing-key-rotation", []string{"at least 1h", "0 disables"}, time.Hour, 0, nil},
		{"default-token-lifetime", []string{"from 1m to --max-token-lifetime"}, time.Minute, DefaultConfig().MaxTokenTTL, nil},
		{"max-token-lifetime", []string{"from 1m to 24h"}, time.Minute, admin.LongestTokenLifetime, []string{"--default-token-lifetime=1m"}},
		{"max-assertion-lifetime", []string{"from 1m to 24h"}, time.Minute, 24 * time.Hour, nil},
		{"clock-skew", []string{"at most 10m"}, 0, 10 * time.Minute, nil},
		{"cache-ttl", []string{"at most 1h"}, 0, time.Hour, nil},
		{"introspection-audit-interval", []string{"at most 10m", "0 writes"}, 0, 10 * time.Minute, nil},
		{"hsts-max-age", []string{"whole seconds", "0 sends max-age=0"}, 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			f := c.Flags().Lookup(tt.flag)
			if f == nil {
				t.Fatalf("serve has no --%s", tt.flag)
			}
			for _, w := range tt.words {
				if !strings.Contains(f.Usage, w) {
					t.Errorf("--%s help %q does not say %q", tt.flag, f.Usage, w)
				}
			}
			check := func(d time.Duration, valid bool) {
				t.Helper()
				cfg := DefaultConfig()
				fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
				cfg.addServeFlags(fs)
				if err := fs.Parse(append([]string{"--" + tt.flag + "=" + d.String()}, tt.also...)); err != nil {
					t.Fatal(err)
				}
				if err := cfg.Validate(); (err == nil) != valid {
					t.Errorf("--%s=%s: Validate: %v, want valid %v", tt.flag, d, err, valid)
				}
			}
			check(tt.min, true)
			check(tt.min-time.Second, false)
			if tt.max > 0 {
				check(tt.max, true)
				check(tt.max+time.Second, false)
			}
		})
	}
}

// TestTrustedProxiesHelp: --trusted-proxies' help says when a start warns
// of a broad range, which it does only with --client-cert-header (it said
// a start warns of any range of more than 256 addresses), and what it
// refuses and never trusts, which it did not say.
func TestTrustedProxiesHelp(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c := DefaultConfig()
	c.addServeFlags(fs)
	u := fs.Lookup("trusted-proxies").Usage
	for _, want := range []string{
		"with --client-cert-header a start warns of a range of more than 256",
		"an address with a zone (fe80::1%eth0)",
		"an IPv4-mapped range shorter than /96",
		"a proxy that connects from a link-local IPv6 address is never trusted",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("--trusted-proxies help %q does not say %q", u, want)
		}
	}
}
