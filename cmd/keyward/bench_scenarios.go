package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/loadgen"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/procstat"
	"github.com/keyward/keyward/verify"
)

// scenarioResult is one scenario's figures.
type scenarioResult struct {
	Name string `json:"scenario"`
	// Concurrency is the number of clients (callers, for verify_*).
	Concurrency int `json:"concurrency"`
	loadgen.Result
	// ServerCPUPer1k is the server's CPU seconds per 1,000 requests; 0 when
	// unknown (--target without --target-metrics) or when there is no
	// server (verify_*).
	ServerCPUPer1k float64 `json:"server_cpu_seconds_per_1000"`
	// ServerP99Bound is the bucket bound of the server's own
	// request-duration histogram under which it answered 99 % of the
	// scenario's requests: the handlers' latency, without the time requests
	// wait in the kernel or for the load generator. 0 when unknown.
	ServerP99Bound time.Duration `json:"server_p99_upper_bound_ns,omitempty"`
	// ServerP99Over is, when the server's p99 is past its histogram's last
	// finite bound (ServerP99Bound is then 0), that bound: the p99 is more.
	ServerP99Over time.Duration `json:"server_p99_over_ns,omitempty"`
	// ServerPeakRSSBytes is the server's peak resident set during the
	// scenario: for a started server the kernel's high-water mark, for
	// --target the highest reading of its metrics (every rssSampleEvery);
	// 0 when unknown.
	ServerPeakRSSBytes int64 `json:"server_peak_rss_bytes,omitempty"`
	// Inactive counts the introspections answered 200 but with the token
	// not active (introspect_* only): errors, in Errors, but of no HTTP
	// status, so not in ByStatus. Until 2026-12-06 they were there as the
	// made-up status 299.
	Inactive int `json:"errors_inactive,omitempty"`
	// LoadgenCPU is the CPU the load generator itself used.
	LoadgenCPU float64 `json:"loadgen_cpu_seconds"`
	Note       string  `json:"note,omitempty"`
}

func (b *bench) run(ctx context.Context, name string) (scenarioResult, error) {
	conns, err := loadgen.NewConns(b.base, b.f.concurrency, b.tls)
	if err != nil {
		return scenarioResult{}, err
	}
	defer conns.Close()
	b.conns = conns
	req, prep, note, err := b.prepare(ctx, name)
	if err != nil {
		return scenarioResult{}, err
	}
	pid := 0
	if b.child != nil {
		pid = b.child.Process.Pid
	}
	load := loadgen.Load{Concurrency: b.f.concurrency, Duration: b.f.duration, Rate: b.f.rate, Prepare: prep}
	if strings.HasPrefix(name, "verify_") && load.Concurrency > runtime.GOMAXPROCS(0) {
		// A verification never waits: it only computes. Callers beyond one
		// per core would add no throughput, only the wait for a core — and
		// a caller preempted between its two clock readings would report
		// that wait (up to seconds, 64 callers on 2 cores) as the library's
		// latency.
		load.Concurrency = runtime.GOMAXPROCS(0)
		note += fmt.Sprintf("; %d callers, one per core", load.Concurrency)
	}
	if b.f.warmup > 0 {
		// Uncounted, and before every figure below is read: connections
		// open, the server's caches filled.
		b.progress(fmt.Sprintf("%-36s warming up", name))
		warm := load
		warm.Duration = b.f.warmup
		loadgen.Run(ctx, warm, req, nil)
	}
	// The server's own latency, and a --target's CPU and memory, come from
	// its metrics; they are a bonus: without them the columns say "-".
	endpoint := serverEndpoint(name)
	hasServer := !strings.HasPrefix(name, "verify_")
	watchChild, watchTarget := hasServer && pid != 0, hasServer && pid == 0 && b.metricsURL != ""
	readMetrics := b.metricsURL != "" && (endpoint != "" || watchTarget)
	var (
		before     serverMetrics
		metricsErr error
		stopRSS    func() float64
	)
	if readMetrics {
		before, metricsErr = b.readServerMetrics(ctx, endpoint)
		if watchTarget && metricsErr == nil {
			stopRSS = b.sampleRSS(ctx)
		}
	}
	rssReset := watchChild && b.resetPeakRSS(pid)
	serverBefore, selfBefore := procstat.CPU(pid), procstat.SelfCPU()
	// The first error is of the measured run, whose errors the report
	// counts: not of the fixtures' requests or of the warm-up.
	b.refusal.Store(nil)
	b.resigned.Store(0)
	// The load generator's CPU ends at the last progress report, when the
	// last request is done: sorting the latencies after it is not load.
	selfAfter := selfBefore
	res := loadgen.Run(ctx, load, req, func(done int64, elapsed time.Duration) {
		selfAfter = procstat.SelfCPU()
		b.progress(fmt.Sprintf("%-36s %8d requests %7.0f/s  %s", name, done, float64(done)/elapsed.Seconds(), elapsed.Round(time.Second)))
	})
	b.progress("")
	r := scenarioResult{Name: name, Concurrency: load.Concurrency, Result: res, LoadgenCPU: (selfAfter - selfBefore).Seconds(), Note: note}
	r.Inactive = splitInactive(&r.Result)
	if watchChild && res.Requests > 0 {
		r.ServerCPUPer1k = (procstat.CPU(pid) - serverBefore).Seconds() / float64(res.Requests) * 1000
	}
	if rssReset {
		r.ServerPeakRSSBytes = procstat.PeakRSS(pid)
	}
	if stopRSS != nil {
		r.ServerPeakRSSBytes = int64(max(stopRSS(), before.rss))
	}
	if readMetrics && metricsErr == nil {
		var after serverMetrics
		// Also after an interrupt, which ends ctx: the figures are still wanted.
		if after, metricsErr = b.readServerMetrics(context.WithoutCancel(ctx), endpoint); metricsErr == nil {
			r.ServerP99Bound, r.ServerP99Over = p99Bound(before.hist, after.hist)
			if watchTarget && res.Requests > 0 {
				r.ServerCPUPer1k = (after.cpu - before.cpu) / float64(res.Requests) * 1000
				r.ServerPeakRSSBytes = max(r.ServerPeakRSSBytes, int64(after.rss))
			}
		}
	}
	if res.Exhausted {
		why := "the server answered faster than the last client-credentials scenario, by which they are counted"
		if n := b.presignCount(); n == maxPresigned {
			// Also the only way they run out with --rate, by which they are
			// then counted.
			why = fmt.Sprintf("%d, the most bench signs, were too few for this run", n)
		}
		r.Note = strings.TrimPrefix(r.Note+"; "+fmt.Sprintf("the credentials signed before the run ran out %s into the measured %s (%s): the figures cover that time only",
			res.Elapsed.Round(time.Millisecond), b.f.duration, why), "; ")
	}
	if res.CutOff > 0 {
		r.Note = strings.TrimPrefix(r.Note+"; "+fmt.Sprintf("%d requests still unanswered (with --rate, or due and not yet sent) when the wait after the run ended were cut off: they are in neither the requests, the errors nor the latencies",
			res.CutOff), "; ")
	}
	if n := b.resigned.Load(); n > 0 {
		r.Note = strings.TrimPrefix(r.Note+"; "+fmt.Sprintf("%d of the credentials signed before the run had grown too old by their turn (DPoP proofs %s, assertions %s) and were signed again during it, in the load generator's CPU but before their requests' clocks started", n, dpopFreshFor, assertionFreshFor), "; ")
	}
	if r.Inactive > 0 {
		r.Note = strings.TrimPrefix(r.Note+"; "+fmt.Sprintf("%d introspections answered 200 with the token not active (the errors' \"inactive\"): the fixture tokens, issued just before, should be active", r.Inactive), "; ")
	}
	if f := b.refusal.Load(); f != nil && res.Errors > 0 {
		r.Note = strings.TrimPrefix(r.Note+"; "+f.explain(name, b.f.assertionJTI), "; ")
	}
	if metricsErr != nil {
		what := "server p99"
		if watchTarget {
			what = "server figures"
		}
		r.Note = strings.TrimPrefix(r.Note+"; "+what+" unknown: "+metricsErr.Error(), "; ")
	}
	if b.lastRate == 0 && strings.HasPrefix(name, "client_credentials") {
		b.lastRate = res.PerSecond
	}
	return r, nil
}

// splitInactive takes out of r.ByStatus the failures answered 200, which
// only the introspect_* scenarios have (an answer saying the token is not
// active), and returns how many there were: they are errors of their own
// kind, not of an HTTP status.
func splitInactive(r *loadgen.Result) int {
	n := r.ByStatus[http.StatusOK]
	delete(r.ByStatus, http.StatusOK)
	if len(r.ByStatus) == 0 {
		r.ByStatus = nil
	}
	return n
}

// resetPeakRSS starts the server's peak resident set over for a scenario's
// measured run (procstat.ResetPeakRSS), first keeping the peak it replaces
// in peakRSS: that of the server's start, the fixtures, the scenarios and
// warm-ups before, which the run's peak must include. It reports whether
// the reset took.
func (b *bench) resetPeakRSS(pid int) bool {
	b.peakRSS = max(b.peakRSS, procstat.PeakRSS(pid))
	return procstat.ResetPeakRSS(pid) == nil
}

// post sends a form to the server and reads the answer.
func (b *bench) post(ctx context.Context, path string, form url.Values, id, secret string) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// form encodes a POST of form to path for the measured requests, with
// client_secret_basic credentials when id is set.
func (b *bench) form(path string, form url.Values, id, secret string, headers ...string) []byte {
	auth := ""
	if id != "" {
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	return loadgen.NewPost(b.host, path, auth, []byte(form.Encode()), headers...)
}

// send sends a request encoded by form on worker w's connection. The
// first error answer of the scenario's measured run is kept for its note.
func (b *bench) send(ctx context.Context, w int, req []byte) (int, []byte) {
	status, body, err := b.conns.Do(ctx, w, req)
	if err != nil {
		return 0, nil
	}
	if status >= 400 && b.refusal.Load() == nil {
		b.refusal.CompareAndSwap(nil, newRefusal(status, body))
	}
	return status, body
}

// refusal is an error answer of the server: its status and, from an
// OAuth error body (RFC 6749 §5.2), its code and description.
type refusal struct {
	status            int
	code, description string
}

func newRefusal(status int, body []byte) *refusal {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.Unmarshal(body, &e)
	return &refusal{status: status, code: oauth2.Truncate(e.Error, 64), description: oauth2.Truncate(e.Description, 300)}
}

// explain describes the refusal for a scenario's note and, where bench
// can tell, what to do about it.
func (f *refusal) explain(scenario string, assertionJTI bool) string {
	s := fmt.Sprintf("first error: HTTP %d", f.status)
	if f.code != "" {
		s += " " + cell(f.code)
	}
	if f.description != "" {
		s += fmt.Sprintf(" %q", f.description)
	}
	if scenario == "jwt_bearer" && !assertionJTI && f.code == oauth2.ErrInvalidGrant && strings.Contains(f.description, "jti") {
		s += ": the server requires a jti in each assertion (serve --require-assertion-jti), which jwt_bearer leaves out as Google's libraries do; run bench with --assertion-jti"
	}
	return s
}

func (b *bench) token(ctx context.Context, scope string) (string, error) {
	status, body := b.post(ctx, oauth2.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, b.fixtures.clientID, b.fixtures.secret)
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &t); status != 200 || t.AccessToken == "" {
		return "", fmt.Errorf("getting a token for the fixtures: HTTP %d: %s", status, body)
	}
	return t.AccessToken, nil
}

// tokens gets n tokens for scope, tokenWorkers requests at a time: one
// after the other, each waited on a durable audit write, 2,000 took seconds.
func (b *bench) tokens(ctx context.Context, scope string, n int) ([]string, error) {
	out := make([]string, n)
	var (
		next   atomic.Int64
		failed atomic.Pointer[error]
		wg     sync.WaitGroup
	)
	for range min(n, tokenWorkers) {
		wg.Go(func() {
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t, err := b.token(ctx, scope)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				out[i] = t
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return nil, *err
	}
	return out, nil
}

// tokenWorkers is how many token requests bench's preparation sends at a
// time: enough for the server to commit their audit rows together.
const tokenWorkers = 16

// prepare builds a scenario's request function and, for the scenarios
// that send signed credentials, the step before each request that picks
// its credential and signs it again if it has grown too old, before the
// request's clock starts (loadgen.Load.Prepare); and does its unmeasured
// preparation (signing assertions, getting tokens).
func (b *bench) prepare(ctx context.Context, name string) (req loadgen.Request, before loadgen.Prepare, note string, err error) {
	fx := b.fixtures
	ok := func(status int) (int, bool) { return status, status == 200 }
	switch name {
	case "client_credentials_secret":
		if b.accountCount > 0 {
			n := min(fillSecrets, b.accountCount)
			return func(ctx context.Context, w, i int) (int, bool) {
				k := (w*7919 + i) % n
				status, _ := b.send(ctx, w, b.form(oauth2.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {fx.scope}},
					fillAccountID(k), benchSecret(k)))
				return ok(status)
			}, nil, fmt.Sprintf("spread over %d of the %d accounts", n, b.accountCount), nil
		}
		req := b.form(oauth2.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {fx.scope}}, fx.clientID, fx.secret)
		return func(ctx context.Context, w, i int) (int, bool) {
			status, _ := b.send(ctx, w, req)
			return ok(status)
		}, nil, "", nil

	case "client_credentials_private_key_jwt":
		n := b.presignCount()
		assertions, err := b.presign(n, func(i int, now time.Time) map[string]any {
			return map[string]any{"iss": fx.clientID, "sub": fx.clientID, "aud": b.issuer(), "jti": fmt.Sprintf("bench-%d-%d", now.UnixNano(), i),
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		}, jose.ES256, fx.esKey, fx.esKeyID, nil)
		if err != nil {
			return nil, nil, "", err
		}
		before, taken := assertions.picker(b.f.concurrency, assertions.inOrder)
		return func(ctx context.Context, w, i int) (int, bool) {
			a := taken(w)
			if a == nil {
				return 0, false
			}
			status, _ := b.send(ctx, w, b.form(oauth2.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {fx.scope},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a.raw}}, "", ""))
			return ok(status)
		}, before, fmt.Sprintf("%d ES256 client assertions signed before the run", n), nil

	case "client_credentials_dpop":
		// Signed before the run: runBench keeps the run within a proof's
		// max age.
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, "", err
		}
		prover, err := dpop.NewProver(key)
		if err != nil {
			return nil, nil, "", err
		}
		n := b.presignCount()
		htu := b.tokenAudience()
		// Signing them all takes a while and their turn can come late
		// (the drain after --duration, a --rate the server falls behind
		// on): one older than dpopFreshFor by then is signed again.
		proofs, err := b.signBefore(n, "DPoP proofs", dpopFreshFor, func(_ int, now time.Time) (string, error) {
			return prover.Proof(http.MethodPost, htu, "", now)
		}, nil)
		if err != nil {
			return nil, nil, "", err
		}
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {fx.scope}}
		before, taken := proofs.picker(b.f.concurrency, proofs.inOrder)
		return func(ctx context.Context, w, i int) (int, bool) {
			proof := taken(w)
			if proof == nil {
				return 0, false
			}
			status, _ := b.send(ctx, w, b.form(oauth2.TokenPath, form, fx.clientID, fx.secret, dpop.Header+": "+proof.raw))
			return ok(status)
		}, before, fmt.Sprintf("%d ES256 DPoP proofs signed before the run; client_secret_basic", n), nil

	case "jwt_bearer":
		var kf struct {
			ID       string `json:"private_key_id"`
			Key      string `json:"private_key"`
			Email    string `json:"client_email"`
			TokenURI string `json:"token_uri"`
		}
		json.Unmarshal(fx.keyFile, &kf)
		block, _ := pem.Decode([]byte(kf.Key))
		if block == nil {
			return nil, nil, "", fmt.Errorf("the fixture key file has no private key")
		}
		priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, nil, "", err
		}
		// Without a jti, as Google's libraries send them, a few are cycled:
		// the server parses and verifies each one it is sent and caches
		// none, so more would only take longer to sign (RS256, about 1 ms
		// each). With --assertion-jti each is good once, as
		// private_key_jwt's client assertions are, so the run needs one
		// per request.
		n, cycled := 128, !b.f.assertionJTI
		if !cycled {
			n = b.presignCount()
		}
		assertions, err := b.presign(n, func(i int, now time.Time) map[string]any {
			c := map[string]any{"iss": kf.Email, "scope": fx.scope, "aud": kf.TokenURI, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
			if !cycled {
				c["jti"] = fmt.Sprintf("bench-%d-%d", now.UnixNano(), i)
			}
			return c
		}, jose.RS256, priv, kf.ID, func(a string) []byte {
			return b.form(oauth2.TokenPath, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {a}}, "", "")
		})
		if err != nil {
			return nil, nil, "", err
		}
		pick, note := assertions.inOrder, fmt.Sprintf("%d RS256 assertions, each with its own jti, signed before the run and each sent once (--assertion-jti)", n)
		if cycled {
			pick = func(w, i int) (int, bool) { return (w*31 + i) % n, true }
			note = fmt.Sprintf("%d RS256 assertions without jti signed before the run and cycled; each request's signature is verified", n)
		}
		before, taken := assertions.picker(b.f.concurrency, pick)
		return func(ctx context.Context, w, i int) (int, bool) {
			c := taken(w)
			if c == nil {
				return 0, false
			}
			status, _ := b.send(ctx, w, c.req)
			return ok(status)
		}, before, note, nil

	case "introspect_opaque", "introspect_jwt":
		scope := fx.scope
		if name == "introspect_opaque" {
			scope = fx.opaqueScope
		}
		toks, err := b.tokens(ctx, scope, 100)
		if err != nil {
			return nil, nil, "", err
		}
		reqs := make([][]byte, len(toks))
		for i, t := range toks {
			reqs[i] = b.form("/introspect", url.Values{"token": {t}}, fx.introID, fx.introSecret)
		}
		return func(ctx context.Context, w, i int) (int, bool) {
			status, body := b.send(ctx, w, reqs[(w+i)%len(reqs)])
			if status == 200 && !strings.Contains(string(body), `"active":true`) {
				return 200, false // answered, but inactive: counted apart (splitInactive)
			}
			return ok(status)
		}, nil, "", nil

	case "healthz":
		req := loadgen.NewGet(b.host, "/healthz")
		return func(ctx context.Context, w, i int) (int, bool) {
			status, _ := b.send(ctx, w, req)
			return ok(status)
		}, nil, "GET /healthz: no authentication, no storage; the HTTP floor", nil

	case "verify_cold", "verify_warm":
		var md struct {
			Issuer string `json:"issuer"`
		}
		if err := getJSONURL(ctx, b.http, b.base+"/.well-known/oauth-authorization-server", &md); err != nil {
			return nil, nil, "", err
		}
		opts := []verify.Option{verify.WithHTTPClient(b.http)}
		count, note := 64, "64 tokens, verified once before the run: cache hits"
		if name == "verify_cold" {
			opts = append(opts, verify.WithCacheSize(16))
			count, note = 2000, "2,000 tokens cycled with a 16-entry cache: every verification checks the signature"
		}
		v, err := verify.New(ctx, md.Issuer, fx.jwtAPI, opts...)
		if err != nil {
			return nil, nil, "", err
		}
		toks, err := b.tokens(ctx, fx.scope, count)
		if err != nil {
			return nil, nil, "", err
		}
		if name == "verify_warm" {
			for _, t := range toks {
				v.Verify(ctx, t)
			}
		}
		return func(ctx context.Context, w, i int) (int, bool) {
			if _, err := v.Verify(ctx, toks[(w*131+i)%len(toks)]); err != nil {
				return 0, false
			}
			return 200, true
		}, nil, note + " (in the load generator's process; no server work)", nil
	}
	return nil, nil, "", fmt.Errorf("unknown scenario %q", name)
}

// presignCount is how many one-use assertions or proofs a scenario signs
// before its run: enough for its rate (--rate, else the first
// client-credentials scenario's, the cheapest grant's) through warm-up and
// run, with a margin. The floor covers a short run, whose measured rate
// swings the most: at 350 ms the other grants ran at up to twice the rate
// measured for client_credentials_secret just before them, some 550
// requests; 5,000 signatures took about a second, 2,000 take less than
// half of it.
func (b *bench) presignCount() int {
	rate := b.lastRate
	if b.f.rate > 0 {
		rate = b.f.rate
	} else if rate == 0 {
		rate = 8000
	}
	return min(maxPresigned, max(2_000, int(rate*(b.f.duration+b.f.warmup).Seconds()*1.3)))
}

// maxPresigned bounds the credentials signed before a run. A variable for
// the test that has them run out.
var maxPresigned = 400_000

// maxDPoPRun bounds warm-up and run of the DPoP scenario: its proofs,
// signed before, must still be fresh at the end.
const maxDPoPRun = dpop.DefaultMaxAge - 15*time.Second

// dpopFreshFor is how old a DPoP proof signed before the run may be when
// its turn comes; an older one is signed again then. It leaves a server
// that accepts proofs DefaultMaxAge old 15 seconds for the request's way
// and the clocks' difference. A variable for the test that has proofs
// grow old.
var dpopFreshFor = maxDPoPRun

// assertionFreshFor is how old an assertion signed before the run may be
// when its turn comes; an older one is signed again then. Assertions are
// good for an hour (exp), the most a server accepts by default
// (--max-assertion-lifetime): this leaves 5 minutes for the clocks'
// difference. A variable for the test that has assertions grow old.
var assertionFreshFor = time.Hour - 5*time.Minute

// tokenAudience is the issuer's token endpoint, the key file's token_uri:
// the aud of JWT-bearer assertions and the htu of DPoP proofs.
func (b *bench) tokenAudience() string {
	var kf struct {
		TokenURI string `json:"token_uri"`
	}
	json.Unmarshal(b.fixtures.keyFile, &kf)
	return kf.TokenURI
}

// issuer is the aud of client assertions (draft-ietf-oauth-rfc7523bis),
// which a server with --strict-client-assertion-audience requires: the
// token endpoint without its /token path.
func (b *bench) issuer() string {
	return strings.TrimSuffix(b.tokenAudience(), oauth2.TokenPath)
}

// presign signs n assertions with a worker per CPU before the run, each
// with the claims of claims(i, now), encoded with encode if not nil; those
// older than assertionFreshFor by their turn are signed again then.
func (b *bench) presign(n int, claims func(i int, now time.Time) map[string]any, alg jose.SignatureAlgorithm, key any, kid string,
	encode func(raw string) []byte) (*presigned, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return nil, err
	}
	return b.signBefore(n, "assertions", assertionFreshFor, func(i int, now time.Time) (string, error) {
		return jwt.Signed(s).Claims(claims(i, now)).Serialize()
	}, encode)
}

// presigned are credentials signed before the run, each dated (iat) when
// it was signed. One older than freshFor when its turn comes is signed
// again then, in the load generator's CPU but before its request's clock
// starts (picker), rather than sent for the server to refuse and the
// report to count as the server's error: signing hundreds of thousands
// takes a while, and a long run (up to 1h after a warm-up of up to 10m)
// outlasts an assertion's hour.
type presigned struct {
	creds    []atomic.Pointer[credential]
	next     atomic.Int64 // the next credential inOrder hands out
	freshFor time.Duration
	sign     func(i int, now time.Time) (string, error)
	encode   func(raw string) []byte // nil: the scenario encodes each request as it sends it
	resigned *atomic.Int64           // counts those signed again
}

// credential is one of presigned's.
type credential struct {
	raw string
	iat int64  // Unix seconds, as the credential says
	req []byte // raw encoded as a request, with presigned.encode
}

// signBefore signs n credentials (what) with sign, a worker per CPU,
// before the run.
func (b *bench) signBefore(n int, what string, freshFor time.Duration, sign func(i int, now time.Time) (string, error),
	encode func(raw string) []byte) (*presigned, error) {
	p := &presigned{creds: make([]atomic.Pointer[credential], n), freshFor: freshFor, sign: sign, encode: encode, resigned: &b.resigned}
	err := b.signAhead(n, what, func(i int) error {
		c, err := p.make(i, time.Now())
		if err != nil {
			return err
		}
		p.creds[i].Store(c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *presigned) make(i int, now time.Time) (*credential, error) {
	raw, err := p.sign(i, now)
	if err != nil {
		return nil, err
	}
	c := &credential{raw: raw, iat: now.Unix()}
	if p.encode != nil {
		c.req = p.encode(raw)
	}
	return c, nil
}

// at returns credential i, signed again now if it has grown too old.
func (p *presigned) at(i int) (*credential, error) {
	c := p.creds[i].Load()
	now := time.Now()
	if now.Sub(time.Unix(c.iat, 0)) <= p.freshFor {
		return c, nil
	}
	c, err := p.make(i, now)
	if err != nil {
		return nil, err
	}
	p.creds[i].Store(c)
	p.resigned.Add(1)
	return c, nil
}

// inOrder picks the credentials one after the other, each once, for
// credentials good once (each with its own jti, or a DPoP proof); false
// when all are taken.
func (p *presigned) inOrder(_, _ int) (int, bool) {
	k := p.next.Add(1) - 1
	return int(k), k < int64(len(p.creds))
}

// picker returns the Prepare of a scenario's requests, which picks
// request i's credential with pick (false: none left, Exhausted) and signs
// it again if it has grown too old, before the request's clock starts, and
// taken, which returns the credential so picked for worker w's request
// (nil if signing it again failed). Each of workers has a slot of its own,
// as loadgen calls a worker's Prepare and Request one after the other.
func (p *presigned) picker(workers int, pick func(w, i int) (int, bool)) (before loadgen.Prepare, taken func(w int) *credential) {
	slots := make([]*credential, max(1, workers))
	before = func(_ context.Context, w, i int) int {
		k, ok := pick(w, i)
		if !ok {
			return loadgen.Exhausted
		}
		slots[w], _ = p.at(k) // nil on failure: the request counts it as an error
		return 0
	}
	return before, func(w int) *credential { return slots[w] }
}

// signAhead runs sign for each of n signed things (what), a worker per
// CPU, before the run; sign keeps what it signs.
func (b *bench) signAhead(n int, what string, sign func(i int) error) error {
	var (
		next   atomic.Int64
		failed atomic.Value
		done   = make(chan struct{})
		procs  = max(1, runtimeCPUs())
	)
	for range procs {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := sign(i); err != nil {
					failed.Store(err)
					return
				}
				if i%1000 == 0 {
					b.progress(fmt.Sprintf("signing %s before the run: %d of %d", what, i, n))
				}
			}
		}()
	}
	for range procs {
		<-done
	}
	b.progress("")
	err, _ := failed.Load().(error)
	return err
}

func getJSONURL(ctx context.Context, c *http.Client, u string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
