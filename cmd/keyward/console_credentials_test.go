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

// TestConsoleCredentialsConflict: disabling, enabling or deleting a key or
// a secret in the console is made only to it as the page shows it (the
// If-Match of the etag its list gave it). After another administrator
// changed it through the admin API (disabled it), deleting the key or
// disabling the secret is refused by the server (412): the page says so
// with the server's description, shows the list as it is now (the key or
// secret disabled), and from there the change goes through.
func TestConsoleCredentialsConflict(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	acct := consoleAccount(t, m, "contested", "shop")
	kf, err := m.Server.Admin.CreateKey(bg, sys, acct.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := m.Server.Admin.CreateSecret(bg, sys, acct.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	kid, sid := kf.PrivateKeyID, cs.ID
	// row finds the button labelled label in the row of id in the
	// section headed section.
	row := func(section, id, label string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//section[h2[text()=%q]]//tr[td[1]/code[text()=%q]]//button[text()=%q]`, section, id, label))
	}
	step, waitAlert := p.step, p.waitAlert

	p.signIn(m)
	eval[string](p, fmt.Sprintf(`location.hash = "#/accounts/%s"`, acct.ID))
	step("open the account", chromedp.WaitVisible(row("Keys", kid, "Delete")), chromedp.WaitVisible(row("Client secrets", sid, "Disable")))

	// Another administrator disables the key; the page still shows it
	// enabled, and its delete is refused.
	if _, err := m.Server.Admin.SetKeyDisabled(bg, sys, acct.ID, kid, true); err != nil {
		t.Fatal(err)
	}
	step("delete the key after the other change", chromedp.Click(row("Keys", kid, "Delete")), confirm())
	waitAlert("delete refused", "error", "someone else changed it meanwhile, so it was not deleted.")
	waitAlert("delete refused", "error", fmt.Sprintf("The list now shows the key %s as it is.", kid))
	step("the page shows the key disabled", chromedp.WaitVisible(row("Keys", kid, "Enable")))
	if k, err := m.store.GetKey(bg, kid); err != nil || !k.Disabled {
		t.Fatalf("after the refused delete: %+v, %v; want the key there, disabled", k, err)
	}
	p.shot("key-delete-conflict")
	step("delete the key again", chromedp.Click(row("Keys", kid, "Delete")), confirm(), chromedp.WaitNotPresent(row("Keys", kid, "Delete")))
	waitAlert("deleted", "notice", fmt.Sprintf("Deleted the key %s.", kid))
	if _, err := m.store.GetKey(bg, kid); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after the delete: %v, want the key gone", err)
	}

	// Another administrator disables the secret; the page still shows it
	// enabled, and its disable is refused.
	step("the secret as the page shows it", chromedp.WaitVisible(row("Client secrets", sid, "Disable")))
	if _, err := m.Server.Admin.SetSecretDisabled(bg, sys, acct.ID, sid, true); err != nil {
		t.Fatal(err)
	}
	step("disable the secret after the other change", chromedp.Click(row("Client secrets", sid, "Disable")))
	waitAlert("disable refused", "error", "someone else changed it meanwhile, so nothing was saved.")
	waitAlert("disable refused", "error", fmt.Sprintf("The list now shows the secret %s as it is.", sid))
	step("the page shows the secret disabled", chromedp.WaitVisible(row("Client secrets", sid, "Enable")))
	step("enable the secret", chromedp.Click(row("Client secrets", sid, "Enable")), chromedp.WaitVisible(row("Client secrets", sid, "Disable")))
	waitAlert("enabled", "notice", fmt.Sprintf("Enabled the secret %s.", sid))
	if s, err := m.Server.Admin.GetSecret(bg, acct.ID, sid); err != nil || s.Disabled {
		t.Fatalf("after the enable: %+v, %v; want the secret enabled", s, err)
	}
	// The refused requests' 412s are logged by the browser as failed requests.
	p.checkLogs("412")
}
