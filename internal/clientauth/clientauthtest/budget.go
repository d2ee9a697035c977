package clientauthtest

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
)

// Refusal is a request an endpoint refuses before any client
// authenticates, without counting it in the client-authentication
// throttle: an empty body, a duplicate parameter, no credentials.
type Refusal struct {
	Name   string
	Body   string
	Status int // its answer's
}

// RefusalsBudgeted checks an endpoint that authenticates its clients
// with its token in the form, built as ThrottledRefusalsRecordedOnceAMinute
// builds it: it records only as many of the refusals of refused as each
// address's audit budget lets through (CheckRefusalBudget).
func RefusalsBudgeted(t *testing.T, path, action string, refused []Refusal, newHandler func(auth *clientauth.Authenticator, d *Directory, clock func() time.Time) http.Handler) {
	d := &Directory{}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	auth := clientauth.New(clientauth.Config{Issuer: "https://kw", MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, Pepper: Pepper, Now: clock}, d)
	CheckRefusalBudget(t, Endpoint{
		Handler: newHandler(auth, d, clock), Path: path, Action: action,
		Form: "token=kwat_x", ClientID: ClientID,
		Events: func(*testing.T) []storage.AuditEvent {
			d.mu.Lock()
			defer d.mu.Unlock()
			return append([]storage.AuditEvent(nil), d.events...)
		},
		Advance: func(by time.Duration) { now = now.Add(by) },
	}, refused)
}

// CheckRefusalBudget checks that each of refused, sent n times from one
// address, is answered as always, and recorded at most the audit budget's
// burst times (throttle.AuditBurst); a second later one more is recorded
// and says how many were not ("unrecorded"). Another address is not held
// back by it, nor are the refusals the client-authentication throttle
// counts (a wrong secret, from the flooded address): each is recorded.
// Many addresses, each within its budget, are recorded at most the
// budget of all addresses' burst times (throttle.AuditAllBurst), and the
// next event recorded, from any address, says how many were not
// ("unrecorded_all").
func CheckRefusalBudget(t *testing.T, e Endpoint, refused []Refusal) {
	const burst, n = 20, 60 // throttle.AuditBurst; a flood
	seen := len(e.Events(t))
	send := func(t *testing.T, body, remote string, header http.Header, status int) {
		t.Helper()
		r := httptest.NewRequest("POST", e.Path, strings.NewReader(body))
		r.RemoteAddr = remote + ":4711"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		e.Handler.ServeHTTP(w, r)
		if w.Code != status {
			t.Fatalf("answered %d %s, want %d", w.Code, w.Body, status)
		}
	}
	// recorded returns the events written since it was last called,
	// checking each is a refusal from remote.
	recorded := func(t *testing.T, remote string) []storage.AuditEvent {
		t.Helper()
		evs := e.Events(t)
		evs, seen = evs[seen:], len(evs)
		for _, ev := range evs {
			if ev.Action != e.Action || ev.Outcome != storage.OutcomeFailure || ev.Source != remote {
				t.Fatalf("event %s %s from %s, want a failed %s from %s", ev.Action, ev.Outcome, ev.Source, e.Action, remote)
			}
		}
		return evs
	}
	for i, rf := range refused {
		t.Run(rf.Name, func(t *testing.T) {
			flooded, other := fmt.Sprintf("203.0.113.%d", i+1), fmt.Sprintf("203.0.113.%d", 100+i)
			for range n {
				send(t, rf.Body, flooded, nil, rf.Status)
			}
			evs := recorded(t, flooded)
			if len(evs) != burst {
				t.Errorf("a flood of %d recorded %d events, want %d", n, len(evs), burst)
			}
			for _, ev := range evs {
				if u, ok := ev.Data["unrecorded"]; ok {
					t.Errorf("an event within the budget says unrecorded %q", u)
				}
			}
			e.Advance(time.Second)
			send(t, rf.Body, flooded, nil, rf.Status)
			evs = recorded(t, flooded)
			if len(evs) != 1 || evs[0].Data["unrecorded"] != fmt.Sprint(n-burst) {
				t.Errorf("a second on, recorded %v, want one event saying unrecorded %d", evs, n-burst)
			}
			send(t, rf.Body, other, nil, rf.Status)
			evs = recorded(t, other)
			switch {
			case len(evs) != 1 || evs[0].Data["unrecorded"] != "":
				t.Errorf("another address: recorded %v, want one event", evs)
			case evs[0].Data["error"] == "" || evs[0].Data["error"] == oauth2.ErrTemporarilyUnavailable:
				t.Errorf("recorded error %q, want the refusal's", evs[0].Data["error"])
			}
		})
	}
	// Many addresses, each within its own budget, are held to that of
	// all addresses together (throttle.AuditAllBurst): as an IPv6 /48's
	// 65,536 /64s would be, or many IPv4 addresses.
	for _, tt := range []struct {
		name        string
		addrs, each int // addresses, refusals of each
	}{
		{name: "many addresses, a few each", addrs: 25, each: 10},
		{name: "many more addresses, one each", addrs: 250, each: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if len(refused) == 0 {
				t.Skip("no refusals")
			}
			rf := refused[0]
			e.Advance(time.Minute) // the budget of all addresses full again
			n := tt.addrs * tt.each
			if tt.each > throttle.AuditBurst || n <= throttle.AuditAllBurst {
				t.Fatalf("%d addresses sending %d each is not a flood of addresses within their budgets", tt.addrs, tt.each)
			}
			for a := range tt.addrs {
				for range tt.each {
					send(t, rf.Body, fmt.Sprintf("198.51.%d.%d", 100+a/200, a%200+1), nil, rf.Status)
				}
			}
			evs := e.Events(t)
			evs, seen = evs[seen:], len(evs)
			if len(evs) != throttle.AuditAllBurst {
				t.Errorf("%d addresses sending %d each recorded %d events, want %d", tt.addrs, tt.each, len(evs), throttle.AuditAllBurst)
			}
			for _, ev := range evs {
				if u, ok := ev.Data["unrecorded_all"]; ok {
					t.Errorf("an event within the budget of all addresses says unrecorded_all %q", u)
				}
			}
			e.Advance(time.Second)
			const next = "192.0.2.99"
			send(t, rf.Body, next, nil, rf.Status)
			evs = recorded(t, next)
			if len(evs) != 1 || evs[0].Data["unrecorded_all"] != fmt.Sprint(n-throttle.AuditAllBurst) || evs[0].Data["unrecorded"] != "" {
				t.Errorf("a second on, recorded %v, want one event saying unrecorded_all %d and no unrecorded", evs, n-throttle.AuditAllBurst)
			}
		})
	}
	t.Run("counted refusals are all recorded", func(t *testing.T) {
		const clientBurst = 10 // clientauth's, per client at an address
		flooded := "203.0.113.1"
		wrong := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(e.ClientID+":kw_wrong"))}}
		for range clientBurst {
			send(t, e.Form, flooded, wrong, http.StatusUnauthorized)
		}
		evs := recorded(t, flooded)
		if len(evs) != clientBurst {
			t.Errorf("%d wrong secrets recorded %d events, want each", clientBurst, len(evs))
		}
		for _, ev := range evs {
			if u, ok := ev.Data["unrecorded"]; ok {
				t.Errorf("a counted refusal's event says unrecorded %q", u)
			}
		}
	})
}

// UncountedRefusals are the refusals of /introspect and /revoke that the
// client-authentication throttle does not count.
var UncountedRefusals = []Refusal{
	{Name: "empty body", Body: "", Status: http.StatusUnauthorized},
	{Name: "duplicate parameter", Body: "token=a&token=b", Status: http.StatusBadRequest},
	{Name: "wrong client_assertion_type", Body: "token=x&client_assertion_type=nope&client_assertion=x", Status: http.StatusBadRequest},
	{Name: "no credentials", Body: "token=x", Status: http.StatusUnauthorized},
	{Name: "client_id without credentials", Body: "token=x&client_id=" + ClientID, Status: http.StatusUnauthorized},
	{Name: "two methods", Body: "token=x&client_secret=s&client_assertion=x", Status: http.StatusBadRequest},
}

// Replaying authenticates as its Authenticator does, but for a request
// whose client_assertion is "replayed": that authenticates ClientID with
// private_key_jwt, with a single-use ID that Directory's Write refuses
// as used before, as a captured client assertion sent again is.
type Replaying struct{ *clientauth.Authenticator }

// Require implements clientauth.Requirer.
func (a Replaying) Require(ctx context.Context, r *http.Request, form oauth2.Form, source string, att *clientauth.Attempt) (*clientauth.Client, error) {
	if form.Get("client_assertion") != "replayed" {
		return a.Authenticator.Require(ctx, r, form, source, att)
	}
	att.Method = storage.AuthPrivateKeyJWT
	return &clientauth.Client{
		Account: storage.Account{ID: ClientID, Email: "api@proj.iam.test", AuthMethods: storage.DefaultAuthMethods},
		Method:  storage.AuthPrivateKeyJWT,
		JTIs:    []storage.UsedJTI{{Issuer: ClientID, JTI: "once", ExpiresAt: time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)}},
	}, nil
}

// ReplayRecordedOverBudget checks an endpoint that authenticates its
// clients with its token in the form, built on Replaying: a replayed
// client assertion from an address whose audit budget a flood of empty
// bodies spent is recorded all the same, naming its account as
// client_id. Its signature verified, so it is a captured assertion sent
// again, not junk (clientauth.Budgeted).
func ReplayRecordedOverBudget(t *testing.T, path, action string, newHandler func(auth clientauth.Requirer, d *Directory, clock func() time.Time) http.Handler) {
	d := &Directory{}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	auth := clientauth.New(clientauth.Config{Issuer: "https://kw", MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, Pepper: Pepper, Now: clock}, d)
	h := newHandler(Replaying{auth}, d, clock)
	const remote = "203.0.113.7"
	send := func(body string, status int) {
		t.Helper()
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.RemoteAddr = remote + ":4711"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != status {
			t.Fatalf("%q answered %d %s, want %d", body, w.Code, w.Body, status)
		}
	}
	for range 2 * throttle.AuditBurst {
		send("", http.StatusUnauthorized)
	}
	send("token=kwat_x&client_assertion_type="+oauth2.ClientAssertionJWT+"&client_assertion=replayed", http.StatusUnauthorized)
	d.mu.Lock()
	last := d.events[len(d.events)-1]
	d.mu.Unlock()
	if last.Action != action || last.Source != remote || last.Data["client_id"] != ClientID {
		t.Errorf("last event %s from %s (%v), want the replay's %s from %s naming client_id %s", last.Action, last.Source, last.Data, action, remote, ClientID)
	}
}
