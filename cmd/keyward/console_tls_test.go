package main

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
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
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	acct, err := m.Server.Admin.CreateAccount(bg, sys, admin.AccountInput{Name: "mtls", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	stored := func() storage.Account {
		t.Helper()
		a, err := m.store.GetAccount(bg, acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	shown := func() string {
		return eval[string](p, `[...document.querySelectorAll("#view dl.fields dt")].find((dt) => dt.textContent === "TLS binding")?.nextElementSibling.textContent ?? ""`)
	}
	save := chromedp.Click(chromedp.CSS("#edit-account button[type=submit]"))
	edit := chromedp.Click(chromedp.CSS("#edit-account summary"))
	step, waitAlert := p.step, p.waitAlert

	p.signIn(m)
	eval[string](p, fmt.Sprintf(`location.hash = "#/accounts/%s"`, acct.ID))
	step("open the account", chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//h1[text()=%q]`, acct.Email))), edit)
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
	waitAlert("SAN IP", "notice", "Updated the TLS binding of "+acct.Email+". That ended the tokens issued to it until now")
	if a := stored(); a.TokensRevokedBefore.IsZero() {
		t.Errorf("after the SAN IP: tokens_revoked_before not set")
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
	evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "account.update"})
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
// certificate binding in the console, or revokes its own tokens, ends the
// console's token too: the console signs out saying so, not with a
// refused request, and signing in again works.
func TestConsoleOwnTLSBindingChange(t *testing.T) {
	p, m, _ := consoleTest(t)
	save := chromedp.Click(chromedp.CSS("#edit-account button[type=submit]"))
	edit := chromedp.Click(chromedp.CSS("#edit-account summary"))
	step, waitAlert := p.step, p.waitAlert

	p.signIn(m)
	own := eval[string](p, `document.querySelector("#who a").getAttribute("href")`)
	eval[string](p, fmt.Sprintf(`location.hash = %q`, own))
	step("open the own account", chromedp.WaitVisible(chromedp.ID("edit-account")), edit)
	step("bind a subject DN", chromedp.SetValue(chromedp.ID("f-edit-tls-kind"), "tls_client_auth_subject_dn"), setInput("f-edit-tls-value", "CN=ops"),
		chromedp.Click(chromedp.ID("f-edit-method-tls_client_auth")), save)
	waitAlert("bound", "notice", "Updated the authentication methods and TLS binding of")
	step("change the subject DN", edit, setInput("f-edit-tls-value", "CN=ops2"), save)
	waitAlert("changed", "notice", "That ended the tokens of your account, the console's too: sign in again.")
	if eval[bool](p, `document.getElementById("signin").hidden`) {
		t.Fatal("the console is still signed in")
	}
	p.signIn(m)

	// Revoking its own tokens signs out the same way.
	eval[string](p, fmt.Sprintf(`location.hash = %q`, own))
	step("revoke the own tokens", chromedp.WaitVisible(chromedp.ID("edit-account")), chromedp.Click(viewButton("Revoke its tokens")), confirm())
	waitAlert("revoked", "notice", "until now, the console's too: sign in again.")
	if eval[bool](p, `document.getElementById("signin").hidden`) {
		t.Fatal("the console is still signed in after revoking its own tokens")
	}
	p.signIn(m)
	p.checkLogs()
}
