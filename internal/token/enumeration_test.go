package token_test

import (
	"fmt"
	"testing"

	"github.com/go-jose/go-jose/v4"
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
