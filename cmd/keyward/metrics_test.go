package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeyward"
)

func TestMetrics(t *testing.T) {
	var logs testkeyward.SyncBuffer
	m := startServer(t, func(m *Main) {
		m.Config.MetricsListen = "127.0.0.1:0"
		m.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	clientID, email := setupAccount(t, m, "scraped")
	var sec struct {
		Secret string `json:"client_secret"`
	}
	json.Unmarshal([]byte(runCLI(t, "secrets", "create", email, "-o", "json", "--credentials", m.AdminKeyFile)), &sec)
	for _, secret := range []string{sec.Secret, "kw_wrong"} {
		req, _ := http.NewRequest("POST", m.Issuer+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + m.metricsListener.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`keyward_requests_total{auth_method="client_secret_basic",endpoint="token",error="",grant="client_credentials",outcome="success"} 1`,
		`keyward_requests_total{auth_method="client_secret_basic",endpoint="token",error="invalid_client",grant="client_credentials",outcome="failure"} 1`,
		`keyward_request_duration_seconds_count{endpoint="token"}`,
		// Bounds either side of the 10 ms target, for bench's server p99.
		`keyward_request_duration_seconds_bucket{endpoint="token",le="0.0075"}`,
		`keyward_request_duration_seconds_bucket{endpoint="token",le="0.015"}`,
		`keyward_audit_batch_size_count`,
		`keyward_store_commit_duration_seconds_count`,
		`keyward_store_commit_failures_total 0`,
		`keyward_signing_key_age_seconds`,
		`keyward_auth_throttled_total{endpoint="token"} 0`,
		`keyward_auth_throttled_total{endpoint="admin"} 0`,
		`keyward_forwarded_cert_unreadable_total 0`,
		`keyward_audit_summary_writes_total{outcome="failure"} 0`,
		`keyward_audit_summaries_held`,
		// The bootstrap administrator's key never expires.
		`keyward_admin_signin_expiry_timestamp_seconds +Inf`,
		// Which binary serves: a test binary has no VCS revision.
		`keyward_build_info{goversion="` + runtime.Version() + `",revision="",version="` + readBuildInfo().Version + `"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// What the server exports, Go and process metrics too, passes
	// promlint (internal/metrics's TestMetricsLint checks every family).
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, secret := range []string{clientID, sec.Secret, email, "kw_wrong"} {
		if strings.Contains(text, secret) {
			t.Errorf("metrics contain a caller's identifier or secret %q", secret)
		}
	}
	// The startup line says which binary serves too.
	serving := false
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `msg="keyward is serving"`) {
			// A binary built without version control information
			// (a test's) says so: it logged revision="".
			serving = strings.Contains(line, " version=") && strings.Contains(line, " revision=unknown")
		}
	}
	if !serving {
		t.Errorf("the log has no 'keyward is serving' line with the version and revision=unknown:\n%s", logs.String())
	}
	// The first start names the administrator as every line does an
	// account, by client ID, and its email apart: account was the email.
	if !regexp.MustCompile(`msg="created the administrator service account; [^"]*" account=[0-9]+ email=admin@\S+ key_file=`).MatchString(logs.String()) {
		t.Errorf("the log has no first-start line with account=<client ID> email=…:\n%s", logs.String())
	}
}

// The metrics listener does not hold a connection for ever: one that
// idles after a scrape, or sends its request slowly, is closed as on the
// main listener. It has no write timeout, which would cut CPU profiles.
func TestMetricsServerTimeouts(t *testing.T) {
	m := startServer(t, func(m *Main) { m.Config.MetricsListen = "127.0.0.1:0" })
	s := m.metricsHTTP
	tests := []struct {
		name      string
		got, want time.Duration
	}{
		{"ReadHeaderTimeout", s.ReadHeaderTimeout, m.http.ReadHeaderTimeout},
		{"ReadTimeout", s.ReadTimeout, m.http.ReadTimeout},
		{"IdleTimeout", s.IdleTimeout, m.http.IdleTimeout},
		{"WriteTimeout", s.WriteTimeout, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("metrics listener's %s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
	if s.ErrorLog == nil {
		t.Error("the metrics listener's errors go to the standard logger, not the server's")
	}
	// A profile still runs for the seconds it was asked for.
	resp, err := http.Get("http://" + m.metricsListener.Addr().String() + "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("profile: %s", resp.Status)
	}
}

// TestProfileSecondsBounded: a profile, trace or delta profile asked to
// run for more than maxProfileSeconds is refused at once (400), instead of
// holding the profiler (one CPU profile or trace at a time) for as long
// as it was asked; one within the bound runs.
func TestProfileSecondsBounded(t *testing.T) {
	m := startServer(t, func(m *Main) { m.Config.MetricsListen = "127.0.0.1:0" })
	base := "http://" + m.metricsListener.Addr().String() + "/debug/pprof/"
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tt := range []struct {
		path string
		want int
	}{
		{"profile?seconds=3600", http.StatusBadRequest},
		{"profile?seconds=61", http.StatusBadRequest},
		{"trace?seconds=86400", http.StatusBadRequest},
		{"trace?seconds=Inf", http.StatusBadRequest},
		{"trace?seconds=NaN", http.StatusBadRequest},
		{"heap?seconds=3600", http.StatusBadRequest},
		{"trace?seconds=0.1", http.StatusOK},
		{"heap", http.StatusOK},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := c.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%s: %s, want %d", tt.path, resp.Status, tt.want)
			}
			if tt.want == http.StatusBadRequest && !strings.Contains(string(body), "seconds is more than 60") {
				t.Errorf("%s: %q, want it to say seconds is more than 60", tt.path, body)
			}
		})
	}
}

// metricValue scrapes m's metrics listener for the value of the metric
// name, which has no labels, failing t if it is not there.
func metricValue(t *testing.T, m *Main, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + m.metricsListener.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no " + name)
	return ""
}

// When the administrators' last keys expire on their own, the gauge says
// when, and the server warns within 14 days of it, once a day, saying what
// to do; after they expired the gauge is 0.
func TestAdminSignInExpiry(t *testing.T) {
	var logs testkeyward.SyncBuffer
	var skew atomic.Int64
	m := startServer(t, func(m *Main) {
		m.Config.MetricsListen = "127.0.0.1:0"
		m.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		m.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	scrape := func() string {
		t.Helper()
		return metricValue(t, m, "keyward_admin_signin_expiry_timestamp_seconds")
	}
	warnings := func() int { return strings.Count(logs.String(), "administrators can get tokens only until") }

	// Swap the bootstrap key, which never expires, for one expiring in 10
	// days.
	ctx := context.Background()
	data, err := os.ReadFile(m.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var kf struct {
		Email string `json:"client_email"`
		KeyID string `json:"private_key_id"`
	}
	json.Unmarshal(data, &kf)
	admin, err := m.store.GetAccountByEmail(ctx, kf.Email)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second).UTC()
	ev := storage.AuditEvent{Time: time.Now(), Action: "key.create", Outcome: storage.OutcomeSuccess, Actor: "test"}
	if err := m.store.CreateKey(ctx, storage.Key{ID: "expiring", AccountID: admin.ID, Algorithm: "RS256", PublicKey: []byte("spki"), Origin: storage.KeyOriginGenerated, CreatedAt: time.Now(), ExpiresAt: until}, nil, ev); err != nil {
		t.Fatal(err)
	}
	ev.Action = "key.delete"
	if err := m.store.DeleteKey(ctx, kf.KeyID, nil, ev); err != nil {
		t.Fatal(err)
	}
	if got := scrape(); got != "+Inf" {
		t.Fatalf("before a refresh the gauge is %s, want the last value read, +Inf", got)
	}
	if warnings() != 0 {
		t.Fatalf("warned while a key never expired:\n%s", logs.String())
	}

	m.refreshAdminExpiry(ctx)
	if got, want := scrape(), strconv.FormatInt(until.Unix(), 10); got != want && got != strconv.FormatFloat(float64(until.Unix()), 'e', -1, 64) {
		t.Errorf("gauge = %s, want %s", got, want)
	}
	log := logs.String()
	if warnings() != 1 || !strings.Contains(log, until.Format(time.DateOnly)) || !strings.Contains(log, "keyward keys create") || !strings.Contains(log, "recover-admin") {
		t.Fatalf("want one warning naming %s and what to do:\n%s", until.Format(time.DateOnly), log)
	}
	m.refreshAdminExpiry(ctx)
	if warnings() != 1 {
		t.Fatalf("warned again within a day:\n%s", logs.String())
	}
	skew.Store(int64(25 * time.Hour))
	m.refreshAdminExpiry(ctx)
	if warnings() != 2 {
		t.Fatalf("no warning a day later:\n%s", logs.String())
	}

	// Past the expiry nobody can get tokens.
	skew.Store(int64(11 * 24 * time.Hour))
	m.refreshAdminExpiry(ctx)
	if got := scrape(); got != "0" {
		t.Errorf("gauge after the last key expired = %s, want 0", got)
	}
	if !strings.Contains(logs.String(), "no administrator can get tokens") {
		t.Errorf("no warning that no administrator can get tokens:\n%s", logs.String())
	}
}

// At start, the server warns that no administrator can get tokens from it
// when the only way in is a certificate binding (tls_client_auth) and it
// has no --tls-client-ca to take such certificates, and says why, and
// keyward_admin_signin_expiry_timestamp_seconds is 0; with one, over TLS
// or behind a proxy, the binding counts: no warning, and +Inf.
func TestAdminSignInWarningCountsBindingsWhereTaken(t *testing.T) {
	f := newTLSFixture(t)
	for _, tt := range []struct {
		name   string
		config func(*Config)
		warn   bool
	}{
		{"no client certificates", func(*Config) {}, true},
		{"TLS without --tls-client-ca", func(c *Config) { c.TLSCert, c.TLSKey = f.serverCert, f.serverKey }, true},
		{"--tls-client-ca", func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = f.serverCert, f.serverKey, f.caFile }, false},
		{"--tls-client-ca behind a proxy", func(c *Config) {
			c.ClientCertHeader, c.TrustedProxies, c.TLSClientCA = "X-Client-Cert", []string{"10.0.0.1"}, f.caFile
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
			// The first start makes the administrator and its key; then,
			// straight in the store, the administrator trades the key
			// for a certificate binding.
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if err := m.Open(ctx); err != nil {
				m.Close()
				t.Fatal(err)
			}
			admin, err := m.store.GetAccountByEmail(ctx, "admin@keyward."+cfg.AccountDomain)
			if err != nil {
				m.Close()
				t.Fatal(err)
			}
			keys, err := m.store.ListKeys(ctx, admin.ID)
			ev := storage.AuditEvent{Time: time.Now(), Action: "account.update", Outcome: storage.OutcomeSuccess, Actor: "test"}
			if err == nil {
				_, err = m.store.UpdateAccount(ctx, admin.ID, func(a storage.Account) (storage.Account, error) {
					a.AuthMethods, a.TLS = []string{storage.AuthTLS}, storage.TLSBinding{SANDNS: "admin.example"}
					return a, nil
				}, ev)
			}
			for _, k := range keys {
				if err == nil {
					err = m.store.DeleteKey(ctx, k.ID, nil, ev)
				}
			}
			m.Close()
			if err != nil {
				t.Fatal(err)
			}

			var logs testkeyward.SyncBuffer
			c := cfg
			tt.config(&c)
			m = &Main{Config: c, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			err = m.Open(ctx)
			gauge := m.adminExpiryGauge()
			m.Close()
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]float64{true: 0, false: math.Inf(1)}[tt.warn]; gauge != want {
				t.Errorf("keyward_admin_signin_expiry_timestamp_seconds = %v, want %v", gauge, want)
			}
			warned := strings.Contains(logs.String(), "no administrator can get tokens from this server")
			if warned != tt.warn {
				t.Fatalf("warned = %v, want %v:\n%s", warned, tt.warn, logs.String())
			}
			if warned && !strings.Contains(logs.String(), "this server has no --tls-client-ca") {
				t.Errorf("the warning does not say the binding is no way in without --tls-client-ca:\n%s", logs.String())
			}
		})
	}
}

// A metrics listener that fails is logged: the server goes on serving
// tokens, and a scrape that stopped must be explained.
func TestMetricsListenerFailureLogged(t *testing.T) {
	var logs testkeyward.SyncBuffer
	m := startServer(t, func(m *Main) {
		m.Config.MetricsListen = "127.0.0.1:0"
		m.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	m.metricsListener.Close()
	want := "metrics listener failed"
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsListenerNoSniff: every answer of the metrics listener (the
// metrics, the profiles, a refusal, a path it does not serve) says
// X-Content-Type-Options: nosniff, as the main listener's do.
func TestMetricsListenerNoSniff(t *testing.T) {
	m := startServer(t, func(m *Main) { m.Config.MetricsListen = "127.0.0.1:0" })
	base := "http://" + m.metricsListener.Addr().String()
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodGet, "/debug/pprof/", http.StatusOK},
		{http.MethodGet, "/debug/pprof/heap", http.StatusOK},
		{http.MethodGet, "/debug/pprof/profile?seconds=3600", http.StatusBadRequest},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nothing", http.StatusNotFound},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: %s, want %d", tt.method, tt.path, resp.Status, tt.want)
			}
			if got := resp.Header.Values("X-Content-Type-Options"); len(got) != 1 || got[0] != "nosniff" {
				t.Errorf("%s %s: X-Content-Type-Options %q, want [nosniff]", tt.method, tt.path, got)
			}
		})
	}
}
