package verify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// introspectIssuer is an HTTP client to a real Keyward whose introspection
// endpoint answers status (with a Retry-After of retry, if any) while
// status is set, counting the requests that reach it.
type introspectIssuer struct {
	asked         atomic.Int32
	mu            sync.Mutex
	status        int
	retry         string
	body          string // the answer's, while status is set; {"error":"x"} if ""
	inFlight, max int
	hold          chan struct{} // when set, requests wait for it to close
}

func (f *introspectIssuer) set(status int, retry string) {
	f.mu.Lock()
	f.status, f.retry = status, retry
	f.mu.Unlock()
}

func (f *introspectIssuer) client() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !strings.HasSuffix(r.URL.Path, "/introspect") {
			return http.DefaultTransport.RoundTrip(r)
		}
		f.asked.Add(1)
		f.mu.Lock()
		status, retry, hold, body := f.status, f.retry, f.hold, f.body
		f.inFlight++
		f.max = max(f.max, f.inFlight)
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.inFlight--
			f.mu.Unlock()
		}()
		if hold != nil {
			<-hold
		}
		if status != 0 {
			h := http.Header{}
			if retry != "" {
				h.Set("Retry-After", retry)
			}
			if body == "" {
				body = `{"error":"x"}`
			}
			return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h,
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

// randomOpaque is a well-formed opaque token the issuer never issued.
func randomOpaque() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "kwat_" + base64.RawURLEncoding.EncodeToString(b)
}

// serve runs raw through Middleware and returns the answer.
func serve(v *verify.Verifier, raw string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	verify.Middleware(v)(http.NotFoundHandler()).ServeHTTP(w, r)
	return w
}

// A 429 or 503 from the issuer with a Retry-After is passed on, bounded to
// 1..60 s, and the issuer is not asked again before then; otherwise the
// answer says 10 s.
func TestIntrospectionRetryAfter(t *testing.T) {
	k := testkeyward.Start(t)
	_, _, apiID, apiSecret := k.Setup(t, "opaque")
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		status int
		retry  func() string
		want   string // the middleware's Retry-After
		pause  time.Duration
	}{
		{"503 with seconds", 503, func() string { return "5" }, "5", 5 * time.Second},
		{"429 with seconds", 429, func() string { return "7" }, "7", 7 * time.Second},
		{"503 with a date", 503, func() string { return k.Clock.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }, "30", 30 * time.Second},
		{"too long", 503, func() string { return "3600" }, "60", time.Minute},
		{"zero", 503, func() string { return "0" }, "1", time.Second},
		{"none", 503, func() string { return "" }, "10", 0},
		{"malformed", 503, func() string { return "soon" }, "10", 0},
		{"negative", 429, func() string { return "-5" }, "10", 0},
		{"not for a 500", 500, func() string { return "5" }, "10", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &introspectIssuer{}
			f.set(tt.status, tt.retry())
			v := newVerifier(t, k, verify.WithHTTPClient(f.client()), verify.WithIntrospection(apiID, apiSecret))
			w := serve(v, randomOpaque())
			if w.Code != 503 || w.Header().Get("Retry-After") != tt.want {
				t.Fatalf("middleware: %d, Retry-After %q; want 503, %q", w.Code, w.Header().Get("Retry-After"), tt.want)
			}
			// Within the pause the issuer is not asked about another token.
			_, err := v.Verify(ctx, randomOpaque())
			wantUnavailable(t, err)
			want := int32(1)
			if tt.pause == 0 {
				want = 2
			}
			if n := f.asked.Load(); n != want {
				t.Fatalf("%d introspection requests, want %d", n, want)
			}
			var ve *verify.Error
			if errors.As(err, &ve); tt.pause != 0 && (ve.RetryAfter <= 0 || ve.RetryAfter > tt.pause) {
				t.Fatalf("RetryAfter %v within a pause of %v", ve.RetryAfter, tt.pause)
			}
			f.set(0, "")
			k.Clock.Add(tt.pause)
			if _, err := v.Verify(ctx, randomOpaque()); err == nil || errors.Is(err, verify.ErrUnavailable) {
				t.Fatalf("after the pause: %v, want the issuer's answer", err)
			}
			if n := f.asked.Load(); n != want+1 {
				t.Fatalf("%d introspection requests after the pause, want %d", n, want+1)
			}
		})
	}
}

// A 401 or 403 from the introspection endpoint, or a 400 whose error is
// about the client (disabled_client, as Keyward answers for a disabled
// account), refuses this API's own credentials: 503 for the caller, whose
// token is not at fault, but an error the operator can tell apart; and
// the issuer, which audits every refusal, is asked again only after 10 s.
func TestIntrospectionCredentialsRefused(t *testing.T) {
	k := testkeyward.Start(t)
	_, _, apiID, apiSecret := k.Setup(t, "opaque")
	ctx := context.Background()
	for _, tt := range []struct {
		status       int
		body         string
		unauthorized bool
	}{
		{401, "", true}, {403, "", true}, {500, "", false}, {502, "", false},
		{400, `{"error":"disabled_client","error_description":"The OAuth client was disabled."}`, true},
		{400, `{"error":"invalid_client"}`, true},
		{400, `{"error":"unauthorized_client"}`, true},
		{400, `{"error":"invalid_request"}`, false},
		{400, `not JSON`, false},
	} {
		t.Run(http.StatusText(tt.status)+" "+tt.body, func(t *testing.T) {
			f := &introspectIssuer{body: tt.body}
			f.set(tt.status, "")
			v := newVerifier(t, k, verify.WithHTTPClient(f.client()), verify.WithIntrospection(apiID, apiSecret))
			_, err := v.Verify(ctx, randomOpaque())
			wantUnavailable(t, err)
			if errors.Is(err, verify.ErrIntrospectionUnauthorized) != tt.unauthorized {
				t.Fatalf("err = %v; errors.Is ErrIntrospectionUnauthorized = %v, want %v", err, !tt.unauthorized, tt.unauthorized)
			}
			if tt.unauthorized && !strings.Contains(err.Error(), "refused this API's introspection credentials") {
				t.Fatalf("err = %v, want it to say the introspection credentials were refused", err)
			}
			w := serve(v, randomOpaque())
			if w.Code != 503 || w.Header().Get("Retry-After") != "10" || w.Header().Get("WWW-Authenticate") != "" || strings.Contains(w.Body.String(), "credentials") {
				t.Fatalf("middleware: %d, Retry-After %q, WWW-Authenticate %q, body %s; want 503, 10, no challenge, nothing about this API's credentials",
					w.Code, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"), w.Body)
			}
			if !tt.unauthorized {
				return
			}
			if n := f.asked.Load(); n != 1 {
				t.Fatalf("%d introspection requests for two tokens after a refusal of the credentials, want 1", n)
			}
			k.Clock.Add(10 * time.Second)
			_, err = v.Verify(ctx, randomOpaque())
			if !errors.Is(err, verify.ErrIntrospectionUnauthorized) || f.asked.Load() != 2 {
				t.Fatalf("10 s later: %v after %d requests, want the issuer asked again", err, f.asked.Load())
			}
		})
	}
}

// Made-up tokens, each new to the cache, reach the issuer at the rate
// WithIntrospectionRate allows; beyond it they are unavailable (503), while
// tokens already verified, cached or seen active before, are unaffected.
func TestIntrospectionRate(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, apiID, apiSecret := k.Setup(t, "opaque")
	ctx := context.Background()
	f := &introspectIssuer{}
	v := newVerifier(t, k, verify.WithHTTPClient(f.client()), verify.WithIntrospection(apiID, apiSecret),
		verify.WithIntrospectionCacheTTL(10*time.Second), verify.WithIntrospectionRate(1, 3))
	good := tokenFor(t, k, id, secret, "orders.read")
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	flood := func(n int) (throttled int) {
		t.Helper()
		for range n {
			_, err := v.Verify(ctx, randomOpaque())
			var ve *verify.Error
			switch {
			case errors.Is(err, verify.ErrIntrospectionThrottled):
				if wantUnavailable(t, err); !errors.As(err, &ve) || ve.RetryAfter != time.Second {
					t.Fatalf("err = %v, want RetryAfter 1s", err)
				}
				throttled++
			default:
				wantInvalid(t, err, "not active")
			}
		}
		return throttled
	}
	if n := flood(10); n != 8 {
		t.Fatalf("%d of 10 made-up tokens throttled, want 8 (burst 3, one spent)", n)
	}
	if n := f.asked.Load(); n != 3 {
		t.Fatalf("%d introspection requests, want 3", n)
	}
	if w := serve(v, randomOpaque()); w.Code != 503 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("middleware: %d, Retry-After %q; want 503, 1", w.Code, w.Header().Get("Retry-After"))
	}
	if _, err := v.Verify(ctx, good); err != nil { // cached
		t.Fatalf("a cached token while the budget is spent: %v", err)
	}
	// Past the cache lifetime the good token is asked about again, outside
	// the rate: it was seen active.
	k.Clock.Add(11 * time.Second)
	flood(5)
	before := f.asked.Load()
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatalf("a token seen active before, while the budget is spent: %v", err)
	}
	if f.asked.Load() != before+1 {
		t.Fatal("the token seen active was not introspected again")
	}
	// A token new to this API waits for the budget like any other.
	_, err := v.Verify(ctx, tokenFor(t, k, id, secret, "orders.read"))
	if !errors.Is(err, verify.ErrIntrospectionThrottled) {
		t.Fatalf("a new token while the budget is spent: %v, want ErrIntrospectionThrottled", err)
	}
	k.Clock.Add(time.Second)
	if _, err := v.Verify(ctx, tokenFor(t, k, id, secret, "orders.read")); err != nil {
		t.Fatalf("a new token once the budget refilled: %v", err)
	}
}

// At most WithIntrospectionConcurrency questions are in flight; the others
// wait for their context. When the request that was to ask about a token
// gives up, one that joined it asks instead.
func TestIntrospectionConcurrency(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, apiID, apiSecret := k.Setup(t, "opaque")
	ctx := context.Background()
	hold := make(chan struct{})
	f := &introspectIssuer{hold: hold}
	v := newVerifier(t, k, verify.WithHTTPClient(f.client()), verify.WithIntrospection(apiID, apiSecret),
		verify.WithIntrospectionRate(0, 0), verify.WithIntrospectionConcurrency(2))
	tokens := []string{tokenFor(t, k, id, secret, "orders.read"), tokenFor(t, k, id, secret, "orders.read"), tokenFor(t, k, id, secret, "orders.read")}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range 2 {
		wg.Go(func() { _, errs[i] = v.Verify(ctx, tokens[i]) })
	}
	for deadline := time.Now().Add(10 * time.Second); f.asked.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first two questions never reached the issuer")
		}
	}
	// Both slots are taken: the third token's first request waits, and
	// gives up; the second request for it, which joined, must not.
	leaving, leave := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() { _, err := v.Verify(leaving, tokens[2]); left <- err }()
	time.Sleep(20 * time.Millisecond)
	joined := make(chan error, 1)
	go func() { _, err := v.Verify(ctx, tokens[2]); joined <- err }()
	time.Sleep(20 * time.Millisecond)
	leave()
	wantUnavailable(t, <-left)
	select {
	case err := <-joined:
		t.Fatalf("the joined request ended with the one that left: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if n := f.asked.Load(); n != 2 {
		t.Fatalf("%d questions with 2 slots taken, want 2", n)
	}
	close(hold)
	wg.Wait()
	if err := <-joined; err != nil {
		t.Fatalf("the joined request: %v", err)
	}
	for _, err := range errs[:2] {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.max != 2 || f.asked.Load() != 3 {
		t.Fatalf("%d questions, at most %d at once; want 3, at most 2", f.asked.Load(), f.max)
	}
}

// JWTs, which only the issuer can sign, are introspected for revocation
// checks outside the rate: made-up tokens cannot crowd them out.
func TestIntrospectionRateSparesJWTs(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, apiID, apiSecret := k.Setup(t, "opaque")
	ctx := context.Background()
	ids, format := []string{apiID}, "jwt"
	if _, err := k.Srv.Admin.UpdateAPI(ctx, testkeyward.Sys, "orders", admin.APIUpdate{TokenFormat: &format, Introspectors: &ids}); err != nil {
		t.Fatal(err)
	}
	f := &introspectIssuer{}
	v := newVerifier(t, k, verify.WithHTTPClient(f.client()), verify.WithIntrospection(apiID, apiSecret),
		verify.WithRevocationCheck(), verify.WithIntrospectionRate(1, 1))
	if _, err := v.Verify(ctx, randomOpaque()); err == nil || errors.Is(err, verify.ErrUnavailable) {
		t.Fatalf("the first made-up token: %v, want it refused by the issuer", err)
	}
	for i := range 3 {
		tok := tokenFor(t, k, id, secret, "orders.read")
		if strings.Count(tok, ".") != 2 {
			t.Fatal("the token is not a JWT")
		}
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("JWT %d while the budget is spent: %v", i, err)
		}
	}
	if n := f.asked.Load(); n != 4 {
		t.Fatalf("%d introspection requests, want 4", n)
	}
}

// The issuer's answer to a failed introspection goes into the error, for
// logs, cut short: it may be a large error page.
func TestIntrospectionErrorBodyBounded(t *testing.T) {
	k := testkeyward.Start(t)
	_, _, apiID, apiSecret := k.Setup(t, "opaque")
	page := strings.Repeat("<p>upstream error</p>", 10_000)
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/introspect") {
			return &http.Response{StatusCode: 502, Status: "502 Bad Gateway", Header: http.Header{},
				Body: io.NopCloser(strings.NewReader(page)), Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	v := newVerifier(t, k, verify.WithHTTPClient(client), verify.WithIntrospection(apiID, apiSecret))
	_, err := v.Verify(context.Background(), randomOpaque())
	wantUnavailable(t, err)
	if n := len(err.Error()); n > 1024 || !strings.Contains(err.Error(), "502 Bad Gateway: <p>upstream error</p>") {
		t.Fatalf("error of %d bytes: %.200s…", n, err)
	}
}

// answeringIssuer is an HTTP client to k whose introspection endpoint
// answers every token with the JSON that answer makes of the time at k.
func answeringIssuer(k *testkeyward.Server, answer func(now time.Time) map[string]any) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !strings.HasSuffix(r.URL.Path, "/introspect") {
			return http.DefaultTransport.RoundTrip(r)
		}
		b, _ := json.Marshal(answer(k.Clock.Now()))
		return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
	})}
}

// An introspection answer active but with an exp past, or an nbf or iat
// ahead, beyond the leeway, is refused as the same JWT would be: the
// issuer says the token is active, but its clock or cache may be off, and
// the API holds every token to its own clock (RFC 7662 §2.2 leaves the
// answer's use to the resource server).
func TestIntrospectionTimes(t *testing.T) {
	k := testkeyward.Start(t)
	ctx := context.Background()
	tests := []struct {
		name          string
		exp, nbf, iat time.Duration // from now; 0 for none (nbf, iat)
		fragment      string        // of the refusal; "" to accept
	}{
		{"valid", time.Hour, 0, -time.Minute, ""},
		{"expired", -time.Minute, 0, -time.Hour, "expired"},
		{"expired within the leeway", -10 * time.Second, 0, -time.Hour, ""},
		{"expired now", 0, 0, -time.Hour, ""}, // exp = now, within the leeway
		{"not valid yet", time.Hour, 10 * time.Minute, -time.Minute, "not valid yet"},
		{"not valid yet within the leeway", time.Hour, 10 * time.Second, -time.Minute, ""},
		{"issued in the future", time.Hour, 0, 10 * time.Minute, "issued in the future"},
		{"issued in the future within the leeway", time.Hour, 0, 10 * time.Second, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := answeringIssuer(k, func(now time.Time) map[string]any {
				m := map[string]any{"active": true, "iss": k.URL, "aud": "https://orders.internal", "client_id": "1", "sub": "1",
					"scope": "orders.read", "exp": now.Add(tt.exp).Unix()}
				if tt.nbf != 0 {
					m["nbf"] = now.Add(tt.nbf).Unix()
				}
				if tt.iat != 0 {
					m["iat"] = now.Add(tt.iat).Unix()
				}
				return m
			})
			v := newVerifier(t, k, verify.WithHTTPClient(client), verify.WithIntrospection("api", "secret"))
			_, err := v.Verify(ctx, randomOpaque())
			if tt.fragment == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantInvalid(t, err, tt.fragment)
		})
	}
}

// A token the issuer still calls active once its exp has passed (an
// issuer whose clock is behind, or that caches its answers) is refused
// after its exp plus the leeway, whatever was cached of it before.
func TestIntrospectionCachedUntilExpiry(t *testing.T) {
	k := testkeyward.Start(t)
	exp := k.Clock.Now().Add(20 * time.Second)
	client := answeringIssuer(k, func(time.Time) map[string]any {
		return map[string]any{"active": true, "iss": k.URL, "aud": "https://orders.internal", "client_id": "1", "sub": "1", "exp": exp.Unix()}
	})
	v := newVerifier(t, k, verify.WithHTTPClient(client), verify.WithIntrospection("api", "secret"), verify.WithIntrospectionCacheTTL(time.Minute))
	ctx := context.Background()
	tok := randomOpaque()
	for _, step := range []struct {
		advance time.Duration
		ok      bool
	}{
		{0, true},                 // asked: active, exp in 20 s
		{15 * time.Second, true},  // cached
		{15 * time.Second, true},  // exp 10 s ago, within the 30 s leeway: asked again
		{30 * time.Second, false}, // exp 40 s ago
	} {
		k.Clock.Add(step.advance)
		_, err := v.Verify(ctx, tok)
		if step.ok && err != nil {
			t.Fatalf("at exp%+v: %v", k.Clock.Now().Sub(exp), err)
		}
		if !step.ok {
			wantInvalid(t, err, "expired")
		}
	}
}

// A token refused because its nbf is ahead (beyond the leeway) is
// accepted once nbf comes, not only after the introspection cache
// lifetime: the refusal is remembered at most until then.
func TestIntrospectionNotYetValidCachedUntilNbf(t *testing.T) {
	k := testkeyward.Start(t)
	nbf := k.Clock.Now().Add(40 * time.Second) // 10 s beyond the 30 s leeway
	client := answeringIssuer(k, func(time.Time) map[string]any {
		return map[string]any{"active": true, "iss": k.URL, "aud": "https://orders.internal", "client_id": "1", "sub": "1",
			"nbf": nbf.Unix(), "exp": nbf.Add(time.Hour).Unix()}
	})
	v := newVerifier(t, k, verify.WithHTTPClient(client), verify.WithIntrospection("api", "secret"), verify.WithIntrospectionCacheTTL(time.Minute))
	ctx := context.Background()
	tok := randomOpaque()
	_, err := v.Verify(ctx, tok)
	wantInvalid(t, err, "not valid yet")
	k.Clock.Add(10 * time.Second) // nbf within the leeway now
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("at nbf-30s, within the leeway, still refused: %v", err)
	}
}

// introspectingIssuer is a client for an issuer at stubIssuerURL with no
// signing keys, whose introspection endpoint answers with introspect.
func introspectingIssuer(introspect func(r *http.Request) (*http.Response, error)) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			return jsonResponse(r, map[string]string{"issuer": stubIssuerURL, "jwks_uri": stubIssuerURL + "/jwks",
				"introspection_endpoint": stubIssuerURL + "/introspect"})
		case "/jwks":
			return jsonResponse(r, map[string]any{"keys": []any{}})
		}
		return introspect(r)
	})}
}

// A token whose question was to be asked by a request that ended while
// waiting for a slot is asked about anew, and held to the rate, at the
// time it is asked anew: it was held to it at the time the token came,
// seconds before, which turned the rate's clock back, and the rate then
// counted those seconds again, letting tokens never seen active past it.
func TestIntrospectionRateAfterLeaderLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		held, release := "kwat_"+strings.Repeat("A", 43), make(chan struct{})
		client := introspectingIssuer(func(r *http.Request) (*http.Response, error) {
			r.ParseForm()
			if r.PostForm.Get("token") == held {
				<-release // the issuer is slow about this one, holding the only slot
			}
			return jsonResponse(r, map[string]any{"active": false})
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer time.Sleep(time.Minute) // every request ends
		defer close(release)
		v, err := verify.New(ctx, stubIssuerURL, stubAudience, verify.WithHTTPClient(client),
			verify.WithIntrospection("api", "secret"), verify.WithIntrospectionRate(0.1, 4), verify.WithIntrospectionConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		verifyLater := func(ctx context.Context, raw string) chan error {
			done := make(chan error, 1)
			go func() {
				_, err := v.Verify(ctx, raw)
				done <- err
			}()
			synctest.Wait()
			return done
		}
		// At 0 s: the held token takes the slot, a second token waits for
		// it, and a request for the second token joins that one: 2 of 4
		// questions left.
		verifyLater(ctx, held)
		leaderCtx, leave := context.WithCancel(ctx)
		second := randomOpaque()
		verifyLater(leaderCtx, second)
		verifyLater(ctx, second)
		// At 5 s: a third token, 1.5 left.
		time.Sleep(5 * time.Second)
		verifyLater(ctx, randomOpaque())
		// At 9 s the request asking about the second token ends: the one
		// joined asks anew, 0.9 left.
		time.Sleep(4 * time.Second)
		leave()
		synctest.Wait()
		select {
		case err := <-verifyLater(ctx, randomOpaque()):
			if !errors.Is(err, verify.ErrIntrospectionThrottled) {
				t.Fatalf("a fourth token at 9 s: %v, want ErrIntrospectionThrottled", err)
			}
		default:
			t.Fatal("a fourth token at 9 s, the rate spent, was let past it (it waits for a slot)")
		}
	})
}

// A request that joins a question about a token already in flight reuses
// the answer for the introspection cache TTL from when the question was
// asked, as the request that asked it would: it reused it from when it
// came itself, up to the 10 s a question may take later, and so a
// revocation could go unfelt that much past the TTL.
func TestIntrospectionJoinedCachedFromAsked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tok, release := "kwat_"+strings.Repeat("B", 43), make(chan struct{})
		var asked atomic.Int32
		client := introspectingIssuer(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 1 {
				<-release // the issuer is slow about the first question
			}
			return jsonResponse(r, map[string]any{"active": true, "aud": stubAudience, "client_id": "c",
				"exp": time.Now().Add(time.Hour).Unix()})
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		v, err := verify.New(ctx, stubIssuerURL, stubAudience, verify.WithHTTPClient(client),
			verify.WithIntrospection("api", "secret"), verify.WithIntrospectionCacheTTL(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		// At 0 s a request asks about the token; it ends at 8 s, the
		// question still in flight, as a request joins it; the issuer
		// answers at 9 s.
		start := time.Now()
		firstCtx, leave := context.WithCancel(ctx)
		go v.Verify(firstCtx, tok)
		synctest.Wait()
		time.Sleep(8 * time.Second)
		leave()
		joined := make(chan error, 1)
		go func() {
			_, err := v.Verify(ctx, tok)
			joined <- err
		}()
		synctest.Wait()
		time.Sleep(time.Second)
		close(release)
		if err := <-joined; err != nil {
			t.Fatalf("the request that joined: %v", err)
		}
		for _, step := range []struct {
			at    time.Duration // since the question was asked
			asked int32
		}{
			{29 * time.Second, 1}, // within the TTL: from the cache
			{31 * time.Second, 2}, // past it: asked again, though 23 s after the request that joined came
		} {
			time.Sleep(time.Until(start.Add(step.at)))
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatalf("at %s: %v", step.at, err)
			}
			if got := asked.Load(); got != step.asked {
				t.Errorf("at %s: the issuer was asked %d times, want %d", step.at, got, step.asked)
			}
		}
	})
}
