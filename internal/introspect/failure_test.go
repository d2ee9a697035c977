package introspect_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/clientauth/clientauthtest"
	"github.com/keyward/keyward/internal/introspect"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// catalog is the directory's API list, or its failure.
type catalog struct {
	*clientauthtest.Directory
	err error
}

func (c catalog) ListAPIs(context.Context) ([]storage.API, error) { return nil, c.err }

// basic is the Authorization header of client_secret_basic for id and
// secret (not form-encoded first: these tests' IDs and secrets need none).
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// Every refusal is logged, as /token logs its refusals: one that is not
// the caller's doing — the store failed — at error, with its cause, which
// neither the answer nor the event carries; the caller's own mistakes at
// info, naming the account, or the client ID presented when
// authentication failed (never one shaped like a secret).
func TestRefusalLogged(t *testing.T) {
	const pasted = "kw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	tests := []struct {
		name       string
		auth       string
		catalogErr error
		wantStatus int
		want       []string
		wantNot    []string
	}{
		{name: "store down", auth: basic(clientauthtest.ClientID, "kw_right"), catalogErr: errors.New("connection reset"), wantStatus: 503,
			want: []string{`level=ERROR msg="introspection refused" error=temporarily_unavailable `, `cause="connection reset" account=` + clientauthtest.ClientID + ` source=`}},
		{name: "no permission", auth: basic(clientauthtest.ClientID, "kw_right"), wantStatus: 403,
			want: []string{`level=INFO msg="introspection refused" error=access_denied `, ` account=` + clientauthtest.ClientID + ` source=`}, wantNot: []string{"client_id="}},
		{name: "wrong secret", auth: basic(clientauthtest.ClientID, "kw_wrong"), wantStatus: 401,
			want: []string{`level=INFO msg="introspection refused" error=invalid_client `, `cause="no enabled, unexpired secret matches" account="" client_id=` + clientauthtest.ClientID + ` source=`}},
		{name: "secret as client ID", auth: basic(pasted, "kw_wrong"), wantStatus: 401,
			want: []string{`level=INFO msg="introspection refused" error=invalid_client `, `client_id="(not recorded: shaped like a secret or token)"`}, wantNot: []string{pasted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			d := &clientauthtest.Directory{}
			clock := func() time.Time { return time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC) }
			auth := clientauth.New(clientauth.Config{Issuer: "https://kw", MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, Pepper: clientauthtest.Pepper, Now: clock,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, d)
			// No resolver: none of these requests reaches it.
			h := introspect.NewHandler(auth, nil, catalog{d, tt.catalogErr}, d, nil, clock, slog.New(slog.NewTextHandler(&log, nil)), oauth2.NopObserver{})
			w := clientauthtest.PostForm(h, "/introspect", "token=kwat_x", http.Header{"Authorization": {tt.auth}})
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			if strings.Contains(w.Body.String(), "connection reset") {
				t.Fatal("the internal error reached the caller")
			}
			if w.Code == 503 && w.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			clientauthtest.CheckLoggedOnce(t, log.String(), tt.want...)
			for _, not := range tt.wantNot {
				if strings.Contains(log.String(), not) {
					t.Errorf("logged %q, which holds %q", log.String(), not)
				}
			}
		})
	}
}

// journal is the directory's audit log, or its failure.
type journal struct {
	*clientauthtest.Directory
	err error
}

func (j journal) Write(ctx context.Context, w storage.Write) error {
	if j.err != nil {
		return j.err
	}
	return j.Directory.Write(ctx, w)
}

// A store that is down fails both the introspection and the write of its
// audit event: the request logs one error, which carries the refusal and
// its cause as well as the write's error, and the client as /token's line
// does, not one line for each.
func TestUnrecordedRefusalLoggedOnce(t *testing.T) {
	tests := []struct {
		name       string
		auth       string
		catalogErr error
		want       []string
		notWant    string
	}{
		{name: "store down", auth: basic(clientauthtest.ClientID, "kw_right"), catalogErr: errors.New("connection reset"),
			want: []string{`level=ERROR msg="introspection not answered: its audit event could not be written" err="disk full"`, `refusal="temporarily_unavailable: `, `(connection reset)"`,
				`account=` + clientauthtest.ClientID + ` source=192.0.2.1`}},
		{name: "wrong secret", auth: basic(clientauthtest.ClientID, "kw_wrong"),
			want: []string{`level=ERROR msg="introspection not answered: its audit event could not be written" err="disk full"`, `refusal="invalid_client: `,
				`account="" client_id=` + clientauthtest.ClientID + ` source=192.0.2.1`}},
		{name: "secret as client ID", auth: basic("kw_0123456789abcdef0123456789abcdef0123456789abcdef", "kw_wrong"),
			want: []string{`level=ERROR msg="introspection not answered: its audit event could not be written" err="disk full"`,
				`account="" client_id="(not recorded: shaped like a secret or token)" source=192.0.2.1`},
			notWant: "kw_0123456789abcdef0123456789abcdef0123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			d := &clientauthtest.Directory{}
			clock := func() time.Time { return time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC) }
			auth := clientauth.New(clientauth.Config{Issuer: "https://kw", MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, Pepper: clientauthtest.Pepper, Now: clock,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, d)
			h := introspect.NewHandler(auth, nil, catalog{d, tt.catalogErr}, journal{d, errors.New("disk full")}, nil, clock, slog.New(slog.NewTextHandler(&log, nil)), oauth2.NopObserver{})
			w := clientauthtest.PostForm(h, "/introspect", "token=kwat_x", http.Header{"Authorization": {tt.auth}})
			if w.Code != 503 {
				t.Fatalf("status %d (%s), want 503", w.Code, w.Body)
			}
			clientauthtest.CheckLoggedOnce(t, log.String(), tt.want...)
			if tt.notWant != "" && strings.Contains(log.String(), tt.notWant) {
				t.Errorf("logged %q, which has the credential %q", log.String(), tt.notWant)
			}
		})
	}
}
