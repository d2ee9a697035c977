package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
)

// FuzzTokenHeaders posts to /token, from a trusted proxy, with arbitrary
// DPoP, forwarded client-certificate, X-Forwarded-For and Authorization
// headers beside the form — the request headers FuzzOAuthEndpoints leaves
// out — and requires every answer below 500, every refusal an RFC 6749
// §5.2 error (a 401 with its challenge), and every token of the type the
// request asked for: DPoP exactly when it sent a DPoP header (RFC 9449
// §5). In an input, $BASIC stands for the fixture client's valid Basic
// credentials, $PROOF for a fresh valid DPoP proof and $CERT for the
// forwarded (URL-escaped PEM) certificate the client is bound to.
func FuzzTokenHeaders(f *testing.F) {
	const cc = "grant_type=client_credentials&scope=orders.read"
	for _, seed := range []struct{ dpop, cert, xff, authz, body string }{
		{"$PROOF", "", "", "$BASIC", cc},
		{"$PROOF", "", "203.0.113.7", "$BASIC", cc},
		{"$PROOF, $PROOF", "", "", "$BASIC", cc},
		{"eyJhbGciOiJub25lIn0.e30.", "", "", "$BASIC", cc},
		{"", "$CERT", "203.0.113.7", "", cc + "&client_id=$CLIENT"},
		{"$PROOF", "$CERT", "", "", cc + "&client_id=$CLIENT"},
		{"", "$CERT", "", "$BASIC", cc},
		{"", "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A", "", "", cc + "&client_id=$CLIENT"},
		{"", "MIIB", "203.0.113.7, 10.0.0.9", "", cc + "&client_id=$CLIENT"},
		{"", "", "::1, [::1]:80, unknown", "Basic Og==", cc},
		{"", "", "", "Bearer x", cc},
	} {
		f.Add(seed.dpop, seed.cert, seed.xff, seed.authz, seed.body)
	}
	der := selfSigned(f, "bench")
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		f.Fatal(err)
	}
	fx := newFixture(f, func(c *server.Config, _ *server.Deps) {
		c.ClientCAs = x509.NewCertPool()
		c.ClientCAs.AddCert(ca)
		c.ClientCertHeader = "X-Client-Cert"
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	// The account may also authenticate with a certificate of its name
	// (tls_client_auth) from a CA the server trusts: the certificate itself.
	methods := append(append([]string(nil), storage.DefaultAuthMethods...), storage.AuthTLS)
	if _, err := fx.admin.UpdateAccount(context.Background(), admin.Actor{ID: "fuzz"}, fx.email, admin.AccountUpdate{
		AuthMethods: &methods, TLS: &storage.TLSBinding{SubjectDN: "CN=bench"},
	}); err != nil {
		f.Fatal(err)
	}
	cert := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(fx.clientID)+":"+url.QueryEscape(fx.secret)))
	prover := dpoptest.NewProver(f)
	f.Fuzz(func(t *testing.T, dpopHeader, certHeader, xff, authz, body string) {
		if strings.Contains(dpopHeader, "$PROOF") {
			// One substitution: signing a proof takes a while.
			p, err := prover.Proof(http.MethodPost, issuer+"/token", "", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			dpopHeader = strings.Replace(dpopHeader, "$PROOF", p, 1)
		}
		header := map[string]string{
			"Dpop":            dpopHeader,
			"X-Client-Cert":   strings.Replace(certHeader, "$CERT", cert, 1),
			"X-Forwarded-For": xff,
			"Authorization":   strings.Replace(authz, "$BASIC", basic, 1),
		}
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(strings.Replace(body, "$CLIENT", url.QueryEscape(fx.clientID), 1)))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "10.0.0.2:443"
		for k, v := range header {
			if !headerValue(v) {
				return // not a header net/http would deliver
			}
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		fx.handler.ServeHTTP(w, r)
		t.Logf("%v → %d %.160s", header, w.Code, w.Body)
		switch {
		case w.Code >= 500:
			t.Fatalf("%v: %d %s", header, w.Code, w.Body)
		case w.Code == http.StatusOK:
			// RFC 6749 §5.1, RFC 9449 §5: a token, DPoP-bound exactly
			// when the request sent a proof.
			var ok struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int64  `json:"expires_in"`
			}
			want := "Bearer"
			if dpopHeader != "" {
				want = "DPoP"
			}
			if err := json.Unmarshal(w.Body.Bytes(), &ok); err != nil || ok.AccessToken == "" || ok.TokenType != want || ok.ExpiresIn <= 0 ||
				w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("%v: 200 %v %s, want a %s token", header, w.Header(), w.Body, want)
			}
		default:
			var e struct {
				Error       *string `json:"error"`
				Description string  `json:"error_description"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == nil || !validErrorCode(*e.Error) || e.Description == "" ||
				w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" ||
				w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("%v: %d %v %s, not an RFC 6749 §5.2 error", header, w.Code, w.Header(), w.Body)
			}
		}
	})
}

// headerValue reports whether net/http would deliver v as a header
// value: no control characters but tab, and no leading or trailing
// whitespace, which it trims.
func headerValue(v string) bool {
	return v == strings.Trim(v, " \t") && !strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f })
}

// selfSigned returns the DER of a new self-signed client certificate of
// an EC P-256 key with subject CN=cn, which may serve as its own CA.
func selfSigned(tb testing.TB, cn string) []byte {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}
