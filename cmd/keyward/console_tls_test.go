package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleTLSBinding sets, changes and clears an account's TLS binding
// in the account's edit form, as keyward sa update --tls-… and --tls-clear
// do: a subject DN the admin API refuses shows its description and saves
// nothing, the form keeping what was typed; a subject DN is bound together
// with tls_client_auth in one change; a SAN IP replaces it; none removes
// it; and the account's page shows the binding each time.
func TestConsoleTLSBinding(t *testing.T) {
	p, m, _ := consoleTest(t)
	acct := consoleAccount(t, m, "mtls", "shop")
	stored := func() storage.Account { return storedAccount(t, m, acct.ID) }
	shown := func() string {
		return eval[string](p, `[...document.querySelectorAll("#view dl.fields dt")].find((dt) => dt.textContent === "TLS binding")?.nextElementSibling.textContent ?? ""`)
	}
	save := chromedp.Click(chromedp.CSS("#edit-account button[type=submit]"))
	edit := chromedp.Click(chromedp.CSS("#edit-account summary"))
	step, waitAlert := p.step, p.waitAlert

	p.signIn(m)
	p.openAccount(acct, edit)
	if got := shown(); got != "—" {
		t.Errorf("the TLS binding reads %q before any, want —", got)
	}

	// A DN the API refuses; the form keeps it.
	step("a bad DN", chromedp.SetValue(chromedp.ID("f-edit-tls-kind"), "tls_client_auth_subject_dn"), setInput("f-edit-tls-value", "not a dn"), save)
	waitAlert("bad DN", "error", `The subject DN "not a dn" is not an RFC 4514 distinguished name`)
	if a := stored(); !a.TLS.IsZero() || eval[string](p, `document.getElementById("f-edit-tls-value").value`) != "not a dn" {
		t.Fatalf("after the refusal: binding %+v, or the form lost what was typed", a.TLS)
	}

	// A subject DN, with tls_client_auth, in one change.
	step("bind a subject DN", setInput("f-edit-tls-value", "CN=mtls,O=Example"), chromedp.Click(chromedp.ID("f-edit-method-tls_client_auth")), save)
	waitAlert("bound", "notice", "Updated the authentication methods and TLS binding of "+acct.Email+".")
	if a := stored(); a.TLS != (storage.TLSBinding{SubjectDN: "CN=mtls,O=Example"}) || !slices.Contains(a.AuthMethods, "tls_client_auth") {
		t.Fatalf("after binding: %+v, methods %q; want the subject DN and tls_client_auth", a.TLS, a.AuthMethods)
	}
	if got := shown(); got != "Subject DN CN=mtls,O=Example" {
		t.Errorf("the TLS binding reads %q, want the subject DN", got)
	}

	// A SAN IP replaces it.
	step("bind a SAN IP", edit, chromedp.SetValue(chromedp.ID("f-edit-tls-kind"), "tls_client_auth_san_ip"), setInput("f-edit-tls-value", "10.0.0.7"), save)
	waitAlert("SAN IP", "notice", "Updated the TLS binding of "+acct.Email+". That ended the tokens it got with a certificate until now")
	if a := stored(); a.CertTokensRevokedBefore.IsZero() || !a.TokensRevokedBefore.IsZero() {
		t.Errorf("after the SAN IP: cert_tokens_revoked_before %v, tokens_revoked_before %v; want only the first set", a.CertTokensRevokedBefore, a.TokensRevokedBefore)
	}
	if got := eval[string](p, `[...document.querySelectorAll("#view dl.fields dt")].find((dt) => dt.textContent === "Certificate tokens revoked before")?.nextElementSibling.textContent ?? ""`); !strings.HasSuffix(got, "UTC") {
		t.Errorf("the account's page shows certificate tokens revoked before %q, want the time", got)
	}
	if a := stored(); a.TLS != (storage.TLSBinding{SANIP: "10.0.0.7"}) {
		t.Fatalf("after the SAN IP: %+v, want the SAN IP alone", a.TLS)
	}
	if got := shown(); got != "SAN IP address 10.0.0.7" {
		t.Errorf("the TLS binding reads %q, want the SAN IP", got)
	}

	// None removes it.
	step("clear", edit, chromedp.SetValue(chromedp.ID("f-edit-tls-kind"), ""), save)
	waitAlert("cleared", "notice", "Updated the TLS binding of "+acct.Email+".")
	if a := stored(); !a.TLS.IsZero() {
		t.Fatalf("after clearing: %+v, want no binding", a.TLS)
	}
	if got := shown(); got != "—" {
		t.Errorf("the TLS binding reads %q after clearing, want —", got)
	}
	evs, err := m.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "account.update"})
	if err != nil {
		t.Fatal(err)
	}
	var bindings []string
	for _, ev := range evs {
		if b, ok := ev.Data["tls_binding"]; ok {
			bindings = append(bindings, b)
		}
	}
	if len(bindings) != 3 {
		t.Errorf("account.update events with a tls_binding: %q, want 3", bindings)
	}
	p.checkLogs("400")
}

// TestConsoleOwnTLSBindingChange: an administrator that changes its own
// certificate binding in the console ends the tokens it got with a
// certificate: signed in with a key file, the console stays signed in and
// says so; signed in with a pasted token got with a certificate, it signs
// out saying so, not with a refused request, and signing in again works.
// Revoking its own tokens signs out whatever the token was got with.
func TestConsoleOwnTLSBindingChange(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	save := chromedp.Click(chromedp.CSS("#edit-account button[type=submit]"))
	edit := chromedp.Click(chromedp.CSS("#edit-account summary"))
	step, waitAlert := p.step, p.waitAlert
	signedOut := func() bool { return !eval[bool](p, `document.getElementById("signin").hidden`) }

	p.signIn(m)
	own := eval[string](p, `document.querySelector("#who a").getAttribute("href")`)
	eval[string](p, fmt.Sprintf(`location.hash = %q`, own))
	step("open the own account", chromedp.WaitVisible(chromedp.ID("edit-account")), edit)
	step("bind a subject DN", chromedp.SetValue(chromedp.ID("f-edit-tls-kind"), "tls_client_auth_subject_dn"), setInput("f-edit-tls-value", "CN=ops"),
		chromedp.Click(chromedp.ID("f-edit-method-tls_client_auth")), save)
	waitAlert("bound", "notice", "Updated the authentication methods and TLS binding of")
	step("change the subject DN", chromedp.WaitVisible(chromedp.ID("edit-account")), edit, setInput("f-edit-tls-value", "CN=ops2"), save)
	waitAlert("changed", "notice", "That ended the tokens it got with a certificate until now")
	if signedOut() {
		t.Fatal("the console, signed in with a key, signed out on a binding change")
	}

	// A pasted token got with a certificate ends with the next change.
	step("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("token-form")))
	// Issued in the second after the change just made, which ended the
	// certificate tokens of its own second (iat has whole seconds).
	acct, err := m.store.GetAccount(context.Background(), adminKey.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	iat := acct.CertTokensRevokedBefore.Truncate(time.Second).Add(time.Second)
	tok, err := m.signer.Sign(kwoauth2.AccessClaims{Issuer: m.Issuer, Subject: adminKey.ClientID, ClientID: adminKey.ClientID, ClientEmail: adminKey.ClientEmail,
		Audience: kwoauth2.Audience{admin.BuiltinAPIIdentifier}, Scope: admin.AdminScope, IssuedAt: iat.Unix(), Expiry: iat.Add(time.Hour).Unix(),
		ID: rand.Text(), Credential: "cert:" + strings.Repeat("A", 43)})
	if err != nil {
		t.Fatal(err)
	}
	step("paste a certificate's token", setInput("token", tok), chromedp.Click(chromedp.CSS("#token-form button")), chromedp.WaitVisible(chromedp.ID("who")))
	eval[string](p, fmt.Sprintf(`location.hash = %q`, own))
	step("change the subject DN again", chromedp.WaitVisible(chromedp.ID("edit-account")), edit, setInput("f-edit-tls-value", "CN=ops3"), save)
	waitAlert("changed again", "notice", "That ended the tokens your account got with a certificate, the console's too: sign in again.")
	if !signedOut() {
		t.Fatal("the console is still signed in with a certificate's token")
	}
	p.signIn(m)

	// Revoking its own tokens signs out, a key's token too.
	eval[string](p, fmt.Sprintf(`location.hash = %q`, own))
	step("revoke the own tokens", chromedp.WaitVisible(chromedp.ID("edit-account")), chromedp.Click(viewButton("Revoke its tokens")), confirm())
	waitAlert("revoked", "notice", "until now, the console's too: sign in again.")
	if eval[bool](p, `document.getElementById("signin").hidden`) {
		t.Fatal("the console is still signed in after revoking its own tokens")
	}
	p.signIn(m)
	p.checkLogs()
}
