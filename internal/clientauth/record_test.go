package clientauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
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
