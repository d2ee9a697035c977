package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// Revoking a token ID says whether Keyward had a token with it: an opaque
// token is on record, a JWT's ID or a typo is not, and is revoked anyway.
func TestRevokeTokenIDSaysWhatItKnew(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	now := time.Now()
	opaque := storage.TokenRecord{Hash: []byte("h"), ID: "opaque-jti", AccountID: f.admin.ID, Subject: f.admin.ID, Scope: "x",
		Audience: []string{"https://x"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, err := f.store.Commit(ctx, []storage.Write{{Token: &opaque}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, jti         string
		onRecord, already bool
		note              string
	}{
		{"opaque token", "opaque-jti", true, false, "opaque token with this ID is revoked"},
		{"again", "opaque-jti", true, true, "already on the revocation list"},
		{"unknown ID", "typo-jti", false, false, "No token with this ID is on record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := f.call(t, "POST", "/v1/tokens/revoke", auth, admin.RevokeRequest{JTI: tt.jti})
			note, _ := out["note"].(string)
			if code != 200 || out["revoked"] != tt.jti || out["on_record"] != tt.onRecord || out["already_revoked"] != tt.already || !strings.Contains(note, tt.note) {
				t.Fatalf("%d %v, want on_record %v, already_revoked %v, a note with %q", code, out, tt.onRecord, tt.already, tt.note)
			}
			if revoked, err := f.store.IsRevoked(ctx, tt.jti); err != nil || !revoked {
				t.Fatalf("IsRevoked(%s) = %v, %v; an ID is revoked whether on record or not", tt.jti, revoked, err)
			}
		})
	}
	evs, err := f.store.ListAuditEvents(ctx, storage.AuditFilter{Action: "token.revoke"})
	if err != nil || len(evs) != 3 || evs[0].AccountID != f.admin.ID || !strings.Contains(evs[2].Data["result"], "no token with this ID on record") {
		t.Fatalf("audit events %+v %v", evs, err)
	}
}

// A revocation by token ID is kept as long as any token may live, not
// only as long as the server's current --max-token-lifetime: a JWT issued
// under a longer one, before a restart that shortened it, would be active
// again once its revocation was pruned.
func TestRevokeTokenIDOutlivesTheLongestToken(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t) // --max-token-lifetime 1h
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if code, out, _ := f.call(t, "POST", "/v1/tokens/revoke", auth, admin.RevokeRequest{JTI: "jwt-jti"}); code != 200 {
		t.Fatalf("revoke: %d %v", code, out)
	}
	now := time.Now()
	for _, tt := range []struct {
		pruned  time.Time
		revoked bool
	}{
		{now.Add(2 * time.Hour), true},
		{now.Add(admin.LongestTokenLifetime - time.Minute), true},
		{now.Add(admin.LongestTokenLifetime + time.Minute), false},
	} {
		if _, err := f.store.DeleteExpired(ctx, tt.pruned); err != nil {
			t.Fatal(err)
		}
		if revoked, err := f.store.IsRevoked(ctx, "jwt-jti"); err != nil || revoked != tt.revoked {
			t.Fatalf("pruned %v on: IsRevoked = %v, %v; want %v", tt.pruned.Sub(now).Round(time.Minute), revoked, err, tt.revoked)
		}
	}
}

// A token ID with a control character (a newline from a pasted line, say)
// is refused: no token has one, and the revocation list would hold it.
func TestRevokeTokenIDRefusesControlCharacters(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for _, tt := range []struct{ jti, says string }{
		{"a\nb", "holds a control character"},
		{"x\x1b]0;t\a", "holds a control character"},
		{"tab\there", "holds a control character"},
		{"del\x7f", "holds a control character"},
		// It said "holds a control character".
		{"bad\xffutf8", "is not valid UTF-8"},
	} {
		jti := tt.jti
		code, out, _ := f.call(t, "POST", "/v1/tokens/revoke", auth, admin.RevokeRequest{JTI: jti})
		if d, _ := out["error_description"].(string); code != 400 || out["error"] != "invalid_request" || !strings.Contains(d, tt.says) {
			t.Errorf("revoke %q: %d %v, want 400 invalid_request saying %q", jti, code, out, tt.says)
		}
		if revoked, err := f.store.IsRevoked(context.Background(), jti); err != nil || revoked {
			t.Errorf("IsRevoked(%q) = %v, %v; want it not on the list", jti, revoked, err)
		}
	}
}

// A token ID that is an opaque access token or a client secret itself,
// pasted where its ID goes, is refused, and recorded nowhere: its
// token.revoke event would have kept it, still valid, in the audit log.
// A token ID that merely starts like one is revoked as any other.
func TestRevokeTokenIDRefusesCredentials(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	opaque := oauth2.OpaqueTokenPrefix + strings.Repeat("Tk4", 14) + "y"
	secret := admin.NewSecret()
	for _, tt := range []struct {
		jti  string
		code int
	}{
		{opaque, 400},
		{secret, 400},
		{secret + "\n", 400}, // read from a file, with its line break
		{"kwat_Zq3bH0aXwLm9Pt2cR", 200},
		{"kw_Zq3bH0aXwLm9Pt2cRs", 200},
	} {
		code, out, _ := f.call(t, "POST", "/v1/tokens/revoke", auth, admin.RevokeRequest{JTI: tt.jti})
		if code != tt.code {
			t.Errorf("revoke %s: %d %v, want %d", tt.jti, code, out, tt.code)
		}
		if desc, _ := out["error_description"].(string); code != 200 && (strings.Contains(desc, opaque) || strings.Contains(desc, secret)) {
			t.Errorf("revoke %q: the refusal quotes the credential: %s", tt.jti, desc)
		}
		if revoked, err := f.store.IsRevoked(ctx, tt.jti); err != nil || revoked != (tt.code == 200) {
			t.Errorf("IsRevoked(%s) = %v, %v", tt.jti, revoked, err)
		}
	}
	evs, err := f.store.ListAuditEvents(ctx, storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		for k, v := range e.Data {
			if strings.Contains(v, opaque) || strings.Contains(v, secret) {
				t.Errorf("%s event: %s=%q holds the credential", e.Action, k, v)
			}
		}
	}
}
