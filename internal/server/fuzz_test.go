package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// FuzzOAuthEndpoints posts arbitrary forms and Authorization headers to
// /token, /introspect and /revoke, on SQLite and, when
// KEYWARD_TEST_POSTGRES_DSN is set, on PostgreSQL, and requires every
// answer below 500: a bad request is the client's error, and a value
// PostgreSQL refuses must be refused before it reaches the store. In an
// input, $BASIC stands for the fixture client's valid Basic credentials,
// $ASSERTION for a fresh valid JWT-bearer assertion and $TOKEN for an
// access token it was issued, so the fuzzer starts from requests that work.
func FuzzOAuthEndpoints(f *testing.F) {
	for _, seed := range []struct {
		endpoint      uint8
		body, authzHd string
	}{
		{0, "grant_type=client_credentials&scope=orders.read", "$BASIC"},
		{0, "grant_type=client_credentials&scope=orders.read&resource=https%3A%2F%2Forders.internal", "$BASIC"},
		{0, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=$ASSERTION", ""},
		{0, "grant_type=client_credentials&client_id=1&client_secret=kw_x&scope=orders.read", ""},
		{0, "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=$ASSERTION", ""},
		{1, "token=$TOKEN", "$BASIC"},
		{1, "token=$TOKEN&token_type_hint=access_token", "$BASIC"},
		{1, "token=kw_at_nope", "Basic Og=="},
		{2, "token=$TOKEN", "$BASIC"},
		{2, "token=%00%ff", "$BASIC"},
		{0, "grant_type=client_credentials&scope=" + strings.Repeat("a", 5000), "$BASIC"},
	} {
		f.Add(seed.endpoint, seed.body, seed.authzHd)
	}
	fixtures := []*fixture{newFixture(f)}
	if os.Getenv(pgtest.DSNEnv) != "" {
		st, err := postgres.Open(context.Background(), pgtest.SchemaDSN(f), postgres.Options{})
		if err != nil {
			f.Fatal(err)
		}
		fixtures = append(fixtures, newFixtureOn(f, st))
	} else {
		f.Logf("%s is not set: fuzzing the OAuth endpoints on SQLite only", pgtest.DSNEnv)
	}
	type prepared struct{ basic, token string }
	var ready []prepared
	for _, fx := range fixtures {
		// The client may introspect the orders API's tokens, so /introspect
		// gets past its permission check.
		if _, err := fx.admin.UpdateAPI(context.Background(), admin.Actor{ID: "fuzz"}, "orders", admin.APIUpdate{Introspectors: &[]string{fx.email}}); err != nil {
			f.Fatal(err)
		}
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(fx.clientID)+":"+url.QueryEscape(fx.secret)))
		w := fx.do("grant_type=client_credentials&scope=orders.read", basic)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
			f.Fatalf("fixture token: %d %s", w.Code, w.Body)
		}
		ready = append(ready, prepared{basic, tok.AccessToken})
	}
	endpoints := []string{"/token", "/introspect", "/revoke"}
	f.Fuzz(func(t *testing.T, endpoint uint8, body, authz string) {
		for i, fx := range fixtures {
			// One substitution each: signing an assertion takes a millisecond.
			b := strings.Replace(body, "$TOKEN", url.QueryEscape(ready[i].token), 1)
			if strings.Contains(b, "$ASSERTION") {
				b = strings.Replace(b, "$ASSERTION", fx.assertion(t, ""), 1)
			}
			a := strings.Replace(authz, "$BASIC", ready[i].basic, 1)
			if strings.ContainsAny(a, "\r\n") {
				return // not a header net/http would deliver
			}
			w := fx.doPath(endpoints[int(endpoint)%len(endpoints)], b, a)
			t.Logf("store %d: %s → %d %.120s", i, endpoints[int(endpoint)%len(endpoints)], w.Code, w.Body)
			if w.Code >= 500 {
				t.Fatalf("store %d: POST %s %q (Authorization %q): %d %s", i, endpoints[int(endpoint)%len(endpoints)], b, a, w.Code, w.Body)
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
					t.Fatalf("store %d: POST %s %q (Authorization %q): 200 %v %s", i, endpoints[int(endpoint)%len(endpoints)], b, a, w.Header(), w.Body)
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
					t.Fatalf("store %d: POST %s %q (Authorization %q): %d %v %s, not an RFC 6749 §5.2 error", i, endpoints[int(endpoint)%len(endpoints)], b, a, w.Code, w.Header(), w.Body)
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
