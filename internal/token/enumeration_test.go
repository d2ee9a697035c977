package token_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/assertion"
)

// TestJWTBearerUnknownAccountAnswersAsBadSignature: an attacker who
// signs assertions with a key of its own must not learn which iss values
// name accounts. An unknown account gets exactly the answer a known one
// gets for a signature none of its keys verifies, as client
// authentication answers an unknown client as a wrong secret; the log and
// the audit event still say why.
func TestJWTBearerUnknownAccountAnswersAsBadSignature(t *testing.T) {
	e := newEnv(t)
	iss := func(v string) func(map[string]any) { return func(c map[string]any) { c["iss"] = v } }
	known := e.do(request{body: form(sign(t, e.other, jose.RS256, "", claims(iss("job@proj.iam.test")), nil)), remote: "192.0.2.200"})
	if known.Code != 400 {
		t.Fatalf("known account, foreign key: %d %s", known.Code, known.Body)
	}
	for i, name := range []string{"ghost@proj.iam.test", "100000000000000000099"} {
		t.Run(name, func(t *testing.T) {
			w := e.do(request{body: form(sign(t, e.other, jose.RS256, "", claims(iss(name)), nil)), remote: fmt.Sprintf("192.0.2.%d", 201+i)})
			if w.Code != known.Code || w.Body.String() != known.Body.String() {
				t.Fatalf("unknown account: %d %s; a known account with a foreign key: %d %s: the difference tells which accounts exist",
					w.Code, w.Body, known.Code, known.Body)
			}
			e.lastEvent(t, "token.refused", "invalid_grant")
		})
	}
}

// TestJWTBearerRefusalChecksSignature: the same answer must not come
// sooner for an iss that names no account, or a guesser could tell which
// emails and IDs are accounts by timing it. Every refusal as a bad
// signature checks one: an unknown account's with a decoy key, an account
// with no key of the assertion's alg likewise. (Counted, not timed.)
func TestJWTBearerRefusalChecksSignature(t *testing.T) {
	e := newEnv(t)
	iss := func(v string) func(map[string]any) { return func(c map[string]any) { c["iss"] = v } }
	tests := []struct {
		name string
		key  any
		alg  jose.SignatureAlgorithm
		iss  string
	}{
		{"known account, a key not its own", e.rsKey, jose.RS256, "other@proj.iam.test"},
		{"unknown email, RS256", e.other, jose.RS256, "ghost@proj.iam.test"},
		{"unknown ID, ES256", e.esKey, jose.ES256, "100000000000000000099"},
		{"known account without an ES256 key", e.esKey, jose.ES256, "other@proj.iam.test"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := sign(t, tt.key, tt.alg, "", claims(iss(tt.iss)), nil)
			before := assertion.SignatureChecks()
			w := e.do(request{body: form(a), remote: fmt.Sprintf("192.0.2.%d", 230+i)})
			checks := assertion.SignatureChecks() - before
			if w.Code != 400 || !strings.Contains(w.Body.String(), `"Invalid JWT Signature."`) {
				t.Fatalf("%d %s, want 400 Invalid JWT Signature.", w.Code, w.Body)
			}
			if checks != 1 {
				t.Fatalf("%d signature checks, want 1: a refusal that checks none answers sooner", checks)
			}
		})
	}
}

// TestJWTBearerAuthenticatedClientCannotProbeAccounts: a client that
// authenticates (here with job's secret, a low-privilege credential) and
// sends an assertion whose iss names another account is refused the same
// way whether that account exists or not: the answer must not be an
// oracle for which emails and IDs are accounts.
func TestJWTBearerAuthenticatedClientCannotProbeAccounts(t *testing.T) {
	e := newEnv(t)
	auth := http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}
	var first *httptest.ResponseRecorder
	for i, name := range []string{"other@proj.iam.test", "100000000000000000002", "ghost@proj.iam.test", "100000000000000000099"} {
		a := sign(t, e.esKey, jose.ES256, "es", claims(func(c map[string]any) { c["iss"] = name }), nil)
		w := e.do(request{body: form(a), header: auth, remote: fmt.Sprintf("192.0.2.%d", 210+i)})
		if w.Code != 400 {
			t.Fatalf("iss %s: %d %s, want 400", name, w.Code, w.Body)
		}
		if first == nil {
			first = w
			continue
		}
		if w.Body.String() != first.Body.String() {
			t.Fatalf("iss %s: %s; iss other@proj.iam.test: %s: the difference tells which accounts exist", name, w.Body, first.Body)
		}
	}
	// The client's own account, by email or ID, still works.
	for _, name := range []string{e.job.Email, e.job.ID} {
		a := sign(t, e.esKey, jose.ES256, "es", claims(func(c map[string]any) { c["iss"] = name }), nil)
		if w := e.do(request{body: form(a), header: auth, remote: "192.0.2.220"}); w.Code != 200 {
			t.Fatalf("iss %s, the client's own account: %d %s", name, w.Code, w.Body)
		}
	}
}
