package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleAccountConflict: the service account page's Disable, Enable
// and Delete are made only to the account as the page shows it (the
// If-Match of the ETag the page got with it). After another administrator
// changed the account through the admin API (its description), each is
// refused by the server (412): the page says so with the server's
// description, shows the account as it is now, and from there the change
// goes through.
func TestConsoleAccountConflict(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	acct := consoleAccount(t, m, "contested", "shop")
	email := acct.Email
	// action finds the account's button labelled label; field, the value
	// the page shows for the field named name.
	action := func(label string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//div[@class="actions"]/button[text()=%q]`, label))
	}
	field := func(name, value string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//dt[text()=%q]/following-sibling::dd[1][text()=%q]`, name, value))
	}
	describe := func(d string) {
		t.Helper()
		if _, err := m.Server.Admin.UpdateAccount(bg, sys, acct.ID, admin.AccountUpdate{Description: &d}); err != nil {
			t.Fatal(err)
		}
	}
	disabled := func(when string, want bool) {
		t.Helper()
		a, err := m.Server.Admin.GetAccount(bg, acct.ID)
		if err != nil || a.Disabled != want {
			t.Fatalf("%s: disabled = %v (%v), want %v", when, a.Disabled, err, want)
		}
	}
	step, waitAlert := p.step, p.waitAlert
	refused := func(name, notDone, desc string) {
		t.Helper()
		waitAlert(name, "error", fmt.Sprintf("The service account %s has changed since you read it", email))
		waitAlert(name, "error", "someone else changed it meanwhile, so "+notDone+".")
		waitAlert(name, "error", fmt.Sprintf("The page now shows %s as it is.", email))
		step(name+": the page shows the account as it is", chromedp.WaitVisible(field("Description", desc)))
	}

	p.signIn(m)
	eval[string](p, fmt.Sprintf(`location.hash = "#/accounts/%s"`, acct.ID))
	step("open the account", chromedp.WaitVisible(action("Disable")))

	// Disable after another change: refused, the account still enabled.
	describe("changed by another administrator")
	step("disable after the other change", chromedp.Click(action("Disable")))
	refused("disable refused", "nothing was saved", "changed by another administrator")
	disabled("after the refused disable", false)
	step("the page shows the account enabled", chromedp.WaitVisible(action("Disable")))
	p.shot("account-disable-conflict")
	step("disable again", chromedp.Click(action("Disable")), chromedp.WaitVisible(action("Enable")))
	waitAlert("disabled", "notice", "Disabled "+email)
	disabled("after the disable", true)

	// Enable after another change: refused, the account still disabled.
	describe("changed again")
	step("enable after the other change", chromedp.Click(action("Enable")))
	refused("enable refused", "nothing was saved", "changed again")
	disabled("after the refused enable", true)
	step("enable again", chromedp.Click(action("Enable")), chromedp.WaitVisible(action("Disable")))
	waitAlert("enabled", "notice", "Enabled "+email)
	disabled("after the enable", false)

	// Delete after another change: refused, the account still there.
	describe("changed once more")
	step("delete after the other change", chromedp.Click(action("Delete")), confirm())
	refused("delete refused", "it was not deleted", "changed once more")
	disabled("after the refused delete", false)
	step("delete again", chromedp.Click(action("Delete")), confirm(),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="Service accounts"]`)))
	waitAlert("deleted", "notice", "Deleted the service account "+email)
	if _, err := m.store.GetAccount(bg, acct.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after the delete: %v, want the account gone", err)
	}
	// The refused requests' 412s are logged by the browser as failed requests.
	p.checkLogs("412")
}

// TestConsoleAPIDeleteConflict: the API page's Delete is made only to the
// API as the page shows it (If-Match, as the edit form sends): after
// another administrator changed the API (its description), the server
// refuses it (412), the page says so and shows the API as it is now, and
// from there the delete goes through.
func TestConsoleAPIDeleteConflict(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateAPI(bg, sys, admin.APIInput{Name: "inventory", Identifier: "https://inventory.internal", Scopes: []string{"inventory.read"}}); err != nil {
		t.Fatal(err)
	}
	del := chromedp.Search(`//main[@id="view"]//div[@class="actions"]/button[text()="Delete"]`)
	step, waitAlert := p.step, p.waitAlert

	p.signIn(m)
	eval[string](p, `location.hash = "#/apis/inventory"`)
	step("open the API", chromedp.WaitVisible(del))
	other := "Changed by another administrator."
	if _, err := m.Server.Admin.UpdateAPI(bg, sys, "inventory", admin.APIUpdate{Description: &other}); err != nil {
		t.Fatal(err)
	}
	step("delete after the other change", chromedp.Click(del), confirm())
	waitAlert("delete refused", "error", `The API "inventory" has changed since you read it`)
	waitAlert("delete refused", "error", "someone else changed it meanwhile, so it was not deleted.")
	waitAlert("delete refused", "error", "The page now shows the API inventory as it is.")
	step("the page shows the API as it is",
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//dt[text()="Description"]/following-sibling::dd[1][text()=%q]`, other))))
	if _, err := m.Server.Admin.GetAPI(bg, "inventory"); err != nil {
		t.Fatalf("after the refused delete: %v, want the API still there", err)
	}
	step("delete again", chromedp.Click(del), confirm(),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="APIs"]`)))
	waitAlert("deleted", "notice", "Deleted the API inventory.")
	if _, err := m.Server.Admin.GetAPI(bg, "inventory"); err == nil {
		t.Fatal("after the delete the API is still there")
	}
	// The refused request's 412 is logged by the browser as a failed request.
	p.checkLogs("412")
}
