// Package clientauthtest holds what the tests of the endpoints that
// authenticate their clients with clientauth (token, introspection,
// revocation) share: a directory of one account, the throttle's recording
// rules, and a form POST and a check of the one line it logs.
package clientauthtest

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
)

// ClientID is the one account of Directory, api@proj.iam.test, whose
// secret is kw_right.
const ClientID = "100000000000000000001"

// Pepper is the pepper Directory's secret is hashed with.
var Pepper = []byte("p")

// Directory holds one account, ClientID, with one secret, and records
// the events written. It is the directory clientauth reads and the store
// and journal of an endpoint; it holds no APIs, and revokes nothing.
type Directory struct {
	mu     sync.Mutex
	events []storage.AuditEvent
}

// GetAccount returns the account ClientID.
func (d *Directory) GetAccount(_ context.Context, id string) (storage.Account, error) {
	if id != ClientID {
		return storage.Account{}, storage.ErrNotFound
	}
	return storage.Account{ID: id, Email: "api@proj.iam.test", AuthMethods: storage.DefaultAuthMethods}, nil
}

// GetAccountByEmail finds no account.
func (d *Directory) GetAccountByEmail(context.Context, string) (storage.Account, error) {
	return storage.Account{}, storage.ErrNotFound
}

// ListKeys lists no key.
func (d *Directory) ListKeys(context.Context, string) ([]storage.Key, error) { return nil, nil }

// ListSecrets lists the secret kw_right.
func (d *Directory) ListSecrets(_ context.Context, id string) ([]storage.Secret, error) {
	return []storage.Secret{{ID: "sec", AccountID: id, Hash: clientauth.HashSecret(Pepper, "kw_right")}}, nil
}

// ListAPIs lists no API.
func (d *Directory) ListAPIs(context.Context) ([]storage.API, error) { return nil, nil }

// Revoke panics: the requests sent here are all refused.
func (d *Directory) Revoke(context.Context, storage.Revocation, storage.AuditEvent) error {
	panic("a refused request revoked a token")
}

// Write records w's events. It refuses single-use assertion IDs as used
// before (storage.ErrReplay): the only client that sends one here is
// Replaying's.
func (d *Directory) Write(_ context.Context, w storage.Write) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(w.JTIs) > 0 {
		return storage.ErrReplay
	}
	d.events = append(d.events, w.Events...)
	return nil
}

// ThrottledRefusalsRecordedOnceAMinute checks an endpoint that
// authenticates its clients with its token in the form: see
// CheckThrottledRefusals. newHandler builds the endpoint, served at path,
// on auth, d and clock; action is its audit events'.
func ThrottledRefusalsRecordedOnceAMinute(t *testing.T, path, action string, newHandler func(auth *clientauth.Authenticator, d *Directory, clock func() time.Time) http.Handler) {
	d := &Directory{}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	auth := clientauth.New(clientauth.Config{Issuer: "https://kw", MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, Pepper: Pepper, Now: clock}, d)
	CheckThrottledRefusals(t, Endpoint{
		Handler: newHandler(auth, d, clock), Path: path, Action: action,
		Garbage:       "token=kwat_x&client_assertion_type=" + oauth2.ClientAssertionJWT + "&client_assertion=not-a-jwt",
		GarbageStatus: http.StatusUnauthorized,
		Form:          "token=kwat_x",
		ClientID:      ClientID,
		Events: func(*testing.T) []storage.AuditEvent {
			d.mu.Lock()
			defer d.mu.Unlock()
			return slices.Clone(d.events)
		},
		Advance: func(by time.Duration) { now = now.Add(by) },
	})
}

// Endpoint is what CheckThrottledRefusals floods.
type Endpoint struct {
	// Handler serves the endpoint at Path; it records its refusals as
	// failed Action events.
	Handler      http.Handler
	Path, Action string
	// Garbage is a form body refused per address, with GarbageStatus.
	Garbage       string
	GarbageStatus int
	// Form is a form body the endpoint authenticates its client for: sent
	// with a wrong secret in HTTP Basic, it is refused 401 per client at
	// an address. ClientID is an account's.
	Form, ClientID string
	// Events returns every event recorded so far, oldest first.
	Events func(t *testing.T) []storage.AuditEvent
	// Advance moves the endpoint's clock on.
	Advance func(time.Duration)
}

// CheckThrottledRefusals checks an endpoint that authenticates its
// clients: a source the client-authentication throttle refuses is
// answered 429 at the rate it sends, and that is recorded once a minute
// per throttle key (an address, or a client at an address), the event
// saying so: a flood of failed requests writes its budget's refusals and
// one 429, not one event per request. Every other refusal is recorded as
// before, as a failed action. The steps run in order on one handler and
// clock.
func CheckThrottledRefusals(t *testing.T, e Endpoint) {
	type request struct {
		body   string
		header http.Header
		status int // of a refusal not throttled
	}
	// garbage fails per address, wrongSecret per client at an address.
	garbage := request{body: e.Garbage, status: e.GarbageStatus}
	wrongSecret := func(id string) request {
		return request{body: e.Form, header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(id+":kw_wrong"))}},
			status: http.StatusUnauthorized}
	}
	const addrBurst, clientBurst = 50, 10 // clientauth's allowances
	steps := []struct {
		name    string
		advance time.Duration
		req     request
		remote  string
		n       int
		// refused are the requests answered with their own error and
		// recorded; the rest are answered 429, throttled of them
		// recorded, with note.
		refused, throttled int
		note               string
	}{
		{name: "flood from an address", req: garbage, remote: "198.51.100.1", n: 200,
			refused: addrBurst, throttled: 1, note: throttle.NoteAddress},
		{name: "another address is independent", req: garbage, remote: "198.51.100.2", n: 80,
			refused: addrBurst, throttled: 1, note: throttle.NoteAddress},
		{name: "a second on: the refilled budget, no 429 recorded", advance: time.Second, req: garbage, remote: "198.51.100.1", n: 20,
			refused: 5, throttled: 0},
		{name: "a minute on: one more 429 recorded", advance: time.Minute - time.Second, req: garbage, remote: "198.51.100.1", n: 80,
			refused: addrBurst, throttled: 1, note: throttle.NoteAddress},
		{name: "flood of one client at an address", req: wrongSecret(e.ClientID), remote: "198.51.100.3", n: 40,
			refused: clientBurst, throttled: 1, note: throttle.NoteClient},
		// An ID no account has: refused as a wrong secret is, and
		// throttled on a budget of its own.
		{name: "another client at that address is independent", req: wrongSecret("100000000000000000002"), remote: "198.51.100.3", n: 40,
			refused: clientBurst, throttled: 1, note: throttle.NoteClient},
	}
	seen := 0
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e.Advance(s.advance)
			tooMany := 0
			for range s.n {
				r := httptest.NewRequest("POST", e.Path, strings.NewReader(s.req.body))
				r.RemoteAddr = s.remote + ":4711"
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range s.req.header {
					r.Header[k] = v
				}
				w := httptest.NewRecorder()
				e.Handler.ServeHTTP(w, r)
				switch {
				case w.Code == http.StatusTooManyRequests:
					tooMany++
					if w.Header().Get("Retry-After") == "" {
						t.Fatal("429 without Retry-After")
					}
				case w.Code != s.req.status:
					t.Fatalf("answered %d %s, want %d or 429", w.Code, w.Body, s.req.status)
				case tooMany > 0:
					t.Fatalf("answered %d %s after a 429", w.Code, w.Body)
				}
			}
			if want := s.n - s.refused; tooMany != want {
				t.Errorf("%d × 429, want %d", tooMany, want)
			}
			evs := e.Events(t)
			evs, seen = evs[seen:], len(evs)
			var refused, throttled, unnoted int
			for _, ev := range evs {
				switch {
				case ev.Action != e.Action || ev.Outcome != storage.OutcomeFailure:
					t.Fatalf("event %s %s, want a failed %s", ev.Action, ev.Outcome, e.Action)
				case ev.Source != s.remote:
					t.Fatalf("event from %q, want %q", ev.Source, s.remote)
				case ev.Data["error"] != oauth2.ErrTemporarilyUnavailable:
					refused++
				case ev.Data["throttled"] != s.note:
					unnoted++
				default:
					throttled++
				}
			}
			if refused != s.refused || throttled != s.throttled || unnoted != 0 {
				t.Errorf("recorded %d refusals, %d 429s saying %q and %d 429s saying otherwise; want %d, %d and 0",
					refused, throttled, s.note, unnoted, s.refused, s.throttled)
			}
		})
	}
}
