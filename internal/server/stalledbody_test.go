package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeyward"
)

// TestStalledBodyRefusalRecorded: a client that sends part of a body and
// stalls is refused invalid_request, and the refusal recorded, within the
// request's bound, and the connection closed. The read ended only at the
// server's ReadTimeout (keyward serve's 30 s, past the 25 s bound): the
// refusal's audit event was then written with the request's deadline
// passed, failed at once, and an ERROR logged for a store that was fine.
// The bound here is shorter than server.RequestTimeout (a request's
// deadline is the earlier of its own and the bound), and the ReadTimeout
// past it.
func TestStalledBodyRefusalRecorded(t *testing.T) {
	const bound = oauth2.RecordMargin + time.Second
	for _, tt := range []struct{ path, refused string }{
		{"/token", `level=INFO msg="token request refused"`},
		{"/introspect", `level=INFO msg="introspection refused"`},
		{"/revoke", `level=INFO msg="revocation refused"`},
	} {
		t.Run(tt.path, func(t *testing.T) {
			logs := &testkeyward.SyncBuffer{}
			f := newFixture(t, func(_ *server.Config, d *server.Deps) { d.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, cancel := context.WithTimeout(r.Context(), bound)
				defer cancel()
				f.handler.ServeHTTP(w, r.WithContext(ctx))
			}))
			srv.Config.ReadTimeout = bound + time.Second
			srv.Start()
			defer srv.Close()
			before := failures(t, f)
			header := "Content-Type: application/x-www-form-urlencoded\r\nAuthorization: Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret)) + "\r\n"
			resp, body, took := testkeyward.StalledBody(t, srv.Listener.Addr().String(), "POST", tt.path, header, "grant_type=client_credentials&scope=orders.read&token=abcdefgh", bound+3*time.Second)
			if resp.StatusCode != 400 || !strings.Contains(body, "The request body could not be read.") {
				t.Errorf("%d %s, want 400 invalid_request: the body could not be read", resp.StatusCode, body)
			}
			if took > bound {
				t.Errorf("answered and closed after %v, past the bound %v", took, bound)
			}
			if strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("an error logged:\n%s", logs)
			}
			if !strings.Contains(logs.String(), tt.refused) {
				t.Errorf("no line %s logged:\n%s", tt.refused, logs)
			}
			if n := failures(t, f); n != before+1 {
				t.Errorf("%d refusals recorded, want 1", n-before)
			}
		})
	}
}

// failures counts the failure events in f's audit log.
func failures(t *testing.T, f *fixture) int {
	t.Helper()
	evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Outcome: storage.OutcomeFailure, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestReadBoundEndsWithTheBody: the read deadline set for the body is
// not left to end the request once the body is read. A token request
// whose store does not answer, its whole body sent, is answered 503 at
// the request's bound, not as canceled when the read
// deadline passes (net/http's read of the connection after the body, to
// see the client hang up, would end the request's context at it).
func TestReadBoundEndsWithTheBody(t *testing.T) {
	const bound = oauth2.RecordMargin + time.Second
	st := &hangingStore{Storage: openSQLite(t)}
	f := newFixtureOn(t, st)
	st.hang.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), bound)
		defer cancel()
		f.handler.ServeHTTP(w, r.WithContext(ctx))
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader("grant_type=client_credentials&scope=orders.read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(f.clientID, f.secret)
	start := time.Now()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	took := time.Since(start)
	if resp.StatusCode != 503 || body["error"] != "temporarily_unavailable" || body["error_description"] == "The request was canceled." {
		t.Errorf("%d %v after %v, want 503 temporarily_unavailable, not canceled", resp.StatusCode, body, took)
	}
	if took < bound-time.Second {
		t.Errorf("answered after %v, before the bound %v", took, bound)
	}
}
