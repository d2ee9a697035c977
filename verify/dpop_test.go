package verify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// dpopToken gets a token bound to p's key through the token endpoint, and
// checks the response says so.
func dpopToken(t *testing.T, k *testkeyward.Server, p *dpop.Prover, id, secret, scope string) string {
	t.Helper()
	proof, err := p.Proof("POST", k.URL+"/token", "", k.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", k.URL+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 || body.TokenType != "DPoP" {
		t.Fatalf("token: %s, token_type %q", resp.Status, body.TokenType)
	}
	return body.AccessToken
}

// End to end: a real Keyward issues a DPoP-bound token; the middleware
// lets it through only with a fresh proof of the same key for the request.
func TestDPoPMiddleware(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	v := newVerifier(t, k)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, ok := verify.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "no claims in the context", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(c.KeyThumbprint))
	})
	mux.Handle("/admin", verify.RequireScopes("orders.admin")(http.NotFoundHandler()))
	var log errLog
	api := httptest.NewServer(verify.Middleware(v, verify.OnError(log.onError))(mux))
	t.Cleanup(api.Close)

	p := dpoptest.NewProver(t)
	tok := dpopToken(t, k, p, id, secret, "orders.read")
	bearer := tokenFor(t, k, id, secret, "orders.read")
	mk := func(p *dpop.Prover, method, u, token string) string {
		raw, err := p.Proof(method, u, token, k.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	target := api.URL + "/orders"
	used := mk(p, "GET", target, tok)
	algs := `algs="` + strings.Join(dpop.AlgorithmNames(), " ") + `"`

	tests := []struct {
		name       string
		path       string // default /orders
		auth       string
		proofs     []string
		wantStatus int
		wantError  string // body and DPoP challenge; "" for none
	}{
		{"ok", "", "DPoP " + tok, []string{used}, 200, ""},
		{"query ignored by htu", "/orders?page=2", "DPoP " + tok, []string{mk(p, "GET", target, tok)}, 200, ""},
		{"replayed proof", "", "DPoP " + tok, []string{used}, 401, "invalid_dpop_proof"},
		{"bearer presentation of a bound token (RFC 9449 §7.2)", "", "Bearer " + tok, []string{mk(p, "GET", target, tok)}, 401, "invalid_token"},
		{"bearer presentation without a proof", "", "Bearer " + tok, nil, 401, "invalid_token"},
		{"no proof", "", "DPoP " + tok, nil, 401, "invalid_dpop_proof"},
		{"two proofs", "", "DPoP " + tok, []string{mk(p, "GET", target, tok), mk(p, "GET", target, tok)}, 401, "invalid_dpop_proof"},
		{"proof of another key", "", "DPoP " + tok, []string{mk(dpoptest.NewProver(t), "GET", target, tok)}, 401, "invalid_dpop_proof"},
		{"proof for another path", "", "DPoP " + tok, []string{mk(p, "GET", api.URL+"/billing", tok)}, 401, "invalid_dpop_proof"},
		{"proof for another method", "", "DPoP " + tok, []string{mk(p, "POST", target, tok)}, 401, "invalid_dpop_proof"},
		{"proof for another token", "", "DPoP " + tok, []string{mk(p, "GET", target, bearer)}, 401, "invalid_dpop_proof"},
		{"proof without ath", "", "DPoP " + tok, []string{mk(p, "GET", target, "")}, 401, "invalid_dpop_proof"},
		{"unbound token with the DPoP scheme", "", "DPoP " + bearer, []string{mk(p, "GET", target, bearer)}, 401, "invalid_token"},
		{"bad token with the DPoP scheme", "", "DPoP abc", []string{mk(p, "GET", target, "abc")}, 401, "invalid_token"},
		{"DPoP scheme without a token", "", "DPoP ", nil, 400, "invalid_request"},
		{"unbound bearer token still works", "", "Bearer " + bearer, nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/orders"
			}
			req, _ := http.NewRequest("GET", api.URL+path, nil)
			req.Header.Set("Authorization", tt.auth)
			for _, pr := range tt.proofs {
				req.Header.Add("DPoP", pr)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]string
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d %v, want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				return
			}
			ch := resp.Header.Values("WWW-Authenticate")
			if body["error"] != tt.wantError || len(ch) != 1 || !strings.HasPrefix(ch[0], "DPoP ") ||
				!strings.Contains(ch[0], `error="`+tt.wantError+`"`) || !strings.Contains(ch[0], algs) {
				t.Fatalf("error %q, WWW-Authenticate %q; want %s in a DPoP challenge with %s", body["error"], ch, tt.wantError, algs)
			}
		})
	}

	// The handler sees the claims, with the key they are bound to.
	req, _ := http.NewRequest("GET", target, nil)
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", mk(p, "GET", target, tok))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got) == 0 {
		t.Fatalf("the handler got %s %q, want the claims' key thumbprint", resp.Status, got)
	}
	// RequireScopes answers a DPoP request with a DPoP challenge, and
	// tells OnError.
	log.take()
	req, _ = http.NewRequest("GET", api.URL+"/admin", nil)
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", mk(p, "GET", api.URL+"/admin", tok))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	var scopeBody map[string]string
	json.NewDecoder(resp.Body).Decode(&scopeBody)
	resp.Body.Close()
	wantCh := `DPoP realm="https://orders.internal", error="insufficient_scope", error_description="the token lacks the scope orders.admin", scope="orders.admin", ` + algs
	if ch := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 403 || len(ch) != 1 || ch[0] != wantCh {
		t.Errorf("RequireScopes: %s, WWW-Authenticate %q, want 403 with %q alone", resp.Status, ch, wantCh)
	}
	if len(scopeBody) != 2 || scopeBody["error"] != "insufficient_scope" || scopeBody["error_description"] != "the token lacks the scope orders.admin" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("RequireScopes: body %v, Cache-Control %q; want insufficient_scope and its description, no-store", scopeBody, resp.Header.Get("Cache-Control"))
	}
	wantLogged(t, &log, "insufficient_scope")

	// A request without a token learns of both schemes.
	if resp, err = http.Get(target); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Values("WWW-Authenticate"); len(ch) != 2 || !strings.HasPrefix(ch[0], "Bearer ") || ch[1] != `DPoP realm="https://orders.internal", `+algs {
		t.Errorf("WWW-Authenticate %q, want a Bearer and a DPoP challenge", ch)
	}

	// A proof is accepted for its max age and the leeway, no longer.
	late := mk(p, "GET", target, tok)
	k.Clock.Add(time.Minute + 31*time.Second)
	req, _ = http.NewRequest("GET", target, nil)
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", late)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("a stale proof: %v %v, want 401", resp.Status, err)
	}
}

// An opaque DPoP-bound token: introspection returns cnf.jkt.
func TestDPoPIntrospection(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, apiID, apiSecret := k.Setup(t, "opaque")
	v := newVerifier(t, k, verify.WithIntrospection(apiID, apiSecret))
	p := dpoptest.NewProver(t)
	tok := dpopToken(t, k, p, id, secret, "orders.read")
	if !strings.HasPrefix(tok, "kwat_") {
		t.Fatal("not an opaque token")
	}
	ctx := context.Background()
	const u = "https://orders.internal/orders"
	if _, err := v.Verify(ctx, tok); err == nil {
		t.Fatal("a DPoP-bound opaque token verified as a bearer token")
	}
	proof, _ := p.Proof("GET", u, tok, k.Clock.Now())
	c, err := v.VerifyDPoP(ctx, tok, verify.DPoPRequest{Method: "GET", URL: u, Proofs: []string{proof}})
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyThumbprint != p.JKT() || c.ClientID != id {
		t.Fatalf("claims %+v, want jkt %s", c, p.JKT())
	}
	_, err = v.VerifyDPoP(ctx, tok, verify.DPoPRequest{Method: "GET", URL: u, Proofs: []string{proof}})
	var ve *verify.Error
	if !errors.As(err, &ve) || ve.Code != "invalid_dpop_proof" {
		t.Fatalf("replay: %v, want invalid_dpop_proof", err)
	}
}

// Behind a proxy the API's public URL, not the request's Host, is what
// proofs must be for.
func TestDPoPPublicURL(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	v := newVerifier(t, k)
	h := verify.Middleware(v, verify.WithPublicURL("https://orders.example/api/"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	p := dpoptest.NewProver(t)
	tok := dpopToken(t, k, p, id, secret, "orders.read")
	for _, tc := range []struct {
		url  string
		want int
	}{
		{"https://orders.example/api/orders", 200},
		{"https://ORDERS.example:443/api/orders?x", 200},
		{"http://internal:8080/orders", 401}, // what the request itself says
		{"https://orders.example/orders", 401},
	} {
		proof, _ := p.Proof("GET", tc.url, tok, k.Clock.Now())
		r := httptest.NewRequest("GET", "http://internal:8080/orders", nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", proof)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("proof for %s: %d %s, want %d", tc.url, w.Code, w.Body, tc.want)
		}
	}
}

// A public URL the request's path cannot be appended to is refused when
// the middleware is made: after a "?" or "#" the path would be dropped
// from the URL proofs are checked against, and a proof would pass at
// every path.
func TestDPoPPublicURLRefused(t *testing.T) {
	v := newVerifier(t, testkeyward.Start(t))
	for _, tc := range []struct {
		base   string
		panics bool
	}{
		{"https://orders.example", false},
		{"https://orders.example/api/", false},
		{"HTTP://orders.example:8080/api", false},
		{"https://orders.example/api#", true},
		{"https://orders.example/api#x", true},
		{"https://orders.example/api?", true},
		{"https://orders.example/?v=1", true},
		{"https://user:pw@orders.example", true},
		{"orders.example/api", true},
		{"/api", true},
		{"ftp://orders.example", true},
		{"https://", true},
		{"https://orders.example/%zz", true},
	} {
		t.Run(tc.base, func(t *testing.T) {
			defer func() {
				if r := recover(); (r != nil) != tc.panics {
					t.Errorf("Middleware with WithPublicURL(%q) panicked: %v, want a panic: %v", tc.base, r, tc.panics)
				}
			}()
			verify.Middleware(v, verify.WithPublicURL(tc.base))
		})
	}
}

// The proof is for the path as the request wrote it: a %2F is not a /
// (RFC 3986 §6.2.2.2), even in a path with a byte such as '{' that makes
// url.URL.EscapedPath write it from the decoded path.
func TestDPoPWrittenPath(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	v := newVerifier(t, k)
	p := dpoptest.NewProver(t)
	tok := dpopToken(t, k, p, id, secret, "orders.read")
	for _, public := range []string{"", "https://orders.example"} {
		var opts []verify.MiddlewareOption
		base := "http://internal:8080"
		if public != "" {
			opts, base = append(opts, verify.WithPublicURL(public)), public
		}
		h := verify.Middleware(v, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		for _, tc := range []struct {
			path, htu string
			want      int
		}{
			{"/orders/a%2Fb{", "/orders/a%2Fb{", 200},
			{"/orders/a%2Fb{", "/orders/a%2fb%7B", 200},
			{"/orders/a%2Fb{", "/orders/a/b{", 401},
			{"/orders/a/b{", "/orders/a%2Fb{", 401},
			{"/orders/a/b{", "/orders/a/b%7b", 200},
			// A request-target's path may hold a raw '#', which is not a
			// fragment there (url.ParseRequestURI): it is not the end of
			// the path the proof is for.
			{"/orders/a#b", "/orders/a", 401},
			{"/orders/a#b", "/orders/a%23b", 200},
			{"/orders/a%2Fb{#/x", "/orders/a%2Fb{", 401},
			{"/orders/a%2Fb{#/x", "/orders/a%2Fb%7B%23/x", 200},
		} {
			proof, err := p.Proof("GET", base+tc.htu, tok, k.Clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "http://internal:8080"+tc.path, nil)
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", proof)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("public URL %q: proof for %s, request for %s: %d %s, want %d", public, tc.htu, tc.path, w.Code, w.Body, tc.want)
			}
		}
	}
}

// Without a configured public URL the proof's URL comes from the Host
// header, which the sender picks: a token for several APIs is refused, or
// any of them could replay the proofs it receives to the others. A token
// for this API alone still works, and WithPublicURL lifts the refusal.
// VerifyDPoP, for other frameworks, holds to the same rule unless the
// caller says the URL comes from configuration (URLFromConfig). An opaque
// token is held to it too: introspection names all of a DPoP-bound token's
// audiences to an API's introspector, where of a bearer token it names
// only the API's own.
func TestDPoPSeveralAudiences(t *testing.T) {
	for _, format := range []string{"jwt", "opaque"} {
		t.Run(format, func(t *testing.T) { testDPoPSeveralAudiences(t, format) })
	}
}

func testDPoPSeveralAudiences(t *testing.T, format string) {
	k := testkeyward.Start(t)
	id, secret, apiID, apiSecret := k.Setup(t, format)
	if _, err := k.Srv.Admin.UpdateAPI(context.Background(), testkeyward.Sys, "billing", admin.APIUpdate{TokenFormat: &format}); err != nil {
		t.Fatal(err)
	}
	var opts []verify.Option
	if format == "opaque" {
		opts = append(opts, verify.WithIntrospection(apiID, apiSecret))
	}
	v := newVerifier(t, k, opts...)
	p := dpoptest.NewProver(t)
	both := dpopToken(t, k, p, id, secret, "orders.read billing.read")
	alone := dpopToken(t, k, p, id, secret, "orders.read")
	const u = "https://orders.internal/orders"
	middleware := func(opts ...verify.MiddlewareOption) func(token, proof string) (int, error) {
		return func(token, proof string) (int, error) {
			var logged error
			opts := append(opts, verify.OnError(func(_ *http.Request, err error) { logged = err }))
			h := verify.Middleware(v, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			r := httptest.NewRequest("GET", u, nil)
			r.Header.Set("Authorization", "DPoP "+token)
			r.Header.Set("DPoP", proof)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if c := w.Header().Get("WWW-Authenticate"); w.Code == 401 && (!strings.HasPrefix(c, "DPoP ") || !strings.Contains(c, `error="invalid_token"`)) {
				t.Errorf("challenge %q, want a DPoP invalid_token one", c)
			}
			return w.Code, logged
		}
	}
	direct := func(fromConfig bool) func(token, proof string) (int, error) {
		return func(token, proof string) (int, error) {
			_, err := v.VerifyDPoP(context.Background(), token, verify.DPoPRequest{Method: "GET", URL: u, URLFromConfig: fromConfig, Proofs: []string{proof}})
			var e *verify.Error
			switch {
			case err == nil:
				return 200, nil
			case errors.As(err, &e) && e.Code == "invalid_token":
				return 401, err
			}
			return 0, err
		}
	}
	for _, tc := range []struct {
		name  string
		check func(token, proof string) (status int, logged error)
		token string
		want  int
	}{
		{"Middleware: several audiences, Host header", middleware(), both, 401},
		{"Middleware: this API alone, Host header", middleware(), alone, 200},
		{"Middleware: several audiences, public URL", middleware(verify.WithPublicURL("https://orders.internal")), both, 200},
		{"VerifyDPoP: several audiences, URL from the request", direct(false), both, 401},
		{"VerifyDPoP: this API alone, URL from the request", direct(false), alone, 200},
		{"VerifyDPoP: several audiences, URL from configuration", direct(true), both, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proof, _ := p.Proof("GET", u, tc.token, k.Clock.Now())
			got, logged := tc.check(tc.token, proof)
			if got != tc.want {
				t.Fatalf("%d (%v), want %d", got, logged, tc.want)
			}
			if tc.want == 401 && (logged == nil || !strings.Contains(logged.Error(), "WithPublicURL") || !strings.Contains(logged.Error(), "URLFromConfig")) {
				t.Errorf("the error is %v, want the cause naming WithPublicURL and URLFromConfig", logged)
			}
		})
	}
}

// One client holds at most a quarter of the replay cache: beyond it its
// proofs are answered unavailable (503), whatever keys it binds tokens to.
func TestDPoPReplayShare(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	v := newVerifier(t, k, verify.WithDPoPReplayCacheSize(8))
	ctx := context.Background()
	const u = "https://orders.internal/orders"
	for i := range 3 {
		p := dpoptest.NewProver(t) // a new key each time: the share is the client's
		tok := dpopToken(t, k, p, id, secret, "orders.read")
		proof, _ := p.Proof("GET", u, tok, k.Clock.Now())
		_, err := v.VerifyDPoP(ctx, tok, verify.DPoPRequest{Method: "GET", URL: u, Proofs: []string{proof}})
		if i < 2 && err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
		if i == 2 && (!errors.Is(err, verify.ErrUnavailable) || !errors.Is(err, verify.ErrReplayCacheUnavailable)) {
			t.Fatalf("a third proof of one client with a cache of 8: %v, want ErrUnavailable and ErrReplayCacheUnavailable", err)
		}
	}
}

// An empty token is invalid_request, before any proof is looked at.
func TestVerifyDPoPEmptyToken(t *testing.T) {
	v := newVerifier(t, testkeyward.Start(t))
	_, err := v.VerifyDPoP(context.Background(), "", verify.DPoPRequest{Method: "GET", URL: "https://api.example/"})
	var e *verify.Error
	if !errors.As(err, &e) || e.Code != "invalid_request" || e.Description != "no access token" {
		t.Fatalf("VerifyDPoP(\"\") = %v, want invalid_request: no access token", err)
	}
}

// store is a fake shared ReplayCache: one map for every replica, as a
// Redis SET NX PXAT would be.
type store struct {
	mu    sync.Mutex
	seen  map[string]time.Time
	err   error // returned by Seen while set
	calls []seenCall
}

type seenCall struct {
	ctx   context.Context
	key   string
	until time.Time
}

func (s *store) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, seenCall{ctx, key, until})
	if s.err != nil {
		return false, s.err
	}
	if s.seen == nil {
		s.seen = map[string]time.Time{}
	}
	if _, ok := s.seen[key]; ok {
		return true, nil
	}
	s.seen[key] = until
	return false, nil
}

// Replicas of one API that share a ReplayCache accept each proof once
// between them; a cache that fails neither accepts nor refuses (503), and
// does not remember the proof.
func TestDPoPSharedReplayCache(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	shared := &store{}
	replicas := []*verify.Verifier{
		newVerifier(t, k, verify.WithDPoPReplayCache(shared)),
		newVerifier(t, k, verify.WithDPoPReplayCache(shared)),
	}
	p := dpoptest.NewProver(t)
	tok := dpopToken(t, k, p, id, secret, "orders.read")
	const u = "https://orders.internal/orders"
	mk := func() string {
		proof, err := p.Proof("GET", u, tok, k.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return proof
	}
	first, second := mk(), mk()
	errDown := errors.New("replay store down")

	type ctxKey struct{}
	for _, tc := range []struct {
		name      string
		replica   int
		proof     string
		storeErr  error
		want      int    // status from Middleware
		wantError string // body error
	}{
		{"first use, replica 0", 0, first, nil, 200, ""},
		{"replayed to replica 1", 1, first, nil, 401, "invalid_dpop_proof"},
		{"replayed to replica 0", 0, first, nil, 401, "invalid_dpop_proof"},
		{"store down", 1, second, errDown, 503, "temporarily_unavailable"},
		{"store back: the proof was not remembered", 1, second, nil, 200, ""},
		{"and is now", 0, second, nil, 401, "invalid_dpop_proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared.mu.Lock()
			shared.err, shared.calls = tc.storeErr, nil
			shared.mu.Unlock()
			var logged error
			h := verify.Middleware(replicas[tc.replica], verify.OnError(func(_ *http.Request, err error) { logged = err }))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			r := httptest.NewRequest("GET", u, nil)
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, tc.name))
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", tc.proof)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var body map[string]string
			json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tc.want || body["error"] != tc.wantError {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, tc.want, tc.wantError)
			}
			if tc.storeErr != nil {
				if w.Header().Get("Retry-After") == "" || !errors.Is(logged, verify.ErrUnavailable) ||
					!errors.Is(logged, verify.ErrReplayCacheUnavailable) || !errors.Is(logged, tc.storeErr) {
					t.Errorf("Retry-After %q, OnError %v: want a Retry-After, and an error matching ErrUnavailable, ErrReplayCacheUnavailable and the store's",
						w.Header().Get("Retry-After"), logged)
				}
			}
			shared.mu.Lock()
			calls := shared.calls
			shared.mu.Unlock()
			if len(calls) != 1 {
				t.Fatalf("%d calls of Seen, want 1", len(calls))
			}
			c := calls[0]
			// Remembered until no clock within the leeway (30 s) accepts
			// the proof (60 s old at most), and a second more: now + 60 s
			// + 2 × 30 s + 1 s.
			if got, _ := c.ctx.Value(ctxKey{}).(string); got != tc.name {
				t.Errorf("Seen got another context than the request's")
			}
			if want := k.Clock.Now().Add(2*time.Minute + time.Second); !c.until.Equal(want) {
				t.Errorf("until %v, want %v", c.until, want)
			}
			if len(c.key) != 43 || strings.Trim(c.key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
				t.Errorf("key %q, want 43 characters of base64url", c.key)
			}
		})
	}
}

// With WithDPoPNonce a proof must carry a current nonce of this API (RFC
// 9449 §9): without one it is refused 401 use_dpop_nonce, and every
// answer to a DPoP request names the nonce to use.
func TestDPoPNonce(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	key := []byte("a key of 32 bytes or more, shared by the replicas")
	v := newVerifier(t, k, verify.WithDPoPNonce(key))
	h := verify.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	p := dpoptest.NewProver(t)
	tok := dpopToken(t, k, p, id, secret, "orders.read")
	const u = "https://orders.internal/orders"
	now := k.Clock.Now()
	ours, theirs := dpop.NewNonces(key), dpop.NewNonces([]byte("another API's key, 32 bytes long or more"))
	current := ours.Current(now)
	if got := v.DPoPNonce(); got != current {
		t.Fatalf("DPoPNonce() = %q, want %q", got, current)
	}

	for _, tc := range []struct {
		name   string
		nonce  string
		want   int
		wantOK bool
	}{
		{"current nonce", current, 200, true},
		{"the last minute's", ours.Current(now.Add(-dpop.NoncePeriod)), 200, true},
		{"no nonce", "", 401, false},
		{"another key's nonce", theirs.Current(now), 401, false},
		{"a stale nonce", ours.Current(now.Add(-3 * dpop.NoncePeriod)), 401, false},
		{"not a nonce", "n-1", 401, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proof, err := p.ProofWithNonce("GET", u, tok, tc.nonce, now)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", u, nil)
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", proof)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.want)
			}
			if got := w.Header().Get("DPoP-Nonce"); got != current {
				t.Errorf("DPoP-Nonce %q, want %q", got, current)
			}
			if tc.want == 401 {
				var body map[string]string
				json.Unmarshal(w.Body.Bytes(), &body)
				ch := w.Header().Values("WWW-Authenticate")
				if body["error"] != "use_dpop_nonce" || len(ch) != 1 || !strings.HasPrefix(ch[0], `DPoP realm="https://orders.internal", error="use_dpop_nonce"`) {
					t.Errorf("body %v, WWW-Authenticate %q: want use_dpop_nonce in both, a DPoP challenge", body, ch)
				}
			}
			// VerifyDPoP holds to the same rule; a new proof, since the
			// middleware remembered the accepted ones.
			proof, _ = p.ProofWithNonce("GET", u, tok, tc.nonce, now)
			_, err = v.VerifyDPoP(context.Background(), tok, verify.DPoPRequest{Method: "GET", URL: u, Proofs: []string{proof}})
			var e *verify.Error
			if (err == nil) != tc.wantOK || (err != nil && (!errors.As(err, &e) || e.Code != "use_dpop_nonce")) {
				t.Errorf("VerifyDPoP: %v, want ok %v or use_dpop_nonce", err, tc.wantOK)
			}
		})
	}

	// Off by default: no nonce asked for, none given.
	plain := verify.Middleware(newVerifier(t, k))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	proof, _ := p.Proof("GET", u, tok, now)
	r := httptest.NewRequest("GET", u, nil)
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", proof)
	w := httptest.NewRecorder()
	plain.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("DPoP-Nonce") != "" {
		t.Errorf("without WithDPoPNonce: %d, DPoP-Nonce %q; want 200 and none", w.Code, w.Header().Get("DPoP-Nonce"))
	}

	// A short key is refused.
	if _, err := verify.New(context.Background(), k.URL, "https://orders.internal", verify.WithDPoPNonce([]byte("short"))); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("New with a 5-byte nonce key: %v, want an error", err)
	}
}

// A proof is remembered for as long as it is accepted, its last instant
// included. One dated the leeway ahead (a client whose clock is that much
// ahead) is accepted until its iat plus its max age and the leeway: the
// first use plus the max age and twice the leeway. Replayed at that very
// instant it was let through, the replay cache having forgotten it then.
func TestDPoPReplayAtRetentionEnd(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprint("shared ", shared), func(t *testing.T) {
			k := testkeyward.Start(t)
			id, secret, _, _ := k.Setup(t, "jwt")
			k.Clock.Add(-time.Duration(k.Clock.Now().Nanosecond())) // a whole second, as iat is
			var opts []verify.Option
			if shared {
				opts = append(opts, verify.WithDPoPReplayCache(&expiringStore{now: k.Clock.Now}))
			}
			v := newVerifier(t, k, opts...)
			p := dpoptest.NewProver(t)
			tok := dpopToken(t, k, p, id, secret, "orders.read")
			const u = "https://orders.internal/orders"
			const leeway, maxAge = 30 * time.Second, time.Minute // the defaults
			proof, err := p.Proof("GET", u, tok, k.Clock.Now().Add(leeway))
			if err != nil {
				t.Fatal(err)
			}
			use := func() error {
				_, err := v.VerifyDPoP(context.Background(), tok, verify.DPoPRequest{Method: "GET", URL: u, Proofs: []string{proof}})
				return err
			}
			if err := use(); err != nil {
				t.Fatalf("first use: %v", err)
			}
			k.Clock.Add(maxAge + 2*leeway)
			var e *verify.Error
			if err := use(); !errors.As(err, &e) || e.Code != "invalid_dpop_proof" || !strings.Contains(e.Description, "used before") {
				t.Fatalf("replayed at the last instant the proof is accepted: %v, want invalid_dpop_proof, used before", err)
			}
			k.Clock.Add(time.Nanosecond)
			if err := use(); !errors.As(err, &e) || e.Code != "invalid_dpop_proof" || !strings.Contains(e.Description, "too old") {
				t.Fatalf("replayed after: %v, want invalid_dpop_proof, too old", err)
			}
		})
	}
}

// expiringStore is a ReplayCache that forgets a key at its until, as
// Redis does with PXAT.
type expiringStore struct {
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]time.Time
}

func (s *expiringStore) Seen(_ context.Context, key string, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.keys[key]; ok && s.now().Before(u) {
		return true, nil
	}
	if s.keys == nil {
		s.keys = map[string]time.Time{}
	}
	s.keys[key] = until
	return false, nil
}

// With AllowQueryToken, a DPoP request with an access_token in its query
// too is 400 invalid_request (RFC 6750 §2: one method per request), with
// a DPoP challenge, as a Bearer one is; an empty access_token is no
// token, for DPoP as for Bearer (it was refused with DPoP and ignored
// with Bearer), and several are malformed. Without AllowQueryToken the
// query is not read.
func TestDPoPMiddlewareQueryToken(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	v := newVerifier(t, k)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	query := verify.Middleware(v, verify.AllowQueryToken())(ok)
	plain := verify.Middleware(v)(ok)
	p := dpoptest.NewProver(t)
	tok := dpopToken(t, k, p, id, secret, "orders.read")
	bearer := tokenFor(t, k, id, secret, "orders.read")
	tests := []struct {
		name       string
		h          http.Handler
		auth       string
		query      string
		wantStatus int
		wantError  string // of the body and the challenge
	}{
		{"DPoP, the token in the query too", query, "DPoP " + tok, "access_token=" + tok, 400, "invalid_request"},
		{"DPoP, another token in the query", query, "DPoP " + tok, "access_token=" + bearer, 400, "invalid_request"},
		{"DPoP, two empty access_tokens", query, "DPoP " + tok, "access_token=&access_token=", 400, "invalid_request"},
		{"DPoP, an empty access_token", query, "DPoP " + tok, "access_token=", 200, ""},
		{"Bearer, an empty access_token", query, "Bearer " + bearer, "access_token=", 200, ""},
		{"Bearer, two empty access_tokens", query, "Bearer " + bearer, "access_token=&access_token=", 400, "invalid_request"},
		{"DPoP, the query not read", plain, "DPoP " + tok, "access_token=" + tok, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/orders?"+tt.query, nil)
			r.Header.Set("Authorization", tt.auth)
			scheme, raw, _ := strings.Cut(tt.auth, " ")
			if scheme == "DPoP" {
				proof, err := p.Proof("GET", "http://example.com/orders", raw, k.Clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				r.Header.Set("DPoP", proof)
			}
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d (%.200s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				return
			}
			var body map[string]string
			json.Unmarshal(w.Body.Bytes(), &body)
			ch := w.Header().Values("WWW-Authenticate")
			if body["error"] != tt.wantError || len(ch) != 1 || !strings.HasPrefix(ch[0], scheme+" ") || !strings.Contains(ch[0], `error="`+tt.wantError+`"`) {
				t.Fatalf("body %v, WWW-Authenticate %q; want %s in a %s challenge", body, ch, tt.wantError, scheme)
			}
		})
	}
}
