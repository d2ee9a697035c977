package server_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// FuzzOAuthEndpoints posts arbitrary forms and Authorization, DPoP and
// forwarded client-certificate headers to /token, /introspect and
// /revoke, from a trusted proxy, on SQLite and, when
// KEYWARD_TEST_POSTGRES_DSN is set, on PostgreSQL, and requires every
// answer below 500: a bad request is the client's error, and a value
// PostgreSQL refuses must be refused before it reaches the store. In an
// input, $BASIC stands for the fixture client's valid Basic credentials,
// $ASSERTION for a fresh valid JWT-bearer assertion, $TOKEN for an access
// token it was issued, $DTOKEN for a DPoP-bound one, $CLIENT for its
// client ID, $PROOF for a fresh valid DPoP proof for the endpoint and
// $CERT for the forwarded (URL-escaped PEM) certificate the client is
// bound to (tls_client_auth), so the fuzzer starts from requests that
// work. FuzzTokenHeaders fuzzes /token's headers alone.
func FuzzOAuthEndpoints(f *testing.F) {
	for _, seed := range []struct {
		endpoint                  uint8
		body, authzHd, dpop, cert string
	}{
		{0, "grant_type=client_credentials&scope=orders.read", "$BASIC", "", ""},
		{0, "grant_type=client_credentials&scope=orders.read&resource=https%3A%2F%2Forders.internal", "$BASIC", "", ""},
		{0, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=$ASSERTION", "", "", ""},
		{0, "grant_type=client_credentials&client_id=1&client_secret=kw_x&scope=orders.read", "", "", ""},
		{0, "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=$ASSERTION", "", "", ""},
		{0, "grant_type=client_credentials&scope=orders.read", "$BASIC", "$PROOF", ""},
		{1, "token=$TOKEN", "$BASIC", "", ""},
		{1, "token=$TOKEN&token_type_hint=access_token", "$BASIC", "", ""},
		{1, "token=kw_at_nope", "Basic Og==", "", ""},
		{1, "token=$DTOKEN", "$BASIC", "", ""},
		{1, "token=$DTOKEN", "$BASIC", "$PROOF", ""},
		{1, "token=$TOKEN&client_id=$CLIENT", "", "", "$CERT"},
		{1, "token=$DTOKEN&client_id=$CLIENT", "", "$PROOF", "$CERT"},
		{1, "token=$TOKEN&client_id=$CLIENT", "", "eyJhbGciOiJub25lIn0.e30.", "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A"},
		{1, "token=$TOKEN", "$BASIC", "$PROOF, $PROOF", "$CERT"},
		{2, "token=$TOKEN", "$BASIC", "", ""},
		{2, "token=%00%ff", "$BASIC", "", ""},
		{2, "token=$DTOKEN", "$BASIC", "$PROOF", ""},
		{2, "token=$TOKEN&client_id=$CLIENT", "", "", "$CERT"},
		{2, "token=$DTOKEN&client_id=$CLIENT", "", "$PROOF", "MIIB"},
		{0, "grant_type=client_credentials&scope=" + strings.Repeat("a", 5000), "$BASIC", "", ""},
	} {
		f.Add(seed.endpoint, seed.body, seed.authzHd, seed.dpop, seed.cert)
	}
	der := selfSigned(f, "bench")
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		f.Fatal(err)
	}
	// Client certificates of ca, forwarded by the proxy at 10.0.0.2.
	withCerts := func(c *server.Config, _ *server.Deps) {
		c.ClientCAs = x509.NewCertPool()
		c.ClientCAs.AddCert(ca)
		c.ClientCertHeader = "X-Client-Cert"
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}
	fixtures := []*fixture{newFixture(f, withCerts)}
	if os.Getenv(pgtest.DSNEnv) != "" {
		st, err := postgres.Open(context.Background(), pgtest.SchemaDSN(f), postgres.Options{})
		if err != nil {
			f.Fatal(err)
		}
		fixtures = append(fixtures, newFixtureOn(f, st, withCerts))
	} else {
		f.Logf("%s is not set: fuzzing the OAuth endpoints on SQLite only", pgtest.DSNEnv)
	}
	cert := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	prover := dpoptest.NewProver(f)
	proof := func(tb testing.TB, endpoint string) string {
		p, err := prover.Proof(http.MethodPost, issuer+endpoint, "", time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
	// post posts body to endpoint of fx from the proxy, with the headers
	// that are not empty.
	post := func(fx *fixture, endpoint, body string, header map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "10.0.0.2:443"
		for k, v := range header {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		fx.handler.ServeHTTP(w, r)
		return w
	}
	type prepared struct{ basic, token, dpopToken string }
	var ready []prepared
	for _, fx := range fixtures {
		// The client may introspect the orders API's tokens, so /introspect
		// gets past its permission check, and may authenticate with a
		// certificate of its name from ca (tls_client_auth).
		actor := admin.Actor{ID: "fuzz"}
		if _, err := fx.admin.UpdateAPI(context.Background(), actor, "orders", admin.APIUpdate{Introspectors: &[]string{fx.email}}); err != nil {
			f.Fatal(err)
		}
		methods := append(append([]string(nil), storage.DefaultAuthMethods...), storage.AuthTLS)
		if _, err := fx.admin.UpdateAccount(context.Background(), actor, fx.email, admin.AccountUpdate{
			AuthMethods: &methods, TLS: &storage.TLSBinding{SubjectDN: "CN=bench"},
		}); err != nil {
			f.Fatal(err)
		}
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(fx.clientID)+":"+url.QueryEscape(fx.secret)))
		p := prepared{basic: basic}
		for _, dpopHeader := range []string{"", proof(f, "/token")} {
			w := post(fx, "/token", "grant_type=client_credentials&scope=orders.read", map[string]string{"Authorization": basic, "Dpop": dpopHeader})
			var tok struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" || (dpopHeader != "") != (tok.TokenType == "DPoP") {
				f.Fatalf("fixture token (DPoP %t): %d %s", dpopHeader != "", w.Code, w.Body)
			}
			if dpopHeader == "" {
				p.token = tok.AccessToken
			} else {
				p.dpopToken = tok.AccessToken
			}
		}
		ready = append(ready, p)
	}
	endpoints := []string{"/token", "/introspect", "/revoke"}
	f.Fuzz(func(t *testing.T, endpoint uint8, body, authz, dpopHeader, certHeader string) {
		path := endpoints[int(endpoint)%len(endpoints)]
		for i, fx := range fixtures {
			// One substitution each: signing an assertion or a proof takes
			// a millisecond.
			b := strings.Replace(body, "$DTOKEN", url.QueryEscape(ready[i].dpopToken), 1)
			b = strings.Replace(b, "$TOKEN", url.QueryEscape(ready[i].token), 1)
			b = strings.Replace(b, "$CLIENT", url.QueryEscape(fx.clientID), 1)
			if strings.Contains(b, "$ASSERTION") {
				b = strings.Replace(b, "$ASSERTION", fx.assertion(t, ""), 1)
			}
			d := dpopHeader
			if strings.Contains(d, "$PROOF") {
				d = strings.Replace(d, "$PROOF", proof(t, path), 1)
			}
			header := map[string]string{
				"Authorization": strings.Replace(authz, "$BASIC", ready[i].basic, 1),
				"Dpop":          d,
				"X-Client-Cert": strings.Replace(certHeader, "$CERT", cert, 1),
			}
			for _, v := range header {
				if !headerValue(v) {
					return // not a header net/http would deliver
				}
			}
			w := post(fx, path, b, header)
			t.Logf("store %d: %s → %d %.120s", i, path, w.Code, w.Body)
			if w.Code >= 500 {
				t.Fatalf("store %d: POST %s %q (%v): %d %s", i, path, b, header, w.Code, w.Body)
			}
			if w.Code == 200 && endpoint%3 != 2 {
				// RFC 6749 §5.1: a token, with its type and lifetime; RFC
				// 7662 §2.2: whether the token is active.
				var ok struct {
					AccessToken string `json:"access_token"`
					TokenType   string `json:"token_type"`
					ExpiresIn   int64  `json:"expires_in"`
					Active      *bool  `json:"active"`
				}
				err := json.Unmarshal(w.Body.Bytes(), &ok)
				if err != nil || w.Header().Get("Cache-Control") != "no-store" ||
					endpoint%3 == 0 && (ok.AccessToken == "" || ok.TokenType != "Bearer" && ok.TokenType != "DPoP" || ok.ExpiresIn <= 0) ||
					endpoint%3 == 1 && ok.Active == nil {
					t.Fatalf("store %d: POST %s %q (%v): 200 %v %s", i, path, b, header, w.Header(), w.Body)
				}
			}
			if w.Code >= 400 {
				// RFC 6749 §5.2: a JSON error with a code of its
				// characters, and (Keyward's rule) a description.
				var e struct {
					Error       *string `json:"error"`
					Description string  `json:"error_description"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == nil || !validErrorCode(*e.Error) || e.Description == "" ||
					w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" {
					t.Fatalf("store %d: POST %s %q (%v): %d %v %s, not an RFC 6749 §5.2 error", i, path, b, header, w.Code, w.Header(), w.Body)
				}
			}
		}
	})
}

// validErrorCode reports whether code is an RFC 6749 §5.2 error code:
// one or more of %x20-21 / %x23-5B / %x5D-7E.
func validErrorCode(code string) bool {
	return code != "" && !strings.ContainsFunc(code, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' })
}

// FuzzAccountKeys asks the public, unauthenticated key endpoints for an
// arbitrary account email, on SQLite and, when KEYWARD_TEST_POSTGRES_DSN
// is set, on PostgreSQL, and requires every answer below 500: the email is
// the caller's, and a value PostgreSQL refuses must be refused before it
// reaches the store. A 200 is a JSON object, served for the fixture's
// account alone; a refusal is a JSON error.
func FuzzAccountKeys(f *testing.F) {
	f.Add(false, "bench@proj.iam.test")
	f.Add(true, "bench@proj.iam.test")
	f.Add(false, "BENCH@PROJ.IAM.TEST")
	f.Add(true, "nobody@proj.iam.test")
	f.Add(false, "a\x00b@proj.iam.test")
	f.Add(true, "\xff@proj.iam.test")
	f.Add(false, strings.Repeat("a", 5000)+"@proj.iam.test")
	fixtures := []*fixture{newFixture(f)}
	if os.Getenv(pgtest.DSNEnv) != "" {
		st, err := postgres.Open(context.Background(), pgtest.SchemaDSN(f), postgres.Options{})
		if err != nil {
			f.Fatal(err)
		}
		fixtures = append(fixtures, newFixtureOn(f, st))
	}
	f.Fuzz(func(t *testing.T, x509 bool, email string) {
		if email == "" || email == "." || email == ".." {
			return // no path segment: ServeMux answers, with a redirect or the catch-all
		}
		path := "/service_accounts/v1/jwk/"
		if x509 {
			path = "/service_accounts/v1/metadata/x509/"
		}
		path += url.PathEscape(email)
		for i, fx := range fixtures {
			w := httptest.NewRecorder()
			fx.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			t.Logf("store %d: GET %s → %d %.120s", i, path, w.Code, w.Body)
			var doc map[string]any
			switch err := json.Unmarshal(w.Body.Bytes(), &doc); {
			case w.Code >= 500:
				t.Fatalf("store %d: GET %q: %d %s", i, path, w.Code, w.Body)
			case err != nil:
				t.Fatalf("store %d: GET %q: %d %s, not a JSON object", i, path, w.Code, w.Body)
			case w.Code == 200 && !strings.EqualFold(email, fx.email):
				t.Fatalf("store %d: GET %q: keys served for an account that does not exist: %s", i, path, w.Body)
			case w.Code != 200 && doc["error"] == nil:
				t.Fatalf("store %d: GET %q: %d %s, no error code", i, path, w.Code, w.Body)
			}
		}
	})
}
