package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleConfirmQuotesNames: a confirmation names what it acts on as
// the audit log shows a value (cell): quoted, as strconv.Quote quotes it,
// when it holds anything unprintable. An account's email and a user's
// that a changed database gave a bidirectional override and a line break
// were shown raw in "Delete …?", where they could turn the question around
// or pass for more of it.
func TestConsoleConfirmQuotesNames(t *testing.T) {
	p, m := oddNamesTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	acct := consoleAccount(t, m, "nightly-report", "billing")
	if _, err := m.Server.Admin.CreateOrg(bg, sys, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Server.Admin.PutUsers(bg, sys, "example.com", []admin.UserInput{{Email: "alice@example.com"}}); err != nil {
		t.Fatal(err)
	}
	const oddEmail, oddUser = "x\u202emoc.elpmaxe@report\nnightly", "alice@example.com\u202e\nbob"
	tamper(t, m.Config.DataDir,
		fmt.Sprintf(`UPDATE accounts SET email = '%s' WHERE id = '%s'`, oddEmail, acct.ID),
		fmt.Sprintf(`UPDATE org_users SET email = '%s' WHERE email = 'alice@example.com'`, oddUser))
	p.signIn(m)

	// asks clicks a button of the view and checks that the confirmation
	// begins with want, then cancels it.
	asks := func(what string, click chromedp.Action[chromedp.Void], want string) {
		t.Helper()
		p.step(what, click, chromedp.WaitVisible(chromedp.ID("confirm")))
		if msg := eval[string](p, `document.getElementById("confirm-text").textContent`); !strings.HasPrefix(msg, want) {
			t.Errorf("%s: the confirmation says %q, want it to begin %q", what, msg, want)
		}
		p.step("cancel", chromedp.Click(chromedp.ID("confirm-cancel")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	}
	eval[string](p, fmt.Sprintf(`location.hash = "#/accounts/%s"`, acct.ID))
	p.step("open the account", chromedp.WaitVisible(viewButton("Delete")))
	asks("delete the account", chromedp.Click(viewButton("Delete")), "Delete the service account "+strconv.Quote(oddEmail)+" with its keys")
	asks("revoke its tokens", chromedp.Click(viewButton("Revoke its tokens")), "Revoke every token issued to "+strconv.Quote(oddEmail)+" until now?")

	eval[string](p, `location.hash = "#/orgs/example.com"`)
	userDelete := chromedp.Search(`//main[@id="view"]//section[h2="Users"]//tbody//button[normalize-space()="Delete"]`)
	p.step("open the organization", chromedp.WaitVisible(userDelete))
	asks("delete the user", chromedp.Click(userDelete), "Delete the user "+strconv.Quote(oddUser)+" from the directory?")
	p.checkLogs()
}

// TestConsoleSignOutClosesConfirm: a confirmation open as the console
// signs out (here a 401 to another request: a revoked token) closes, as
// declined, and what it asked is not done; it stayed open over the
// sign-in form, asking to delete an account of a session that had ended.
func TestConsoleSignOutClosesConfirm(t *testing.T) {
	p, m, _ := consoleTest(t)
	acct := consoleAccount(t, m, "nightly-report", "billing")
	p.signIn(m)
	// The method and URL of each admin API request the page sends, in
	// order.
	evctx, stopEvents := context.WithCancel(p.ctx)
	defer stopEvents()
	sent := make(chan string, 64)
	events := chromedp.Events(evctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			if !strings.Contains(ev.Request.URL, "/v1/") {
				continue
			}
			select {
			case sent <- ev.Request.Method + " " + ev.Request.URL:
			case <-evctx.Done():
				return
			}
		}
	}()
	if _, err := chromedp.Call(p.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("Network.enable: %v", err)
	}
	// The browser holds the Disable before it is sent; the Delete's
	// confirmation is opened meanwhile.
	held := p.hold("*/disable", "", fetch.RequestStageRequest)
	p.openAccount(acct, chromedp.Click(viewButton("Disable")))
	id := p.awaitHeld(held, "the Disable request was not held")
	p.step("ask to delete", chromedp.Click(viewButton("Delete")), chromedp.WaitVisible(chromedp.ID("confirm")))

	body := []byte(`{"error":"invalid_token","error_description":"The access token was revoked."}`)
	if _, err := chromedp.Call(p.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: id, ResponseCode: 401,
		ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}}, Body: body}); err != nil {
		t.Fatalf("Fetch.fulfillRequest: %v", err)
	}
	p.step("signed out", chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	p.waitAlert("signed out", "error", "The access token was revoked.")
	if eval[bool](p, `document.getElementById("confirm").open`) {
		t.Error("the confirmation is still open after the console signed out")
	}
	if a := storedAccount(t, m, acct.ID); a.Disabled {
		t.Errorf("the account is disabled: %+v", a)
	}
	// Signed in again on the same page, the new session's first admin
	// API request (its whoami) comes after any the declined confirmation
	// would have sent: none is a DELETE.
	p.step("sign in again", chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")), chromedp.WaitVisible(viewButton("Delete")))
	for {
		var req string
		select {
		case req = <-sent:
		case <-time.After(20 * time.Second):
			t.Fatal("no whoami was seen sent after signing in again")
		}
		if strings.HasPrefix(req, "DELETE ") {
			t.Errorf("after the console signed out, the confirmation's DELETE was sent: %s", req)
		}
		if strings.HasSuffix(req, "/v1/whoami") {
			break
		}
	}
	storedAccount(t, m, acct.ID) // not deleted
	p.checkLogs("401")
}

// TestConsoleConfirmAnswersOnce: a confirmation opened right after
// another was answered (by a button, or by closeConfirm as the console
// signs out) resolves with its own answer, and the first with its own.
// The dialog's close event of the first comes in a later task, when the
// second is open, and was taken as the second's Cancel: its Confirm then
// did nothing, and a first closed by closeConfirm was never answered.
func TestConsoleConfirmAnswersOnce(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.signIn(m)
	// Each case answers the first confirmation, opens the second at once,
	// waits for the first's close event (not a time), confirms the second,
	// and waits for its close event, so that the next case begins with
	// none to come.
	const js = `import("./dom.js").then(async (m) => {
  const dlg = document.getElementById("confirm");
  const closeEvent = () => new Promise((r) => dlg.addEventListener("close", r, { once: true }));
  const twice = async (answerFirst) => {
    // Seen before any listener of the dialog's own (capture).
    let closed = false;
    document.addEventListener("close", () => { closed = true; }, { capture: true, once: true });
    const first = m.confirmAction("First?");
    answerFirst();
    const second = m.confirmAction("Second?");
    // A listener added now runs after the dialog's onclose, which the
    // second has set.
    if (!closed) await closeEvent();
    const a1 = await Promise.race([first, "unanswered"]);
    const open = dlg.open;
    const closedToo = closeEvent();
    document.getElementById("confirm-ok").click();
    const a2 = await second;
    await closedToo;
    return [a1, open, a2, dlg.open];
  };
  return [await twice(() => document.getElementById("confirm-ok").click()),
    await twice(() => document.getElementById("confirm-cancel").click()),
    await twice(() => m.closeConfirm())];
})`
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[][]any](js, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	for i, first := range []struct {
		how    string
		answer bool
	}{{"Confirm", true}, {"Cancel", false}, {"closeConfirm", false}} {
		// the first's answer, the second open after the first's close
		// event, the second's answer to Confirm, the dialog open after it
		want := []any{first.answer, true, true, false}
		if !slices.Equal(got[i], want) {
			t.Errorf("after %s: [first's answer, open, second's answer, open] = %v, want %v", first.how, got[i], want)
		}
	}
	p.checkLogs()
}

// TestConsoleNoticesQuoteNames: the notice shown after an action names
// what it acted on as its confirmation does (cell): quoted when
// unprintable. An account's email that a changed database gave a
// bidirectional override and a line break was shown raw in "Disabled …",
// "Revoked the tokens issued to …", "Updated the display name of …", an
// edit's "someone else changed …" and its "Reloaded …", and "Deleted the
// service account …".
func TestConsoleNoticesQuoteNames(t *testing.T) {
	p, m := oddNamesTest(t)
	acct := consoleAccount(t, m, "nightly-report", "billing")
	const oddEmail = "x\u202emoc.elpmaxe@report\nnightly"
	tamper(t, m.Config.DataDir, fmt.Sprintf(`UPDATE accounts SET email = '%s' WHERE id = '%s'`, oddEmail, acct.ID))
	p.signIn(m)
	quoted := strconv.Quote(oddEmail)

	eval[string](p, fmt.Sprintf(`location.hash = "#/accounts/%s"`, acct.ID))
	p.step("open the account", chromedp.WaitVisible(viewButton("Disable")))
	p.step("disable", chromedp.Click(viewButton("Disable")))
	p.waitAlert("disabled", "notice", "Disabled "+quoted+"; its tokens stop working at once.")
	p.step("enable", chromedp.WaitVisible(viewButton("Enable")), chromedp.Click(viewButton("Enable")))
	p.waitAlert("enabled", "notice", "Enabled "+quoted+".")
	p.step("revoke its tokens", chromedp.WaitVisible(viewButton("Disable")), chromedp.Click(viewButton("Revoke its tokens")),
		chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
	p.waitAlert("revoked", "notice", "Revoked the tokens issued to "+quoted+" until now.")
	edit := func(what, name string) {
		t.Helper()
		p.step(what, chromedp.Click(chromedp.CSS("#edit-account summary")), setInput("f-edit-display_name", name),
			chromedp.Click(chromedp.CSS("#edit-account button[type=submit]")))
	}
	edit("edit the display name", "Nightly")
	p.waitAlert("updated", "notice", "Updated the display name of "+quoted+".")
	if _, err := m.Server.Admin.SetAccountDisabled(context.Background(), admin.Actor{ID: "test"}, acct.ID, true); err != nil {
		t.Fatal(err)
	}
	edit("edit after another change", "Nightly report")
	p.waitAlert("edit refused", "error", "Nothing was saved: someone else changed "+quoted+" after this page showed it.")
	p.step("reload the account", chromedp.Click(viewButton("Reload the account")))
	p.waitAlert("reloaded", "notice", "Reloaded "+quoted+" as it is now.")
	p.step("delete", chromedp.WaitVisible(viewButton("Enable")), chromedp.Click(viewButton("Delete")),
		chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
	p.waitAlert("deleted", "notice", "Deleted the service account "+quoted+".")
	p.checkLogs("412")
}

// oddNamesTest is consoleTest for a test that gives what it made through
// the admin service odd names in the database (tamper): the store is read
// at every lookup, so the page shows what the changed database holds,
// never a name cached before the change.
func oddNamesTest(t *testing.T) (*consolePage, *Main) {
	t.Helper()
	p, m, _ := consoleTest(t, func(m *Main) { m.Config.CacheTTL = 0 })
	return p, m
}

// oddNamesFixture makes, through the admin service, the service account
// nightly-report of the project billing with a client secret, and the
// organization example.com with the user alice@example.com; it returns
// the account and the secret's ID.
func oddNamesFixture(t *testing.T, m *Main) (storage.Account, string) {
	t.Helper()
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	acct := consoleAccount(t, m, "nightly-report", "billing")
	cs, err := m.Server.Admin.CreateSecret(bg, sys, acct.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Server.Admin.CreateOrg(bg, sys, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Server.Admin.PutUsers(bg, sys, "example.com", []admin.UserInput{{Email: "alice@example.com"}}); err != nil {
		t.Fatal(err)
	}
	return acct, cs.ID
}

// TestConsoleUserAndSecretNoticesQuoteNames: the notices after a user's
// suspend, unsuspend and delete and a client secret's disable, enable and
// delete name the user or secret as their confirmation does (cell):
// quoted when unprintable. A user's email and a secret's ID that a changed
// database gave a bidirectional override and a line break were shown raw.
func TestConsoleUserAndSecretNoticesQuoteNames(t *testing.T) {
	p, m := oddNamesTest(t)
	acct, secretID := oddNamesFixture(t, m)
	const oddUser, oddSecret = "alice@example.com\u202e\nbob", "s\u202e\nx"
	tamper(t, m.Config.DataDir,
		fmt.Sprintf(`UPDATE org_users SET email = '%s' WHERE email = 'alice@example.com'`, oddUser),
		fmt.Sprintf(`UPDATE secrets SET id = '%s' WHERE id = '%s'`, oddSecret, secretID))
	p.signIn(m)

	userButton := func(label string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//section[h2="Users"]//tbody//button[normalize-space()=%q]`, label))
	}
	eval[string](p, `location.hash = "#/orgs/example.com"`)
	user := strconv.Quote(oddUser)
	p.step("suspend the user", chromedp.WaitVisible(userButton("Suspend")), chromedp.Click(userButton("Suspend")))
	p.waitAlert("suspended", "notice", "Suspended "+user+"; tokens that act for the user stop working at once.")
	p.step("unsuspend the user", chromedp.WaitVisible(userButton("Unsuspend")), chromedp.Click(userButton("Unsuspend")))
	p.waitAlert("unsuspended", "notice", "Unsuspended "+user+".")
	p.step("delete the user", chromedp.WaitVisible(userButton("Suspend")), chromedp.Click(userButton("Delete")),
		chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
	p.waitAlert("user deleted", "notice", "Deleted the user "+user+".")

	secretButton := func(label string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//section[h2="Client secrets"]//tbody//button[normalize-space()=%q]`, label))
	}
	eval[string](p, fmt.Sprintf(`location.hash = "#/accounts/%s"`, acct.ID))
	secret := strconv.Quote(oddSecret)
	p.step("disable the secret", chromedp.WaitVisible(secretButton("Disable")), chromedp.Click(secretButton("Disable")))
	p.waitAlert("secret disabled", "notice", "Disabled the secret "+secret+".")
	p.step("enable the secret", chromedp.WaitVisible(secretButton("Enable")), chromedp.Click(secretButton("Enable")))
	p.waitAlert("secret enabled", "notice", "Enabled the secret "+secret+".")
	p.step("delete the secret", chromedp.WaitVisible(secretButton("Disable")), chromedp.Click(secretButton("Delete")),
		chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
	p.waitAlert("secret deleted", "notice", "Deleted the secret "+secret+".")
	p.checkLogs()
}

// TestConsoleErrorsQuoteNames: the errors that name a stored account,
// secret or organization, and the users list's Email column, show it as
// the confirmations do (cell): quoted when unprintable. An email, secret
// ID, domain and user's email that a changed database gave a
// bidirectional override and a line break were shown raw in "The page
// now shows … as it is", "The list now shows the secret … as it is",
// "Created the key … of …" and the list.
func TestConsoleErrorsQuoteNames(t *testing.T) {
	p, m := oddNamesTest(t)
	acct, secretID := oddNamesFixture(t, m)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	const oddEmail, oddSecret, oddDomain, oddUser = "x\u202emoc.elpmaxe@report\nnightly", "s\u202e\nx",
		"ex\u202eample.com\nb", "alice@example.com\u202e\nbob"
	tamper(t, m.Config.DataDir,
		fmt.Sprintf(`UPDATE accounts SET email = '%s' WHERE id = '%s'`, oddEmail, acct.ID),
		fmt.Sprintf(`UPDATE secrets SET id = '%s' WHERE id = '%s'`, oddSecret, secretID),
		fmt.Sprintf(`UPDATE orgs SET domain = '%s' WHERE domain = 'example.com'`, oddDomain),
		fmt.Sprintf(`UPDATE org_users SET org = '%s', email = '%s' WHERE email = 'alice@example.com'`, oddDomain, oddUser))
	p.signIn(m)

	eval[string](p, fmt.Sprintf(`location.hash = "#/orgs/" + encodeURIComponent(%s)`, strconv.Quote(oddDomain)))
	p.step("open the organization", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//section[h2="Users"]//tbody//button[normalize-space()="Suspend"]`)))
	email := eval[string](p, `[...document.querySelectorAll("#view section")].find((s) => s.querySelector("h2")?.textContent === "Users").querySelector("tbody td").textContent`)
	if want := strconv.Quote(oddUser); email != want {
		t.Errorf("the users list's Email column shows %q, want %q", email, want)
	}
	if _, err := m.Server.Admin.SetBlockedScopes(bg, sys, oddDomain, []string{"orders.write"}); err != nil {
		t.Fatal(err)
	}
	p.step("change the blocked scopes after another change", chromedp.Click(chromedp.CSS("#org-blocked summary")),
		setInput("f-org-edit-blocked", "billing.refund"), chromedp.Click(chromedp.CSS("#org-blocked button[type=submit]")))
	p.waitAlert("blocked refused", "error", "The page now shows "+strconv.Quote(oddDomain)+" as it is; the blocked scopes entered were: billing.refund.")

	// A key created as its page is left.
	held := p.holdAnswers("*/keys", "POST")
	openAccount := func(then chromedp.Action[chromedp.Void]) {
		t.Helper()
		eval[string](p, fmt.Sprintf(`location.hash = "#/accounts/%s"`, acct.ID))
		p.step("open the account", then)
	}
	openAccount(chromedp.WaitVisible(viewButton("Create key")))
	p.step("create a key", chromedp.Click(viewButton("Create key")))
	id := p.awaitHeld(held, "the key's creation was not held")
	keys, err := m.Server.Admin.ListKeys(bg, acct.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("the server has %d keys (%v) before the answer was let through, want 1", len(keys), err)
	}
	eval[string](p, `location.hash = "#/apis"`)
	p.step("go to the APIs", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="APIs"]`)))
	p.release(id)
	p.waitAlert("key not downloaded", "error", "Created the key "+keys[0].ID+" of "+strconv.Quote(oddEmail)+", but its page was left")

	secretButton := func(label string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//section[h2="Client secrets"]//tbody//button[normalize-space()=%q]`, label))
	}
	openAccount(chromedp.WaitVisible(secretButton("Disable")))
	if _, err := m.Server.Admin.SetSecretDisabled(bg, sys, acct.ID, oddSecret, true); err != nil {
		t.Fatal(err)
	}
	p.step("disable the secret after another change", chromedp.Click(secretButton("Disable")))
	p.waitAlert("secret refused", "error", "The list now shows the secret "+strconv.Quote(oddSecret)+" as it is.")
	p.step("the list shows the secret disabled", chromedp.WaitVisible(secretButton("Enable")))
	if _, err := m.Server.Admin.SetAccountDisabled(bg, sys, acct.ID, true); err != nil {
		t.Fatal(err)
	}
	p.step("disable the account after another change", chromedp.Click(viewButton("Disable")))
	p.waitAlert("account refused", "error", "The page now shows "+strconv.Quote(oddEmail)+" as it is.")
	// The refused changes' 412s are logged by the browser as failed requests.
	p.checkLogs("412")
}

// TestConsoleOrgNoticesQuoteNames: the notices after placing a project,
// making it internal and not, adding a user, importing users and granting
// delegated access, and an import's refusal of an email of another
// domain, name the organization, the user added and the scopes granted
// as the confirmations do (cell): quoted when unprintable. A domain that
// a changed database gave a private-use character (U+E000, which
// strconv.IsPrint does not take and an email's domain may have) was shown
// raw, and so was a scope given a bidirectional override.
func TestConsoleOrgNoticesQuoteNames(t *testing.T) {
	p, m := oddNamesTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateOrg(bg, sys, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Server.Admin.CreateAPI(bg, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	acct := consoleAccount(t, m, "nightly-report", "billing")
	const oddDomain, oddScope = "ex\ue000ample.com", "ord\u202eers.read"
	tamper(t, m.Config.DataDir, fmt.Sprintf(`UPDATE orgs SET domain = '%s' WHERE domain = 'example.com'`, oddDomain),
		fmt.Sprintf(`UPDATE api_scopes SET scope = '%s' WHERE scope = 'orders.read'`, oddScope))
	dir := t.TempDir()
	file := func(name, text string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	p.signIn(m)
	domain := strconv.Quote(oddDomain)

	eval[string](p, fmt.Sprintf(`location.hash = "#/orgs/" + encodeURIComponent(%s)`, strconv.Quote(oddDomain)))
	p.step("open the organization", chromedp.WaitVisible(chromedp.CSS("#place summary")), chromedp.Click(chromedp.CSS("#place summary")),
		setInput("f-project-name", "billing"), chromedp.Click(chromedp.CSS("#place-project button[type=submit]")))
	p.waitAlert("placed", "notice", "Placed the project billing in "+domain+".")
	p.step("make it internal", chromedp.WaitVisible(viewButton("Make internal")), chromedp.Click(viewButton("Make internal")))
	p.waitAlert("internal", "notice", "The project billing is internal: its accounts may act only for the users of "+domain+".")
	p.step("make it not internal", chromedp.WaitVisible(viewButton("Make not internal")), chromedp.Click(viewButton("Make not internal")))
	p.waitAlert("not internal", "notice", "The project billing is no longer internal to "+domain+".")

	p.step("add a user", chromedp.WaitVisible(viewButton("Make internal")), setInput("f-user-email", "alice@"+oddDomain),
		chromedp.Click(chromedp.CSS("#add-user button[type=submit]")))
	p.waitAlert("added", "notice", "Added "+strconv.Quote("alice@"+oddDomain)+" to the directory of "+domain+".")

	p.step("open the import form", chromedp.Click(chromedp.CSS("#import summary")), chromedp.WaitVisible(chromedp.ID("f-import-file")))
	p.importFile("import another domain's user", file("other.csv", "bob@example.org\n"))
	p.waitAlert("refused", "error", "line 1: bob@example.org is not in "+domain+": a user belongs")
	p.importFile("import a user", file("users.csv", "bob@"+oddDomain+"\n"))
	p.waitAlert("imported", "notice", `Imported 1 user from "users.csv" into the directory of `+domain+".")

	p.step("grant delegated access", chromedp.Click(chromedp.CSS("#grant summary")), setInput("f-grant-client", acct.ID),
		setInput("f-grant-scopes", oddScope), chromedp.Click(chromedp.CSS("#grant-form button[type=submit]")))
	p.waitAlert("granted", "notice", "Granted "+acct.ID+" delegated access to "+strconv.Quote(oddScope)+" for the users of "+domain+".")
	p.checkLogs()
}

// TestConsoleListsQuoteNames: the lists, headings and fields that show a
// stored name show it as the audit log and the confirmations do (cell):
// quoted when unprintable, and a printable one as it is. An account's
// email and display name, a key's and a secret's ID, an API's name, an
// organization's domain and a project's name that a changed database gave
// a bidirectional override and a line break were shown raw in the lists
// of accounts, keys, secrets, APIs, organizations and projects and in the
// account's, API's and organization's heading.
func TestConsoleListsQuoteNames(t *testing.T) {
	p, m := oddNamesTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	acct := consoleAccount(t, m, "nightly-report", "billing")
	plain := consoleAccount(t, m, "weekly-report", "billing")
	kf, err := m.Server.Admin.CreateKey(bg, sys, acct.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := m.Server.Admin.CreateSecret(bg, sys, acct.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Server.Admin.CreateAPI(bg, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Server.Admin.CreateOrg(bg, sys, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Server.Admin.PlaceProject(bg, sys, "example.com", "billing", false); err != nil {
		t.Fatal(err)
	}
	keys, err := m.Server.Admin.ListKeys(bg, acct.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("the account has %d keys (%v), want 1", len(keys), err)
	}
	const oddEmail, oddDisplay, oddKey, oddSecret = "x\u202emoc.elpmaxe@report\nnightly", "Nightly\u202e\nreport", "k\u202e\nx", "s\u202e\nx"
	const oddAPI, oddDomain, oddProject = "ord\u202eers\nx", "ex\u202eample.com\nb", "bil\u202eling\nx"
	tamper(t, m.Config.DataDir,
		fmt.Sprintf(`UPDATE accounts SET email = '%s', display_name = '%s' WHERE id = '%s'`, oddEmail, oddDisplay, acct.ID),
		fmt.Sprintf(`UPDATE keys SET id = '%s' WHERE id = '%s'`, oddKey, kf.PrivateKeyID),
		fmt.Sprintf(`UPDATE secrets SET id = '%s' WHERE id = '%s'`, oddSecret, cs.ID),
		fmt.Sprintf(`UPDATE apis SET name = '%s' WHERE name = 'orders'`, oddAPI),
		fmt.Sprintf(`UPDATE api_scopes SET api_name = '%s' WHERE api_name = 'orders'`, oddAPI),
		fmt.Sprintf(`UPDATE orgs SET domain = '%s' WHERE domain = 'example.com'`, oddDomain),
		fmt.Sprintf(`UPDATE project_orgs SET org = '%s', project = '%s' WHERE project = 'billing'`, oddDomain, oddProject))
	p.signIn(m)

	// shows opens the page at hash and waits for the JavaScript expression
	// js to give want.
	shows := func(what, hash, js, want string) {
		t.Helper()
		eval[string](p, "location.hash = "+strconv.Quote(hash))
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		defer cancel()
		poll := fmt.Sprintf(`(() => { try { return (%s) === %q; } catch { return false; } })()`, js, want)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](poll)); err != nil {
			got := eval[string](p, fmt.Sprintf(`(() => { try { return String(%s); } catch (e) { return "error: " + e.message; } })()`, js))
			t.Errorf("%s shows %q, want %q", what, got, want)
		}
	}
	const h1 = `document.querySelector("#view h1").textContent`
	// row is the text of the cells of the row of the table under the
	// heading h (h1 or h2) whose cell col is what test names.
	row := func(h, col, test string) string {
		return fmt.Sprintf(`(() => { const s = [...document.querySelectorAll("#view section")].find((s) => s.querySelector("h1, h2").textContent === %q);
  const r = [...s.querySelectorAll("tbody tr")].find((r) => r.cells[%s].textContent %s);
  return r ? [...r.cells].slice(0, 2).map((c) => c.textContent).join(" | ") : "no such row"; })()`, h, col, test)
	}
	q := strconv.Quote
	shows("the list of accounts", "#/accounts", row("Service accounts", "2", "=== "+q(acct.ID)),
		q(oddEmail)+" | "+q(oddDisplay))
	shows("the list of accounts, a printable one", "#/accounts", row("Service accounts", "2", "=== "+q(plain.ID)),
		plain.Email+" | —")
	page := "#/accounts/" + acct.ID
	shows("the account's heading", page, h1, q(oddEmail))
	shows("the account's display name", page,
		`[...document.querySelectorAll("#view dt")].find((d) => d.textContent === "Display name").nextElementSibling.textContent`, q(oddDisplay))
	shows("the account's keys", page, row("Keys", "0", ".length > 0"), q(oddKey)+" | "+keys[0].Algorithm)
	shows("the account's secrets", page, row("Client secrets", "0", ".length > 0"), q(oddSecret)+" | "+cs.Hint)
	shows("the list of APIs", "#/apis", row("APIs", "1", `=== "https://orders.internal"`), q(oddAPI)+" | https://orders.internal")
	shows("the API's heading", "#/apis/"+url.PathEscape(oddAPI), h1, q(oddAPI))
	shows("the list of organizations", "#/orgs", row("Organizations", "0", ".length > 0"), q(oddDomain)+" | —")
	orgPage := "#/orgs/" + url.PathEscape(oddDomain)
	shows("the organization's heading", orgPage, h1, q(oddDomain))
	shows("the organization's projects", orgPage, row("Projects", "0", ".length > 0"), q(oddProject)+" | no")
	p.checkLogs()
}
