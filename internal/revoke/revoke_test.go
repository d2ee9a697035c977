package revoke

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/clientauth/clientauthtest"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/tokenstate"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// fakes stands in for the store, the journal and client authentication.
type fakes struct {
	// authErr, when set, refuses the client, presented as authID.
	authErr    error
	authID     string
	revokeErr  error
	journalErr error
	revoked    []storage.Revocation
	events     []storage.AuditEvent
}

func (f *fakes) Require(_ context.Context, _ *http.Request, _ oauth2.Form, _ string, att *clientauth.Attempt) (*clientauth.Client, error) {
	if f.authErr != nil {
		att.ClientID = f.authID
		return nil, f.authErr
	}
	return &clientauth.Client{Account: storage.Account{ID: "111"}}, nil
}

func (f *fakes) GetAccount(_ context.Context, id string) (storage.Account, error) {
	return storage.Account{ID: id}, nil
}
func (f *fakes) ListKeys(context.Context, string) ([]storage.Key, error)       { return nil, nil }
func (f *fakes) ListSecrets(context.Context, string) ([]storage.Secret, error) { return nil, nil }
func (f *fakes) IsRevoked(context.Context, string) (bool, error)               { return false, nil }
func (f *fakes) GetUser(context.Context, string) (storage.User, error) {
	return storage.User{}, storage.ErrNotFound
}
func (f *fakes) GetGrant(context.Context, string, string) (storage.Grant, error) {
	return storage.Grant{}, storage.ErrNotFound
}
func (f *fakes) GetOrg(context.Context, string) (storage.Org, error) {
	return storage.Org{}, storage.ErrNotFound
}
func (f *fakes) GetProjectOrg(context.Context, string) (storage.ProjectOrg, error) {
	return storage.ProjectOrg{}, storage.ErrNotFound
}
func (f *fakes) AccountEmailAt(context.Context, string, string) (bool, error) { return false, nil }

func (f *fakes) GetToken(_ context.Context, hash []byte) (storage.TokenRecord, error) {
	if string(hash) != string(tokenstate.HashOpaque("kwat_mine")) && string(hash) != string(tokenstate.HashOpaque("kwat_theirs")) {
		return storage.TokenRecord{}, storage.ErrNotFound
	}
	owner := "111"
	if string(hash) == string(tokenstate.HashOpaque("kwat_theirs")) {
		owner = "222"
	}
	return storage.TokenRecord{ID: "jti-" + owner, AccountID: owner, Subject: owner, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, nil
}

func (f *fakes) Revoke(_ context.Context, r storage.Revocation, ev storage.AuditEvent) error {
	if f.revokeErr != nil {
		return f.revokeErr
	}
	f.revoked = append(f.revoked, r)
	f.events = append(f.events, ev)
	return nil
}

func (f *fakes) Write(_ context.Context, w storage.Write) error {
	if f.journalErr != nil {
		return f.journalErr
	}
	f.events = append(f.events, w.Events...)
	return nil
}

type noJWT struct{}

func (noJWT) Verify(string, any) error { return errors.New("not a JWT") }

func TestRevoke(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		revokeErr   error
		wantStatus  int
		wantError   string
		wantRevoked bool
	}{
		{name: "own token", body: "token=kwat_mine", wantStatus: 200, wantRevoked: true},
		{name: "with hint", body: "token=kwat_mine&token_type_hint=access_token", wantStatus: 200, wantRevoked: true},
		{name: "unknown token", body: "token=kwat_nope", wantStatus: 200},
		{name: "someone else's", body: "token=kwat_theirs", wantStatus: 400, wantError: "unauthorized_client"},
		{name: "missing token", body: "", wantStatus: 400, wantError: "invalid_request"},
		// RFC 7009 §2.2.1: a hint the server does not know may be ignored.
		{name: "unknown hint ignored", body: "token=kwat_mine&token_type_hint=id_token", wantStatus: 200, wantRevoked: true},
		{name: "refresh_token hint ignored", body: "token=kwat_mine&token_type_hint=refresh_token", wantStatus: 200, wantRevoked: true},
		{name: "unknown hint, unknown token", body: "token=kwat_nope&token_type_hint=urn%3Ax", wantStatus: 200},
		{name: "store down", body: "token=kwat_mine", revokeErr: errors.New("connection reset"), wantStatus: 503, wantError: "temporarily_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakes{revokeErr: tt.revokeErr}
			h := NewHandler(f, tokenstate.New(f, noJWT{}, "https://kw", func() time.Time { return now }), f, f,
				func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)), oauth2.NopObserver{})
			r := httptest.NewRequest("POST", "/revoke", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			if tt.wantError != "" && !strings.Contains(w.Body.String(), `"error":"`+tt.wantError+`"`) {
				t.Fatalf("body %s, want error %s", w.Body, tt.wantError)
			}
			if w.Code == 503 && w.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if strings.Contains(w.Body.String(), "connection reset") {
				t.Fatal("the internal error reached the client")
			}
			if got := len(f.revoked) == 1; got != tt.wantRevoked {
				t.Fatalf("revoked = %v, want %v", f.revoked, tt.wantRevoked)
			}
			if tt.revokeErr == nil && len(f.events) != 1 {
				t.Fatalf("%d audit events, want 1", len(f.events))
			}
		})
	}
}

func TestJournalDownRefuses(t *testing.T) {
	f := &fakes{journalErr: errors.New("disk full")}
	h := NewHandler(f, tokenstate.New(f, noJWT{}, "https://kw", func() time.Time { return now }), f, f,
		func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)), oauth2.NopObserver{})
	r := httptest.NewRequest("POST", "/revoke", strings.NewReader("token=kwat_nope"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 503 {
		t.Fatalf("status %d, want 503 when the audit event cannot be written", w.Code)
	}
}

// Every refusal is logged, as /token logs its refusals: one that is not
// the client's doing — the store failed — at error, with its cause, which
// neither the answer nor the event carries; the client's own mistakes at
// info, naming its account. The answers that refuse nothing are not.
func TestRefusalLogged(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		revokeErr error
		wantLog   string
	}{
		{name: "store down", body: "token=kwat_mine", revokeErr: errors.New("connection reset"),
			wantLog: `level=ERROR msg="revocation refused" error=temporarily_unavailable description="The server cannot record the revocation right now; the token is still valid. Try again." cause="connection reset" account=111 source=192.0.2.1` + "\n"},
		{name: "revoked", body: "token=kwat_mine"},
		{name: "unknown token", body: "token=kwat_nope"},
		{name: "someone else's", body: "token=kwat_theirs",
			wantLog: `level=INFO msg="revocation refused" error=unauthorized_client description="The token was not issued to this client; a client may revoke only its own tokens." cause="" account=111 source=192.0.2.1` + "\n"},
		{name: "missing token", body: "",
			wantLog: `level=INFO msg="revocation refused" error=invalid_request description="The token parameter is required." cause="" account=111 source=192.0.2.1` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			f := &fakes{revokeErr: tt.revokeErr}
			h := NewHandler(f, tokenstate.New(f, noJWT{}, "https://kw", func() time.Time { return now }), f, f,
				func() time.Time { return now }, slog.New(slog.NewTextHandler(&log, nil)), oauth2.NopObserver{})
			r := httptest.NewRequest("POST", "/revoke", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			h.ServeHTTP(httptest.NewRecorder(), r)
			if tt.wantLog == "" && log.Len() != 0 {
				t.Errorf("logged %q, want nothing", log.String())
			}
			if tt.wantLog != "" && (strings.Count(log.String(), "\n") != 1 || !strings.HasSuffix(log.String(), tt.wantLog)) {
				t.Errorf("logged %q, want one line ending %q", log.String(), tt.wantLog)
			}
		})
	}
}

// A store that is down fails both the revocation and the write of its
// audit event: the request logs one error, which carries the refusal and
// its cause as well as the write's error, and the client as /token's line
// does, not one line for each.
func TestUnrecordedRefusalLoggedOnce(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		revokeErr error
		authErr   error
		want      []string
	}{
		{name: "store down", body: "token=kwat_mine", revokeErr: errors.New("connection reset"),
			want: []string{`level=ERROR msg="revocation request not answered: its audit event could not be written" err="disk full"`, `refusal="temporarily_unavailable: `, `(connection reset)"`,
				`account=111 source=192.0.2.1`}},
		{name: "someone else's", body: "token=kwat_theirs",
			want: []string{`level=ERROR msg="revocation request not answered: its audit event could not be written" err="disk full"`, `refusal="unauthorized_client: `,
				`account=111 source=192.0.2.1`}},
		{name: "client refused", body: "token=kwat_mine", authErr: clientauth.ErrFailed(errors.New("wrong secret")),
			want: []string{`level=ERROR msg="revocation request not answered: its audit event could not be written" err="disk full"`, `refusal="invalid_client: `,
				`account="" client_id=333 source=192.0.2.1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			f := &fakes{revokeErr: tt.revokeErr, authErr: tt.authErr, authID: "333", journalErr: errors.New("disk full")}
			h := NewHandler(f, tokenstate.New(f, noJWT{}, "https://kw", func() time.Time { return now }), f, f,
				func() time.Time { return now }, slog.New(slog.NewTextHandler(&log, nil)), oauth2.NopObserver{})
			w := clientauthtest.PostForm(h, "/revoke", tt.body, nil)
			if w.Code != 503 {
				t.Fatalf("status %d (%s), want 503", w.Code, w.Body)
			}
			clientauthtest.CheckLoggedOnce(t, log.String(), tt.want...)
		})
	}
}

// A revocation the store could not record is answered 503 and recorded
// as a failure that says the token was not revoked, not "revoked".
func TestStoreFailureEvent(t *testing.T) {
	f := &fakes{revokeErr: errors.New("connection reset")}
	h := NewHandler(f, tokenstate.New(f, noJWT{}, "https://kw", func() time.Time { return now }), f, f,
		func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)), oauth2.NopObserver{})
	r := httptest.NewRequest("POST", "/revoke", strings.NewReader("token=kwat_mine"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 503 || len(f.events) != 1 {
		t.Fatalf("status %d, %d events; want 503 and the failure's event", w.Code, len(f.events))
	}
	if ev := f.events[0]; ev.Outcome != storage.OutcomeFailure || ev.Data["result"] != "not revoked" || ev.Data["token_id"] != "jti-111" {
		t.Fatalf("the event: %+v, want a failure with result not revoked and the token's ID", ev)
	}
}
