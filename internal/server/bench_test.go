package server_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/procstat"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/tally"
)

const issuer = "https://keyward.test"

// fixture is a server on a fresh SQLite store with one account and key.
type fixture struct {
	admin    *admin.Service
	store    storage.Storage
	handler  http.Handler
	email    string
	clientID string
	secret   string
	keyID    string
	signer   jose.Signer
}

// fixtureOption changes the server's configuration or dependencies.
type fixtureOption func(*server.Config, *server.Deps)

func newFixture(tb testing.TB, mods ...fixtureOption) *fixture {
	tb.Helper()
	return newFixtureOn(tb, openSQLite(tb), mods...)
}

// openSQLite opens a fresh SQLite store in a temporary directory.
func openSQLite(tb testing.TB) storage.Storage {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "keyward.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// newFixtureOn serves from st, which it closes at the end; mods change the
// server's configuration and dependencies.
func newFixtureOn(tb testing.TB, st storage.Storage, mods ...fixtureOption) *fixture {
	tb.Helper()
	ctx := context.Background()
	tb.Cleanup(func() { st.Close() })
	sealer, _ := signer.NewSealer(make([]byte, 32))
	sg, err := signer.New(ctx, st, sealer, signer.Config{Policy: signer.Policy{Algorithm: "ES256", RetainFor: time.Hour}})
	if err != nil {
		tb.Fatal(err)
	}
	journal := groupcommit.New(st, groupcommit.Options{})
	tb.Cleanup(journal.Close)
	deps := server.Deps{Store: st, Signer: sg, Journal: journal, Pepper: []byte("bench-pepper"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg := server.Config{
		Issuer: issuer, AccountDomain: "iam.test", DefaultTokenLifetime: time.Hour, MaxTokenLifetime: time.Hour,
		MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute,
	}
	for _, mod := range mods {
		mod(&cfg, &deps)
	}
	srv := server.New(cfg, deps)
	sys := admin.Actor{ID: "bench"}
	if _, err := srv.Admin.CreateAPI(ctx, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}); err != nil {
		tb.Fatal(err)
	}
	acct, err := srv.Admin.CreateAccount(ctx, sys, admin.AccountInput{Name: "bench", Project: "proj", Scopes: []string{"orders.read"}})
	if err != nil {
		tb.Fatal(err)
	}
	kf, err := srv.Admin.CreateKey(ctx, sys, acct.Email, 0)
	if err != nil {
		tb.Fatal(err)
	}
	sec, err := srv.Admin.CreateSecret(ctx, sys, acct.Email, 0)
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode([]byte(kf.PrivateKey))
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kf.PrivateKeyID))
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{admin: srv.Admin, store: st, handler: srv, email: acct.Email, clientID: acct.ID, secret: sec.Value, keyID: kf.PrivateKeyID, signer: js}
}

// assertion signs an RS256 assertion as Google's client libraries do.
func (f *fixture) assertion(tb testing.TB, jti string) string {
	now := time.Now()
	raw, err := jwt.Signed(f.signer).Claims(map[string]any{
		"iss": f.email, "scope": "orders.read", "aud": issuer + "/token",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": jti,
	}).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func (f *fixture) post(a string) *httptest.ResponseRecorder {
	return f.do("grant_type="+url.QueryEscape("urn:ietf:params:oauth:grant-type:jwt-bearer")+"&assertion="+a, "")
}

func (f *fixture) do(body, basicAuth string) *httptest.ResponseRecorder {
	return f.doPath("/token", body, basicAuth)
}

func (f *fixture) doPath(path, body, basicAuth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicAuth != "" {
		r.Header.Set("Authorization", basicAuth)
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

// BenchmarkClientCredentials measures the client-credentials grant with
// client_secret_basic: Basic parsing, the keyed hash of the secret, scope
// checks, ES256 signing and the fsynced, group-committed audit event.
// Run with: go test ./internal/server -run '^$' -bench ClientCredentials -benchtime 20000x
func BenchmarkClientCredentials(b *testing.B) { benchClientCredentials(b, newFixture(b)) }

// BenchmarkClientCredentialsMetrics is BenchmarkClientCredentials with
// the Prometheus metrics keyward serve records (withMetrics).
func BenchmarkClientCredentialsMetrics(b *testing.B) {
	benchClientCredentials(b, newFixture(b, withMetrics(b)))
}

func benchClientCredentials(b *testing.B, f *fixture) {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret))
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := f.do("grant_type=client_credentials&scope=orders.read", auth); w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkJWTBearer measures the whole JWT-bearer path in the server: form
// parsing, RS256 assertion verification, account and key lookup, scope
// checks, ES256 token signing and the durable (fsynced, group-committed)
// audit event. Assertions are signed before the timer starts, one per
// request, each with its own jti, so the single-use check is measured too.
// Run with: go test ./internal/server -run '^$' -bench JWTBearer -benchtime 20000x
func BenchmarkJWTBearer(b *testing.B) { benchJWTBearer(b, newFixture(b)) }

// BenchmarkJWTBearerMetrics is BenchmarkJWTBearer with the Prometheus
// metrics keyward serve records (withMetrics).
func BenchmarkJWTBearerMetrics(b *testing.B) { benchJWTBearer(b, newFixture(b, withMetrics(b))) }

func benchJWTBearer(b *testing.B, f *fixture) {
	assertions := make([]string, b.N)
	for i := range assertions {
		assertions[i] = f.assertion(b, "jti-"+strconv.Itoa(i))
	}
	next := make(chan string, b.N)
	for _, a := range assertions {
		next <- a
	}
	close(next)
	b.SetParallelism(32) // 64 concurrent requests on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := f.post(<-next); w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// withMetrics attaches Prometheus metrics as keyward serve does: the
// requests' counters and latency histograms, and the group commit's batch
// histograms, on a journal of its own.
func withMetrics(tb testing.TB) fixtureOption {
	return func(_ *server.Config, d *server.Deps) {
		sg := d.Signer
		m := metrics.New(func() float64 { return sg.CurrentKeyAge().Seconds() })
		journal := groupcommit.New(d.Store, groupcommit.Options{OnBatch: m.ObserveBatch})
		tb.Cleanup(journal.Close)
		d.Metrics, d.Journal = m, journal
	}
}

// BenchmarkIntrospect measures introspection of an opaque and a JWT access
// token by an API authenticated with client_secret_basic, each with its
// durable audit event — and, in opaque_summarized, with the events of
// active answers folded into summaries, as keyward serve does by default.
// Run with: go test ./internal/server -run '^$' -bench Introspect -benchtime 20000x
func BenchmarkIntrospect(b *testing.B) {
	each := newFixture(b)
	summarized := newFixture(b, func(_ *server.Config, d *server.Deps) {
		tl := tally.New(d.Journal, tally.Options{Interval: time.Second})
		b.Cleanup(tl.Close)
		d.Introspections = tl
	})
	eachAuth, summarizedAuth := each.introspector(b), summarized.introspector(b)
	for _, bb := range []struct {
		name, format, auth string
		f                  *fixture
	}{{"jwt", "jwt", eachAuth, each}, {"opaque", "opaque", eachAuth, each}, {"opaque_summarized", "opaque", summarizedAuth, summarized}} {
		f, format, callerAuth := bb.f, bb.format, bb.auth
		b.Run(bb.name, func(b *testing.B) { benchIntrospect(b, f, format, callerAuth) })
	}
}

// BenchmarkIntrospectMetrics is BenchmarkIntrospect/opaque with the
// Prometheus metrics keyward serve records (withMetrics).
func BenchmarkIntrospectMetrics(b *testing.B) {
	f := newFixture(b, withMetrics(b))
	auth := f.introspector(b)
	b.Run("opaque", func(b *testing.B) { benchIntrospect(b, f, "opaque", auth) })
}

// benchIntrospect has callerAuth introspect an access token of f's client
// in format (jwt, opaque).
func benchIntrospect(b *testing.B, f *fixture, format, callerAuth string) {
	body := "token=" + url.QueryEscape(f.accessToken(b, format))
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := f.doPath("/introspect", body, callerAuth)
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"active":true`) {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// introspector makes a new account an introspector of the orders API and
// returns its Basic authorization.
func (f *fixture) introspector(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	sys := admin.Actor{ID: "bench"}
	apiAcct, err := f.admin.CreateAccount(ctx, sys, admin.AccountInput{Name: "orders-api", Project: "proj"})
	if err != nil {
		tb.Fatal(err)
	}
	sec, err := f.admin.CreateSecret(ctx, sys, apiAcct.Email, 0)
	if err != nil {
		tb.Fatal(err)
	}
	ids := []string{apiAcct.Email}
	if _, err := f.admin.UpdateAPI(ctx, sys, "orders", admin.APIUpdate{Introspectors: &ids}); err != nil {
		tb.Fatal(err)
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(apiAcct.ID+":"+sec.Value))
}

// accessToken issues the client an orders token in format (jwt, opaque).
func (f *fixture) accessToken(tb testing.TB, format string) string {
	tb.Helper()
	if _, err := f.admin.UpdateAPI(context.Background(), admin.Actor{ID: "bench"}, "orders", admin.APIUpdate{TokenFormat: &format}); err != nil {
		tb.Fatal(err)
	}
	w := f.do("grant_type=client_credentials&scope=orders.read", "Basic "+base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret)))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
		tb.Fatalf("token: %d %s", w.Code, w.Body)
	}
	return tok.AccessToken
}

// reportCPU reports the CPU time the whole process spent per operation
// (user and system, every goroutine, the committer and the garbage collector
// included): steadier than ns/op on a shared machine, where other tenants
// take wall time but not this process's CPU time.
func reportCPU(b *testing.B) func() {
	start := procstat.SelfCPU()
	return func() {
		b.ReportMetric(float64(procstat.SelfCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

func TestBenchmarkFixture(t *testing.T) {
	f := newFixture(t)
	a := f.assertion(t, "once")
	if w := f.post(a); w.Code != http.StatusOK {
		t.Fatalf("first use: %d %s", w.Code, w.Body)
	}
	if w := f.post(a); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "invalid_grant") {
		t.Fatalf("replay: %d %s, want invalid_grant", w.Code, w.Body)
	}
}
