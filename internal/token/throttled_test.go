package token_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/clientauth/clientauthtest"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
)

// A throttled source is answered 429 at the rate it sends, and that is
// recorded once a minute per throttle key (an address, or a client at an
// address), the event saying so: a flood of failures writes its budget's
// refusals and one 429, not one event per request. Every other refusal
// is recorded as before (clientauthtest.CheckThrottledRefusals).
func TestThrottledRefusalsRecordedOnceAMinute(t *testing.T) {
	e := newEnv(t)
	clientauthtest.CheckThrottledRefusals(t, clientauthtest.Endpoint{
		Handler: e.h, Path: "/token", Action: "token.refused",
		Garbage: form("not-a-jwt"), GarbageStatus: http.StatusBadRequest, // fails per address
		Form: "grant_type=client_credentials", ClientID: e.job.ID,
		Events: func(t *testing.T) []storage.AuditEvent {
			evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Limit: 10_000})
			if err != nil {
				t.Fatal(err)
			}
			return evs
		},
		Advance: func(by time.Duration) { e.now = e.now.Add(by) },
	})
}

// A flood of refusals the throttle does not count (no credentials, a
// malformed request, an unknown grant type) writes each address's audit
// budget of events, the next one saying how many were left out, not one
// event per request; a wrong secret is recorded each time
// (clientauthtest.CheckRefusalBudget).
func TestUncountedRefusalsBudgeted(t *testing.T) {
	e := newEnv(t)
	cc := "grant_type=" + oauth2.GrantClientCredentials
	clientauthtest.CheckRefusalBudget(t, clientauthtest.Endpoint{
		Handler: e.h, Path: "/token", Action: "token.refused",
		Form: cc, ClientID: e.job.ID,
		Events: func(t *testing.T) []storage.AuditEvent {
			evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Limit: 10_000})
			if err != nil {
				t.Fatal(err)
			}
			return evs
		},
		Advance: func(by time.Duration) { e.now = e.now.Add(by) },
	}, []clientauthtest.Refusal{
		{Name: "empty body", Body: "", Status: http.StatusBadRequest},
		{Name: "unknown grant type", Body: "grant_type=nope", Status: http.StatusBadRequest},
		{Name: "duplicate parameter", Body: cc + "&" + cc, Status: http.StatusBadRequest},
		{Name: "wrong client_assertion_type", Body: cc + "&client_assertion_type=nope&client_assertion=x", Status: http.StatusBadRequest},
		{Name: "no credentials", Body: cc, Status: http.StatusUnauthorized},
		{Name: "client_id without credentials", Body: cc + "&client_id=" + e.job.ID, Status: http.StatusUnauthorized},
		{Name: "jwt-bearer without assertion", Body: "grant_type=" + url.QueryEscape(oauth2.GrantJWTBearer), Status: http.StatusBadRequest},
	})
	// Right credentials of a disabled account: the holder's, refused
	// disabled_client and not counted, yet recorded each time.
	t.Run("disabled client", func(t *testing.T) {
		ctx := context.Background()
		if _, err := e.store.UpdateAccount(ctx, e.job.ID, func(a storage.Account) (storage.Account, error) {
			a.Disabled = true
			return a, nil
		}, storage.AuditEvent{Time: e.now, Action: "account.disable", Outcome: storage.OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
		const n = 30
		for range n {
			w := e.do(request{body: cc, header: http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}, remote: "192.0.2.9"})
			if w.Code != http.StatusBadRequest {
				t.Fatalf("answered %d %s, want 400", w.Code, w.Body)
			}
		}
		evs, err := e.store.ListAuditEvents(ctx, storage.AuditFilter{Action: "token.refused", Limit: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, ev := range evs {
			if ev.Source == "192.0.2.9" && ev.Data["error"] == oauth2.ErrDisabledClient && ev.Data["unrecorded"] == "" {
				got++
			}
		}
		if got != n {
			t.Errorf("%d refusals of a disabled client recorded %d events, want each", n, got)
		}
	})
}

// A replayed assertion (its jti used before) is recorded however many
// refusals its address has had that the throttle does not count: its
// signature verified, so it is a captured assertion sent again, not
// junk, and a flood of empty bodies from the same address first must not
// leave it out of the audit log, whether it is a JWT-bearer assertion or
// a private_key_jwt client assertion.
func TestReplayRecordedOverBudget(t *testing.T) {
	e := newEnv(t)
	bearer := form(sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) { c["jti"] = "bearer-once" }), nil))
	clientAssertion := url.Values{
		"grant_type": {"client_credentials"}, "scope": {"orders.read"}, "client_id": {e.job.ID},
		"client_assertion_type": {oauth2.ClientAssertionJWT},
		"client_assertion": {sign(t, e.rsKey, jose.RS256, "rs", map[string]any{
			"iss": e.job.ID, "sub": e.job.ID, "aud": endpoint, "jti": "client-once",
			"iat": t0.Add(-10 * time.Second).Unix(), "exp": t0.Add(time.Minute).Unix()}, nil)},
	}.Encode()
	for i, tc := range []struct{ name, body string }{
		{"JWT-bearer assertion", bearer},
		{"client assertion", clientAssertion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := fmt.Sprintf("192.0.2.%d", 60+i)
			req := request{body: tc.body, remote: remote}
			if w := e.do(req); w.Code != http.StatusOK {
				t.Fatalf("first use: status %d: %s", w.Code, w.Body)
			}
			for range 2 * throttle.AuditBurst {
				if w := e.do(request{body: "", remote: remote}); w.Code != http.StatusBadRequest {
					t.Fatalf("empty body: status %d: %s", w.Code, w.Body)
				}
			}
			if w := e.do(req); w.Code < 400 {
				t.Fatalf("replay: status %d: %s", w.Code, w.Body)
			}
			evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
			if err != nil || len(evs) != 1 {
				t.Fatalf("no refusal audited: %v", err)
			}
			// The empty bodies name no account: the replay's names its.
			if ev := evs[0]; ev.Source != remote || ev.AccountID != e.job.ID {
				t.Errorf("newest refusal from %s, account %q (%v); want the replay's from %s", ev.Source, ev.AccountID, ev.Data, remote)
			}
		})
	}
}

// Right credentials sent with a client_id that names another client are
// refused 400 invalid_request, a refusal the throttle does not count; it
// is recorded however many refusals of junk its address has had: the
// credentials authenticated, so it is their holder's request, not junk.
func TestDisagreeingClientIDRecordedOverBudget(t *testing.T) {
	e := newEnv(t)
	const remote = "192.0.2.70"
	for range 2 * throttle.AuditBurst {
		if w := e.do(request{body: "", remote: remote}); w.Code != http.StatusBadRequest {
			t.Fatalf("empty body: status %d: %s", w.Code, w.Body)
		}
	}
	w := e.do(request{body: "grant_type=client_credentials&client_id=100000000000000000002",
		header: http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}, remote: remote})
	if w.Code != http.StatusBadRequest {
		t.Fatalf("client_id of another: status %d: %s", w.Code, w.Body)
	}
	evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("no refusal audited: %v", err)
	}
	if ev := evs[0]; ev.Source != remote || ev.Data["auth_method"] != storage.AuthSecretBasic {
		t.Errorf("newest refusal from %s (%v); want the disagreeing client_id's from %s", ev.Source, ev.Data, remote)
	}
}
