package main

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
)

// TestConsoleEditConflict: the console's account form saves with If-Match,
// so a change another administrator made after the page showed the
// account (here with the CLI, through the admin API) is not overwritten:
// the save is refused and says so, the form keeps what was typed, and
// Reload the account shows the account as it is now, from which a save
// goes through. The API form does the same, with Reload the API.
func TestConsoleEditConflict(t *testing.T) {
	chromium(t) // without Chromium, skip before starting a server
	m := startServer(t)
	ctx, consoleLog := browserSession(t)
	p := &consolePage{t: t, ctx: ctx, logs: consoleLog}
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateAPI(bg, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write", "orders.refund"}}); err != nil {
		t.Fatal(err)
	}
	acct, err := m.Server.Admin.CreateAccount(bg, sys, admin.AccountInput{Name: "nightly-report", Project: "billing", Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	scopes := func() []string {
		t.Helper()
		a, err := m.Server.Admin.GetAccount(bg, acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		return a.Scopes
	}
	step, waitAlert := p.step, p.waitAlert
	save := chromedp.CSS("#edit-account button[type=submit]")

	step("sign in",
		chromedp.Navigate(m.Issuer+"/console"),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")),
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//a[text()=%q]`, acct.Email))))
	step("open the account's edit form",
		chromedp.Click(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//a[text()=%q]`, acct.Email))),
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//h1[text()=%q]`, acct.Email))),
		chromedp.Click(chromedp.CSS("#edit-account summary")), chromedp.WaitVisible(chromedp.ID("f-edit-scopes")))
	if p.alert() != "" && eval[bool](p, `!document.getElementById("alert").hidden`) {
		t.Fatalf("an alert before anything was saved: %q", p.alert())
	}

	// Another administrator gives the account a scope with the CLI, after
	// the page showed it; this one then saves the scopes it typed.
	runCLI(t, "sa", "update", acct.Email, "--scopes", "orders.read,orders.refund", "--credentials", m.AdminKeyFile)
	step("save over the other change", setInput("f-edit-scopes", "orders.read orders.write"), chromedp.Click(save))
	waitAlert("refused", "error", "Nothing was saved: someone else changed "+acct.Email+" after this page showed it. Reload the account")
	if got := scopes(); !slices.Equal(got, []string{"orders.read", "orders.refund"}) {
		t.Fatalf("after the refused save the account's scopes are %q, want the other administrator's", got)
	}
	if v := eval[string](p, `document.getElementById("f-edit-scopes").value`); v != "orders.read orders.write" {
		t.Errorf("after the refusal the form holds %q, want what was typed", v)
	}
	p.shot("account-edit-conflict")

	step("reload the account", chromedp.Click(viewButton("Reload the account")))
	waitAlert("reloaded", "notice", "Reloaded "+acct.Email+" as it is now.")
	step("open the edit form again", chromedp.Click(chromedp.CSS("#edit-account summary")), chromedp.WaitVisible(chromedp.ID("f-edit-scopes")))
	if v := eval[string](p, `document.getElementById("f-edit-scopes").value`); v != "orders.read orders.refund" {
		t.Fatalf("after Reload the form holds %q, want the account's scopes as the other administrator left them", v)
	}
	if eval[bool](p, `[...document.querySelectorAll("#view button")].some((b) => b.textContent === "Reload the account" && !b.hidden)`) {
		t.Error("Reload the account is still shown after reloading")
	}
	step("save again", setInput("f-edit-scopes", "orders.read orders.refund orders.write"), chromedp.Click(save))
	waitAlert("saved", "notice", "Updated the scopes of "+acct.Email+".")
	if got := scopes(); !slices.Equal(got, []string{"orders.read", "orders.refund", "orders.write"}) {
		t.Fatalf("after saving the reloaded form the account's scopes are %q", got)
	}

	// The API form saves with If-Match too.
	apiDesc := func() string {
		t.Helper()
		a, err := m.Server.Admin.GetAPI(bg, "orders")
		if err != nil {
			t.Fatal(err)
		}
		return a.Description
	}
	eval[string](p, `location.hash = "#/apis/orders"`) // in the page: the token lives in its memory
	step("open the API's edit form",
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="orders"]`)),
		chromedp.Click(chromedp.CSS("#edit-api summary")), chromedp.WaitVisible(chromedp.ID("f-edit-api-description")))
	other := "Changed by another administrator."
	if _, err := m.Server.Admin.UpdateAPI(bg, sys, "orders", admin.APIUpdate{Description: &other}); err != nil {
		t.Fatal(err)
	}
	step("save the API over the other change", setInput("f-edit-api-description", "Mine."), chromedp.Click(chromedp.CSS("#edit-api button[type=submit]")))
	waitAlert("API refused", "error", "Nothing was saved: someone else changed the API orders after this page showed it. Reload the API")
	if got := apiDesc(); got != other {
		t.Fatalf("after the refused save the API's description is %q, want the other administrator's", got)
	}
	if v := eval[string](p, `document.getElementById("f-edit-api-description").value`); v != "Mine." {
		t.Errorf("after the refusal the API form holds %q, want what was typed", v)
	}
	p.shot("api-edit-conflict")

	step("reload the API", chromedp.Click(viewButton("Reload the API")))
	waitAlert("API reloaded", "notice", "Reloaded the API orders as it is now.")
	step("open the API's edit form again",
		chromedp.Click(chromedp.CSS("#edit-api summary")), chromedp.WaitVisible(chromedp.ID("f-edit-api-description")))
	if v := eval[string](p, `document.getElementById("f-edit-api-description").value`); v != other {
		t.Fatalf("after Reload the API form holds %q, want the description as the other administrator left it", v)
	}
	if eval[bool](p, `[...document.querySelectorAll("#view button")].some((b) => b.textContent === "Reload the API" && !b.hidden)`) {
		t.Error("Reload the API is still shown after reloading")
	}
	step("save the API again", setInput("f-edit-api-description", "Mine."), chromedp.Click(chromedp.CSS("#edit-api button[type=submit]")))
	waitAlert("API saved", "notice", "Updated the description of the API orders.")
	if got := apiDesc(); got != "Mine." {
		t.Fatalf("after saving the reloaded API form its description is %q", got)
	}
	// The refused saves' 412s are logged by the browser as failed requests.
	p.checkLogs("412")
}
