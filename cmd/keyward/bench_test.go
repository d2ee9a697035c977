package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/loadgen"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// TestBenchSmoke runs `keyward bench` briefly on a temporary store: every
// scenario must serve requests, without errors. The server is this test
// binary re-executed as keyward (see TestMain).
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child server")
	}
	os.Setenv("KEYWARD_TEST_RUN_MAIN", "1") // for the child only: TestMain has run
	defer os.Unsetenv("KEYWARD_TEST_RUN_MAIN")
	out := runCLI(t, "bench", "--duration", "300ms", "--warmup", "100ms", "--concurrency", "4", "--accounts", "50", "-o", "json")
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	var names []string
	for _, s := range r.Scenarios {
		names = append(names, s.Name)
		if s.Requests == 0 || s.PerSecond <= 0 || s.Errors != 0 {
			t.Errorf("%s: %d requests, %.0f/s, %d errors %v", s.Name, s.Requests, s.PerSecond, s.Errors, s.ByStatus)
		}
		if s.P50 <= 0 || s.P99 < s.P50 {
			t.Errorf("%s: percentiles %v %v", s.Name, s.P50, s.P99)
		}
	}
	if !slices.Equal(names, allScenarios) {
		t.Fatalf("scenarios %v, want %v", names, allScenarios)
	}
	if r.ServerPeakRSSBytes == 0 || r.Accounts != 50 || r.SigningAlg != "ES256" || r.ES256PerCore <= 0 ||
		r.IntrospectionAudit != "active introspections audited as summaries every 1s" {
		t.Fatalf("report = %+v", r)
	}
	if r.Scenarios[0].ServerCPUPer1k <= 0 {
		t.Fatal("no server CPU figure")
	}
	for _, s := range r.Scenarios {
		if hasHistogram := serverEndpoint(s.Name) != ""; hasHistogram != (s.ServerP99Bound > 0) {
			t.Errorf("%s: server p99 bound %v", s.Name, s.ServerP99Bound)
		}
		hasServer := !strings.HasPrefix(s.Name, "verify_")
		if want := 4; !hasServer && s.Concurrency != min(want, runtime.GOMAXPROCS(0)) || hasServer && s.Concurrency != want {
			t.Errorf("%s: %d clients (--concurrency 4, %d cores)", s.Name, s.Concurrency, runtime.GOMAXPROCS(0))
		}
		if hasServer != (s.ServerCPUPer1k > 0) {
			t.Errorf("%s: server CPU %v per 1,000", s.Name, s.ServerCPUPer1k)
		}
		if hasServer != (s.ServerPeakRSSBytes > 0) || s.ServerPeakRSSBytes > r.ServerPeakRSSBytes {
			t.Errorf("%s: server peak RSS %d (the run's %d)", s.Name, s.ServerPeakRSSBytes, r.ServerPeakRSSBytes)
		}
	}

	// --signing-alg and --introspection-audit-interval reach the started
	// server (which would refuse to start on a flag it does not know); the
	// settings of another server in the environment do not (with them it
	// would not start: the file is missing, the issuer is not its own),
	// nor does the CA of a --target (bench would fail to read it).
	t.Setenv("KEYWARD_CONFIG", filepath.Join(t.TempDir(), "missing.yaml"))
	t.Setenv("KEYWARD_CA_CERT", filepath.Join(t.TempDir(), "missing-ca.pem"))
	t.Setenv("KEYWARD_ISSUER", "https://keyward.elsewhere.example")
	t.Setenv("KEYWARD_SIGNING_ALG", "RS256")
	out = runCLI(t, "bench", "--duration", "200ms", "--warmup", "0s", "--concurrency", "2", "--scenarios", "client_credentials_secret,introspect_opaque",
		"--signing-alg", "EdDSA", "--introspection-audit-interval", "0", "-o", "json")
	r = benchReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	if r.SigningAlg != "EdDSA" || r.IntrospectionAudit != "each introspection audited before its answer" || len(r.Scenarios) != 2 {
		t.Fatalf("report = %+v", r)
	}
	for _, s := range r.Scenarios {
		if s.Requests == 0 || s.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors", s.Name, s.Requests, s.Errors)
		}
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--duration", "0s"},
		{"bench", "--concurrency", "0"},
		{"bench", "--scenarios", "nope"},
		{"bench", "--target", "http://x", "--accounts", "5"},
		{"bench", "-o", "yaml"},
		{"bench", "--signing-alg", "HS256"},
		{"bench", "--rate", "-1"},
		{"bench", "--warmup", "-1s"},
		{"bench", "--rate", "NaN"},
		{"bench", "--rate", "1e12"},
		{"bench", "--target", "http://x", "--signing-alg", "EdDSA"},
		{"bench", "--target", "http://x", "--introspection-audit-interval", "0"},
		{"bench", "--introspection-audit-interval", "-1s"},
		{"bench", "--target-metrics", "http://x/metrics"},
		{"bench", "--target", "http://x", "--target-metrics", "x:9090"},
		{"bench", "--scenarios", "client_credentials_dpop", "--duration", "50s"}, // proofs signed before go stale
	} {
		if err := runCLIErr(t, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestBenchFlagErrors: a bad value is refused with an error naming its
// flag, before anything is set up (the --target case has no --credentials,
// which it would need next).
func TestBenchFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		flag string
	}{
		{[]string{"--duration", "-1s"}, "--duration"},
		{[]string{"--duration", "2h"}, "--duration"},
		{[]string{"--duration", "1ns"}, "--duration"},
		{[]string{"--duration", "99ms"}, "--duration"},
		{[]string{"--concurrency", "-3"}, "--concurrency"},
		{[]string{"--rate", "+Inf"}, "--rate"},
		{[]string{"--warmup", "1h"}, "--warmup"},
		{[]string{"--warmup", "10m1ms"}, "--warmup"},
		{[]string{"--warmup", "1ns"}, "--warmup"},
		{[]string{"--warmup", "99ms"}, "--warmup"},
		{[]string{"--introspection-audit-interval", "10m1ms"}, "--introspection-audit-interval"},
		{[]string{"--accounts", "-5"}, "--accounts"},
		// Without --target they were ignored, and a server of bench's own
		// measured in place of the one meant.
		{[]string{"--credentials", "admin-key.json", "--scenarios", "healthz", "--duration", "100ms", "--warmup", "0s"}, "--credentials"},
		{[]string{"--ca-cert", "ca.pem", "--scenarios", "healthz", "--duration", "100ms", "--warmup", "0s"}, "--ca-cert"},
		{[]string{"--accounts", "10000001"}, "--accounts"},
		{[]string{"--target", "http://127.0.0.1:1", "--accounts", "-5"}, "--accounts"},
		{[]string{"--scenarios", ""}, "--scenarios"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := runCLIErr(t, append([]string{"bench"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Errorf("error %v, want one naming %s", err, tt.flag)
			}
		})
	}
}

// TestBenchFlagBounds: each bounded flag's --help gives the largest value
// runBench takes, and the smallest where it is above 0, which
// TestBenchFlagErrors checks is refused beyond them.
func TestBenchFlagBounds(t *testing.T) {
	fl := newBenchCommand().Flags()
	for _, tt := range []struct{ flag, bound string }{
		{"duration", "1h"},
		{"concurrency", "10000"},
		{"warmup", "10m"},
		{"rate", "10000000"},
		{"accounts", "10000000"},
		{"introspection-audit-interval", "10m"},
	} {
		if u := fl.Lookup(tt.flag).Usage; !strings.Contains(u, tt.bound) {
			t.Errorf("--%s %q does not say it is at most %s", tt.flag, u, tt.bound)
		}
	}
	// And the smallest, for those with one above 0.
	for _, flag := range []string{"duration", "warmup"} {
		if u := fl.Lookup(flag).Usage; !strings.Contains(u, "from "+minBenchDuration.String()) {
			t.Errorf("--%s %q does not say it is at least %s", flag, u, minBenchDuration)
		}
	}
}

// TestBenchTargetCredentialsDefault: bench --target without --credentials
// reads the administrator key file every admin command reads,
// $KEYWARD_CREDENTIALS (else ./keyward-data/admin-key.json), and its help
// says so: it said --target needed --credentials.
func TestBenchTargetCredentialsDefault(t *testing.T) {
	fl := newBenchCommand().Flags()
	if u := fl.Lookup("credentials").Usage; !strings.Contains(u, "$KEYWARD_CREDENTIALS") || !strings.Contains(u, "admin-key.json") {
		t.Errorf("--credentials %q does not name its default", u)
	}
	if u := fl.Lookup("target").Usage; strings.Contains(u, "needs --credentials") {
		t.Errorf("--target %q says it needs --credentials", u)
	}
	creds := filepath.Join(t.TempDir(), "missing-admin-key.json")
	t.Setenv("KEYWARD_CREDENTIALS", creds)
	err := runCLIErr(t, "bench", "--target", "http://127.0.0.1:1", "--scenarios", "healthz", "--duration", "100ms", "--warmup", "0")
	if err == nil || !strings.Contains(err.Error(), creds) {
		t.Errorf("bench --target with KEYWARD_CREDENTIALS=%s: %v, want it read", creds, err)
	}
	// KEYWARD_CA_CERT is read with --target (only).
	ca := filepath.Join(t.TempDir(), "missing-ca.pem")
	t.Setenv("KEYWARD_CA_CERT", ca)
	err = runCLIErr(t, "bench", "--target", "http://127.0.0.1:1", "--scenarios", "healthz", "--duration", "100ms", "--warmup", "0")
	if err == nil || !strings.Contains(err.Error(), ca) {
		t.Errorf("bench --target with KEYWARD_CA_CERT=%s: %v, want it read", ca, err)
	}
}

// TestBenchTLSTarget benchmarks a running server over TLS, trusting its CA
// through --ca-cert.
func TestBenchTLSTarget(t *testing.T) {
	f := newTLSFixture(t)
	m := startServer(t, func(m *Main) { m.Config.TLSCert, m.Config.TLSKey = f.serverCert, f.serverKey })
	// A second, not less: on a loaded machine the TLS handshakes alone
	// once took a 200 ms run's whole window.
	args := []string{"bench", "--target", m.URL(), "--credentials", m.AdminKeyFile, "--duration", "1s", "--warmup", "0s", "--concurrency", "2",
		"--scenarios", "client_credentials_secret,introspect_jwt", "-o", "json"}
	if err := runCLIErr(t, args...); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v, want a certificate error", err)
	}
	out := runCLI(t, append(args, "--ca-cert", f.caFile)...)
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	for _, s := range r.Scenarios {
		if s.Requests == 0 || s.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors %v", s.Name, s.Requests, s.Errors, s.ByStatus)
		}
	}
	if len(r.Scenarios) != 2 || r.SigningAlg != "ES256" {
		t.Fatalf("report = %+v", r)
	}

	// --rate paces the clients: 100 requests/s for 1 s is at most 100
	// requests, however fast the server answers (thousands unpaced), and
	// the warm-up's are not counted.
	out = runCLI(t, "bench", "--target", m.URL(), "--credentials", m.AdminKeyFile, "--ca-cert", f.caFile, "--duration", "1s",
		"--warmup", "300ms", "--concurrency", "2", "--rate", "100", "--scenarios", "client_credentials_secret", "-o", "json")
	r = benchReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	if r.Rate != 100 || r.Warmup != "300ms" || len(r.Scenarios) != 1 {
		t.Fatalf("report = %+v", r)
	}
	if s := r.Scenarios[0]; s.Requests == 0 || s.Requests > 100 || s.Errors != 0 {
		t.Fatalf("at 100/s for 1s: %d requests, %d errors %v", s.Requests, s.Errors, s.ByStatus)
	}
}

// TestBenchStrictClientAssertionAudience: bench's private_key_jwt client
// assertions are for the issuer, which a server with
// --strict-client-assertion-audience requires; its DPoP proofs stay for
// the token endpoint.
func TestBenchStrictClientAssertionAudience(t *testing.T) {
	m := startServer(t, func(m *Main) { m.Config.StrictClientAssertionAudience = true })
	out := runCLI(t, "bench", "--target", m.URL(), "--credentials", m.AdminKeyFile, "--duration", "200ms", "--warmup", "0s", "--concurrency", "2",
		"--scenarios", "client_credentials_private_key_jwt,client_credentials_dpop", "-o", "json")
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	if len(r.Scenarios) != 2 {
		t.Fatalf("report = %+v", r)
	}
	for _, s := range r.Scenarios {
		if s.Requests == 0 || s.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors %v", s.Name, s.Requests, s.Errors, s.ByStatus)
		}
	}
}

// TestBenchTargetDies: a target that stops answering during a scenario
// fails the run, saying so, instead of reporting the failures as figures.
func TestBenchTargetDies(t *testing.T) {
	m := startServer(t)
	var tokens atomic.Int64
	proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" && tokens.Add(1) > 3 { // the fixtures take one; the scenario, the rest
			panic(http.ErrAbortHandler) // the server is gone: connections break
		}
		return false
	})
	args := []string{"bench", "--target", proxy.URL, "--credentials", m.AdminKeyFile, "--duration", "500ms", "--warmup", "0s", "--concurrency", "2",
		"--scenarios", "client_credentials_secret,introspect_jwt", "-o", "json"}
	var out strings.Builder
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "stopped answering") || !strings.Contains(err.Error(), "client_credentials_secret") {
		t.Fatalf("error %v, want one saying the server stopped answering", err)
	}
	var r benchReport
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out.String(), err)
	}
	if len(r.Scenarios) != 1 || !strings.Contains(r.Scenarios[0].Note, "stopped answering") {
		t.Fatalf("report = %+v, want the one scenario, noted", r)
	}
}

// TestBenchTargetMetrics: with --target-metrics, a running server's CPU,
// memory and own p99 are read from its metrics and reported per scenario.
func TestBenchTargetMetrics(t *testing.T) {
	m := startServer(t, func(m *Main) { m.Config.MetricsListen = "127.0.0.1:0" })
	metrics := "http://" + m.metricsListener.Addr().String() + "/metrics"
	args := []string{"bench", "--target", m.URL(), "--credentials", m.AdminKeyFile, "--duration", "300ms", "--warmup", "0s",
		"--concurrency", "2", "--scenarios", "client_credentials_secret,healthz,verify_warm", "-o", "json"}

	if err := runCLIErr(t, append(args, "--target-metrics", m.URL()+"/metrics")...); err == nil || !strings.Contains(err.Error(), "--target-metrics") {
		t.Fatalf("metrics URL that is not one: %v, want a --target-metrics error", err)
	}
	out := runCLI(t, append(args, "--target-metrics", metrics)...)
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	if len(r.Scenarios) != 3 || r.ServerPeakRSSBytes <= 0 {
		t.Fatalf("report = %+v", r)
	}
	for _, s := range r.Scenarios {
		server := s.Name != "verify_warm"
		if s.Requests == 0 || s.Errors != 0 || server != (s.ServerCPUPer1k > 0) || server != (s.ServerPeakRSSBytes > 0) ||
			(s.Name == "client_credentials_secret") != (s.ServerP99Bound > 0) || strings.Contains(s.Note, "unknown") {
			t.Errorf("%s: %+v", s.Name, s)
		}
	}

	// Without it, the server's figures are unknown.
	out = runCLI(t, args...)
	r = benchReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	for _, s := range r.Scenarios {
		if s.ServerCPUPer1k != 0 || s.ServerPeakRSSBytes != 0 || s.ServerP99Bound != 0 {
			t.Errorf("without --target-metrics, %s: %+v", s.Name, s)
		}
	}
}

func TestP99Bound(t *testing.T) {
	bounds := []float64{.001, .005, .01}
	withInf := []float64{.001, .005, .01, math.Inf(+1)} // as every exposition ends
	h := func(counts ...uint64) serverHistogram {
		return serverHistogram{bounds: bounds, counts: counts, total: counts[len(counts)-1] + 1}
	}
	tests := []struct {
		name          string
		before, after serverHistogram
		want, over    time.Duration
	}{
		{"nothing counted", serverHistogram{}, serverHistogram{}, 0, 0},
		{"first bucket", serverHistogram{}, serverHistogram{bounds: bounds, counts: []uint64{100, 100, 100}, total: 100}, time.Millisecond, 0},
		{"99th in the second", serverHistogram{}, serverHistogram{bounds: bounds, counts: []uint64{50, 99, 100}, total: 100}, 5 * time.Millisecond, 0},
		{"earlier requests do not count", h(1000, 1000, 1000), serverHistogram{bounds: bounds, counts: []uint64{1000, 1098, 1100}, total: 1101}, 10 * time.Millisecond, 0},
		{"past the last bound", serverHistogram{}, serverHistogram{bounds: bounds, counts: []uint64{10, 20, 30}, total: 100}, 0, 10 * time.Millisecond},
		{"in the +Inf bucket", serverHistogram{}, serverHistogram{bounds: withInf, counts: []uint64{10, 20, 30, 100}, total: 100}, 0, 10 * time.Millisecond},
		{"under the last finite bound, with +Inf", serverHistogram{}, serverHistogram{bounds: withInf, counts: []uint64{10, 20, 99, 100}, total: 100}, 10 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, over := p99Bound(tt.before, tt.after); got != tt.want || over != tt.over {
				t.Errorf("p99Bound = %v, over %v; want %v, over %v", got, over, tt.want, tt.over)
			}
		})
	}
}

func TestReadServerMetrics(t *testing.T) {
	body := `# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 5.24288e+07
# TYPE keyward_request_duration_seconds histogram
keyward_request_duration_seconds_bucket{endpoint="token",le="0.005"} 90
keyward_request_duration_seconds_bucket{endpoint="token",le="0.01"} 100
keyward_request_duration_seconds_bucket{endpoint="token",le="+Inf"} 100
keyward_request_duration_seconds_sum{endpoint="token"} 0.4
keyward_request_duration_seconds_count{endpoint="token"} 100
keyward_request_duration_seconds_bucket{endpoint="introspect",le="0.005"} 7
keyward_request_duration_seconds_bucket{endpoint="introspect",le="0.01"} 7
keyward_request_duration_seconds_bucket{endpoint="introspect",le="+Inf"} 7
keyward_request_duration_seconds_sum{endpoint="introspect"} 0.01
keyward_request_duration_seconds_count{endpoint="introspect"} 7
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bad":
			io.WriteString(w, "not { prometheus")
		case "/noprocess":
			io.WriteString(w, body[strings.Index(body, "# TYPE keyward"):])
		default:
			io.WriteString(w, body)
		}
	}))
	defer srv.Close()
	b := &bench{http: srv.Client(), metricsURL: srv.URL + "/metrics"}
	m, err := b.readServerMetrics(context.Background(), "token")
	h := m.hist
	if err != nil || h.total != 100 || len(h.bounds) != 3 {
		t.Fatalf("token histogram = %+v, %v", h, err)
	}
	if !m.hasProcess || m.cpu != 12.5 || m.rss != 50<<20 {
		t.Errorf("process figures: %+v", m)
	}
	if got, over := p99Bound(serverHistogram{}, h); got != 10*time.Millisecond || over != 0 {
		t.Errorf("p99 bound = %v (over %v), want 10ms", got, over)
	}
	if m, err := b.readServerMetrics(context.Background(), "revoke"); err != nil || m.hist.total != 0 {
		t.Errorf("an endpoint without requests: %+v, %v", m, err)
	}
	b.metricsURL = srv.URL + "/noprocess"
	if m, err := b.readServerMetrics(context.Background(), "token"); err != nil || m.hasProcess || m.hist.total != 100 {
		t.Errorf("metrics without the process collector: %+v, %v", m, err)
	}
	b.metricsURL = srv.URL + "/bad"
	if _, err := b.readServerMetrics(context.Background(), "token"); err == nil {
		t.Error("a malformed exposition was accepted")
	}
}

// TestBenchPostgres runs `keyward bench --db` twice on one database: each
// run gets a schema of its own (a second run on the first one's store would
// meet a master key it cannot use), and drops it at the end. Only the
// schemas of its own runs are looked for: it took any schema new since its
// start for one left behind, so another bench running on the database at
// the same time failed it.
func TestBenchPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child server")
	}
	dsn := os.Getenv(pgtest.DSNEnv)
	if dsn == "" {
		t.Skipf("%s is not set; skipping PostgreSQL tests", pgtest.DSNEnv)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	os.Setenv("KEYWARD_TEST_RUN_MAIN", "1") // for the child only: TestMain has run
	defer os.Unsetenv("KEYWARD_TEST_RUN_MAIN")
	var schemas []string // this test's: other runs on the database may come and go meanwhile
	for range 2 {
		// A second and a warm-up: on a busy machine, the first requests on
		// new PostgreSQL connections took all of a 200 ms run.
		out := runCLI(t, "bench", "--db", dsn, "--duration", "1s", "--warmup", "200ms", "--concurrency", "2",
			"--scenarios", "client_credentials_secret", "-o", "json")
		var r benchReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bench printed %q: %v", out, err)
		}
		if len(r.Scenarios) != 1 || r.Scenarios[0].Requests == 0 || r.Scenarios[0].Errors != 0 || !strings.Contains(r.Store, "postgres") {
			t.Fatalf("report = %+v", r)
		}
		// The store the report names is the run's own schema.
		u, err := url.Parse(strings.TrimPrefix(r.Store, "postgres "))
		schema := ""
		if err == nil {
			schema = u.Query().Get("search_path")
		}
		if !strings.HasPrefix(schema, "keyward_bench_") || slices.Contains(schemas, schema) {
			t.Fatalf("store %q: want a schema of the run's own", r.Store)
		}
		schemas = append(schemas, schema)
	}
	for _, n := range schemas {
		var left bool
		if err := db.QueryRow("SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)", n).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left {
			t.Errorf("benchmark schema %s left behind", n)
		}
	}
}

// TestBenchInterrupted: stopped mid-run, bench reports what it measured,
// says it was interrupted, and fails.
func TestBenchInterrupted(t *testing.T) {
	m := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCommand()
	cmd.SetArgs([]string{"bench", "--target", m.URL(), "--credentials", m.AdminKeyFile, "--duration", "1m", "--warmup", "0s",
		"--concurrency", "2", "--scenarios", "client_credentials_secret,introspect_opaque", "-o", "json"})
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	time.AfterFunc(4*time.Second, cancel) // setup takes well under that; the first scenario, a minute
	start := time.Now()
	err := cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v, want an interruption", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("bench took %v to stop", took)
	}
	var r benchReport
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out.String(), err)
	}
	if !r.Interrupted || len(r.Scenarios) != 1 || r.Scenarios[0].Requests == 0 || !strings.Contains(r.Scenarios[0].Note, "interrupted after") {
		t.Fatalf("report = %+v", r)
	}
}

// TestBenchAssertionJTI: against a server started with
// --require-assertion-jti, jwt_bearer's Google-like assertions (no jti)
// are all refused, and the report says why and what to do; with
// --assertion-jti each assertion carries its own jti, is sent once, and
// every request gets a token.
func TestBenchAssertionJTI(t *testing.T) {
	m := startServer(t, func(m *Main) { m.Config.RequireAssertionJTI = true })
	args := []string{"bench", "--target", m.URL(), "--credentials", m.AdminKeyFile, "--duration", "200ms", "--warmup", "0s", "--concurrency", "2",
		"--scenarios", "jwt_bearer", "-o", "json"}
	tests := []struct {
		name       string
		extra      []string
		wantErrors bool
		wantNote   []string // parts of the scenario's note
	}{
		{"without jti", nil, true, []string{"invalid_grant", "requires a jti claim", "--assertion-jti"}},
		{"--assertion-jti", []string{"--assertion-jti"}, false, []string{"each with its own jti", "each sent once"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := runCLI(t, append(args, tt.extra...)...)
			var r benchReport
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("bench printed %q: %v", out, err)
			}
			if len(r.Scenarios) != 1 {
				t.Fatalf("report = %+v", r)
			}
			s := r.Scenarios[0]
			if s.Requests == 0 || (s.Errors != 0) != tt.wantErrors || tt.wantErrors && s.Errors != s.Requests {
				t.Fatalf("%d requests, %d errors %v, want errors: %v", s.Requests, s.Errors, s.ByStatus, tt.wantErrors)
			}
			for _, want := range tt.wantNote {
				if !strings.Contains(s.Note, want) {
					t.Errorf("note %q, want %q in it", s.Note, want)
				}
			}
		})
	}
}

// TestBenchFirstErrorOfTheRun: the note's first error is one of the
// measured run, whose errors the report counts, not one of the warm-up.
// A proxy refuses the scenario's first request (in the warm-up) one way
// and every other one after it another way.
func TestBenchFirstErrorOfTheRun(t *testing.T) {
	m := startServer(t)
	var sent atomic.Int64
	proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		// The scenario's requests are loadgen's, which name no user agent;
		// the fixtures' are Go's HTTP client's.
		if r.URL.Path != "/token" || r.UserAgent() != "" {
			return false
		}
		refuse := func(code, desc string) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
			return true
		}
		switch n := sent.Add(1); {
		case n == 1:
			return refuse("invalid_request", "refused in the warm-up")
		case n%2 == 0:
			return refuse("invalid_scope", "refused in the run")
		}
		return false
	})
	out := runCLI(t, "bench", "--target", proxy.URL, "--credentials", m.AdminKeyFile, "--duration", "300ms", "--warmup", "200ms", "--concurrency", "1",
		"--scenarios", "client_credentials_secret", "-o", "json")
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	if len(r.Scenarios) != 1 || r.Scenarios[0].Errors == 0 {
		t.Fatalf("report = %+v, want one scenario with errors", r)
	}
	if note := r.Scenarios[0].Note; !strings.Contains(note, `first error: HTTP 400 invalid_scope "refused in the run"`) {
		t.Fatalf("note %q, want the first error of the run, not the warm-up's", note)
	}
}

func TestChildEnviron(t *testing.T) {
	got := childEnviron([]string{
		"PATH=/usr/bin", "KEYWARD_CONFIG=/etc/keyward/keyward.yaml", "KEYWARD_ISSUER=https://x.example",
		"KEYWARD_MASTER_KEY=abc", "KEYWARD_MASTER_KEY_FILE=/k", "KEYWARD_DB=postgres://db", "KEYWARD_TLS_CERT=/c.pem",
		"KEYWARD_CREDENTIALS=/admin.json", "KEYWARD_TEST_RUN_MAIN=1", "HOME=/root",
	})
	want := []string{"PATH=/usr/bin", "KEYWARD_CREDENTIALS=/admin.json", "KEYWARD_TEST_RUN_MAIN=1", "HOME=/root"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnviron = %q, want %q", got, want)
	}
}

// TestBenchFillAccountDomain: the accounts --accounts fills are in the
// account domain of the configuration the bench serves with, as the
// administrator it bootstraps is, not always in the default one.
func TestBenchFillAccountDomain(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.AccountDomain = "iam.other.example"
	b := &bench{f: benchFlags{accounts: 3}, out: io.Discard, progress: func(string) {}, master: make([]byte, 32)}
	ctx := context.Background()
	if err := b.fill(ctx, cfg, "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	accts, err := st.ListAccounts(ctx, storage.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != 4 { // the administrator and the three filled
		t.Fatalf("%d accounts, want 4", len(accts))
	}
	for _, a := range accts {
		if !strings.HasSuffix(a.Email, "."+cfg.AccountDomain) {
			t.Errorf("account %s has email %s, not in %s", a.ID, a.Email, cfg.AccountDomain)
		}
	}
}

// TestRefusalExplainQuotesCode: the error code of a first error, which a
// --target server sends, reaches the terminal as cell shows text, as its
// description does quoted: no escape sequence from the server.
func TestRefusalExplainQuotesCode(t *testing.T) {
	for _, tt := range []struct{ code, want string }{
		{"invalid_grant", "first error: HTTP 400 invalid_grant"},
		{"bad\x1b[2J", `first error: HTTP 400 "bad\x1b[2J"`},
	} {
		f := &refusal{status: 400, code: tt.code}
		if got := f.explain("client_credentials_secret", false); !strings.HasPrefix(got, tt.want) {
			t.Errorf("explain = %q, want it to begin %q", got, tt.want)
		}
	}
}

// When the credentials signed before a run run out, its clients stop:
// the scenario's figures cover the requests sent, with no errors for the
// ones not sent, and its note says so.
func TestBenchCredentialsRunOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child server")
	}
	os.Setenv("KEYWARD_TEST_RUN_MAIN", "1") // for the child only: TestMain has run
	defer os.Unsetenv("KEYWARD_TEST_RUN_MAIN")
	defer func(n int) { maxPresigned = n }(maxPresigned)
	maxPresigned = 300
	out := runCLI(t, "bench", "--duration", "5s", "--warmup", "0s", "--concurrency", "4", "--scenarios", "client_credentials_private_key_jwt", "-o", "json")
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	s := r.Scenarios[0]
	if !s.Exhausted || s.Requests != 300 || s.Errors != 0 || !strings.Contains(s.Note, "ran out") {
		t.Fatalf("%+v, want the 300 assertions sent, no errors, and a note that they ran out", s)
	}
	// They ran out because 300 is the most bench signs, not because the
	// server was faster than the count allowed for.
	if !strings.Contains(s.Note, "300, the most bench signs, were too few") || strings.Contains(s.Note, "answered faster") {
		t.Errorf("note %q, want it to say the most bench signs were too few", s.Note)
	}
	if s.Elapsed >= 5*time.Second {
		t.Errorf("the run took %v, want it over once the assertions ran out", s.Elapsed)
	}
}

// A DPoP proof signed before the run whose turn comes after it has grown
// too old is signed again then, not sent stale for the server to refuse
// and the report to count as the server's error. Here proofs may be a
// second old, and the server (a stand-in checking them) takes no older.
func TestBenchDPoPProofsStayFresh(t *testing.T) {
	defer func(d time.Duration) { dpopFreshFor = d }(dpopFreshFor)
	dpopFreshFor = time.Second
	checker := dpop.Checker{MaxAge: time.Second, Skew: time.Nanosecond}
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := checker.Check(r.Header.Values(dpop.Header), dpop.Request{Method: r.Method, URL: "http://" + r.Host + r.URL.Path}); err != nil {
			refused.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	conns, err := loadgen.NewConns(srv.URL, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Close()
	u, _ := url.Parse(srv.URL)
	b := &bench{f: benchFlags{duration: time.Second, rate: 1}, progress: func(string) {}, base: srv.URL, host: u.Host, conns: conns}
	b.fixtures.keyFile = []byte(`{"token_uri": "` + srv.URL + `/token"}`)
	req, before, _, err := b.prepare(context.Background(), dpopScenario)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // the proofs' iat (whole seconds) is now over 2s old
	for i := 1; i <= 3; i++ {
		if status, ok := sendPrepared(t, b, before, req, i); !ok {
			t.Errorf("request %d, its proof signed over 2s before: HTTP %d", i, status)
		}
	}
	if n := b.resigned.Load(); n != 3 || refused.Load() != 0 {
		t.Errorf("%d proofs signed again, %d refused; want 3 and 0", n, refused.Load())
	}
}

// sendPrepared sends request i of worker 0 as loadgen does, Prepare
// first, and checks that the credential that had to be signed again was
// signed in Prepare, before the request's clock starts (issue #7: what is
// measured is the server, not client-side signing), not in the request.
func sendPrepared(t *testing.T, b *bench, before loadgen.Prepare, req loadgen.Request, i int) (int, bool) {
	t.Helper()
	n := b.resigned.Load()
	if before == nil {
		t.Fatal("no Prepare: the credentials would be signed again inside the measured request")
	}
	if before(context.Background(), 0, i) == loadgen.Exhausted {
		t.Fatalf("request %d: the credentials ran out", i)
	}
	if b.resigned.Load() != n+1 {
		t.Errorf("request %d: Prepare signed %d credentials again, want the request's one", i, b.resigned.Load()-n)
	}
	status, ok := req(context.Background(), 0, i)
	if b.resigned.Load() != n+1 {
		t.Errorf("request %d: the request itself signed a credential again, inside its latency", i)
	}
	return status, ok
}

// TestBenchTargetSetupFails: when setting up the fixtures on a --target
// fails part way, what was created is deleted again, as after a run.
func TestBenchTargetSetupFails(t *testing.T) {
	m := startServer(t)
	proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/keys/upload") { // the last round of the fixtures
			return false
		}
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return true
	})
	err := runCLIErr(t, "bench", "--target", proxy.URL, "--credentials", m.AdminKeyFile, "--duration", "200ms", "--warmup", "0s",
		"--concurrency", "2", "--scenarios", "healthz")
	if err == nil {
		t.Fatal("bench ran without its fixtures")
	}
	bg := context.Background()
	accts, err := m.store.ListAccounts(bg, storage.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if strings.HasPrefix(a.Name, "bench") {
			t.Errorf("fixture account %s (%s) left on the target", a.Name, a.ID)
		}
	}
	apis, err := m.store.ListAPIs(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apis {
		if strings.HasPrefix(a.Name, "bench") {
			t.Errorf("fixture API %s left on the target", a.Name)
		}
	}
}

// TestBenchCutOff: requests the server never answers do not vanish from
// the report: the scenario says how many were cut off at the end, and a
// server that answers none has stopped answering, which fails the run.
func TestBenchCutOff(t *testing.T) {
	m := startServer(t)
	proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/healthz" {
			return false
		}
		<-r.Context().Done() // no answer, ever
		return true
	})
	var out strings.Builder
	cmd := newRootCommand()
	cmd.SetArgs([]string{"bench", "--target", proxy.URL, "--credentials", m.AdminKeyFile, "--duration", "200ms", "--warmup", "0s",
		"--concurrency", "2", "--scenarios", "healthz,introspect_jwt", "-o", "json"})
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "stopped answering") || !strings.Contains(err.Error(), "2 of 2 requests") {
		t.Fatalf("error %v, want one saying the server stopped answering", err)
	}
	var r benchReport
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("bench printed %q: %v", out.String(), err)
	}
	if len(r.Scenarios) != 1 {
		t.Fatalf("%d scenarios, want the run stopped after the first", len(r.Scenarios))
	}
	if s := r.Scenarios[0]; s.Requests != 0 || s.CutOff != 2 || !strings.Contains(s.Note, "2 requests still unanswered") || !strings.Contains(s.Note, "stopped answering") {
		t.Fatalf("%+v, want the 2 requests cut off, and noted", s)
	}
}

// TestBenchTargetCleanupFails: fixtures bench cannot delete from a
// --target at the end are named, to be deleted by hand, not left there
// without a word.
func TestBenchTargetCleanupFails(t *testing.T) {
	m := startServer(t)
	proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodDelete {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"try again"}`))
		return true
	})
	var stderr strings.Builder
	cmd := newRootCommand()
	cmd.SetArgs([]string{"bench", "--target", proxy.URL, "--credentials", m.AdminKeyFile, "--duration", "200ms", "--warmup", "0s",
		"--concurrency", "2", "--scenarios", "healthz", "-o", "json"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	accts, err := m.store.ListAccounts(context.Background(), storage.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var left int
	for _, a := range accts {
		if strings.HasPrefix(a.Name, "bench") {
			left++
			if !strings.Contains(stderr.String(), a.ID) {
				t.Errorf("fixture account %s left on the target without a word: %q", a.ID, stderr.String())
			}
		}
	}
	if left != 2 || !strings.Contains(stderr.String(), "try again") {
		t.Errorf("%d fixture accounts left, stderr %q; want 2, named with the reason", left, stderr.String())
	}
}

// TestBenchReportNoRequests: a scenario that measured no request (all cut
// off, or its credentials ran out at once) has no latencies: the table
// says "-", not 0.00ms.
func TestBenchReportNoRequests(t *testing.T) {
	r := benchReport{Machine: "m", Concurrency: 2, Duration: "1s", Scenarios: []scenarioResult{
		{Name: "healthz", Result: loadgen.Result{CutOff: 2}},
		{Name: "introspect_jwt", Result: loadgen.Result{Requests: 10, P50: 1500 * time.Microsecond, P90: 2 * time.Millisecond, P99: 3 * time.Millisecond, Max: 4 * time.Millisecond}},
	}}
	var out strings.Builder
	if err := r.write(&out, ""); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		switch f[0] {
		case "healthz":
			if got := strings.Join(f[2:6], " "); got != "- - - -" {
				t.Errorf("no requests: latencies %q, want - - - -", got)
			}
		case "introspect_jwt":
			if got := strings.Join(f[2:6], " "); got != "1.5ms 2.0ms 3.0ms 4.0ms" {
				t.Errorf("latencies %q", got)
			}
		}
	}
}

// An assertion signed before the run whose turn comes when little of its
// hour (exp) is left is signed again then, not sent for the server to
// refuse and the report to count as the server's error: a run of up to 1h
// after a warm-up of up to 10m outlasts it. Here assertions may be a
// second old, and the server (a stand-in) takes none with less than
// 1h - 2s left.
func TestBenchAssertionsStayFresh(t *testing.T) {
	defer func(d time.Duration) { assertionFreshFor = d }(assertionFreshFor)
	assertionFreshFor = time.Second
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := r.PostFormValue("assertion") + r.PostFormValue("client_assertion")
		var c struct {
			Exp int64 `json:"exp"`
		}
		tok, err := jwt.ParseSigned(a, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
		if err != nil || tok.UnsafeClaimsWithoutVerification(&c) != nil || time.Until(time.Unix(c.Exp, 0)) < time.Hour-2*time.Second {
			refused.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	keyFile, _ := json.Marshal(map[string]string{"private_key_id": "k1", "private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "sa@bench.test", "token_uri": srv.URL + "/token"})
	esKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(srv.URL)
	defer func(n int) { maxPresigned = n }(maxPresigned)
	maxPresigned = 10
	type run struct {
		name   string
		b      *bench
		req    loadgen.Request
		before loadgen.Prepare
	}
	var runs []run
	for _, tt := range []struct {
		scenario     string
		assertionJTI bool
	}{
		{"client_credentials_private_key_jwt", false},
		{"jwt_bearer", false}, // cycled
		{"jwt_bearer", true},  // each sent once
	} {
		conns, err := loadgen.NewConns(srv.URL, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conns.Close()
		b := &bench{f: benchFlags{duration: time.Second, rate: 1, assertionJTI: tt.assertionJTI}, progress: func(string) {}, base: srv.URL, host: u.Host, conns: conns}
		b.fixtures = fixtures{clientID: "c1", esKey: esKey, esKeyID: "e1", keyFile: keyFile}
		req, before, _, err := b.prepare(context.Background(), tt.scenario)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run{fmt.Sprintf("%s (--assertion-jti %v)", tt.scenario, tt.assertionJTI), b, req, before})
	}
	time.Sleep(2500 * time.Millisecond) // the assertions' exp is now less than 1h - 2s away
	for _, r := range runs {
		refused.Store(0)
		for i := 1; i <= 3; i++ {
			if status, ok := sendPrepared(t, r.b, r.before, r.req, i); !ok {
				t.Errorf("%s: request %d, its assertion signed over 2.5s before: HTTP %d", r.name, i, status)
			}
		}
		if n := r.b.resigned.Load(); n != 3 || refused.Load() != 0 {
			t.Errorf("%s: %d signed again, %d refused; want 3 and 0", r.name, n, refused.Load())
		}
	}
}

// TestBenchReportMS: the table's latencies keep their figures down to the
// microseconds of a verify cache hit, which showed as 0.00ms.
func TestBenchReportMS(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{1234 * time.Nanosecond, "1.2µs"},
		{260 * time.Nanosecond, "0.3µs"},
		{9990 * time.Nanosecond, "10.0µs"},
		{10 * time.Microsecond, "0.01ms"},
		{280 * time.Microsecond, "0.28ms"},
		{1500 * time.Microsecond, "1.5ms"},
		{2 * time.Second, "2000.0ms"},
	} {
		if got := ms(tt.d); got != tt.want {
			t.Errorf("ms(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestBenchUnreachableBehindRate: a server answering every request, but
// slower than --rate asks, is not taken for one that stopped answering:
// the requests due and never sent at the cutoff are cut off, but they got
// no answer because they were never asked, not because the server hung.
func TestBenchUnreachableBehindRate(t *testing.T) {
	// 2,000 due in 200 ms, answered at 100/s through the run and the
	// drain after it (at least 2 s): about 220 answered, the rest cut off.
	r := loadgen.Run(context.Background(), loadgen.Load{Concurrency: 1, Duration: 200 * time.Millisecond, Rate: 10000},
		func(ctx context.Context, w, i int) (int, bool) {
			select {
			case <-time.After(10 * time.Millisecond):
				return 200, true
			case <-ctx.Done():
				return 0, false
			}
		}, nil)
	if r.Requests == 0 || r.CutOff <= r.Requests {
		t.Fatalf("%d requests, %d cut off: want more cut off than answered, as a rate the server falls far behind on has", r.Requests, r.CutOff)
	}
	if unreachable(r) {
		t.Errorf("%d requests answered, %d cut off (at most 1 of them sent): taken for a server that stopped answering", r.Requests, r.CutOff)
	}
	// A hung server: every request sent is cut off unanswered.
	r = loadgen.Run(context.Background(), loadgen.Load{Concurrency: 2, Duration: 100 * time.Millisecond, Rate: 1000},
		func(ctx context.Context, w, i int) (int, bool) { <-ctx.Done(); return 0, false }, nil)
	if !unreachable(r) {
		t.Errorf("%+v: a server that answered nothing is not taken for one that stopped answering", r)
	}
}

// frontOf is a proxy in front of m that answers a request itself when
// intercept says it did, and passes it on to m otherwise. It is closed
// when the test ends.
func frontOf(t *testing.T, m *Main, intercept func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	t.Helper()
	target, _ := url.Parse(m.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !intercept(w, r) {
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(proxy.Close)
	return proxy
}

// TestBenchInactiveIntrospections: an introspection answered 200 but with
// the token not active is an error of its own kind, "inactive", in the
// table and in -o json (errors_inactive), not the made-up HTTP status 299
// it was reported as, and the note says what it means.
func TestBenchInactiveIntrospections(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			w.Write([]byte(`{"access_token":"t"}`))
		case n.Add(1)%3 == 0:
			w.Write([]byte(`{"active":false}`))
		case n.Load()%3 == 1:
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
		default:
			w.Write([]byte(`{"active":true}`))
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	b := &bench{f: benchFlags{duration: 200 * time.Millisecond, concurrency: 1}, progress: func(string) {}, base: srv.URL, host: u.Host,
		http: srv.Client(), fixtures: fixtures{clientID: "c1", secret: "s1", introID: "i1", introSecret: "s2"}}
	r, err := b.run(context.Background(), "introspect_jwt")
	if err != nil {
		t.Fatal(err)
	}
	if r.Inactive == 0 || r.ByStatus[503] == 0 || r.Errors != r.Inactive+r.ByStatus[503] || len(r.ByStatus) != 1 {
		t.Fatalf("%d errors: %d inactive, by status %v; want inactive ones apart from the 503s, and no made-up status", r.Errors, r.Inactive, r.ByStatus)
	}
	if !strings.Contains(r.Note, "with the token not active") {
		t.Errorf("note %q does not say what the inactive errors are", r.Note)
	}
	report := benchReport{Machine: "m", Concurrency: 1, Duration: "200ms", Scenarios: []scenarioResult{r}}
	var table, js strings.Builder
	if err := report.write(&table, ""); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("(503:%d inactive:%d)", r.ByStatus[503], r.Inactive); !strings.Contains(table.String(), want) {
		t.Errorf("table %q, want errors %s", table.String(), want)
	}
	if err := report.write(&js, "json"); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Scenarios []struct {
			ByStatus map[string]int `json:"errors_by_status"`
			Inactive int            `json:"errors_inactive"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal([]byte(js.String()), &got); err != nil {
		t.Fatal(err)
	}
	if s := got.Scenarios[0]; s.Inactive != r.Inactive || len(s.ByStatus) != 1 || s.ByStatus["503"] != r.ByStatus[503] {
		t.Errorf("-o json: %+v, want errors_inactive %d and only 503 by status", s, r.Inactive)
	}
}

// TestBenchReportErrorKinds: the errors column names each kind: a status,
// "transport" for no answer, and, for verify_*, which send no request,
// "unverified" for the tokens the library refused, which it called
// transport errors.
func TestBenchReportErrorKinds(t *testing.T) {
	for _, tt := range []struct {
		scenario string
		by       map[int]int
		inactive int
		want     string
	}{
		{"healthz", map[int]int{0: 2, 503: 1}, 0, "3 (503:1 transport:2)"},
		{"introspect_opaque", map[int]int{401: 1}, 2, "3 (401:1 inactive:2)"},
		{"verify_cold", map[int]int{0: 3}, 0, "3 (unverified:3)"},
	} {
		if got := errorsString(tt.scenario, 3, tt.by, tt.inactive); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.scenario, got, tt.want)
		}
	}
}
