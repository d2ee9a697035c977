package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleTLSBindingAsTyped: the account's edit form sends the TLS
// binding's value as it is, for the admin API to read: a subject DN
// ending in an escaped space (RFC 4514: CN=job\ ), which the admin API
// takes, is neither cut to CN=job\ (not a DN) when it is typed, nor when
// another field of an account bound so is changed.
func TestConsoleTLSBindingAsTyped(t *testing.T) {
	p, m, _ := consoleTest(t)
	acct := consoleAccount(t, m, "mtls", "shop")
	if _, err := m.Server.Admin.UpdateAccount(context.Background(), admin.Actor{ID: "test"}, acct.ID, admin.AccountUpdate{TLS: &storage.TLSBinding{SubjectDN: `CN=job\ `}}); err != nil {
		t.Fatal(err)
	}
	stored := func() storage.Account { return storedAccount(t, m, acct.ID) }
	save := chromedp.Click(chromedp.CSS("#edit-account button[type=submit]"))
	edit := chromedp.Click(chromedp.CSS("#edit-account summary"))
	open := accountPage(acct)

	p.signIn(m)
	eval[string](p, fmt.Sprintf(`location.hash = "#/accounts/%s"`, acct.ID))
	p.step("change the description", open, edit, setInput("f-edit-description", "nightly"), save)
	p.waitAlert("description", "notice", "Updated the description of "+acct.Email+".")
	if a := stored(); a.Description != "nightly" || a.TLS != (storage.TLSBinding{SubjectDN: `CN=job\ `}) {
		t.Fatalf("after changing the description: %q, binding %+v; want the binding as it was", a.Description, a.TLS)
	}
	p.step("bind another DN", open, edit, setInput("f-edit-tls-value", `CN=ops\ `), save)
	p.waitAlert("DN", "notice", "Updated the TLS binding of "+acct.Email+".")
	if a := stored(); a.TLS != (storage.TLSBinding{SubjectDN: `CN=ops\ `}) {
		t.Fatalf("after binding CN=ops\\ : %+v", a.TLS)
	}
	p.checkLogs()
}
