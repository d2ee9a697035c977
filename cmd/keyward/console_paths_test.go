package main

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleDotSegments: a name typed or in the address that is "." or
// "..", which a browser's URL parser takes for this folder or the one
// above and drops from a request's path with the segment before it, is
// not sent to another resource than the one named (PUT
// /v1/orgs/{domain}/projects/.. would be PUT /v1/orgs/{domain}): the page
// says nothing is so named, the form keeping what was typed.
func TestConsoleDotSegments(t *testing.T) {
	p, m, _ := consoleTest(t)
	projectsFixture(t, m)
	p.signIn(m)
	eval[string](p, `location.hash = "#/orgs/a.example"`)
	p.step("open a.example", chromedp.WaitVisible(chromedp.CSS("#place summary")),
		chromedp.Click(chromedp.CSS("#place summary")), chromedp.Click(chromedp.CSS("#grant summary")))
	for _, name := range []string{"..", "."} {
		p.step("place "+name, setInput("f-project-name", name),
			chromedp.Click(chromedp.CSS("#place-project button[type=submit]")))
		p.waitAlert("place "+name, "error", fmt.Sprintf(`No project, account, API, organization or user is named %q: the request was not sent`, name))
		if v := eval[string](p, `document.getElementById("f-project-name").value`); v != name {
			t.Errorf("after the refusal the form holds %q, want %q", v, name)
		}
		p.step("grant "+name, setInput("f-grant-client", name), setInput("f-grant-scopes", "x.read"),
			chromedp.Click(chromedp.CSS("#grant-form button[type=submit]")))
		p.waitAlert("grant "+name, "error", fmt.Sprintf(`No project, account, API, organization or user is named %q: the request was not sent`, name))
	}
	for _, tc := range []struct{ hash, name string }{{"#/apis/..", ".."}, {"#/accounts/.", "."}, {"#/orgs/%2E%2E", ".."}} {
		eval[string](p, fmt.Sprintf(`location.hash = %q`, tc.hash))
		p.waitAlert("open "+tc.hash, "error", fmt.Sprintf(`is named %q: the request was not sent`, tc.name))
		p.step("open "+tc.hash, chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]/p[text()="This page could not be loaded."]`)))
	}
	p.checkLogs()
}
