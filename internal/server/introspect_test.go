package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/tally"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/internal/token"
)

// failingJournal fails every write while fail is set, as a store with a
// full disk does.
type failingJournal struct {
	token.Journal
	fail atomic.Bool
}

func (j *failingJournal) Write(ctx context.Context, w storage.Write) error {
	if j.fail.Load() {
		return errors.New("disk I/O error")
	}
	return j.Journal.Write(ctx, w)
}

// newLoggedFailingFixture is a fixture whose journal is a failingJournal
// and whose log is kept in the returned buffer.
func newLoggedFailingFixture(t *testing.T) (*fixture, *testkeyward.SyncBuffer, *failingJournal) {
	logs := &testkeyward.SyncBuffer{}
	var j *failingJournal
	f := newFixture(t, func(_ *server.Config, d *server.Deps) {
		d.Logger = slog.New(slog.NewTextHandler(logs, nil))
		j = &failingJournal{Journal: d.Journal}
		d.Journal = j
	})
	return f, logs, j
}

// TestIntrospectionWhenTheAuditLogFails: introspections whose events go to
// summaries are answered from memory only until a write of the summaries
// fails; from then on each needs its own event, and is refused without
// one, until the log can be written again. No answered introspection is
// missing from the log in the end.
func TestIntrospectionWhenTheAuditLogFails(t *testing.T) {
	ctx := context.Background()
	var (
		j  *failingJournal
		tl *tally.Tally
	)
	f := newFixture(t, func(_ *server.Config, d *server.Deps) {
		j = &failingJournal{Journal: d.Journal}
		tl = tally.New(j, tally.Options{Interval: time.Hour}) // written when the test says
		t.Cleanup(tl.Close)
		d.Journal, d.Introspections = j, tl
	})
	callerAuth := f.introspector(t)
	body := "token=" + url.QueryEscape(f.accessToken(t, "opaque"))
	introspect := func(want int) {
		t.Helper()
		if w := f.doPath("/introspect", body, callerAuth); w.Code != want {
			t.Fatalf("introspection: %d %s, want %d", w.Code, w.Body, want)
		}
	}

	introspect(http.StatusOK)
	j.fail.Store(true)
	introspect(http.StatusOK) // its event waits in memory; the log's failure is not known yet
	if _, err := tl.Flush(ctx); err == nil {
		t.Fatal("the summaries were written to a failing journal")
	}
	introspect(http.StatusServiceUnavailable) // no summaries now: its own event, which cannot be written
	j.fail.Store(false)
	if _, err := tl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	introspect(http.StatusOK)
	tl.Close()

	evs, err := f.store.ListAuditEvents(ctx, storage.AuditFilter{Action: "token.introspect"})
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	for _, ev := range evs {
		n, err := strconv.Atoi(ev.Data[tally.CountKey])
		if err != nil || ev.Data["active"] != "true" {
			t.Fatalf("unexpected event %+v", ev)
		}
		answered += n
	}
	if answered != 3 {
		t.Errorf("the log counts %d answered introspections, want 3: %+v", answered, evs)
	}
}

// TestIntrospectionOfATokenForTwoAPIs: a token got with scopes of two APIs
// has both in its aud and both APIs' scopes in its scope. An introspector
// of one API sees only that API's part of them (RFC 7662 §4), one of both
// APIs and one with keyward.introspect see all of it, and every other
// member is the same for all of them.
func TestIntrospectionOfATokenForTwoAPIs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sys := admin.Actor{ID: "test"}
	const orders, billing = "https://orders.internal", "https://billing.internal"
	for _, in := range []admin.APIInput{
		{Name: "billing", Identifier: billing, Scopes: []string{"billing.read", "billing.write"}},
		{Name: admin.BuiltinAPIName, Identifier: admin.BuiltinAPIIdentifier, Scopes: []string{admin.AdminScope, admin.IntrospectScope}}, // as keyward serve makes it
	} {
		if _, err := f.admin.CreateAPI(ctx, sys, in); err != nil {
			t.Fatal(err)
		}
	}
	scopes := []string{"orders.read", "billing.read", "billing.write"}
	if _, err := f.admin.UpdateAccount(ctx, sys, f.email, admin.AccountUpdate{Scopes: &scopes}); err != nil {
		t.Fatal(err)
	}
	// caller makes an account with scopes, the introspector of apis.
	caller := func(name string, scopes []string, apis ...string) string {
		t.Helper()
		acct, err := f.admin.CreateAccount(ctx, sys, admin.AccountInput{Name: name, Project: "proj", Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		sec, err := f.admin.CreateSecret(ctx, sys, acct.Email, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, api := range apis {
			got, err := f.admin.GetAPI(ctx, api)
			if err != nil {
				t.Fatal(err)
			}
			ids := append(got.Introspectors, acct.ID)
			if _, err := f.admin.UpdateAPI(ctx, sys, api, admin.APIUpdate{Introspectors: &ids}); err != nil {
				t.Fatal(err)
			}
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(acct.ID+":"+sec.Value))
	}
	callers := map[string]string{
		"orders":  caller("orders-api", nil, "orders"),
		"billing": caller("billing-api", nil, "billing"),
		"both":    caller("both-apis", nil, "orders", "billing"),
		"global":  caller("auditor", []string{admin.IntrospectScope}),
	}
	all := map[string]any{"aud": []any{billing, orders}, "scope": "billing.read orders.read billing.write"}
	tests := []struct {
		caller string
		want   map[string]any // aud and scope
	}{
		{"orders", map[string]any{"aud": orders, "scope": "orders.read"}},
		{"billing", map[string]any{"aud": billing, "scope": "billing.read billing.write"}},
		{"both", all},
		{"global", all},
	}
	for _, format := range []string{"jwt", "opaque"} {
		if _, err := f.admin.UpdateAPI(ctx, sys, "billing", admin.APIUpdate{TokenFormat: &format}); err != nil {
			t.Fatal(err)
		}
		w := f.do("grant_type=client_credentials&scope="+url.QueryEscape("billing.read orders.read billing.write"), "Basic "+base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret)))
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
			t.Fatalf("token: %d %s", w.Code, w.Body)
		}
		introspect := func(t *testing.T, caller string) map[string]any {
			t.Helper()
			w := f.doPath("/introspect", "token="+url.QueryEscape(tok.AccessToken), callers[caller])
			var resp map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &resp); w.Code != http.StatusOK || err != nil || resp["active"] != true {
				t.Fatalf("introspection by %s: %d %s", caller, w.Code, w.Body)
			}
			return resp
		}
		whole := introspect(t, "global")
		for _, tt := range tests {
			t.Run(format+"/"+tt.caller, func(t *testing.T) {
				got := introspect(t, tt.caller)
				want := maps.Clone(whole)
				maps.Copy(want, tt.want)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("introspection by %s:\n got %v\nwant %v", tt.caller, got, want)
				}
			})
		}
	}
}

// TestIntrospectionOfBothFormats: an active token's introspection has the
// same members whether it is a JWT or opaque, client_email included (an
// opaque token's record has no email: it comes from its account).
func TestIntrospectionOfBothFormats(t *testing.T) {
	f := newFixture(t)
	callerAuth := f.introspector(t)
	got := map[string]map[string]any{}
	for _, format := range []string{"jwt", "opaque"} {
		w := f.doPath("/introspect", "token="+url.QueryEscape(f.accessToken(t, format)), callerAuth)
		var resp map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &resp); w.Code != http.StatusOK || err != nil || resp["active"] != true {
			t.Fatalf("introspection of a %s token: %d %s", format, w.Code, w.Body)
		}
		if resp["client_email"] != f.email {
			t.Errorf("%s token: client_email %v, want %s", format, resp["client_email"], f.email)
		}
		got[format] = resp
	}
	jwtKeys, opaqueKeys := slices.Sorted(maps.Keys(got["jwt"])), slices.Sorted(maps.Keys(got["opaque"]))
	if !slices.Equal(jwtKeys, opaqueKeys) {
		t.Errorf("members of a JWT's introspection %v, of an opaque token's %v", jwtKeys, opaqueKeys)
	}
}

// TestIntrospectionOfDPoPBoundTokens: a token got with a DPoP proof
// introspects with token_type DPoP and the proof key's thumbprint as
// cnf.jkt (RFC 9449 §6.2), JWT or opaque; one got without a proof is a
// Bearer token with no cnf.
func TestIntrospectionOfDPoPBoundTokens(t *testing.T) {
	f := newFixture(t)
	callerAuth := f.introspector(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret))
	for _, format := range []string{"jwt", "opaque"} {
		if _, err := f.admin.UpdateAPI(context.Background(), admin.Actor{ID: "test"}, "orders", admin.APIUpdate{TokenFormat: &format}); err != nil {
			t.Fatal(err)
		}
		for _, bound := range []bool{true, false} {
			r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials&scope=orders.read"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Authorization", basic)
			p := dpoptest.NewProver(t)
			if bound {
				proof, err := p.Proof(http.MethodPost, issuer+"/token", "", time.Now())
				if err != nil {
					t.Fatal(err)
				}
				r.Header.Set("DPoP", proof)
			}
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, r)
			var tok struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || w.Code != http.StatusOK {
				t.Fatalf("%s token, bound %v: %d %s", format, bound, w.Code, w.Body)
			}
			w = f.doPath("/introspect", "token="+url.QueryEscape(tok.AccessToken), callerAuth)
			var resp struct {
				Active    bool              `json:"active"`
				TokenType string            `json:"token_type"`
				Cnf       map[string]string `json:"cnf"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != http.StatusOK || !resp.Active {
				t.Fatalf("introspection of a %s token, bound %v: %d %s", format, bound, w.Code, w.Body)
			}
			wantType, wantCnf := "Bearer", map[string]string(nil)
			if bound {
				wantType, wantCnf = "DPoP", map[string]string{"jkt": p.JKT()}
			}
			if tok.TokenType != wantType || resp.TokenType != wantType || !maps.Equal(resp.Cnf, wantCnf) {
				t.Errorf("%s token, bound %v: token_type %q, introspected token_type %q, cnf %v; want %s, cnf %v",
					format, bound, tok.TokenType, resp.TokenType, resp.Cnf, wantType, wantCnf)
			}
		}
	}
}
