package token_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/oauth2"
)

// TestAssertionJTIOutlivesAReplicaClockBehind: a used assertion jti is
// kept until no replica accepts the assertion again. Replicas' clocks
// differ by a little (NTP keeps them well within a second, which DPoP's
// replay retention allows for too): one whose clock is behind still
// accepts an assertion up to exp + skew by its own clock, after a replica
// whose clock is right has deleted the jti as expired. A replay sent to
// it then must still be refused.
func TestAssertionJTIOutlivesAReplicaClockBehind(t *testing.T) {
	const skew = time.Minute // newEnv's
	iat, exp := t0.Add(-10*time.Second), t0.Add(50*time.Second)
	tests := []struct {
		name       string
		body       func(e *env) string
		wantStatus int
	}{
		{"JWT-bearer assertion", func(e *env) string {
			return form(sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) {
				c["iat"], c["exp"], c["jti"] = iat.Unix(), exp.Unix(), "grant-1"
			}), nil))
		}, 400},
		{"private_key_jwt client assertion", func(e *env) string {
			a := sign(t, e.rsKey, jose.RS256, "rs", map[string]any{
				"iss": e.job.ID, "sub": e.job.ID, "aud": issuer, "jti": "client-1", "iat": iat.Unix(), "exp": exp.Unix(),
			}, nil)
			return url.Values{"grant_type": {oauth2.GrantClientCredentials}, "scope": {"orders.read"},
				"client_assertion_type": {oauth2.ClientAssertionJWT}, "client_assertion": {a}}.Encode()
		}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			body := tt.body(e)
			if w := e.do(request{body: body, remote: "192.0.2.1"}); w.Code != 200 {
				t.Fatalf("first use: %d %s", w.Code, w.Body)
			}
			// A replica whose clock is right deletes what expired, half a
			// second after the last instant it would accept the assertion…
			if _, err := e.store.DeleteExpired(context.Background(), exp.Add(skew+500*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			// …when this one, whose clock is a second behind, still accepts it.
			e.now = exp.Add(skew - 500*time.Millisecond)
			if w := e.do(request{body: body, remote: "192.0.2.2"}); w.Code != tt.wantStatus {
				t.Fatalf("replay to a replica whose clock is a second behind: %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
		})
	}
}
