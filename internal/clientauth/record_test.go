package clientauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
)

// recordJournal keeps the events written to it, and fails each write with
// err.
type recordJournal struct {
	events []storage.AuditEvent
	err    error
}

func (j *recordJournal) Write(_ context.Context, w storage.Write) error {
	j.events = append(j.events, w.Events...)
	return j.err
}

// Record writes the event when asked, and logs one line a request: the
// unrecorded line (and the 503 of Unrecorded as the answer) when the write
// fails, else the refusal, at info for the client's mistakes and at error
// for the server's; nothing for an answered request.
func TestRecord(t *testing.T) {
	refusal := oauth2.Errorf(oauth2.ErrInvalidRequest, "The token parameter is required.")
	serverFault := oauth2.StoreUnavailable(errors.New("store down"))
	storeDown := errors.New("journal down")
	unrecorded := oauth2.Unrecorded()
	for _, tc := range []struct {
		name       string
		write      bool
		err        error
		werr       error
		wantWrites int
		wantErr    *oauth2.Error // the answer; nil for none
		wantMsg    string        // the one line logged; "" for none
		wantLevel  string
		wantKeys   []string
	}{
		{"answered", true, nil, nil, 1, nil, "", "", nil},
		{"answered, not written", false, nil, nil, 0, nil, "", "", nil},
		{"refused", true, refusal, nil, 1, refusal, "refused", "INFO", []string{"error", "description", "cause", "account", "client_id", "source"}},
		{"refused, not written", false, refusal, nil, 0, refusal, "refused", "INFO", []string{"error", "cause"}},
		{"server at fault", true, serverFault, nil, 1, serverFault, "refused", "ERROR", []string{"error", "cause"}},
		{"answer unrecorded", true, nil, storeDown, 1, unrecorded, "unrecorded", "ERROR", []string{"err", "account", "source"}},
		{"refusal unrecorded", true, refusal, storeDown, 1, unrecorded, "unrecorded", "ERROR", []string{"err", "refusal", "client_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			j := &recordJournal{err: tc.werr}
			ev := storage.AuditEvent{Action: "token.revoke", Source: "192.0.2.1", Data: map[string]string{"client_id": "svc"}}
			err := Record(context.Background(), log, j, &ev, tc.write, tc.err, "unrecorded", "refused")
			if len(j.events) != tc.wantWrites || tc.wantWrites > 0 && j.events[0].Action != ev.Action {
				t.Errorf("events written = %+v, want %d of ev", j.events, tc.wantWrites)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("Record = %v, want nil", err)
			case tc.wantErr != nil && (err == nil || oauth2.AsError(err).Description != tc.wantErr.Description):
				t.Errorf("Record = %v, want %v", err, tc.wantErr)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if tc.wantMsg == "" {
				if logs.Len() != 0 {
					t.Errorf("logged %q, want nothing", logs.String())
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1: %q", len(lines), logs.String())
			}
			var line map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
				t.Fatal(err)
			}
			if line["msg"] != tc.wantMsg || line["level"] != tc.wantLevel {
				t.Errorf("logged %q at %v, want %q at %s", line["msg"], line["level"], tc.wantMsg, tc.wantLevel)
			}
			for _, k := range tc.wantKeys {
				if _, ok := line[k]; !ok {
					t.Errorf("logged %q without %q", lines[0], k)
				}
			}
		})
	}
}

// Refused marks the event a failure with the refusal's code and
// description; of the throttle's 429s of one key, the first is recorded
// with its note and the next, within throttle.RecordEvery, is skipped.
func TestRefused(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	rec := throttle.NewRecorder(10, func() time.Time { return now })
	throttled := oauth2.Errorf(oauth2.ErrInvalidClient, "Too many failed attempts.").
		WithStatus(http.StatusTooManyRequests).WithCause(&throttle.Refused{Key: "192.0.2.1", Note: throttle.NoteAddress})
	for _, tc := range []struct {
		name     string
		err      error
		wantSkip bool
		wantNote string
	}{
		{"refusal", errors.New("not an oauth2.Error"), false, ""},
		{"throttled, first", throttled, false, throttle.NoteAddress},
		{"throttled, again", throttled, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := storage.AuditEvent{Outcome: storage.OutcomeSuccess, Data: map[string]string{}}
			oe, skip := Refused(&ev, tc.err, rec)
			want := oauth2.AsError(tc.err)
			if oe == nil || oe.Code != want.Code || oe.Description != want.Description {
				t.Errorf("Refused = %v, want %v", oe, want)
			}
			if skip != tc.wantSkip || ev.Data["throttled"] != tc.wantNote {
				t.Errorf("skip %v, throttled %q; want %v, %q", skip, ev.Data["throttled"], tc.wantSkip, tc.wantNote)
			}
			if ev.Outcome != storage.OutcomeFailure || ev.Data["error"] != want.Code || ev.Data["description"] != want.Description {
				t.Errorf("event %+v, want a failure with %s: %s", ev, want.Code, want.Description)
			}
		})
	}
}

// countingObserver counts Throttled by endpoint.
type countingObserver struct {
	oauth2.NopObserver
	throttled map[string]int
}

func (o *countingObserver) Throttled(endpoint string) { o.throttled[endpoint]++ }

// CountThrottled counts only the 429s of the client-authentication
// throttle, under the endpoint it is given.
func TestCountThrottled(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"throttled address", tooMany(time.Second, &throttle.Refused{Key: "192.0.2.1", Note: throttle.NoteAddress}), 1},
		{"throttled client", tooMany(time.Second, &throttle.Refused{Key: "192.0.2.1 c", Note: throttle.NoteClient}), 1},
		{"invalid_client", oauth2.Errorf(oauth2.ErrInvalidClient, "Client authentication failed."), 0},
		{"store down", oauth2.StoreUnavailable(errors.New("store down")), 0},
		{"plain error", errors.New("boom"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &countingObserver{throttled: map[string]int{}}
			CountThrottled(obs, "revoke", tc.err)
			if got := obs.throttled["revoke"]; got != tc.want || len(obs.throttled) > tc.want {
				t.Errorf("Throttled counts = %v, want %d for revoke only", obs.throttled, tc.want)
			}
		})
	}
}

// logKeys is the keys of the JSON log line l, in their order.
func logKeys(t *testing.T, l string) []string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(l))
	if _, err := d.Token(); err != nil {
		t.Fatalf("log line %q: %v", l, err)
	}
	var keys []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
	}
	return keys
}

// LogRefusal's line has the same keys in the same order for every
// endpoint: the token endpoint's grant, given as an extra pair, goes
// between the cause and the client; the client_id only while no account
// authenticated.
func TestLogRefusalKeys(t *testing.T) {
	refusal := oauth2.Errorf(oauth2.ErrInvalidClient, "Client authentication failed.")
	failed := &storage.AuditEvent{Source: "192.0.2.1", Data: map[string]string{"client_id": "svc"}}
	authenticated := &storage.AuditEvent{Actor: "100000000000000000001", Source: "192.0.2.1", Data: map[string]string{}}
	for _, tc := range []struct {
		name  string
		ev    *storage.AuditEvent
		extra []any
		want  string
	}{
		{"introspection, client failed", failed, nil, "time level msg error description cause account client_id source"},
		{"introspection, authenticated", authenticated, nil, "time level msg error description cause account source"},
		{"token, client failed", failed, []any{"grant", "client_credentials"}, "time level msg error description cause grant account client_id source"},
		{"token, authenticated", authenticated, []any{"grant", "jwt-bearer"}, "time level msg error description cause grant account source"},
		{"token, no grant_type", failed, []any{"grant", ""}, "time level msg error description cause grant account client_id source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			LogRefusal(context.Background(), slog.New(slog.NewJSONHandler(&logs, nil)), "refused", refusal, tc.ev, tc.extra...)
			if got := strings.Join(logKeys(t, logs.String()), " "); got != tc.want {
				t.Errorf("keys %q, want %q (line %s)", got, tc.want, logs.String())
			}
		})
	}
}

// TestBudgetedNilData: Budgeted gives an event without data (nil Data) a
// map of its own for the "unrecorded" note; it took the data map, and
// wrote the note into a nil one, panicking.
func TestBudgetedNilData(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := throttle.NewBudget(10, func() time.Time { return now })
	oe := oauth2.Errorf(oauth2.ErrInvalidRequest, "The request has no body.")
	refused := func() *storage.AuditEvent {
		return &storage.AuditEvent{Action: "token.refused", Outcome: storage.OutcomeFailure, Source: "192.0.2.1"}
	}
	for range throttle.AuditBurst {
		if Budgeted(b, oe, refused(), false) {
			t.Fatal("a refusal within the burst was not to be recorded")
		}
	}
	if !Budgeted(b, oe, refused(), false) {
		t.Fatal("a refusal over the burst was to be recorded")
	}
	now = now.Add(time.Second)
	ev := refused()
	if Budgeted(b, oe, ev, false) {
		t.Fatal("a refusal a second later was not to be recorded")
	}
	if got := ev.Data["unrecorded"]; got != "1" {
		t.Errorf("data %v, want unrecorded 1", ev.Data)
	}
}
