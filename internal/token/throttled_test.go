package token_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
)

// A throttled source is answered 429 at the rate it sends, and that is
// recorded once a minute per throttle key (an address, or a client at an
// address), the event saying so: a flood of failures writes its budget's
// refusals and one 429, not one event per request. Every other refusal
// is recorded as before. The steps run in order on one endpoint and clock.
func TestThrottledRefusalsRecordedOnceAMinute(t *testing.T) {
	e := newEnv(t)
	garbage := request{body: form("not-a-jwt")} // fails per address
	wrongSecret := func(id string) request {    // fails per client at an address
		return request{body: "grant_type=client_credentials", header: http.Header{"Authorization": {basicAuth(id, "kw_wrong")}}}
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
		{name: "flood of one client at an address", req: wrongSecret(e.job.ID), remote: "198.51.100.3", n: 40,
			refused: clientBurst, throttled: 1, note: throttle.NoteClient},
		{name: "another client at that address is independent", req: wrongSecret("100000000000000000002"), remote: "198.51.100.3", n: 40,
			refused: clientBurst, throttled: 1, note: throttle.NoteClient},
	}
	seen := 0
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e.now = e.now.Add(s.advance)
			s.req.remote = s.remote
			tooMany := 0
			for range s.n {
				w := e.do(s.req)
				switch {
				case w.Code == http.StatusTooManyRequests:
					tooMany++
					if w.Header().Get("Retry-After") == "" {
						t.Fatal("429 without Retry-After")
					}
				case tooMany > 0:
					t.Fatalf("answered %d %s after a 429", w.Code, w.Body)
				}
			}
			if want := s.n - s.refused; tooMany != want {
				t.Errorf("%d × 429, want %d", tooMany, want)
			}
			evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Limit: 10_000})
			if err != nil {
				t.Fatal(err)
			}
			evs, seen = evs[seen:], len(evs)
			var refused, throttled, unnoted int
			for _, ev := range evs {
				switch {
				case ev.Source != s.remote:
					t.Fatalf("event from %q, want %q", ev.Source, s.remote)
				case ev.Data["error"] != "temporarily_unavailable":
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
