package token_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/token"
	"github.com/keyward/keyward/internal/tokenstate"
)

func proof(t *testing.T, p *dpop.Prover, method, u string, iat time.Time) string {
	t.Helper()
	raw, err := p.Proof(method, u, "", iat)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// decode returns a response's JSON body.
func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body is not JSON: %s", w.Body)
	}
	return body
}

// jwtClaims returns the claims of an issued JWT access token, unverified
// (checkToken verifies them elsewhere).
func jwtClaims(t *testing.T, raw string) oauth2.AccessClaims {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c oauth2.AccessClaims
	tok.UnsafeClaimsWithoutVerification(&c)
	return c
}

func TestDPoPBindsTheToken(t *testing.T) {
	e := newEnv(t)
	p := dpoptest.NewProver(t)
	basic := func(extra ...string) http.Header {
		h := http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}
		if len(extra) > 0 {
			h["Dpop"] = extra
		}
		return h
	}
	ccBody := "grant_type=client_credentials&scope=orders.read"

	first := proof(t, p, "POST", endpoint, t0)
	w := e.do(request{body: ccBody, header: basic(first)})
	if w.Code != 200 {
		t.Fatalf("client_credentials with a proof: %d %s", w.Code, w.Body)
	}
	body := decode(t, w)
	if body["token_type"] != "DPoP" {
		t.Errorf("token_type = %v, want DPoP (RFC 9449 §5)", body["token_type"])
	}
	c := jwtClaims(t, body["access_token"].(string))
	if c.Confirmation == nil || c.Confirmation.JKT != p.JKT() || c.Confirmation.X5TS256 != "" {
		t.Errorf("cnf = %+v, want jkt %s", c.Confirmation, p.JKT())
	}
	evs, _ := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Limit: 1000})
	if last := evs[len(evs)-1]; last.Action != "token.issued" || last.Data["cnf_jkt"] != p.JKT() {
		t.Errorf("audit %s %v, want cnf_jkt %s", last.Action, last.Data, p.JKT())
	}

	// Without a proof the same client gets a Bearer token, unbound.
	w = e.do(request{body: ccBody, header: basic()})
	if body := decode(t, w); w.Code != 200 || body["token_type"] != "Bearer" || jwtClaims(t, body["access_token"].(string)).Confirmation != nil {
		t.Errorf("without a proof: %d %s", w.Code, w.Body)
	}

	// The JWT-bearer grant binds too.
	a := sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil)
	w = e.do(request{body: form(a), header: http.Header{"Dpop": {proof(t, p, "POST", endpoint, t0)}}})
	if body := decode(t, w); w.Code != 200 || body["token_type"] != "DPoP" || jwtClaims(t, body["access_token"].(string)).Confirmation.JKT != p.JKT() {
		t.Errorf("jwt-bearer with a proof: %d %s", w.Code, w.Body)
	}

	other := dpoptest.NewProver(t)
	for _, tc := range []struct {
		name   string
		values []string
		want   string // in the description
	}{
		{"replayed", []string{first}, "used before"},
		{"two proofs", []string{proof(t, p, "POST", endpoint, t0), proof(t, p, "POST", endpoint, t0)}, "more than one"},
		{"empty", []string{""}, "not a compact JWS"},
		{"for another URL", []string{proof(t, p, "POST", "https://keyward.test/introspect", t0)}, "htu"},
		{"for another host", []string{proof(t, p, "POST", "https://evil.test/token", t0)}, "htu"},
		{"for another method", []string{proof(t, other, "GET", endpoint, t0)}, "htm"},
		{"stale", []string{proof(t, p, "POST", endpoint, t0.Add(-5*time.Minute))}, "too old"},
		{"from the future", []string{proof(t, p, "POST", endpoint, t0.Add(5*time.Minute))}, "future"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(request{body: ccBody, header: basic(tc.values...)})
			body := decode(t, w)
			if w.Code != 400 || body["error"] != "invalid_dpop_proof" {
				t.Fatalf("%d %s, want 400 invalid_dpop_proof", w.Code, w.Body)
			}
			if d, _ := body["error_description"].(string); !strings.Contains(d, tc.want) {
				t.Errorf("error_description %q, want %q in it", d, tc.want)
			}
			e.lastEvent(t, "token.refused", "invalid_dpop_proof")
		})
	}
	// A proof is checked only once the client is: a bad secret is still
	// invalid_client.
	w = e.do(request{body: ccBody, header: http.Header{"Authorization": {basicAuth(e.job.ID, "kw_wrong")}, "Dpop": {"junk"}}})
	if body := decode(t, w); w.Code != 401 || body["error"] != "invalid_client" {
		t.Errorf("bad secret with a bad proof: %d %s", w.Code, w.Body)
	}
}

// A proof replayed to another process of the same deployment is refused by
// the store, which every process shares.
func TestDPoPReplayAcrossProcesses(t *testing.T) {
	e := newEnv(t)
	now := func() time.Time { return e.now }
	journal := groupcommit.New(e.store, groupcommit.Options{})
	t.Cleanup(journal.Close)
	auth := clientauth.New(clientauth.Config{Issuer: issuer, Pepper: []byte("p"), Now: now, ClockSkew: time.Minute, MaxAssertionLifetime: time.Hour}, e.store)
	second := token.NewHandler(token.Config{Issuer: issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, MaxTokenLifetime: time.Hour},
		e.store, journal, e.signer, auth, now, slog.New(slog.NewTextHandler(io.Discard, nil)))

	p := dpoptest.NewProver(t)
	raw := proof(t, p, "POST", endpoint, t0)
	req := request{body: "grant_type=client_credentials", header: http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}, "Dpop": {raw}}}
	if w := e.do(req); w.Code != 200 {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("POST", "/token", strings.NewReader(req.body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", req.header.Get("Authorization"))
	r.Header.Set("DPoP", raw)
	w := httptest.NewRecorder()
	second.ServeHTTP(w, r)
	if body := decode(t, w); w.Code != 400 || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("replay to another process: %d %s, want invalid_dpop_proof", w.Code, w.Body)
	}
	// Once the proof could no longer be accepted, its jti is forgotten.
	e.now = t0.Add(10 * time.Minute)
	if n, err := e.store.DeleteExpired(context.Background(), e.now); err != nil || n == 0 {
		t.Errorf("DeleteExpired = %d, %v; want the proof's jti gone", n, err)
	}
}

// A proof's htu is compared with the token endpoint in normal form
// (RFC 9449 §4.3, RFC 3986 §6.2.2), whichever way the issuer URL and the
// proof spell it; an issuer URL that has no normal form matches no proof.
func TestDPoPIssuerURLForms(t *testing.T) {
	e := newEnv(t)
	now := func() time.Time { return e.now }
	journal := groupcommit.New(e.store, groupcommit.Options{})
	t.Cleanup(journal.Close)
	auth := clientauth.New(clientauth.Config{Issuer: issuer, Pepper: []byte("p"), Now: now, ClockSkew: time.Minute, MaxAssertionLifetime: time.Hour}, e.store)
	p := dpoptest.NewProver(t)
	for _, tc := range []struct {
		name, issuer, htu string
		ok                bool
	}{
		{"issuer in normal form, htu not", issuer, "HTTPS://Keyward.Test:443/token", true},
		{"htu in normal form, issuer not", "HTTPS://Keyward.TEST:443", endpoint, true},
		{"neither in normal form", "https://KEYWARD.test:443", "https://keyward.TEST/token", true},
		{"another path", "https://keyward.test/tenant", endpoint, false},
		{"issuer not an http URL", "ftp://keyward.test", endpoint, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := token.NewHandler(token.Config{Issuer: tc.issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, MaxTokenLifetime: time.Hour},
				e.store, journal, e.signer, auth, now, slog.New(slog.NewTextHandler(io.Discard, nil)))
			r := httptest.NewRequest("POST", "/token", strings.NewReader("grant_type=client_credentials&scope=orders.read"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Authorization", basicAuth(e.job.ID, jobSecret))
			r.Header.Set("DPoP", proof(t, p, "POST", tc.htu, t0))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body := decode(t, w)
			if tc.ok {
				if w.Code != 200 || body["token_type"] != "DPoP" {
					t.Fatalf("%d %s, want a DPoP token", w.Code, w.Body)
				}
				return
			}
			if d, _ := body["error_description"].(string); w.Code != 400 || body["error"] != "invalid_dpop_proof" || !strings.Contains(d, "htu") {
				t.Fatalf("%d %s, want invalid_dpop_proof saying htu", w.Code, w.Body)
			}
		})
	}
}

func TestDPoPOpaqueToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}
	if _, err := e.store.UpdateAccount(ctx, e.job.ID, func(a storage.Account) (storage.Account, error) {
		a.TokenFormat = storage.TokenOpaque
		return a, nil
	}, ev); err != nil {
		t.Fatal(err)
	}
	p := dpoptest.NewProver(t)
	w := e.do(request{body: "grant_type=client_credentials", header: http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}, "Dpop": {proof(t, p, "POST", endpoint, t0)}}})
	body := decode(t, w)
	if w.Code != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	rec, err := e.store.GetToken(ctx, tokenstate.HashOpaque(body["access_token"].(string)))
	if err != nil || rec.JKT != p.JKT() {
		t.Fatalf("stored token %+v, %v; want jkt %s", rec, err, p.JKT())
	}
}

// A certificate-bound request that also sends a proof is refused: a token
// is bound to one key.
func TestDPoPWithMutualTLS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}
	conn := clientCert(t)
	if _, err := e.store.UpdateAccount(ctx, e.job.ID, func(a storage.Account) (storage.Account, error) {
		a.AuthMethods = append(a.AuthMethods, storage.AuthSelfSignedTLS)
		return a, nil
	}, ev); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateKey(ctx, storage.Key{ID: "cert", AccountID: e.job.ID, Algorithm: "ES256",
		PublicKey: mustSPKI(t, conn.PeerCertificates[0].PublicKey), Certificate: conn.PeerCertificates[0].Raw,
		Origin: storage.KeyOriginUploaded, CreatedAt: t0}, nil, ev); err != nil {
		t.Fatal(err)
	}
	body := "grant_type=client_credentials&client_id=" + e.job.ID
	if w := e.do(request{body: body, tls: conn}); w.Code != 200 {
		t.Fatalf("mTLS alone: %d %s", w.Code, w.Body)
	}
	w := e.do(request{body: body, tls: conn, header: http.Header{"Dpop": {proof(t, dpoptest.NewProver(t), "POST", endpoint, t0)}}})
	if b := decode(t, w); w.Code != 400 || b["error"] != "invalid_request" || !strings.Contains(b["error_description"].(string), "DPoP") {
		t.Fatalf("mTLS and DPoP: %d %s, want invalid_request", w.Code, w.Body)
	}
}

func mustSPKI(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// With nonces required (RFC 9449 §8), a proof without the server's nonce
// is answered use_dpop_nonce with one in DPoP-Nonce; a proof with it gets
// a token, and the answer carries the nonce for the next proof. A nonce of
// another key, or two periods old, is refused the same way.
func TestDPoPNonce(t *testing.T) {
	e := newEnv(t)
	now := func() time.Time { return e.now }
	journal := groupcommit.New(e.store, groupcommit.Options{})
	t.Cleanup(journal.Close)
	auth := clientauth.New(clientauth.Config{Issuer: issuer, Pepper: []byte("p"), Now: now, ClockSkew: time.Minute, MaxAssertionLifetime: time.Hour}, e.store)
	nonces := dpop.NewNonces([]byte("nonce key"))
	e.h = token.NewHandler(token.Config{Issuer: issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, MaxTokenLifetime: time.Hour, DPoPNonces: nonces},
		e.store, journal, e.signer, auth, now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p := dpoptest.NewProver(t)
	withNonce := func(nonce string) string {
		raw, err := p.ProofWithNonce("POST", endpoint, "", nonce, e.now)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	send := func(proofs ...string) *httptest.ResponseRecorder {
		h := http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}
		if len(proofs) > 0 {
			h["Dpop"] = proofs
		}
		return e.do(request{body: "grant_type=client_credentials&scope=orders.read", header: h})
	}
	wantNonceError := func(t *testing.T, w *httptest.ResponseRecorder, desc string) string {
		t.Helper()
		body := decode(t, w)
		if w.Code != 400 || body["error"] != "use_dpop_nonce" {
			t.Fatalf("%d %s, want 400 use_dpop_nonce", w.Code, w.Body)
		}
		if d, _ := body["error_description"].(string); !strings.Contains(d, desc) {
			t.Errorf("error_description %q, want %q in it", d, desc)
		}
		n := w.Header().Get("DPoP-Nonce")
		if !nonces.Valid(n, e.now) {
			t.Fatalf("DPoP-Nonce %q is not a current nonce", n)
		}
		e.lastEvent(t, "token.refused", "use_dpop_nonce")
		return n
	}

	n := wantNonceError(t, send(withNonce("")), "requires DPoP proofs to carry the nonce")
	w := send(withNonce(n))
	if body := decode(t, w); w.Code != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("with the nonce: %d %s", w.Code, w.Body)
	}
	if next := w.Header().Get("DPoP-Nonce"); !nonces.Valid(next, e.now) {
		t.Errorf("the token response's DPoP-Nonce %q is not a current nonce", next)
	}
	// Without a proof nothing changes: a Bearer token, no nonce.
	w = send()
	if body := decode(t, w); w.Code != 200 || body["token_type"] != "Bearer" || w.Header().Get("DPoP-Nonce") != "" {
		t.Errorf("without a proof: %d %s, DPoP-Nonce %q", w.Code, w.Body, w.Header().Get("DPoP-Nonce"))
	}
	wantNonceError(t, send(withNonce(dpop.NewNonces([]byte("another key")).Current(e.now))), "not one this server provided recently")
	e.now = e.now.Add(2 * dpop.NoncePeriod)
	wantNonceError(t, send(withNonce(n)), "not one this server provided recently")
}
