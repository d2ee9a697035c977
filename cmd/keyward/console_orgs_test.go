package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleOrgs drives the Organizations pages: a refused creation shows
// the admin API's description and keeps what was typed; an organization is
// created with blocked scopes, which the page then replaces (but not over
// another administrator's change since it showed them); a grant to an
// account's email is refused with the API's explanation and nothing
// granted, one to its client ID is stored with its scopes, and Revoke
// (after a confirmation Cancel declines) removes it; a user is added (one
// of another domain is refused), suspended, reinstated and deleted, and
// so is the organization; an organization's projects show whether they
// are internal, and its users are paged.
func TestConsoleOrgs(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateAPI(bg, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}}); err != nil {
		t.Fatal(err)
	}
	mailer, err := m.Server.Admin.CreateAccount(bg, sys, admin.AccountInput{Name: "mailer", Project: "shop", Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	// corp.example has the shop project, internal, and 55 users: two pages.
	if _, err := m.Server.Admin.CreateOrg(bg, sys, "corp.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Server.Admin.PlaceProject(bg, sys, "corp.example", "shop", true); err != nil {
		t.Fatal(err)
	}
	var many []admin.UserInput
	for i := range 55 {
		many = append(many, admin.UserInput{Email: fmt.Sprintf("u%02d@corp.example", i)})
	}
	if _, err := m.Server.Admin.PutUsers(bg, sys, "corp.example", many); err != nil {
		t.Fatal(err)
	}
	step, waitAlert, button := p.step, p.waitAlert, viewButton
	value := func(id string) string { return eval[string](p, fmt.Sprintf(`document.getElementById(%q).value`, id)) }
	orgs := func() []string {
		t.Helper()
		all, err := m.store.ListOrgs(bg)
		if err != nil {
			t.Fatal(err)
		}
		var ds []string
		for _, o := range all {
			ds = append(ds, o.Domain)
		}
		return ds
	}
	blocked := func() []string {
		t.Helper()
		o, err := m.store.GetOrg(bg, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		return o.BlockedScopes
	}
	grants := func() []storage.Grant {
		t.Helper()
		gs, err := m.store.ListGrants(bg, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		return gs
	}
	user := func(email string) (storage.User, bool) {
		t.Helper()
		u, err := m.store.GetUser(bg, email)
		if errors.Is(err, storage.ErrNotFound) {
			return u, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return u, true
	}
	userButton := func(email, label string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//tr[td[text()=%q]]//button[text()=%q]`, email, label))
	}
	userRows := func() []string {
		return eval[[]string](p, `[...document.querySelectorAll("#view section section:last-of-type tbody tr")].map((r) => r.cells[0].textContent)`)
	}

	p.signIn(m)
	step("the Organizations page", chromedp.Click(chromedp.CSS(`#nav a[href="#/orgs"]`)),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//a[text()="corp.example"]`)))

	// The form's inputs are labelled, and not spell-checked: domains and
	// scopes are no words.
	if got, want := eval[[]string](p, `[...document.querySelectorAll("#create-org input")].map((i) =>
		[i.id, document.querySelector("label[for='" + i.id + "']")?.textContent, i.spellcheck].join(" | "))`),
		[]string{"f-org-domain | Domain | false", "f-org-blocked | Blocked scopes (space-separated) | false"}; !slices.Equal(got, want) {
		t.Errorf("the create form's inputs: %q, want %q", got, want)
	}

	// Creating: a domain the API refuses, then one with a blocked scope.
	step("create a refused organization", chromedp.Click(chromedp.CSS("#create-org summary")),
		setInput("f-org-domain", "not a domain"), chromedp.Click(chromedp.CSS("#create-org button[type=submit]")))
	waitAlert("refused domain", "error", `"not a domain" is not a domain name such as example.com.`)
	if got := orgs(); !slices.Equal(got, []string{"corp.example"}) || value("f-org-domain") != "not a domain" {
		t.Fatalf("after the refusal: organizations %q, the form holds %q; want corp.example alone and what was typed", got, value("f-org-domain"))
	}
	step("create example.com", setInput("f-org-domain", "example.com"), setInput("f-org-blocked", "orders.write"),
		chromedp.Click(chromedp.CSS("#create-org button[type=submit]")),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="example.com"]`)))
	waitAlert("created", "notice", "Created the organization example.com.")
	if got := blocked(); !slices.Equal(got, []string{"orders.write"}) {
		t.Errorf("example.com blocks %q, want orders.write", got)
	}
	step("change the blocked scopes", chromedp.Click(chromedp.CSS("#org-blocked summary")),
		setInput("f-org-edit-blocked", "orders.write billing.refund"), chromedp.Click(chromedp.CSS("#org-blocked button[type=submit]")))
	waitAlert("blocked", "notice", "example.com now blocks orders.write billing.refund for delegated access.")
	if got := blocked(); !slices.Equal(got, []string{"orders.write", "billing.refund"}) {
		t.Errorf("example.com blocks %q after the change, want orders.write billing.refund", got)
	}
	// Another administrator's change since the page showed example.com:
	// the page's is refused (If-Match, 412), nothing saved, the error
	// names what was entered, and the page shows example.com as it is
	// now; from there the change goes through.
	if _, err := m.Server.Admin.SetBlockedScopes(bg, sys, "example.com", []string{"orders.write"}); err != nil {
		t.Fatal(err)
	}
	step("change the blocked scopes after the other change", chromedp.Click(chromedp.CSS("#org-blocked summary")),
		setInput("f-org-edit-blocked", "billing.refund"), chromedp.Click(chromedp.CSS("#org-blocked button[type=submit]")))
	waitAlert("blocked refused", "error", "someone else changed it meanwhile, so nothing was saved.")
	waitAlert("blocked refused", "error", "The page now shows example.com as it is; the blocked scopes entered were: billing.refund.")
	step("the page shows example.com as it is now", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//dd[text()="orders.write"]`)))
	if got := blocked(); !slices.Equal(got, []string{"orders.write"}) {
		t.Fatalf("example.com blocks %q after the refused change, want the other administrator's orders.write", got)
	}
	// A scope typed twice is blocked once, and the notice names what was
	// saved.
	step("change the blocked scopes again", chromedp.Click(chromedp.CSS("#org-blocked summary")),
		setInput("f-org-edit-blocked", "orders.write billing.refund orders.write"), chromedp.Click(chromedp.CSS("#org-blocked button[type=submit]")))
	waitAlert("blocked again", "notice", "example.com now blocks orders.write billing.refund for delegated access.")
	if got := blocked(); !slices.Equal(got, []string{"orders.write", "billing.refund"}) {
		t.Errorf("example.com blocks %q after the change, want orders.write billing.refund", got)
	}

	// Delegation: the account's email is refused with the admin API's
	// explanation; its client ID is granted.
	step("grant to the email", chromedp.Click(chromedp.CSS("#grant summary")),
		setInput("f-grant-client", mailer.Email), setInput("f-grant-scopes", "orders.read"),
		chromedp.Click(chromedp.CSS("#grant-form button[type=submit]")))
	waitAlert("refused grant", "error", "Domain-wide delegation is granted to the service account's numeric client ID, not its email")
	if g := grants(); len(g) != 0 || value("f-grant-client") != mailer.Email || value("f-grant-scopes") != "orders.read" {
		t.Fatalf("after the refused grant: grants %+v, the form holds %q %q; want none and what was typed", g, value("f-grant-client"), value("f-grant-scopes"))
	}
	step("grant to the client ID", setInput("f-grant-client", mailer.ID), chromedp.Click(chromedp.CSS("#grant-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//a[text()=%q]`, mailer.ID))))
	waitAlert("granted", "notice", "Granted "+mailer.ID+" delegated access to orders.read for the users of example.com.")
	if g := grants(); len(g) != 1 || g[0].ClientID != mailer.ID || !slices.Equal(g[0].Scopes, []string{"orders.read"}) {
		t.Fatalf("grants after granting: %+v, want the mailer's with orders.read", g)
	}
	p.shot("org")
	step("cancel the revocation", chromedp.Click(button("Revoke")), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm-cancel")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	if len(grants()) != 1 {
		t.Fatal("a cancelled revocation removed the grant")
	}
	step("revoke the grant", chromedp.Click(button("Revoke")), confirm())
	waitAlert("revoked", "notice", "Revoked the delegation of "+mailer.ID+" in example.com.")
	if g := grants(); len(g) != 0 {
		t.Errorf("grants after the revocation: %+v, want none", g)
	}
	if evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "delegation.revoke"}); err != nil || len(evs) != 1 || evs[0].Actor != adminKey.ClientID || evs[0].AccountID != mailer.ID {
		t.Errorf("delegation.revoke events: %+v (%v), want the administrator's of the mailer", evs, err)
	}

	// Users: one of another domain is refused; one of the domain is added,
	// suspended, reinstated and deleted.
	step("add a user of another domain", setInput("f-user-email", "bob@other.example"), chromedp.Click(chromedp.CSS("#add-user button[type=submit]")))
	waitAlert("refused user", "error", "bob@other.example is not in example.com")
	if _, ok := user("bob@other.example"); ok || value("f-user-email") != "bob@other.example" {
		t.Fatalf("after the refusal: bob is in a directory, or the form holds %q", value("f-user-email"))
	}
	step("add a user", setInput("f-user-email", "Alice@example.com"), chromedp.Click(chromedp.CSS("#add-user button[type=submit]")),
		chromedp.WaitVisible(userButton("alice@example.com", "Suspend")))
	waitAlert("added", "notice", "Added alice@example.com to the directory of example.com.")
	if u, ok := user("alice@example.com"); !ok || u.Org != "example.com" || u.Suspended {
		t.Fatalf("alice after adding: %+v (%v), want an active user of example.com", u, ok)
	}
	step("suspend", chromedp.Click(userButton("alice@example.com", "Suspend")), chromedp.WaitVisible(userButton("alice@example.com", "Unsuspend")))
	waitAlert("suspended", "notice", "Suspended alice@example.com")
	if u, _ := user("alice@example.com"); !u.Suspended {
		t.Error("alice is not suspended after Suspend")
	}
	step("unsuspend", chromedp.Click(userButton("alice@example.com", "Unsuspend")), chromedp.WaitVisible(userButton("alice@example.com", "Suspend")))
	waitAlert("unsuspended", "notice", "Unsuspended alice@example.com.")
	if u, _ := user("alice@example.com"); u.Suspended {
		t.Error("alice is suspended after Unsuspend")
	}
	step("delete", chromedp.Click(userButton("alice@example.com", "Delete")), confirm())
	waitAlert("deleted", "notice", "Deleted the user alice@example.com.")
	if _, ok := user("alice@example.com"); ok {
		t.Error("alice is in the directory after Delete")
	}
	if rows := userRows(); len(rows) != 0 {
		t.Errorf("after Delete the users listed are %q, want none", rows)
	}
	// An email the admin API takes is sent, whatever the browser's own
	// idea of an email (type=email refuses a local part beyond ASCII).
	step("add a user beyond ASCII", setInput("f-user-email", "Jöhn@example.com"), chromedp.Click(chromedp.CSS("#add-user button[type=submit]")),
		chromedp.WaitVisible(userButton("jöhn@example.com", "Suspend")))
	waitAlert("added beyond ASCII", "notice", "Added jöhn@example.com to the directory of example.com.")

	// Deleting the organization, after a confirmation.
	step("delete example.com", chromedp.Click(button("Delete")), confirm(),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="Organizations"]`)))
	waitAlert("deleted org", "notice", "Deleted the organization example.com.")
	if got := orgs(); !slices.Equal(got, []string{"corp.example"}) {
		t.Errorf("organizations after deleting example.com: %q, want corp.example alone", got)
	}

	// corp.example: its internal project, and its users a page at a time.
	step("open corp.example", chromedp.Click(chromedp.Search(`//main[@id="view"]//a[text()="corp.example"]`)),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="corp.example"]`)))
	project := eval[string](p, `[...document.querySelectorAll("#view tbody tr")].filter((r) => r.cells[0].textContent === "shop").map((r) => r.cells[1].textContent).join()`)
	if project != "yes" {
		t.Errorf("the shop project's Internal reads %q, want yes", project)
	}
	if rows := userRows(); len(rows) != 50 || rows[0] != "u00@corp.example" || rows[49] != "u49@corp.example" {
		t.Fatalf("the first page lists %d users (%q…), want u00 to u49", len(rows), rows[:min(len(rows), 2)])
	}
	// A page that cannot be fetched leaves the list, and where Previous
	// and Next lead, as they were.
	eval[bool](p, `(() => { const real = window.fetch; window.fetch = () => { window.fetch = real; return Promise.reject(new TypeError("test: offline")); }; return true; })()`)
	step("next page, offline", chromedp.Click(button("Next page")))
	waitAlert("offline", "error", "Could not reach the server (test: offline).")
	if rows := userRows(); len(rows) != 50 || rows[0] != "u00@corp.example" {
		t.Errorf("after a failed Next page the page lists %d users (%q…), want the first page still", len(rows), rows[:min(len(rows), 2)])
	}
	step("next page", chromedp.Click(button("Next page")), chromedp.WaitVisible(userButton("u54@corp.example", "Suspend")))
	if rows := userRows(); !slices.Equal(rows, []string{"u50@corp.example", "u51@corp.example", "u52@corp.example", "u53@corp.example", "u54@corp.example"}) {
		t.Errorf("the second page lists %q, want u50 to u54", rows)
	}
	step("previous page", chromedp.Click(button("Previous page")), chromedp.WaitVisible(userButton("u00@corp.example", "Suspend")))
	if rows := userRows(); len(rows) != 50 || rows[49] != "u49@corp.example" {
		t.Errorf("Previous page from the second page lists %d users, want u00 to u49", len(rows))
	}
	p.checkLogs("400", "412")
}
