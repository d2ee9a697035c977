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

// TestConsoleOrgProjects places, changes, moves and removes projects on an
// organization's page, as keyward org add-project and remove-project do: a
// project name the admin API refuses shows its description, the form
// keeping it; a project is placed internal; Make internal and Make not
// internal change the flag; Move (after a confirmation) puts a project in
// another organization and shows that one; Remove (after a confirmation)
// takes a project out; and removing one someone else took out meanwhile
// shows the API's refusal.
func TestConsoleOrgProjects(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	bg, sys := projectsFixture(t, m)
	// placed returns the organization the project is in and whether it is
	// internal there; "" if none.
	placed := func(project string) (string, bool) {
		t.Helper()
		po, err := m.store.GetProjectOrg(bg, project)
		if errors.Is(err, storage.ErrNotFound) {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		return po.Org, po.Internal
	}
	want := func(project, org string, internal bool) {
		t.Helper()
		if gotOrg, gotInternal := placed(project); gotOrg != org || gotInternal != internal {
			t.Fatalf("the project %s is in %q (internal %v), want %q (internal %v)", project, gotOrg, gotInternal, org, internal)
		}
	}
	projectButton := func(project, label string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//section[@id="projects"]//tr[td[1][text()=%q]]//button[text()=%q]`, project, label))
	}
	heading := func(text string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//h1[text()=%q]`, text))
	}
	step, waitAlert := p.step, p.waitAlert

	p.signIn(m)
	eval[string](p, `location.hash = "#/orgs/a.example"`)
	step("open a.example", chromedp.WaitVisible(projectButton("shop", "Make internal")))

	// A project name the API refuses, then billing, internal.
	step("place a bad name", chromedp.Click(chromedp.CSS("#place summary")), setInput("f-project-name", "Not Valid"),
		chromedp.Click(chromedp.CSS("#place-project button[type=submit]")))
	waitAlert("refused", "error", `The project "Not Valid" must be 3-30 lowercase letters, digits and hyphens`)
	if org, _ := placed("Not Valid"); org != "" || eval[string](p, `document.getElementById("f-project-name").value`) != "Not Valid" {
		t.Fatalf("after the refusal: the project is in %q, or the form lost what was typed", org)
	}
	step("place billing", setInput("f-project-name", "billing"), chromedp.Click(chromedp.ID("f-project-internal")),
		chromedp.Click(chromedp.CSS("#place-project button[type=submit]")), chromedp.WaitVisible(projectButton("billing", "Make not internal")))
	waitAlert("placed", "notice", "Placed the project billing in a.example, internal")
	p.shot("org-projects")
	want("billing", "a.example", true)

	// The internal flag, both ways.
	step("make shop internal", chromedp.Click(projectButton("shop", "Make internal")), chromedp.WaitVisible(projectButton("shop", "Make not internal")))
	waitAlert("internal", "notice", "The project shop is internal: its accounts may act only for the users of a.example.")
	want("shop", "a.example", true)
	step("make shop not internal", chromedp.Click(projectButton("shop", "Make not internal")), chromedp.WaitVisible(projectButton("shop", "Make internal")))
	waitAlert("not internal", "notice", "The project shop is no longer internal to a.example.")
	want("shop", "a.example", false)

	// Move billing to b.example, after a confirmation, keeping it internal.
	step("move billing", chromedp.SetValue(chromedp.ID("f-move-billing"), "b.example"),
		chromedp.Click(chromedp.Search(`//section[@id="projects"]//tr[td[1][text()="billing"]]//button[text()="Move"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm")))
	if msg := eval[string](p, `document.getElementById("confirm-text").textContent`); msg != "Move the project billing from a.example to b.example? It stays internal: its accounts may then act only for the users of b.example, no longer for those of a.example." {
		t.Errorf("the confirmation reads %q", msg)
	}
	step("confirm the move", confirm(), chromedp.WaitVisible(heading("b.example")), chromedp.WaitVisible(projectButton("billing", "Make not internal")))
	waitAlert("moved", "notice", "Moved the project billing from a.example to b.example.")
	want("billing", "b.example", true)

	// Remove ops; then shop, which someone else took out meanwhile.
	eval[string](p, `location.hash = "#/orgs/a.example"`)
	step("back to a.example", chromedp.WaitVisible(heading("a.example")), chromedp.WaitVisible(projectButton("ops", "Remove")))
	step("remove ops", chromedp.Click(projectButton("ops", "Remove")), confirm(), chromedp.WaitNotPresent(projectButton("ops", "Remove")))
	waitAlert("removed", "notice", "Took the project ops out of a.example.")
	want("ops", "", false)
	if err := m.Server.Admin.RemoveProject(bg, sys, "a.example", "shop"); err != nil {
		t.Fatal(err)
	}
	step("remove shop, gone meanwhile", chromedp.Click(projectButton("shop", "Remove")), confirm())
	waitAlert("gone", "error", `The project "shop" is not in the organization "a.example".`)

	evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "org.project"})
	if err != nil {
		t.Fatal(err)
	}
	byAdmin := 0
	for _, ev := range evs {
		if ev.Actor == adminKey.ClientID {
			byAdmin++
		}
	}
	if byAdmin != 4 { // billing placed, shop twice, billing moved
		t.Errorf("org.project events by the administrator: %d, want 4", byAdmin)
	}
	p.checkLogs("400", "404")
}

// TestConsoleOrgProjectsConflict: the changes of an organization's
// projects are made only to the organization as its page shows it. After
// another administrator changed it (here its blocked scopes, through the
// admin API), a move is not sent and a removal is refused by the server
// (If-Match, 412): each says nothing was done, the page shows the
// organization as it is now, and from there the change goes through.
func TestConsoleOrgProjectsConflict(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg, sys := projectsFixture(t, m)
	// in returns the organization the project is in, "" if none.
	in := func(project string) string {
		t.Helper()
		po, err := m.store.GetProjectOrg(bg, project)
		if errors.Is(err, storage.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return po.Org
	}
	// block is the other administrator's change of a.example.
	block := func(scopes ...string) {
		t.Helper()
		if _, err := m.Server.Admin.SetBlockedScopes(bg, sys, "a.example", scopes); err != nil {
			t.Fatal(err)
		}
	}
	projectButton := func(project, label string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//section[@id="projects"]//tr[td[1][text()=%q]]//button[text()=%q]`, project, label))
	}
	// shows waits for a.example's page to show the blocked scope.
	shows := func(scope string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//dd[text()=%q]`, scope))
	}
	step, waitAlert := p.step, p.waitAlert

	p.signIn(m)
	eval[string](p, `location.hash = "#/orgs/a.example"`)
	step("open a.example", chromedp.WaitVisible(projectButton("shop", "Move")))

	block("mail.send")
	step("move shop after the other change", chromedp.SetValue(chromedp.ID("f-move-shop"), "b.example"),
		chromedp.Click(projectButton("shop", "Move")), confirm())
	waitAlert("move refused", "error", "The organization a.example has changed since this page showed it: someone else changed it meanwhile, so the project shop was not moved. The page now shows a.example as it is.")
	step("the page shows a.example as it is now", chromedp.WaitVisible(shows("mail.send")))
	if org := in("shop"); org != "a.example" {
		t.Fatalf("after the refused move shop is in %q, want a.example", org)
	}
	p.shot("org-project-move-conflict")
	step("move shop again", chromedp.SetValue(chromedp.ID("f-move-shop"), "b.example"),
		chromedp.Click(projectButton("shop", "Move")), confirm(),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="b.example"]`)))
	waitAlert("moved", "notice", "Moved the project shop from a.example to b.example.")
	if org := in("shop"); org != "b.example" {
		t.Fatalf("after the move shop is in %q, want b.example", org)
	}

	eval[string](p, `location.hash = "#/orgs/a.example"`)
	step("back to a.example", chromedp.WaitVisible(projectButton("ops", "Remove")))
	block("drive.read")
	step("remove ops after the other change", chromedp.Click(projectButton("ops", "Remove")), confirm())
	waitAlert("removal refused", "error", "The organization a.example has changed since you read it (If-Match names an older version): someone else changed it meanwhile, so the project was not removed.")
	step("the page shows a.example as it is now", chromedp.WaitVisible(shows("drive.read")))
	if org := in("ops"); org != "a.example" {
		t.Fatalf("after the refused removal ops is in %q, want a.example", org)
	}
	step("remove ops again", chromedp.Click(projectButton("ops", "Remove")), confirm(), chromedp.WaitNotPresent(projectButton("ops", "Remove")))
	waitAlert("removed", "notice", "Took the project ops out of a.example.")
	if org := in("ops"); org != "" {
		t.Fatalf("after the removal ops is in %q, want none", org)
	}
	// The refused removal's 412 is logged by the browser as a failed request.
	p.checkLogs("412")
}

// TestConsoleOrgProjectPlaceConflict: placing a project refused because
// someone changed the organization since the page showed it (If-Match,
// 412) shows the organization as it is now, whose form is empty again:
// the error names the project entered, and whether as internal, to place
// again, as a refused change of the blocked scopes names the scopes. The
// name typed was lost.
func TestConsoleOrgProjectPlaceConflict(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg, sys := projectsFixture(t, m)
	p.signIn(m)
	eval[string](p, `location.hash = "#/orgs/a.example"`)
	p.step("open the form", chromedp.WaitVisible(chromedp.CSS("#place summary")), chromedp.Click(chromedp.CSS("#place summary")))
	if _, err := m.Server.Admin.SetBlockedScopes(bg, sys, "a.example", []string{"mail.send"}); err != nil {
		t.Fatal(err)
	}
	p.step("place billing after the other change", setInput("f-project-name", "billing"), chromedp.Click(chromedp.ID("f-project-internal")),
		chromedp.Click(chromedp.CSS("#place-project button[type=submit]")))
	p.waitAlert("placement refused", "error", "The page now shows a.example as it is. The project entered was billing, as internal: place it again from there.")
	p.step("the page shows a.example as it is now", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//dd[text()="mail.send"]`)))
	if _, err := m.store.GetProjectOrg(bg, "billing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after the refused placement billing is placed (%v)", err)
	}
	p.checkLogs("412")
}

// projectsFixture makes the organizations a.example and b.example, with
// the projects shop and ops placed in a.example, and returns the context
// and actor to change them with through the admin API.
func projectsFixture(t *testing.T, m *Main) (context.Context, admin.Actor) {
	t.Helper()
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	for _, d := range []string{"a.example", "b.example"} {
		if _, err := m.Server.Admin.CreateOrg(bg, sys, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, pr := range []string{"shop", "ops"} {
		if _, err := m.Server.Admin.PlaceProject(bg, sys, "a.example", pr, false); err != nil {
			t.Fatal(err)
		}
	}
	return bg, sys
}

// TestConsoleOrgDeleteConflict: deleting an organization is made only to
// the organization as its page shows it (If-Match, as the blocked scopes'
// form sends). After another administrator changed it (its blocked
// scopes, a project placed), the server refuses it (412): the error gives
// the server's description, the page shows the organization as it is now,
// and from there it is deleted.
func TestConsoleOrgDeleteConflict(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg, sys := projectsFixture(t, m)
	del := chromedp.Search(`//main[@id="view"]//div[@class="actions"]/button[text()="Delete"]`)
	p.signIn(m)
	for _, tc := range []struct {
		name   string
		change func() error
		shows  chromedp.Search // the page as it is now
	}{
		{"blocked scopes", func() error {
			_, err := m.Server.Admin.SetBlockedScopes(bg, sys, "a.example", []string{"mail.send"})
			return err
		}, chromedp.Search(`//main[@id="view"]//dd[text()="mail.send"]`)},
		{"a project placed", func() error {
			_, err := m.Server.Admin.PlaceProject(bg, sys, "a.example", "billing", false)
			return err
		}, chromedp.Search(`//section[@id="projects"]//td[text()="billing"]`)},
	} {
		eval[string](p, `location.hash = "#/orgs/a.example"`)
		p.step(tc.name+": open a.example", chromedp.WaitVisible(del))
		if err := tc.change(); err != nil {
			t.Fatal(err)
		}
		p.step(tc.name+": delete after the other change", chromedp.Click(del), confirm())
		p.waitAlert(tc.name+": refused", "error", "The organization a.example has changed since you read it (If-Match names an older version): "+
			"someone else changed it meanwhile, so it was not deleted.")
		p.waitAlert(tc.name+": refused", "error", "The page now shows a.example as it is.")
		p.step(tc.name+": the page shows a.example as it is now", chromedp.WaitVisible(tc.shows))
		if _, err := m.store.GetOrg(bg, "a.example"); err != nil {
			t.Fatalf("%s: after the refused deletion: %v", tc.name, err)
		}
	}
	p.step("delete again", chromedp.Click(del), confirm(), chromedp.WaitVisible(chromedp.CSS("#create-org")))
	p.waitAlert("deleted", "notice", "Deleted the organization a.example.")
	if _, err := m.store.GetOrg(bg, "a.example"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after the deletion GetOrg: %v, want not found", err)
	}
	// The refused requests' 412s are logged by the browser as failed
	// requests.
	p.checkLogs("412")
}
