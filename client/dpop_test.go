package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// End to end: the client gets a DPoP-bound token from a real Keyward and
// calls an API behind verify's middleware with it; the token alone, as a
// bearer token, is refused.
func TestDPoP(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	kf := keyFile(t, k)
	v := verifier(t, k)
	api := httptest.NewServer(verify.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		io.WriteString(w, c.KeyThumbprint)
	})))
	t.Cleanup(api.Close)
	ctx := context.Background()

	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]func() (oauth2.TokenSource, error){
		"client_credentials with a secret": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", ClientID: id, ClientSecret: secret,
				Scopes: []string{"orders.read"}, HTTPClient: d.HTTPClient(nil)})
		},
		"client_credentials with a key file": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", KeyFile: kf,
				Scopes: []string{"orders.read"}, HTTPClient: d.HTTPClient(nil)})
		},
		"jwt-bearer": func() (oauth2.TokenSource, error) {
			return client.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, d.HTTPClient(nil)), kf, "orders.read")
		},
	}
	for name, mk := range sources {
		t.Run(name, func(t *testing.T) {
			ts, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok.Type() != "DPoP" {
				t.Fatalf("token type %q, want DPoP", tok.Type())
			}
			hc := d.Client(ts, nil)
			for range 2 { // a fresh proof each time
				resp, err := hc.Get(api.URL + "/orders?x=1")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != d.JKT() {
					t.Fatalf("API: %s %s, want 200 and jkt %s", resp.Status, body, d.JKT())
				}
			}
			// The token without the key is refused.
			bearer := oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken, TokenType: "Bearer"}))
			resp, err := bearer.Get(api.URL + "/orders")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("bearer presentation: %s, want 401", resp.Status)
			}
		})
	}

	// Another key cannot use the token.
	ts, _ := client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", ClientID: id, ClientSecret: secret,
		Scopes: []string{"orders.read"}, HTTPClient: d.HTTPClient(nil)})
	thief, _ := client.NewDPoP(nil)
	resp, err := thief.Client(ts, nil).Get(api.URL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("another key: %s, want 401", resp.Status)
	}
}

// A redirect to another host gets neither the token nor a proof; one to
// the same host gets both, the proof for the new URL.
func TestDPoPRedirect(t *testing.T) {
	type seen struct{ auth, proof string }
	got := make(chan seen, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get("Authorization"), r.Header.Get("DPoP")}
	}))
	t.Cleanup(target.Close)
	targetURL, _ := url.Parse(target.URL)
	// The same server under another name: 127.0.0.1 and localhost.
	elsewhere := "http://localhost:" + targetURL.Port() + "/landing"
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	t.Cleanup(origin.Close)
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}), nil)
	for _, tc := range []struct {
		name, to  string
		wantToken bool
	}{
		{"another host", elsewhere, false},
		{"same host", target.URL + "/landing", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := hc.Get(origin.URL + "/?to=" + url.QueryEscape(tc.to))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			s := <-got
			if !tc.wantToken {
				if s.auth != "" || s.proof != "" {
					t.Fatalf("redirected away with Authorization %q, DPoP %q", s.auth, s.proof)
				}
				return
			}
			if s.auth != "DPoP tok" || s.proof == "" {
				t.Fatalf("Authorization %q, DPoP %q: want the token and a proof", s.auth, s.proof)
			}
			htu := proofClaim(t, s.proof, "htu")
			if htu != tc.to {
				t.Errorf("proof htu %q, want %q", htu, tc.to)
			}
		})
	}
}

// proofClaim returns a claim of a proof JWT, unverified.
func proofClaim(t *testing.T, proof, name string) string {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("proof %q is not a JWS", proof)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	v, _ := claims[name].(string)
	return v
}

// countingTransport counts the requests it sends.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// A token endpoint that requires nonces (RFC 9449 §8): the first request
// is refused with use_dpop_nonce and sent again with the nonce, and the
// nonce of the answer serves the next request at once.
func TestDPoPServerNonce(t *testing.T) {
	k := testkeyward.Start(t, func(c *server.Config) { c.DPoPNonces = true })
	id, secret, _, _ := k.Setup(t, "jwt")
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	counter := &countingTransport{}
	hc := d.HTTPClient(&http.Client{Transport: counter})
	for i, want := range []int32{2, 1} {
		ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{TokenURL: k.URL + "/token",
			ClientID: id, ClientSecret: secret, Scopes: []string{"orders.read"}, HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		counter.n.Store(0)
		tok, err := ts.Token()
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if tok.Type() != "DPoP" {
			t.Errorf("token %d: type %q, want DPoP", i, tok.Type())
		}
		if got := counter.n.Load(); got != want {
			t.Errorf("token %d took %d requests, want %d", i, got, want)
		}
	}
}

// A resource server that requires nonces (RFC 9449 §9) answers 401 with
// use_dpop_nonce in its DPoP challenge: the request is sent once more with
// the nonce, and its body again.
func TestDPoPResourceServerNonce(t *testing.T) {
	var calls atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if proofClaim(t, r.Header.Get("DPoP"), "nonce") != "rs-nonce" {
			w.Header().Set("DPoP-Nonce", "rs-nonce")
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(api.Close)
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}), nil)
	resp, err := hc.Post(api.URL+"/orders", "text/plain", strings.NewReader("order 1"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "order 1" || calls.Load() != 2 {
		t.Fatalf("%s %q after %d calls, want 200, the body, 2 calls", resp.Status, body, calls.Load())
	}
	// The nonce is remembered: the next request needs one call.
	calls.Store(0)
	resp, err = hc.Get(api.URL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || calls.Load() != 1 {
		t.Errorf("second request: %s after %d calls, want 200 after 1", resp.Status, calls.Load())
	}
}

// fakeHosts is a transport that answers for any host name without the
// network: a request whose path has a redirect in redirects is answered
// with it (status and Location), any other is recorded and answered 200.
type fakeHosts struct {
	redirects map[string]redirect // by host and path, "a.example/start"
	got       chan *http.Request
}

type redirect struct {
	status   int
	location string
}

func (f *fakeHosts) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	resp := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}
	if rd, ok := f.redirects[r.URL.Host+r.URL.Path]; ok {
		resp.StatusCode = rd.status
		resp.Header.Set("Location", rd.location)
	} else {
		f.got <- r
	}
	return resp, nil
}

// A redirect chain that leaves the host and comes back (a → b → a) gets
// no token or proof on its way back either, as net/http's own
// Authorization rule (CVE-2024-45336): else b, once a sends a client
// there, could have that client send its token with a valid proof to any
// URL of a, with the method kept (307).
func TestDPoPRedirectBack(t *testing.T) {
	f := &fakeHosts{got: make(chan *http.Request, 1), redirects: map[string]redirect{
		"a.example/start":  {http.StatusFound, "http://b.example/bounce"},
		"b.example/bounce": {http.StatusTemporaryRedirect, "http://a.example/admin/delete-everything"},
		"a.example/here":   {http.StatusFound, "/there"},
	}}
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}), &http.Client{Transport: f})
	resp, err := hc.Get("http://a.example/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := <-f.got; r.URL.Path != "/admin/delete-everything" || r.Header.Get("Authorization") != "" || r.Header.Get("DPoP") != "" {
		t.Errorf("back at %s: Authorization %q, DPoP %q; want neither", r.URL, r.Header.Get("Authorization"), r.Header.Get("DPoP"))
	}
	// A chain that never leaves the host keeps both.
	resp, err = hc.Get("http://a.example/here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := <-f.got; r.URL.Path != "/there" || r.Header.Get("Authorization") != "DPoP tok" || r.Header.Get("DPoP") == "" {
		t.Errorf("at %s: Authorization %q, DPoP %q; want the token and a proof", r.URL, r.Header.Get("Authorization"), r.Header.Get("DPoP"))
	}
}

// Host names are compared as net/http dials them: "straße" and "STRAẞE"
// are equal to strings.EqualFold, but IDNA maps the first to
// xn--strae-oqa and the second to strasse, another domain; the redirect
// gets no token. ASCII case alone does not make another host.
func TestDPoPRedirectUnicodeCase(t *testing.T) {
	f := &fakeHosts{got: make(chan *http.Request, 1), redirects: map[string]redirect{
		"straße.example/start": {http.StatusFound, "http://straẞe.example/landing"},
		"api.example/start":    {http.StatusFound, "http://API.Example/landing"},
	}}
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}), &http.Client{Transport: f})
	for _, tc := range []struct {
		start     string
		wantToken bool
	}{
		{"http://straße.example/start", false},
		{"http://api.example/start", true},
	} {
		resp, err := hc.Get(tc.start)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := <-f.got
		if got := r.Header.Get("Authorization") != "" || r.Header.Get("DPoP") != ""; got != tc.wantToken {
			t.Errorf("%s → %s: Authorization %q, DPoP %q; want them: %v", tc.start, r.URL, r.Header.Get("Authorization"), r.Header.Get("DPoP"), tc.wantToken)
		}
	}
}

// A resource server may give a new nonce with every answer (RFC 9449
// §8.2, §9): the one of the answer to a request sent again is kept too,
// so the next request needs one call, not two.
func TestDPoPNonceOfRetry(t *testing.T) {
	var calls, issued atomic.Int32
	current := func() string { return "n" + string(rune('0'+issued.Load())) }
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		ok := proofClaim(t, r.Header.Get("DPoP"), "nonce") == current()
		issued.Add(1) // each nonce serves once
		w.Header().Set("DPoP-Nonce", current())
		if !ok {
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(api.Close)
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}), nil)
	for i, want := range []int32{2, 1, 1} {
		calls.Store(0)
		resp, err := hc.Get(api.URL + "/orders")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || calls.Load() != want {
			t.Errorf("request %d: %s after %d calls, want 200 after %d", i, resp.Status, calls.Load(), want)
		}
	}
}

// A redirect from HTTPS down to plain HTTP gets no token, bound or not: on
// plain HTTP anyone on the path reads it. Up from HTTP to HTTPS keeps it.
func TestDPoPRedirectDowngrade(t *testing.T) {
	f := &fakeHosts{got: make(chan *http.Request, 1), redirects: map[string]redirect{
		"a.example/secure": {http.StatusFound, "http://a.example/plain"},
		"a.example/up":     {http.StatusFound, "https://a.example/landing"},
	}}
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"DPoP", "Bearer"} {
		hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: typ}), &http.Client{Transport: f})
		for _, tc := range []struct {
			start     string
			wantToken bool
		}{
			{"https://a.example/secure", false},
			{"http://a.example/up", true},
		} {
			resp, err := hc.Get(tc.start)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := <-f.got
			if got := r.Header.Get("Authorization") != ""; got != tc.wantToken {
				t.Errorf("%s token, from %s to %s: Authorization %q, want a token: %v", typ, tc.start, r.URL, r.Header.Get("Authorization"), tc.wantToken)
			}
		}
	}
}

// roundTripFunc is a transport of one function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Nonces are kept by host name as net/http dials it: a nonce of
// STRAẞE.example (strasse.example) does not go to straße.example
// (xn--strae-oqa.example), though the two lower alike; a name that differs
// but for ASCII case shares its nonce.
func TestDPoPNonceByHost(t *testing.T) {
	sent := map[string]string{} // the nonce of the last proof to each host
	f := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent[r.URL.Host] = proofClaim(t, r.Header.Get("DPoP"), "nonce")
		h := http.Header{}
		h.Set("DPoP-Nonce", "nonce-of-"+r.URL.Host)
		return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody, Request: r}, nil
	})
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}), &http.Client{Transport: f})
	for _, u := range []string{"http://STRAẞE.example/a", "http://straße.example/a", "http://API.example/a", "http://api.example/a"} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := sent["straße.example"]; got != "" {
		t.Errorf("straße.example got the nonce %q, want none: it is another host than STRAẞE.example", got)
	}
	if got := sent["api.example"]; got != "nonce-of-API.example" {
		t.Errorf("api.example got the nonce %q, want API.example's", got)
	}
}

// A proof's htu is the target URI of the request as net/http sends it
// (RFC 9449 §4.2, RFC 9110 §7.1), which is what a server that builds its
// URL from the Host header compares htu with: a host name in Unicode in
// Punycode, and no userinfo (net/http sends that as Basic credentials,
// if at all, and RFC 9110 §4.2.4 has a target URI never carry it).
func TestDPoPProofHTU(t *testing.T) {
	for _, tc := range []struct{ name, url, htu, host string }{
		{"unicode host", "https://bücher.example/orders?id=1", "https://xn--bcher-kva.example/orders", "xn--bcher-kva.example"},
		{"userinfo", "https://u:p@api.example/orders", "https://api.example/orders", "api.example"},
		{"user alone", "https://u@api.example:8443/orders#f", "https://api.example:8443/orders", "api.example:8443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var htu, host string
			f := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				htu = proofClaim(t, r.Header.Get("DPoP"), "htu")
				var b strings.Builder
				if err := r.Write(&b); err != nil {
					t.Fatal(err)
				}
				_, host, _ = strings.Cut(b.String(), "\r\nHost: ")
				host, _, _ = strings.Cut(host, "\r\n")
				return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			})
			d, err := client.NewDPoP(nil)
			if err != nil {
				t.Fatal(err)
			}
			hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}), &http.Client{Transport: f})
			resp, err := hc.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if htu != tc.htu || host != tc.host {
				t.Errorf("htu %q, Host %q; want %q, %q", htu, host, tc.htu, tc.host)
			}
		})
	}
}

// A TokenURL of a replica, however spelled, keeps TokenEndpoint's
// override: the request's proof is for the token endpoint as the server
// names it, not for the replica. (One with userinfo is refused:
// TestTokenURLUserinfoRefused.)
func TestDPoPTokenURLOverride(t *testing.T) {
	for _, tokenURL := range []string{"https://replica.test/token", "https://REPLICA.test:443/token"} {
		t.Run(tokenURL, func(t *testing.T) {
			var htu string
			f := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				htu = proofClaim(t, r.Header.Get("DPoP"), "htu")
				return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
					Body: io.NopCloser(strings.NewReader(`{"access_token":"tok","token_type":"DPoP","expires_in":3600}`))}, nil
			})
			d, err := client.NewDPoP(nil)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{TokenURL: tokenURL, TokenEndpoint: "https://keyward.test/token",
				ClientID: "123", ClientSecret: "s", HTTPClient: d.HTTPClient(&http.Client{Transport: f})})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ts.Token(); err != nil {
				t.Fatal(err)
			}
			if htu != "https://keyward.test/token" {
				t.Errorf("htu %q, want https://keyward.test/token", htu)
			}
		})
	}
}

// End to end with verify: an API that requires its own DPoP nonces
// (verify.WithDPoPNonce, RFC 9449 §9): the client follows the first refusal with the nonce it names,
// once, and later requests carry the nonce from the start.
func TestDPoPVerifyNonceEndToEnd(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	v := verifier(t, k, verify.WithDPoPNonce([]byte("the orders API's nonce key, 32 bytes or more")))
	var arrived, refused atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		verify.Middleware(v, verify.OnError(func(*http.Request, error) { refused.Add(1) }))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		})).ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{TokenURL: k.URL + "/token", ClientID: id, ClientSecret: secret,
		Scopes: []string{"orders.read"}, HTTPClient: d.HTTPClient(nil)})
	if err != nil {
		t.Fatal(err)
	}
	hc := d.Client(ts, nil)
	for i, want := range []struct{ arrived, refused int32 }{{2, 1}, {3, 1}} {
		resp, err := hc.Get(api.URL + "/orders")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %s %s, want 200", i, resp.Status, body)
		}
		if arrived.Load() != want.arrived || refused.Load() != want.refused {
			t.Errorf("after request %d: %d requests arrived, %d refused; want %d and %d", i, arrived.Load(), refused.Load(), want.arrived, want.refused)
		}
	}
}

// With TokenURL naming the token endpoint under another name (a replica,
// a proxy), the DPoP proof is for the token endpoint as the server names
// it — the key file's token_uri, or ClientCredentialsConfig.TokenEndpoint
// — as the assertion's audience is (it, or for a client assertion its
// issuer): the server checks htu against the
// endpoint its metadata names, and refused a proof for the URL the
// request went to. TokenURL spelled otherwise than Go renders it (upper
// case scheme and host, the default port) keeps the override.
func TestDPoPTokenURL(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	kf := keyFile(t, k)
	other := strings.Replace(k.URL, "127.0.0.1", "localhost", 1) + "/token"
	if other == k.URL+"/token" {
		t.Fatalf("the test server's URL %s has no 127.0.0.1 to name otherwise", k.URL)
	}
	shouted := strings.Replace(strings.Replace(other, "http://", "HTTP://", 1), "localhost", "LocalHost", 1)
	ctx := context.Background()
	scopes := []string{"orders.read"}
	sources := map[string]func(tokenURL string, hc *http.Client) (oauth2.TokenSource, error){
		"jwt-bearer": func(tokenURL string, hc *http.Client) (oauth2.TokenSource, error) {
			return client.JWTBearer(ctx, client.JWTBearerConfig{KeyFile: kf, Scopes: scopes, TokenURL: tokenURL, HTTPClient: hc})
		},
		"client_credentials with a key file": func(tokenURL string, hc *http.Client) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: tokenURL, KeyFile: kf, Scopes: scopes, HTTPClient: hc})
		},
		"client_credentials with a secret": func(tokenURL string, hc *http.Client) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: tokenURL, TokenEndpoint: k.URL + "/token",
				ClientID: id, ClientSecret: secret, Scopes: scopes, HTTPClient: hc})
		},
	}
	for name, mk := range sources {
		for _, tokenURL := range []string{other, shouted} {
			t.Run(name+" via "+tokenURL, func(t *testing.T) {
				d, err := client.NewDPoP(nil)
				if err != nil {
					t.Fatal(err)
				}
				ts, err := mk(tokenURL, d.HTTPClient(nil))
				if err != nil {
					t.Fatal(err)
				}
				tok, err := ts.Token()
				if err != nil {
					t.Fatalf("a token through %s: %v", tokenURL, err)
				}
				if !strings.EqualFold(tok.Type(), "DPoP") {
					t.Fatalf("token type %q, want DPoP", tok.Type())
				}
			})
		}
	}
}

// A request's proof names its method as sent: an empty Method, which
// net/http sends as GET, is proved as GET, not with an empty htm the
// server refuses.
func TestDPoPMethod(t *testing.T) {
	var htm string
	f := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		htm = proofClaim(t, r.Header.Get("DPoP"), "htm")
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}), &http.Client{Transport: f})
	u, _ := url.Parse("https://api.example/orders")
	for _, tt := range []struct{ method, want string }{{"", "GET"}, {"GET", "GET"}, {"DELETE", "DELETE"}} {
		t.Run(tt.want+"/"+tt.method, func(t *testing.T) {
			resp, err := hc.Do(&http.Request{Method: tt.method, URL: u, Header: http.Header{}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if htm != tt.want {
				t.Fatalf("htm %q, want %q", htm, tt.want)
			}
		})
	}
}

// A resource server's use_dpop_nonce challenge (RFC 9449 §9) is followed
// in every form RFC 9110 §11.2 allows its auth-param: the value quoted or
// a bare token, the name in any case, spaces around "="; another error
// is not, nor a token68 ending in "=" before a scheme named like the value.
func TestDPoPNonceChallengeForms(t *testing.T) {
	tests := []struct {
		challenge string
		want      int32 // requests sent
	}{
		{`DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`, 2},
		{`DPoP error=use_dpop_nonce`, 2},
		{`DPoP algs="ES256", error=use_dpop_nonce, error_description="nonce"`, 2},
		{`DPoP Error = "use_dpop_nonce"`, 2},
		{`Bearer realm="api", DPoP error="use_dpop_nonce"`, 2},
		{`DPoP error="invalid_token"`, 1},
		{`DPoP error=use_dpop_nonce_x`, 1},
		{`DPoP error_description="not error=use_dpop_nonce"`, 1},
		{`Basic error=, use_dpop_nonce`, 1}, // a token68 ending in "=", then a scheme
	}
	for _, tt := range tests {
		t.Run(tt.challenge, func(t *testing.T) {
			var calls atomic.Int32
			f := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				calls.Add(1)
				h := http.Header{}
				status := http.StatusOK
				if proofClaim(t, r.Header.Get("DPoP"), "nonce") != "rs-nonce" {
					h.Set("DPoP-Nonce", "rs-nonce")
					h.Set("WWW-Authenticate", tt.challenge)
					status = http.StatusUnauthorized
				}
				return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: r}, nil
			})
			d, err := client.NewDPoP(nil)
			if err != nil {
				t.Fatal(err)
			}
			hc := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}), &http.Client{Transport: f})
			resp, err := hc.Get("https://api.example/orders")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := calls.Load(); got != tt.want {
				t.Fatalf("%d requests, want %d", got, tt.want)
			}
		})
	}
}
