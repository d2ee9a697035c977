package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/verify"
)

// TestDPoPEndToEnd: 'keyward serve' advertises DPoP; Google's client
// library, its HTTP client adding proofs, gets a DPoP-bound token for a key
// file the CLI made; an API behind verify's middleware accepts it only with
// a fresh proof of the same key, and neither a replayed proof nor the token
// as a bearer token.
func TestDPoPEndToEnd(t *testing.T) {
	m := startServer(t)
	_, keyFile := googleFlowFixture(t, m)
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	var md struct {
		Algs []string `json:"dpop_signing_alg_values_supported"`
	}
	getJSON(t, m.Issuer+"/.well-known/oauth-authorization-server", &md)
	if !slices.Contains(md.Algs, "ES256") {
		t.Fatalf("dpop_signing_alg_values_supported = %v, want ES256 among them", md.Algs)
	}

	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := googleDPoPToken(t, data, d)

	api := thumbprintAPI(t, m.Issuer)

	// Through the DPoP client: a new proof every request. The last one
	// is kept to be replayed.
	var proof string
	record := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		proof = r.Header.Get(dpop.Header)
		return http.DefaultTransport.RoundTrip(r)
	})}
	hc := d.Client(oauth2.StaticTokenSource(tok), record)
	for range 2 {
		resp, err := hc.Get(api.URL + "/orders")
		if err != nil {
			t.Fatal(err)
		}
		var jkt string
		json.NewDecoder(resp.Body).Decode(&jkt)
		resp.Body.Close()
		if resp.StatusCode != 200 || jkt != d.JKT() {
			t.Fatalf("API: %s, jkt %q; want 200 and %s", resp.Status, jkt, d.JKT())
		}
	}

	send := func(scheme, proof string) int {
		req, _ := http.NewRequest("GET", api.URL+"/orders", nil)
		req.Header.Set("Authorization", scheme+" "+tok.AccessToken)
		if proof != "" {
			req.Header.Set(dpop.Header, proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send("DPoP", proof); code != 401 {
		t.Errorf("a replayed proof: %d, want 401", code)
	}
	if code := send("DPoP", ""); code != 401 {
		t.Errorf("no proof: %d, want 401", code)
	}
	if code := send("Bearer", ""); code != 401 {
		t.Errorf("the token as a bearer token: %d, want 401", code)
	}
}

// thumbprintAPI starts https://orders.internal behind verify's middleware,
// trusting issuer: it answers the cnf.jkt of the token it accepted, as JSON.
func thumbprintAPI(t *testing.T, issuer string) *httptest.Server {
	t.Helper()
	vctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := verify.New(vctx, issuer, "https://orders.internal")
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(verify.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		json.NewEncoder(w).Encode(c.KeyThumbprint)
	})))
	t.Cleanup(api.Close)
	return api
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestDPoPNonceEndToEnd: with 'serve --dpop-nonce', a proof without the
// server's nonce is refused with use_dpop_nonce and a nonce to use, and
// Google's client library, its HTTP client from client.NewDPoP, gets a
// DPoP-bound token anyway: the proofs follow the server's nonces.
func TestDPoPNonceEndToEnd(t *testing.T) {
	m := startServer(t, func(m *Main) { m.Config.DPoPNonce = true })
	acct, keyFile := googleFlowFixture(t, m)
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	d, err := client.NewDPoP(nil)
	if err != nil {
		t.Fatal(err)
	}

	p := dpoptest.NewProver(t)
	proof, err := p.Proof("POST", m.Issuer+"/token", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var sec struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, "secrets", "create", acct.Email, "-o", "json", "--credentials", m.AdminKeyFile)), &sec); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", m.Issuer+"/token", strings.NewReader("grant_type=client_credentials&scope=orders.read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	req.SetBasicAuth(acct.ID, sec.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 400 || body.Error != "use_dpop_nonce" || resp.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("a proof without a nonce: %s %q, DPoP-Nonce %q; want 400 use_dpop_nonce with a nonce", resp.Status, body.Error, resp.Header.Get("DPoP-Nonce"))
	}

	googleDPoPToken(t, data, d)
}

// googleDPoPToken gets a token for orders.read with Google's client library
// from the key file data, its HTTP client d's, and checks it is bound.
func googleDPoPToken(t *testing.T, data []byte, d *client.DPoP) *oauth2.Token {
	t.Helper()
	conf, err := google.JWTConfigFromJSON(data, "orders.read")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, d.HTTPClient(nil))
	tok, err := conf.TokenSource(ctx).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.Type() != "DPoP" {
		t.Fatalf("token_type %q, want DPoP", tok.Type())
	}
	return tok
}
