package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleRevokesRefusedToken: when the admin API refuses the token the
// console got with a key file (here the account stopped being an
// administrator between the token and GET /v1/whoami), the page shows the
// API's refusal and revokes the token at /revoke, authenticated with a
// client assertion of the key file's key: introspection then says it is
// inactive, and the audit log has its revocation by the account. The
// server accepts only the issuer as that assertion's aud
// (--strict-client-assertion-audience), which the console sends.
func TestConsoleRevokesRefusedToken(t *testing.T) {
	p, m, _ := consoleTest(t, func(m *Main) { m.Config.StrictClientAssertionAudience = true })
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	ops, err := m.Server.Admin.CreateAccount(bg, sys, admin.AccountInput{Name: "ops-admin", Project: "keyward", Scopes: []string{admin.AdminScope}})
	if err != nil {
		t.Fatal(err)
	}
	kf, _ := json.Marshal(uploadedKeyFile(t, m, ops))
	keyFile := filepath.Join(t.TempDir(), "ops.json")
	if err := os.WriteFile(keyFile, kf, 0o600); err != nil {
		t.Fatal(err)
	}
	inspector, inspectorSecret := shopClient(t, m, "inspector", admin.IntrospectScope)
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}

	// The browser holds GET /v1/whoami until told to go on.
	evctx, stopEvents := context.WithCancel(p.ctx)
	defer stopEvents()
	held := make(chan fetch.EventRequestPaused, 1)
	events := chromedp.Events(evctx, fetch.RequestPaused)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			held <- ev
		}
	}()
	if _, err := chromedp.Call(p.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*/v1/whoami", RequestStage: fetch.RequestStageRequest}}}); err != nil {
		t.Fatalf("Fetch.enable: %v", err)
	}
	defer chromedp.Call(p.ctx, fetch.Disable, struct{}{})

	p.step("sign in with the key file", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{keyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")))
	var ev fetch.EventRequestPaused
	select {
	case ev = <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("GET /v1/whoami was not held")
	}
	auth, _ := ev.Request.Headers["Authorization"].(string)
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || !l.active(inspector.ID, inspectorSecret, token) {
		t.Fatalf("the held whoami carries %.20q…, want an active token", auth)
	}

	// Meanwhile the account stops being an administrator.
	none := []string{}
	if _, err := m.Server.Admin.UpdateAccount(bg, sys, ops.ID, admin.AccountUpdate{Scopes: &none}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(p.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID}); err != nil {
		t.Fatalf("Fetch.continueRequest: %v", err)
	}
	p.waitAlert("refused", "error", "The account of the access token is disabled, deleted or no longer an administrator.")
	if eval[bool](p, `document.getElementById("signin").hidden`) {
		t.Error("after the refusal the page is signed in")
	}

	// The revocation is not waited for by the page: the test waits for it.
	deadline := time.Now().Add(20 * time.Second)
	for l.active(inspector.ID, inspectorSecret, token) {
		if time.Now().After(deadline) {
			t.Fatal("the refused token is still active: the console did not revoke it")
		}
		time.Sleep(100 * time.Millisecond)
	}
	evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "token.revoke"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Outcome != storage.OutcomeSuccess || evs[0].Actor != ops.ID || evs[0].AccountID != ops.ID ||
		evs[0].Data["auth_method"] != storage.AuthPrivateKeyJWT || evs[0].Data["result"] != "revoked" {
		t.Errorf("token.revoke events: %+v, want one: the account revoking its own token with private_key_jwt", evs)
	}
	p.checkLogs("401")
}
