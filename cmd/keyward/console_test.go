package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/tokenstate"
)

// chromium returns the Chromium binary, or skips the test. KEYWARD_TEST_CHROMIUM
// set (to 1, or to the binary's path) makes a missing browser a failure:
// .ci/run sets it after installing Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	want := os.Getenv("KEYWARD_TEST_CHROMIUM")
	candidates := []string{"chromium", "/usr/bin/chromium"}
	if want != "" && want != "1" {
		candidates = []string{want}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if want != "" {
		t.Fatalf("KEYWARD_TEST_CHROMIUM=%s but no Chromium binary was found (tried %s)", want, strings.Join(candidates, ", "))
	}
	t.Skip("no chromium on the PATH or at /usr/bin/chromium (apt-get install chromium, or set KEYWARD_TEST_CHROMIUM); .ci/run installs it")
	return ""
}

// sharedBrowser is the headless Chromium the console tests share: the
// first test starts it, TestMain stops it. Each test has a browser context
// of its own in it (see browserSession), so none sees another's cookies,
// storage or downloads; starting one Chromium a test cost about a second
// each.
var sharedBrowser struct {
	mu     sync.Mutex
	ctx    context.Context // the browser's; nil until started, done if it died
	cancel []context.CancelFunc
	dir    string // its user data directory, named browserDirPrefix…
}

// browserDirPrefix begins the names of the shared browser's user data
// directories, in os.TempDir. stopBrowser removes the directory, as
// TestMain calls it when the tests end, failed or not; a run that a
// panicking test or -timeout ended leaves it, and removeStaleBrowserDirs
// removes it in a later run.
const browserDirPrefix = "keyward-test-chromium-"

// staleBrowserDir is the age past which a user data directory is taken to
// be left by a run that has ended: a live browser's is younger, -timeout
// being 10 minutes unless set.
const staleBrowserDir = time.Hour

// removeStaleBrowserDirs removes the user data directories in dir that
// runs of these tests left more than staleBrowserDir ago.
func removeStaleBrowserDirs(dir string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), browserDirPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > staleBrowserDir {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// sharedChromium returns the shared browser's context, starting Chromium
// if no test has, or if the one started has died.
func sharedChromium(t *testing.T) context.Context {
	t.Helper()
	b := &sharedBrowser
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx != nil && b.ctx.Err() == nil {
		return b.ctx
	}
	stopBrowserLocked()
	exe := chromium(t)
	// A user data directory of ours, not chromedp's temporary one
	// (chromedp-runner…), which a run that ends in a panic leaves behind
	// with no way to tell it from another program's.
	dir, err := os.MkdirTemp("", browserDirPrefix)
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b.dir = dir
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b.cancel = []context.CancelFunc{cancel, cancelAlloc}
	// The first Run starts the browser; it must not have a deadline, as the
	// browser lives as long as its context. Starting is bounded all the same.
	if err := runBounded(ctx, 60*time.Second); err != nil {
		stopBrowserLocked()
		t.Fatalf("start chromium: %v", err)
	}
	b.ctx = ctx
	return ctx
}

// runBounded runs nothing in ctx, which makes chromedp start what ctx
// stands for (the browser, or a tab), and waits at most d for it.
func runBounded(ctx context.Context, d time.Duration) error {
	started := make(chan error, 1)
	go func() {
		_, err := chromedp.Run(ctx, chromedp.Func(func(context.Context, *chromedp.Target) error { return nil }))
		started <- err
	}()
	select {
	case err := <-started:
		return err
	case <-time.After(d):
		return fmt.Errorf("not started within %v", d)
	}
}

// stopBrowser stops the shared browser, if a test started it.
func stopBrowser() {
	sharedBrowser.mu.Lock()
	defer sharedBrowser.mu.Unlock()
	stopBrowserLocked()
}

func stopBrowserLocked() {
	b := &sharedBrowser
	// The allocator's cancel, last, returns once Chromium has exited.
	for _, cancel := range b.cancel {
		cancel()
	}
	if b.dir != "" {
		removeBrowserDir(b.dir)
	}
	b.ctx, b.cancel, b.dir = nil, nil, ""
}

// removeBrowserDir removes a stopped browser's user data directory,
// trying again for a while: Chromium's helper processes can write in it
// for a moment after the browser exits, and RemoveAll fails with
// "directory not empty".
func removeBrowserDir(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for os.RemoveAll(dir) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// browserSession opens a tab for the test in a browser context of its own
// (a profile apart: cookies, storage, downloads) in the shared browser,
// closed when the test ends, and returns its context, and a func that
// reports what the page wrote to its console. Start the test's server
// first: cleanups run last first, so the tab is closed before the server
// stops, whose Shutdown otherwise waits 5 s for a connection Chromium
// opened ahead of a request it never sent.
func browserSession(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(sharedChromium(t), chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := runBounded(ctx, 60*time.Second); err != nil {
		t.Fatalf("open a tab in chromium: %v", err)
	}

	var (
		mu   sync.Mutex
		logs []string
	)
	consoleCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	msgs := chromedp.Console(consoleCtx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			mu.Lock()
			logs = append(logs, m.String())
			mu.Unlock()
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(logs)
	}
}

// consolePage is a browser tab on the console of a test server.
type consolePage struct {
	t    *testing.T
	ctx  context.Context
	logs func() []string
}

// step runs actions with a deadline, so no wait hangs the test.
func (p *consolePage) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\nalert: %q\nconsole: %q", name, err, p.alert(), p.logs())
	}
}

// eval evaluates a JavaScript expression, with a deadline.
func eval[T any](p *consolePage, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitAlert waits for the alert area to show, as class (error or notice),
// text containing want.
func (p *consolePage) waitAlert(name, class, want string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	expr := fmt.Sprintf(`(() => { const a = document.getElementById("alert"); return !a.hidden && a.className === %q && a.textContent.includes(%q); })()`, class, want)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
		p.t.Fatalf("%s: no %s alert with %q: %v\nalert: %q\nconsole: %q", name, class, want, err, p.alert(), p.logs())
	}
}

// alert returns the text of the console's alert area.
func (p *consolePage) alert() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("alert").textContent`))
	return s
}

// shot saves a screenshot into $KEYWARD_TEST_SCREENSHOTS, if set, for a
// look at the page.
func (p *consolePage) shot(name string) {
	p.t.Helper()
	dir := os.Getenv("KEYWARD_TEST_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644)
	}
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
}

// checkLogs fails the test for anything the page wrote to the browser
// console but the failed requests the test provoked (status codes in
// expected).
func (p *consolePage) checkLogs(expected ...string) {
	p.t.Helper()
	for _, l := range p.logs() {
		if !slices.ContainsFunc(expected, func(code string) bool { return strings.Contains(l, "status of "+code) }) {
			p.t.Errorf("browser console: %s", l)
		}
	}
}

// viewButton selects a button of the current view by its label.
func viewButton(label string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//button[normalize-space()=%q]`, label))
}

// TestConsoleBrowser drives the web console in a real browser against a
// real server: it signs in with the bootstrap administrator's key file
// (signed in the page with WebCrypto) and names who is signed in as the
// admin API's whoami does, shows an admin API error as the API wrote it,
// creates a service account, disables it, edits its scopes, token lifetime
// and authentication methods, creates a key whose key file the browser
// downloads and a secret shown once, reads the audit log, is refused
// removing its own admin scope, and checks each change on the server.
func TestConsoleBrowser(t *testing.T) {
	chromium(t) // without Chromium, skip before starting a server
	m := startServer(t)
	ctx, consoleLog := browserSession(t)
	p := &consolePage{t: t, ctx: ctx, logs: consoleLog}
	if m.AdminKeyFile == "" {
		t.Fatal("first start did not write an administrator key file")
	}
	var adminKey sakey.KeyFile
	if data, err := os.ReadFile(m.AdminKeyFile); err != nil || json.Unmarshal(data, &adminKey) != nil {
		t.Fatalf("read %s: %v", m.AdminKeyFile, err)
	}
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateAPI(bg, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}}); err != nil {
		t.Fatal(err)
	}
	downloads := t.TempDir()
	step, waitAlert, shot, button := p.step, p.waitAlert, p.shot, viewButton

	step("open the console",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID})
			return err
		}),
		chromedp.Navigate(m.Issuer+"/console"),
		chromedp.WaitVisible(chromedp.ID("keyfile-form")))

	// A bad token: the admin API's description, as it wrote it.
	step("sign in with a bad token",
		chromedp.SendKeys(chromedp.ID("token"), "not-a-token"),
		chromedp.Click(chromedp.CSS("#token-form button")))
	waitAlert("bad token", "error", "The access token is not valid.")
	shot("signin")

	step("sign in with the key file",
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")),
		chromedp.WaitVisible(chromedp.CSS("#view table")),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//a[text()=`+fmt.Sprintf("%q", adminKey.ClientEmail)+`]`)))
	// Who is signed in, as GET /v1/whoami said: the administrator, with a
	// link to its account, and its token's expiry (an hour, the account's
	// token lifetime).
	if !eval[bool](p, `performance.getEntriesByType("resource").some((e) => new URL(e.name).pathname.endsWith("/v1/whoami"))`) {
		t.Error("the page did not ask GET /v1/whoami after signing in")
	}
	if who, href := eval[string](p, `document.getElementById("who").textContent`), eval[string](p, `document.querySelector("#who a")?.getAttribute("href") ?? ""`); !strings.HasPrefix(who, "Signed in as "+adminKey.ClientEmail+" · token expires ") || !strings.HasSuffix(who, "(in 60 min)") || href != "#/accounts/"+adminKey.ClientID {
		t.Errorf("session line = %q linking to %q, want the admin's email linking to #/accounts/%s and an expiry in 60 min", who, href, adminKey.ClientID)
	}

	// An invalid name: the page shows the API's description verbatim.
	step("open the create form", chromedp.Click(chromedp.CSS("#create-account summary")))
	step("create an account with a bad name",
		chromedp.SendKeys(chromedp.ID("f-name"), "Bad_Name"),
		chromedp.SendKeys(chromedp.ID("f-project"), "billing"),
		chromedp.Click(chromedp.CSS("#create-account button[type=submit]")))
	waitAlert("bad name", "error", `The account name "Bad_Name" must be 3-30 lowercase letters, digits and hyphens, starting with a letter.`)
	shot("accounts")

	const email = "nightly-report@billing.iam.keyward.internal"
	step("create an account",
		clearInput("f-name"),
		chromedp.SendKeys(chromedp.ID("f-name"), "nightly-report"),
		chromedp.SendKeys(chromedp.ID("f-display_name"), "Nightly <b>report</b>"),
		chromedp.Click(chromedp.CSS("#create-account button[type=submit]")),
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//h1[text()=%q]`, email))))
	waitAlert("created", "notice", "Created the service account "+email)
	acct, err := m.Server.Admin.GetAccount(context.Background(), email)
	if err != nil {
		t.Fatalf("the account the console created: %v", err)
	}
	if acct.DisplayName != "Nightly <b>report</b>" || acct.Disabled {
		t.Errorf("account = %+v", acct)
	}
	// Server text is text: the display name is shown, not parsed.
	if eval[bool](p, `document.querySelector("#view b") !== null`) {
		t.Error("the display name became markup")
	}

	step("disable the account", chromedp.Click(button("Disable")), chromedp.WaitVisible(button("Enable")))
	waitAlert("disabled", "notice", "Disabled "+email)
	if acct, err = m.Server.Admin.GetAccount(context.Background(), email); err != nil || !acct.Disabled {
		t.Fatalf("after Disable: disabled = %v (%v), want true", acct.Disabled, err)
	}

	// Editing the account: the form shows it as it is; a scope no API
	// defines is refused with the API's description and changes nothing;
	// then the scopes, the token lifetime and the authentication methods
	// change together, and only they.
	save := chromedp.CSS("#edit-account button[type=submit]")
	step("open the edit form", chromedp.Click(chromedp.CSS("#edit-account summary")), chromedp.WaitVisible(chromedp.ID("f-edit-scopes")))
	form := eval[[]string](p, `["f-edit-display_name", "f-edit-scopes", "f-edit-lifetime", "f-edit-token_format"].map((id) => document.getElementById(id).value)
		.concat([...document.querySelectorAll("#edit-account input[type=checkbox]:checked")].map((c) => c.value))`)
	if want := []string{"Nightly <b>report</b>", "", "3600", "", "client_secret_basic", "client_secret_post", "private_key_jwt"}; !slices.Equal(form, want) {
		t.Errorf("the edit form holds %q, want %q", form, want)
	}
	step("save without a change", chromedp.Click(save))
	waitAlert("unchanged", "notice", "Nothing to save: the form is as the account is.")
	step("add a scope no API defines", setInput("f-edit-scopes", "orders.read nosuch.read"), chromedp.Click(save))
	waitAlert("unknown scope", "error", `The scope "nosuch.read" is not defined by any API; create the API first (keyward api create).`)
	shot("account-edit")
	if acct, err = m.Server.Admin.GetAccount(bg, email); err != nil || len(acct.Scopes) != 0 {
		t.Fatalf("after a refused edit the account's scopes are %q (%v), want none", acct.Scopes, err)
	}
	step("edit the scopes, token lifetime and authentication methods",
		setInput("f-edit-scopes", "orders.read orders.write"),
		setInput("f-edit-lifetime", "900"),
		chromedp.Click(chromedp.ID("f-edit-method-client_secret_post")),
		chromedp.Click(save),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//dd[text()="orders.read orders.write"]`)))
	waitAlert("edited", "notice", "Updated the scopes, token lifetime and authentication methods of "+email+".")
	if acct, err = m.Server.Admin.GetAccount(bg, email); err != nil || !slices.Equal(acct.Scopes, []string{"orders.read", "orders.write"}) ||
		acct.TokenLifetime != 15*time.Minute || !slices.Equal(acct.AuthMethods, []string{"client_secret_basic", "private_key_jwt"}) || acct.DisplayName != "Nightly <b>report</b>" {
		t.Fatalf("after the edit: scopes %q, lifetime %v, methods %q, display name %q (%v)", acct.Scopes, acct.TokenLifetime, acct.AuthMethods, acct.DisplayName, err)
	}
	updates, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "account.update"})
	if err != nil || len(updates) != 1 || updates[0].Actor != adminKey.ClientID || !slices.Equal(slices.Sorted(maps.Keys(updates[0].Data)), []string{"auth_methods", "scopes", "token_lifetime_seconds"}) {
		t.Errorf("account.update events: %+v (%v), want one by the admin changing the scopes, lifetime and methods only", updates, err)
	}
	shot("account-edited")

	step("create a key", chromedp.Click(button("Create key")))
	waitAlert("key created", "notice", "Created the key")
	keys, err := m.Server.Admin.ListKeys(context.Background(), acct.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys after Create key: %d (%v), want 1", len(keys), err)
	}
	kf := waitKeyFile(t, downloads)
	if kf.PrivateKeyID != keys[0].ID || kf.ClientEmail != email || !strings.Contains(kf.PrivateKey, "BEGIN PRIVATE KEY") || kf.TokenURI != m.Issuer+"/token" {
		t.Errorf("downloaded key file: id %s email %s token_uri %s, want id %s for %s", kf.PrivateKeyID, kf.ClientEmail, kf.TokenURI, keys[0].ID, email)
	}
	step("the key is listed", chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//td/code[text()=%q]`, keys[0].ID))))

	step("create a secret", chromedp.Click(button("Create secret")), chromedp.WaitVisible(chromedp.ID("new-secret")))
	secret := eval[string](p, `document.getElementById("new-secret").value`)
	secrets, err := m.Server.Admin.ListSecrets(context.Background(), acct.ID)
	if err != nil || len(secrets) != 1 || len(secret) < 40 || !strings.HasSuffix(secret, secrets[0].Hint[len(secrets[0].Hint)-4:]) {
		t.Fatalf("after Create secret the page shows %q; the server has %+v (%v)", secret, secrets, err)
	}
	step("the secret is listed", chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//td/code[text()=%q]`, secrets[0].ID))))
	shot("account")
	step("the secret is shown once", chromedp.Click(viewButton("I have copied it")), chromedp.WaitNotPresent(chromedp.ID("new-secret")))

	// The audit log, newest first: the key just created is on top.
	// auditRequests counts the page's requests to GET /v1/audit since it
	// was last called: one a page.
	auditRequests := func() int {
		return eval[int](p, `(() => {
			const n = performance.getEntriesByType("resource").filter((e) => new URL(e.name).pathname.endsWith("/v1/audit")).length;
			performance.clearResourceTimings();
			return n;
		})()`)
	}
	auditRequests()
	step("the audit log", chromedp.Navigate(m.Issuer+"/console/#/audit"),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="Audit log"]`)))
	if n := auditRequests(); n != 1 {
		t.Errorf("the audit log's first page took %d requests, want 1", n)
	}
	newest := eval[[]string](p, `[...document.querySelectorAll("#view tbody tr:first-child td")].map((td) => td.textContent)`)
	if len(newest) < 5 || newest[2] != "secret.create" || newest[4] != acct.ID {
		t.Errorf("the newest audit event shown: %q, want secret.create of %s", newest, acct.ID)
	}
	shot("audit")

	// Paging: with 60 more events there are two pages.
	for i := range 60 {
		if _, err := m.Server.Admin.SetAccountDisabled(context.Background(), admin.Actor{ID: "test"}, acct.ID, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func() []int {
		return eval[[]int](p, `[...document.querySelectorAll("#view tbody tr td:first-child")].map((td) => Number(td.textContent))`)
	}
	// showsFrom waits for the page to list top as its newest event.
	showsFrom := func(top int) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Poll[bool](fmt.Sprintf(`document.querySelector("#view tbody tr td")?.textContent === "%d"`, top))(ctx, t)
			return err
		})
	}
	last, err := strconv.Atoi(newest[0])
	if err != nil {
		t.Fatalf("the newest event's seq %q: %v", newest[0], err)
	}
	last += 60
	step("the latest", chromedp.Click(button("Show the latest")), showsFrom(last))
	page1 := seqs()
	auditRequests()
	step("older", chromedp.Click(button("Older")), showsFrom(last-50))
	page2 := seqs()
	if n := auditRequests(); n != 1 {
		t.Errorf("the older page took %d requests, want 1", n)
	}
	if len(page1) != 50 || page1[49] != last-49 || len(page2) != last-50 || page2[len(page2)-1] != 1 {
		t.Errorf("audit pages: %v, then %v; want %d events newest first, 50 a page", page1, page2, last)
	}
	if !eval[bool](p, `[...document.querySelectorAll("#view button")].find((b) => b.textContent === "Older").disabled`) {
		t.Error("Older is enabled on the oldest page")
	}
	step("newer", chromedp.Click(button("Newer")), showsFrom(last))

	// The session line leads to the administrator's own account, which
	// may not lose its own admin scope: the refusal is the API's.
	step("the own account", chromedp.Click(chromedp.CSS("#who a")),
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//h1[text()=%q]`, adminKey.ClientEmail))),
		chromedp.Click(chromedp.CSS("#edit-account summary")), chromedp.WaitVisible(chromedp.ID("f-edit-scopes")))
	step("remove the own admin scope", setInput("f-edit-scopes", admin.IntrospectScope), chromedp.Click(save))
	waitAlert("own admin scope", "error", "An administrator cannot remove keyward.admin from its own account; use another administrator account.")
	if a, err := m.Server.Admin.GetAccount(bg, adminKey.ClientID); err != nil || !slices.Equal(a.Scopes, []string{admin.AdminScope}) {
		t.Errorf("the admin's scopes after the refusal: %q (%v)", a.Scopes, err)
	}

	// Signing out revokes the token the console obtained.
	step("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	waitAlert("signed out", "notice", "Signed out; the console's access token is revoked.")
	if n := eval[int](p, `document.getElementById("view").childElementCount`); n != 0 {
		t.Errorf("after sign-out the view holds %d elements, want none", n)
	}
	if who := eval[string](p, `document.getElementById("who").textContent`); who != "" {
		t.Errorf("after sign-out the header still names the administrator: %q", who)
	}
	revoked, err := m.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.revoke"})
	if err != nil || len(revoked) != 1 || revoked[0].Actor != adminKey.ClientID || revoked[0].Data["result"] != "revoked; no token with this ID on record" {
		t.Errorf("token.revoke events after sign-out: %+v (%v), want the console's token revoked by the admin", revoked, err)
	}
	// The bad token's 401, the bad name's and unknown scope's 400 and the
	// own admin scope's 409 are logged by the browser as failed requests;
	// anything else is a fault of the page.
	p.checkLogs("401", "400", "409")
	// Those are on the audit log, and only those: signing in, loading and
	// listing refuse nothing.
	refused, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: admin.ActionRefused})
	var got []string
	for _, e := range refused {
		got = append(got, e.Data["method"]+" "+e.Data["status"]+" "+e.Data["reason"])
	}
	if want := []string{"GET 401 unknown_token", "POST 400 ", "PATCH 400 ", "PATCH 409 "}; err != nil || !slices.Equal(got, want) {
		t.Errorf("admin.refused events: %q (%v), want %q", got, err, want)
	}
}

// TestConsoleSignIn checks the ways in and out of the console: key files
// that are not usable give a clear message; an ES256 key file of another
// administrator signs in, and signing out revokes the opaque token it got
// (by the jti whoami named); a pasted token without the admin scope is
// refused with the API's description; a pasted token, JWT or opaque, is
// named by the server (whose it is, when it expires) and signs the page
// out when it expires.
func TestConsoleSignIn(t *testing.T) {
	var frozen atomic.Int64 // the server's clock, in Unix nanoseconds, when stopped
	p, m, adminKey := consoleTest(t, func(m *Main) {
		m.Now = func() time.Time {
			if n := frozen.Load(); n != 0 {
				return time.Unix(0, n)
			}
			return time.Now()
		}
	})

	// An administrator with an uploaded P-256 key, and its key file. Its
	// tokens are opaque.
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	ecAdmin, err := m.Server.Admin.CreateAccount(bg, sys, admin.AccountInput{Name: "ec-admin", Project: "keyward", Scopes: []string{admin.AdminScope}, TokenFormat: "opaque"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := func(name string, v any) string {
		path := filepath.Join(dir, name)
		data, ok := v.([]byte)
		if !ok {
			data, _ = json.Marshal(v)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ecFile := file("ec.json", uploadedKeyFile(t, m, ecAdmin))
	noKey := adminKey
	noKey.PrivateKey = ""
	wrongKey := adminKey
	wrongKey.PrivateKey = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"

	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	for _, tc := range []struct{ name, path, want string }{
		{"not JSON", file("notjson.json", []byte("hello")), "That file is not JSON"},
		{"no private key", file("nokey.json", noKey), "The key file has no private_key"},
		{"not a key", file("wrongkey.json", wrongKey), "neither an RSA key nor an ECDSA P-256 key"},
	} {
		p.step(tc.name, chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{tc.path}), chromedp.Click(chromedp.CSS("#keyfile-form button")))
		p.waitAlert(tc.name, "error", tc.want)
	}

	p.step("sign in with the ES256 key file", setInput("token", "typed-before"),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{ecFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")),
		chromedp.WaitVisible(chromedp.CSS("#view table")))
	if who := eval[string](p, `document.getElementById("who").textContent`); !strings.Contains(who, ecAdmin.Email) {
		t.Errorf("signed in as %q, want %s", who, ecAdmin.Email)
	}
	// The sign-in forms keep neither the key file nor a token typed before.
	signInForms := `[document.getElementById("keyfile").files.length, document.getElementById("token").value.length]`
	if got := eval[[]int](p, signInForms); !slices.Equal(got, []int{0, 0}) {
		t.Errorf("signed in with a key file, the sign-in forms hold %d files and a token of %d characters, want none", got[0], got[1])
	}
	p.step("filter by a project without accounts", setInput("project-filter", "billing"), chromedp.Click(viewButton("Filter")),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//p[text()="No service accounts in the project billing."]`)))
	p.step("filter by the administrators' project", setInput("project-filter", "keyward"), chromedp.Click(viewButton("Filter")),
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//a[text()=%q]`, ecAdmin.Email))))
	if n := eval[int](p, `document.querySelectorAll("#view tbody tr").length`); n != 2 {
		t.Errorf("the project keyward lists %d accounts, want 2", n)
	}
	p.step("the APIs", chromedp.Click(chromedp.CSS(`#nav a[href="#/apis"]`)),
		chromedp.Click(chromedp.Search(`//main[@id="view"]//a[text()="keyward"]`)),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//code[text()="urn:keyward:admin"]`)))
	// Addresses that name nothing say so, in the alert or the view.
	for _, tc := range []struct{ hash, alert, view string }{
		{"#/accounts/123456789012345678901", `The service account "123456789012345678901" does not exist.`, "This page could not be loaded."},
		{"#/apis/nope", `The API "nope" does not exist.`, "This page could not be loaded."},
		{"#/accounts/%E0", `The address "#/accounts/%E0" is not valid: it has a broken %-escape.`, "This page could not be loaded."},
		{"#/nothing", "", `There is no console page "#/nothing".`},
	} {
		p.step(tc.hash, chromedp.Navigate(m.Issuer+"/console/"+tc.hash),
			chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]/p[normalize-space()='%s']`, tc.view))))
		if tc.alert != "" {
			p.waitAlert(tc.hash, "error", tc.alert)
		}
	}
	p.step("back to the API", chromedp.Navigate(m.Issuer+"/console/#/apis/keyward"),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//code[text()="urn:keyward:admin"]`)))
	// The opaque token's jti, which only the server knew, revokes it.
	p.step("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("token-form")))
	p.waitAlert("signed out", "notice", "Signed out; the console's access token is revoked.")
	revoked, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "token.revoke"})
	if err != nil || len(revoked) != 1 || revoked[0].Actor != ecAdmin.ID || revoked[0].Data["result"] != "revoked" {
		t.Errorf("token.revoke events after sign-out: %+v (%v), want the console's opaque token, on record, revoked", revoked, err)
	}

	mint := func(scope string, life time.Duration) string {
		now := time.Now()
		tok, err := m.signer.Sign(kwoauth2.AccessClaims{Issuer: m.Issuer, Subject: adminKey.ClientID, ClientID: adminKey.ClientID, ClientEmail: adminKey.ClientEmail,
			Audience: kwoauth2.Audience{admin.BuiltinAPIIdentifier}, Scope: scope, IssuedAt: now.Unix(), Expiry: now.Add(life).Unix(), ID: rand.Text()})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Pasted, not typed: typing a JWT key by key takes seconds.
	p.step("paste a token without the admin scope",
		setInput("token", mint(admin.IntrospectScope, time.Hour)), chromedp.Click(chromedp.CSS("#token-form button")))
	p.waitAlert("no admin scope", "error", "The access token lacks the keyward.admin scope.")
	p.step("paste an expired token", setInput("token", mint(admin.AdminScope, -time.Minute)), chromedp.Click(chromedp.CSS("#token-form button")))
	p.waitAlert("expired token", "error", "The access token is no longer active (expired).")

	whoLine := func() string { return eval[string](p, `document.getElementById("who").textContent`) }
	p.step("paste a token",
		setInput("token", mint(admin.AdminScope, 20*time.Minute)), chromedp.Click(chromedp.CSS("#token-form button")),
		// Back on the page it was on at sign-out.
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//code[text()="urn:keyward:admin"]`)))
	if who := whoLine(); !strings.HasPrefix(who, "Signed in as "+adminKey.ClientEmail+" · token expires ") || !strings.HasSuffix(who, "(in 20 min)") {
		t.Errorf("session line = %q, want %s and an expiry in 20 min", who, adminKey.ClientEmail)
	}
	if got := eval[[]int](p, signInForms); !slices.Equal(got, []int{0, 0}) {
		t.Errorf("signed in with a pasted token, the sign-in forms hold %d files and a token of %d characters, want none", got[0], got[1])
	}
	p.step("sign out of the pasted token", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("token-form")))

	// An opaque token tells nothing of itself: whose it is and when it
	// expires come from the server. The server's clock stands still, on a
	// whole second (a token's exp has whole seconds), until the page signs
	// out: the server tells the page the token has 2 seconds left however
	// long the paste took, and takes it till then. The page records what
	// it shows as it changes: the token may expire before the test reads
	// the page.
	opaque, now := tokenstate.OpaquePrefix+rand.Text(), time.Now().Truncate(time.Second).Add(time.Second)
	frozen.Store(now.UnixNano())
	if _, err := m.store.Commit(bg, []storage.Write{{Token: &storage.TokenRecord{Hash: tokenstate.HashOpaque(opaque), ID: rand.Text(),
		AccountID: ecAdmin.ID, Subject: ecAdmin.ID, Scope: admin.AdminScope, Audience: []string{admin.BuiltinAPIIdentifier},
		IssuedAt: now, ExpiresAt: now.Add(2 * time.Second)}}}); err != nil {
		t.Fatal(err)
	}
	eval[bool](p, `window.shown = [];
		new MutationObserver(() => shown.push({who: document.getElementById("who").textContent,
			api: !document.getElementById("view").hidden && [...document.querySelectorAll("#view code")].some((c) => c.textContent === "urn:keyward:admin")}))
			.observe(document.body, {childList: true, subtree: true, characterData: true, attributes: true});
		true`)
	p.step("paste an opaque token about to expire", setInput("token", opaque), chromedp.Click(chromedp.CSS("#token-form button")))
	p.waitAlert("expiry", "error", "Your access token expired; sign in again.")
	frozen.Store(0)
	type shownState struct {
		Who string `json:"who"`
		API bool   `json:"api"`
	}
	shown := eval[[]shownState](p, `shown`)
	if !slices.ContainsFunc(shown, func(s shownState) bool {
		return s.API && strings.HasPrefix(s.Who, "Signed in as "+ecAdmin.Email+" · token expires ") && strings.HasSuffix(s.Who, "(in less than a minute)")
	}) {
		t.Errorf("the page showed %+v, want the API's page with the session line naming %s and an expiry in less than a minute", shown, ecAdmin.Email)
	}
	if eval[bool](p, `document.getElementById("signin").hidden || document.getElementById("view").childElementCount > 0`) {
		t.Error("after the token expired the page still shows the view")
	}
	p.checkLogs("401", "403", "404")
}

// signIn opens the console and signs in with the bootstrap administrator's
// key file, landing on the service accounts.
func (p *consolePage) signIn(m *Main) {
	p.t.Helper()
	p.step("sign in with the key file", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")),
		chromedp.WaitVisible(chromedp.CSS("#view table")))
}

// confirm answers the console's confirmation dialog with its Confirm
// button.
func confirm() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		return chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	})
}

// TestConsoleAPIs creates, edits and deletes an API in the console: a
// refused creation keeps what was typed; the API is created with its
// scopes and description; the edit changes its token format and
// introspectors, which then work (the introspector is told a token of the
// API is active), and its scopes (removing a granted one is refused,
// adding one works at once); and deleting it is refused, with the API's
// description, while an account holds one of its scopes, and done once
// none does.
func TestConsoleAPIs(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	step, waitAlert, button := p.step, p.waitAlert, viewButton
	p.signIn(m)

	step("the APIs", chromedp.Click(chromedp.CSS(`#nav a[href="#/apis"]`)), chromedp.WaitVisible(chromedp.CSS("#create-api")),
		chromedp.Click(chromedp.CSS("#create-api summary")), chromedp.WaitVisible(chromedp.ID("f-api-name")))
	create := chromedp.CSS("#create-api button[type=submit]")
	step("create an API with an identifier that is no URI",
		chromedp.SendKeys(chromedp.ID("f-api-name"), "orders"),
		chromedp.SendKeys(chromedp.ID("f-api-identifier"), "orders.internal"),
		chromedp.SendKeys(chromedp.ID("f-api-scopes"), "orders.read orders.write"),
		chromedp.SendKeys(chromedp.ID("f-api-description"), "Orders <i>API</i>"),
		chromedp.Click(create))
	waitAlert("bad identifier", "error", `The API identifier "orders.internal" must be an absolute URI without a fragment, such as https://orders.internal.`)
	if got := eval[[]string](p, `["f-api-name", "f-api-scopes", "f-api-description"].map((id) => document.getElementById(id).value)`); !slices.Equal(got, []string{"orders", "orders.read orders.write", "Orders <i>API</i>"}) {
		t.Errorf("after the refusal the form holds %q, want what was typed", got)
	}
	if _, err := m.store.GetAPI(bg, "orders"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after a refused creation GetAPI = %v, want not found", err)
	}
	step("create the API", setInput("f-api-identifier", "https://orders.internal"), chromedp.Click(create),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="orders"]`)))
	waitAlert("created", "notice", "Created the API orders.")
	api, err := m.store.GetAPI(bg, "orders")
	if err != nil || api.Identifier != "https://orders.internal" || !slices.Equal(api.Scopes, []string{"orders.read", "orders.write"}) ||
		api.TokenFormat != storage.TokenJWT || api.Description != "Orders <i>API</i>" || len(api.Introspectors) != 0 {
		t.Fatalf("the API the console created: %+v (%v)", api, err)
	}
	if eval[bool](p, `document.querySelector("#view i") !== null`) {
		t.Error("the description became markup")
	}

	// An API that checks tokens by introspection, and a client of it.
	ordersAPI, err := m.Server.Admin.CreateAccount(bg, sys, admin.AccountInput{Name: "orders-api", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	ordersSecret, err := m.Server.Admin.CreateSecret(bg, sys, ordersAPI.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	shop, err := m.Server.Admin.CreateAccount(bg, sys, admin.AccountInput{Name: "shop", Project: "shop", Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	shopSecret, err := m.Server.Admin.CreateSecret(bg, sys, shop.ID, 0)
	if err != nil {
		t.Fatal(err)
	}

	// The edit form shows the API as it is; an introspector that does not
	// exist is refused and the form keeps what was typed; then the token
	// format and the introspectors change, and only they.
	save := chromedp.CSS("#edit-api button[type=submit]")
	step("open the edit form", chromedp.Click(chromedp.CSS("#edit-api summary")), chromedp.WaitVisible(chromedp.ID("f-edit-api-introspectors")))
	form := eval[[]string](p, `["f-edit-api-description", "f-edit-api-token_format", "f-edit-api-introspectors", "f-edit-api-scopes"].map((id) => document.getElementById(id).value)`)
	if want := []string{"Orders <i>API</i>", "jwt", "", "orders.read orders.write"}; !slices.Equal(form, want) {
		t.Errorf("the edit form holds %q, want %q", form, want)
	}
	step("save without a change", chromedp.Click(save))
	waitAlert("unchanged", "notice", "Nothing to save: the form is as the API is.")
	const nosuch = "nosuch@shop.iam.keyward.internal"
	step("name an introspector that does not exist", setInput("f-edit-api-token_format", "opaque"), setInput("f-edit-api-introspectors", nosuch), chromedp.Click(save))
	waitAlert("unknown introspector", "error", `The service account "`+nosuch+`" does not exist.`)
	if got := eval[[]string](p, `["f-edit-api-token_format", "f-edit-api-introspectors"].map((id) => document.getElementById(id).value)`); !slices.Equal(got, []string{"opaque", nosuch}) {
		t.Errorf("after the refusal the edit form holds %q, want what was typed", got)
	}
	if api, err = m.store.GetAPI(bg, "orders"); err != nil || api.TokenFormat != storage.TokenJWT || len(api.Introspectors) != 0 {
		t.Fatalf("after a refused edit the API is %+v (%v), want it unchanged", api, err)
	}
	step("edit the token format and introspectors", setInput("f-edit-api-introspectors", ordersAPI.Email), chromedp.Click(save),
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//dd/a[text()=%q]`, ordersAPI.ID))))
	waitAlert("edited", "notice", "Updated the token format and introspectors of the API orders.")
	if api, err = m.store.GetAPI(bg, "orders"); err != nil || api.TokenFormat != storage.TokenOpaque || !slices.Equal(api.Introspectors, []string{ordersAPI.ID}) || api.Description != "Orders <i>API</i>" {
		t.Fatalf("after the edit the API is %+v (%v), want opaque tokens, introspected by %s", api, err, ordersAPI.ID)
	}
	updates, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "api.update"})
	if err != nil || len(updates) != 1 || updates[0].Actor != adminKey.ClientID || !slices.Equal(slices.Sorted(maps.Keys(updates[0].Data)), []string{"api", "introspectors", "token_format"}) {
		t.Errorf("api.update events: %+v (%v), want one by the admin changing the token format and introspectors", updates, err)
	}
	// The change works: the shop's token is opaque, and the orders API may
	// introspect it.
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}
	tok := l.token(shop.ID, shopSecret.Value, "orders.read")
	if !strings.HasPrefix(tok, tokenstate.OpaquePrefix) || !l.active(ordersAPI.ID, ordersSecret.Value, tok) {
		t.Errorf("the shop's token %.12s… is not an opaque token the orders API sees active", tok)
	}
	p.shot("api")

	// Removing a scope the shop holds is refused, naming it, and the form
	// keeps what was typed; adding one and reordering is saved, and the
	// new scope can be requested at once.
	step("remove a granted scope", chromedp.Click(chromedp.CSS("#edit-api summary")), chromedp.WaitVisible(chromedp.ID("f-edit-api-scopes")),
		setInput("f-edit-api-scopes", "orders.write"), chromedp.Click(save))
	waitAlert("scope held", "error", `The scopes orders.read cannot be removed from the API "orders" while they are granted: account `+shop.Email+` (orders.read).`)
	if got := eval[string](p, `document.getElementById("f-edit-api-scopes").value`); got != "orders.write" {
		t.Errorf("after the refusal the scopes field holds %q, want what was typed", got)
	}
	step("add a scope", setInput("f-edit-api-scopes", "orders.write orders.read orders.refund"), chromedp.Click(save),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//dd[text()="orders.write orders.read orders.refund"]`)))
	waitAlert("scopes edited", "notice", "Updated the scopes of the API orders.")
	if api, err = m.store.GetAPI(bg, "orders"); err != nil || !slices.Equal(api.Scopes, []string{"orders.write", "orders.read", "orders.refund"}) ||
		api.TokenFormat != storage.TokenOpaque || !slices.Equal(api.Introspectors, []string{ordersAPI.ID}) {
		t.Fatalf("after the scopes' edit the API is %+v (%v), want the new scopes and the rest as it was", api, err)
	}
	if updates, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "api.update"}); err != nil || len(updates) != 2 ||
		updates[1].Data["scopes"] != "orders.write orders.read orders.refund" || len(updates[1].Data) != 2 {
		t.Errorf("api.update events: %+v (%v), want a second one changing only the scopes", updates, err)
	}
	if _, err := m.Server.Admin.UpdateAccount(bg, sys, shop.ID, admin.AccountUpdate{Scopes: &[]string{"orders.read", "orders.refund"}}); err != nil {
		t.Fatal(err)
	}
	l.token(shop.ID, shopSecret.Value, "orders.refund")

	// Deleting an API whose scope an account holds is refused, as the
	// admin API says; once the account gives it up, it is deleted.
	step("delete the API while its scope is granted", chromedp.Click(button("Delete")), confirm())
	waitAlert("scopes held", "error", `The API "orders" cannot be deleted while its scopes are granted: account `+shop.Email+` (orders.read orders.refund).`)
	if _, err := m.store.GetAPI(bg, "orders"); err != nil {
		t.Fatalf("after a refused deletion: %v", err)
	}
	none := []string{}
	if _, err := m.Server.Admin.UpdateAccount(bg, sys, shop.ID, admin.AccountUpdate{Scopes: &none}); err != nil {
		t.Fatal(err)
	}
	step("delete the API", chromedp.Click(button("Delete")), confirm(),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="APIs"]`)))
	waitAlert("deleted", "notice", "Deleted the API orders.")
	if _, err := m.store.GetAPI(bg, "orders"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after Delete GetAPI = %v, want not found", err)
	}
	if eval[bool](p, `[...document.querySelectorAll("#view tbody a")].some((a) => a.textContent === "orders")`) {
		t.Error("the APIs page still lists orders")
	}
	// The bad identifier's 400, the unknown introspector's 404 and the
	// refused scope removal's and deletion's 409.
	p.checkLogs("400", "404", "409")
}

// TestConsoleAuditFilter filters the audit log in the console by account
// (a link from the account's page), action, outcome and time, and checks
// that each page lists exactly the events the store has for the filter,
// that paging keeps the filter, that the filter is kept in the address
// (Back returns to the one before) and that a filter the admin API
// refuses shows its description and changes nothing.
func TestConsoleAuditFilter(t *testing.T) {
	chromium(t) // without Chromium, skip before starting a server
	m := startServer(t)
	ctx, consoleLog := browserSession(t)
	p := &consolePage{t: t, ctx: ctx, logs: consoleLog}
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateAPI(bg, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}
	shop, shopSecret := shopClient(t, m, "shop", "orders.read")
	other, otherSecret := shopClient(t, m, "other", "orders.read")
	// 60 tokens of each account, interleaved, and one refused to the shop.
	for range 60 {
		l.token(shop.ID, shopSecret, "orders.read")
		l.token(other.ID, otherSecret, "orders.read")
	}
	if status, _ := l.post("/token", shop.ID, shopSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {admin.AdminScope}}); status != http.StatusBadRequest {
		t.Fatalf("a scope the shop may not have got %d, want 400", status)
	}
	// Then, after a moment the since filter names, two more of the shop.
	since := time.Now()
	l.token(other.ID, otherSecret, "orders.read")
	l.token(shop.ID, shopSecret, "orders.read")
	l.token(shop.ID, shopSecret, "orders.read")

	// lists waits for the audit page to be at hash and to list, newest
	// first, the page of events the store has for f; it returns how many.
	lists := func(name, hash string, f storage.AuditFilter) int {
		t.Helper()
		f.Newest, f.Limit = true, 50
		evs, err := m.store.ListAuditEvents(bg, f)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]string, len(evs))
		for i, e := range evs {
			want[i] = strconv.FormatInt(e.Seq, 10)
		}
		wantJSON, _ := json.Marshal(want)
		const seqs = `JSON.stringify([...document.querySelectorAll("#view tbody tr td:first-child")].map((td) => td.textContent))`
		expr := fmt.Sprintf(`location.hash === %q && !document.getElementById("view").hasAttribute("aria-busy") && %s === %q`, hash, seqs, wantJSON)
		if len(evs) == 0 {
			expr += ` && document.querySelector("#view p.empty")?.textContent === "No events match the filter."`
		}
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
			t.Fatalf("%s: the page at %s lists %s, want %s at %s (%v)\nalert: %q", name,
				eval[string](p, "location.hash"), eval[string](p, seqs), wantJSON, hash, err, p.alert())
		}
		return len(evs)
	}
	form := func() []string {
		return eval[[]string](p, `["action", "account", "outcome", "since", "until"].map((k) => document.getElementById("audit-" + k).value)`)
	}
	filter := chromedp.Click(chromedp.CSS("#audit-filter button[type=submit]"))

	p.signIn(m)
	// The account's page links to its events.
	byShop := "#/audit?account=" + shop.ID
	p.step("the shop's events", chromedp.Navigate(m.Issuer+"/console/#/accounts/"+shop.ID),
		chromedp.Click(chromedp.Search(`//main[@id="view"]//a[text()="Its events in the audit log"]`)))
	if n := lists("the shop's events", byShop, storage.AuditFilter{AccountID: shop.ID}); n != 50 {
		t.Errorf("the shop's first page lists %d events, want 50", n)
	}
	if got := form(); !slices.Equal(got, []string{"", shop.ID, "", "", ""}) {
		t.Errorf("the filter form holds %q, want the shop's client ID as account", got)
	}

	// Paging keeps the filter: 62 token.issued events of the shop, 50 and 12.
	issued := storage.AuditFilter{AccountID: shop.ID, Action: "token.issued"}
	byShopIssued := "#/audit?action=token.issued&account=" + shop.ID
	p.step("filter by action", chromedp.SendKeys(chromedp.ID("audit-action"), "token.issued"), filter)
	lists("the shop's tokens", byShopIssued, issued)
	page1 := eval[[][]string](p, `[...document.querySelectorAll("#view tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent))`)
	p.step("older", chromedp.Click(viewButton("Older")))
	older := issued
	older.BeforeSeq, _ = strconv.ParseInt(page1[len(page1)-1][0], 10, 64)
	if n := lists("the shop's older tokens", byShopIssued, older); n != 12 {
		t.Errorf("the shop's second page of tokens lists %d events, want 12", n)
	}
	page2 := eval[[][]string](p, `[...document.querySelectorAll("#view tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent))`)
	for _, row := range append(page1, page2...) {
		if row[2] != "token.issued" || row[4] != shop.ID {
			t.Errorf("the shop's tokens list %q", row)
		}
	}
	if !eval[bool](p, `[...document.querySelectorAll("#view button")].find((b) => b.textContent === "Older").disabled`) {
		t.Error("Older is enabled on the last page of the filter")
	}
	p.step("newer", chromedp.Click(viewButton("Newer")))
	lists("the shop's newer tokens", byShopIssued, issued)

	// By outcome, by time.
	p.step("filter by outcome", clearInput("audit-action"), setInput("audit-outcome", "failure"), filter)
	refused := storage.AuditFilter{AccountID: shop.ID, Outcome: storage.OutcomeFailure}
	if n := lists("the shop's failures", "#/audit?account="+shop.ID+"&outcome=failure", refused); n != 1 {
		t.Errorf("the shop's failures: %d events, want the refused scope's 1", n)
	}
	sinceText := since.UTC().Format(time.RFC3339Nano)
	p.step("filter by time", setInput("audit-outcome", ""), setInput("audit-since", sinceText), filter)
	if n := lists("the shop's latest events", "#/audit?account="+shop.ID+"&since="+url.QueryEscape(sinceText), storage.AuditFilter{AccountID: shop.ID, Since: &since}); n != 2 {
		t.Errorf("the shop's events since %s: %d, want its last 2 tokens", sinceText, n)
	}
	p.step("filter by an hour ago", clearInput("audit-since"), setInput("audit-until", "1h"), filter)
	lists("events until an hour ago", "#/audit?account="+shop.ID+"&until=1h", storage.AuditFilter{AccountID: shop.ID, Until: new(time.Now().Add(-time.Hour))})
	p.shot("audit-filter")

	// Refused filters: the API's description; the form keeps what was
	// typed; the address and the list stay.
	p.step("filter by a time the server cannot read", clearInput("audit-until"), setInput("audit-since", "yesterday"), filter)
	p.waitAlert("bad since", "error", "since must be an RFC 3339 time or a duration ago such as 1h.")
	p.step("filter by an account that does not exist", clearInput("audit-since"), setInput("audit-account", "nobody"), filter)
	p.waitAlert("unknown account", "error", `The service account "nobody" does not exist.`)
	if got, hash := form(), eval[string](p, "location.hash"); !slices.Equal(got, []string{"", "nobody", "", "", ""}) || hash != "#/audit?account="+shop.ID+"&until=1h" {
		t.Errorf("after refused filters the form holds %q at %s, want what was typed, at the last filter shown", got, hash)
	}

	// Back goes to the filter before, as the address kept it.
	p.step("back", chromedp.Evaluate[chromedp.Void]("history.back()"))
	lists("back", "#/audit?account="+shop.ID+"&since="+url.QueryEscape(sinceText), storage.AuditFilter{AccountID: shop.ID, Since: &since})
	if got := form(); !slices.Equal(got, []string{"", shop.ID, "", sinceText, ""}) {
		t.Errorf("back at the time filter, the form holds %q", got)
	}
	// Clear lists everything again.
	p.step("clear", chromedp.Click(viewButton("Clear")))
	lists("cleared", "#/audit", storage.AuditFilter{})
	if got := form(); !slices.Equal(got, []string{"", "", "", "", ""}) {
		t.Errorf("after Clear the form holds %q", got)
	}
	// The bad time's 400 and the unknown account's 404.
	p.checkLogs("400", "404")
}

// TestConsoleRevokeToken revokes tokens by their ID in the console: an
// opaque token from the Revoke link of its token.issued event in the
// audit log (after a confirmation, which Cancel declines), and a JWT by
// the jti typed in; introspection then reports each inactive, and the
// other tokens stay active.
func TestConsoleRevokeToken(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	for _, in := range []admin.APIInput{
		{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}, TokenFormat: storage.TokenOpaque},
		{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}},
	} {
		if _, err := m.Server.Admin.CreateAPI(bg, sys, in); err != nil {
			t.Fatal(err)
		}
	}
	client := func(name string, scopes ...string) (storage.Account, string) {
		return shopClient(t, m, name, scopes...)
	}
	shop, shopSecret := client("shop", "orders.read", "billing.read")
	inspector, inspectorSecret := client("inspector", admin.IntrospectScope)
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}
	opaque, kept, jwt := l.token(shop.ID, shopSecret, "orders.read"), l.token(shop.ID, shopSecret, "orders.read"), l.token(shop.ID, shopSecret, "billing.read")
	jti := func(tok string) string {
		t.Helper()
		status, body := l.introspect(inspector.ID, inspectorSecret, tok)
		id, _ := body["jti"].(string)
		if status != http.StatusOK || body["active"] != true || id == "" {
			t.Fatalf("introspect: %d %v, want an active token with a jti", status, body)
		}
		return id
	}
	opaqueID, keptID, jwtID := jti(opaque), jti(kept), jti(jwt)
	if !strings.HasPrefix(opaque, tokenstate.OpaquePrefix) || strings.HasPrefix(jwt, tokenstate.OpaquePrefix) || opaqueID == keptID {
		t.Fatalf("tokens %.10s… (%s), %.10s… (%s), want an opaque and a JWT of distinct IDs", opaque, opaqueID, jwt, jwtID)
	}
	revocations := func() []storage.AuditEvent {
		t.Helper()
		evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "token.revoke"})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}

	p.signIn(m)
	// The opaque token's token.issued event links to its revocation.
	p.step("the shop's tokens in the audit log", chromedp.Navigate(m.Issuer+"/console/#/audit?action=token.issued&account="+shop.ID),
		chromedp.Click(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//tr[td[contains(., %q)]]//a[text()="Revoke…"]`, "token_id="+opaqueID))),
		chromedp.WaitVisible(chromedp.ID("revoke-form")))
	if got := eval[[]string](p, `[location.hash, document.getElementById("revoke-jti").value]`); !slices.Equal(got, []string{"#/tokens/" + opaqueID, opaqueID}) {
		t.Errorf("the Revoke link of the token's event leads to %q, want the form filled in with %s", got, opaqueID)
	}
	p.step("cancel the revocation", chromedp.Click(chromedp.CSS("#revoke-form button[type=submit]")), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm-cancel")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	if n := len(revocations()); n != 0 || !l.active(inspector.ID, inspectorSecret, opaque) {
		t.Fatalf("after Cancel: %d token.revoke events, want none and the token active", n)
	}
	p.step("revoke the opaque token", chromedp.Click(chromedp.CSS("#revoke-form button[type=submit]")), confirm())
	p.waitAlert("revoked opaque", "notice", "Token ID "+strconv.Quote(opaqueID)+": The opaque token with this ID is revoked.")
	p.shot("revoke")
	if l.active(inspector.ID, inspectorSecret, opaque) || !l.active(inspector.ID, inspectorSecret, kept) {
		t.Error("after the revocation the revoked token is active or the other one is not")
	}
	if evs := revocations(); len(evs) != 1 || evs[0].Actor != adminKey.ClientID || evs[0].AccountID != shop.ID || evs[0].Data["token_id"] != opaqueID || evs[0].Data["result"] != "revoked" {
		t.Errorf("token.revoke events: %+v, want the admin revoking %s of %s, on record", evs, opaqueID, shop.ID)
	}

	// A JWT, by the jti typed in: no token of it is on record, and it is
	// revoked all the same.
	// The form of the page left is empty too (a revocation clears it):
	// marked, it is told from the one the Tokens page renders, which the
	// keys must go to.
	eval[string](p, `document.getElementById("revoke-jti").dataset.left = "1"`)
	p.step("the Tokens page", chromedp.Click(chromedp.CSS(`#nav a[href="#/tokens"]`)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`location.hash === "#/tokens" && document.getElementById("revoke-jti")?.value === "" && !document.getElementById("revoke-jti").dataset.left`)(ctx, t)
			return err
		}))
	p.step("revoke the JWT", chromedp.SendKeys(chromedp.ID("revoke-jti"), jwtID), chromedp.Click(chromedp.CSS("#revoke-form button[type=submit]")), confirm())
	p.waitAlert("revoked JWT", "notice", "Token ID "+strconv.Quote(jwtID)+": No token with this ID is on record (JWT access tokens are not stored")
	if l.active(inspector.ID, inspectorSecret, jwt) || !l.active(inspector.ID, inspectorSecret, kept) {
		t.Error("after the revocation the JWT is active or the other token is not")
	}
	if evs := revocations(); len(evs) != 2 || evs[1].Data["token_id"] != jwtID || evs[1].Data["result"] != "revoked; no token with this ID on record" {
		t.Errorf("token.revoke events: %+v, want the JWT's revocation second", evs)
	}
	if v := eval[string](p, `document.getElementById("revoke-jti").value`); v != "" {
		t.Errorf("after the revocation the form holds %q, want it empty", v)
	}
	p.checkLogs()
}

// clearInput empties an input as a user selecting all and deleting would.
func clearInput(id string) chromedp.Action[chromedp.Void] { return setInput(id, "") }

// setInput sets the value of an input as pasting into an empty one would.
func setInput(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](fmt.Sprintf(`document.getElementById(%q).value = %q`, id, value))(ctx, t)
		return err
	})
}

// waitKeyFile waits up to 20 seconds for the browser to finish downloading
// a key file into dir and returns it.
func waitKeyFile(t *testing.T, dir string) sakey.KeyFile {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) == 1 {
			var kf sakey.KeyFile
			data, err := os.ReadFile(files[0])
			if err == nil && json.Unmarshal(data, &kf) == nil {
				return kf
			}
		}
		if time.Now().After(deadline) {
			all, _ := os.ReadDir(dir)
			t.Fatalf("no key file was downloaded into %s within 20 seconds (%d entries)", dir, len(all))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConsoleRevokeAccountTokens: an account's page revokes every token
// issued to it until now, after a confirmation that says what it does not
// reach (JWTs verified by APIs themselves); its opaque token is inactive
// at once, and a token obtained after it works.
func TestConsoleRevokeAccountTokens(t *testing.T) {
	chromium(t)            // without Chromium, skip before starting a server
	var ahead atomic.Int64 // the server's clock, ahead of the real one
	m := startServer(t, func(m *Main) { m.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) } })
	ctx, consoleLog := browserSession(t)
	p := &consolePage{t: t, ctx: ctx, logs: consoleLog}
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateAPI(bg, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}, TokenFormat: storage.TokenOpaque}); err != nil {
		t.Fatal(err)
	}
	client := func(name string, scopes ...string) (storage.Account, string) {
		return shopClient(t, m, name, scopes...)
	}
	shop, shopSecret := client("shop", "orders.read")
	inspector, inspectorSecret := client("inspector", admin.IntrospectScope)
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}
	before := l.token(shop.ID, shopSecret, "orders.read")
	if !l.active(inspector.ID, inspectorSecret, before) {
		t.Fatal("the shop's token is not active to begin with")
	}

	p.signIn(m)
	p.step("open the account", chromedp.Navigate(m.Issuer+"/console/#/accounts/"+shop.ID),
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//h1[text()=%q]`, shop.Email))))
	p.step("cancel the revocation", chromedp.Click(viewButton("Revoke its tokens")), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm-cancel")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	if !l.active(inspector.ID, inspectorSecret, before) {
		t.Fatal("a cancelled revocation revoked the token")
	}
	p.step("ask to revoke", chromedp.Click(viewButton("Revoke its tokens")), chromedp.WaitVisible(chromedp.ID("confirm")))
	if msg := eval[string](p, `document.getElementById("confirm").textContent`); !strings.Contains(msg, "APIs that verify JWTs themselves accept them until they expire") {
		t.Errorf("the confirmation reads %q, want it to say what the revocation does not reach", msg)
	}
	p.step("revoke", chromedp.Click(chromedp.ID("confirm-ok")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	p.waitAlert("revoked", "notice", "Revoked the tokens issued to "+shop.Email+" until now.")
	if l.active(inspector.ID, inspectorSecret, before) {
		t.Error("the token issued before the revocation is still active")
	}
	evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "account.revoke_tokens"})
	if err != nil || len(evs) != 1 || evs[0].AccountID != shop.ID {
		t.Errorf("account.revoke_tokens events: %+v (%v), want one for the shop", evs, err)
	}
	ahead.Store(int64(2 * time.Second)) // tokens issued in the second of the revocation are revoked too
	if after := l.token(shop.ID, shopSecret, "orders.read"); !l.active(inspector.ID, inspectorSecret, after) {
		t.Error("a token obtained after the revocation is not active")
	}
}

// shopClient creates the account name in the project shop, with scopes and
// a secret, and returns it and the secret.
func shopClient(t *testing.T, m *Main, name string, scopes ...string) (storage.Account, string) {
	t.Helper()
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	a, err := m.Server.Admin.CreateAccount(bg, sys, admin.AccountInput{Name: name, Project: "shop", Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Server.Admin.CreateSecret(bg, sys, a.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a, s.Value
}

// uploadedKeyFile makes a P-256 key pair, uploads its public key to the
// account a and returns the key file of its private key.
func uploadedKeyFile(t *testing.T, m *Main, a storage.Account) sakey.KeyFile {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	key, err := m.Server.Admin.UploadKey(context.Background(), admin.Actor{ID: "test"}, a.ID, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(priv)
	return sakey.KeyFile{Type: "service_account", ClientEmail: a.Email, ClientID: a.ID, PrivateKeyID: key.ID,
		PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), TokenURI: m.Issuer + "/token"}
}

// consoleAccount creates the account name in the project project, for a
// console test to show.
func consoleAccount(t *testing.T, m *Main, name, project string) storage.Account {
	t.Helper()
	a, err := m.Server.Admin.CreateAccount(context.Background(), admin.Actor{ID: "test"}, admin.AccountInput{Name: name, Project: project})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// storedAccount is the account id as m's store holds it now.
func storedAccount(t *testing.T, m *Main, id string) storage.Account {
	t.Helper()
	a, err := m.store.GetAccount(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// accountPage waits for the page of account a: its heading.
func accountPage(a storage.Account) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//h1[text()=%q]`, a.Email)))
}

// openAccount shows the page of account a and, once it is shown, runs then.
func (p *consolePage) openAccount(a storage.Account, then ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	eval[string](p, fmt.Sprintf(`location.hash = "#/accounts/%s"`, a.ID))
	p.step("open the account", append([]chromedp.Action[chromedp.Void]{accountPage(a)}, then...)...)
}

// consoleTest starts a browser and a server for a console test, and
// returns the page, the server and its administrator's key file.
func consoleTest(t *testing.T, opts ...func(*Main)) (*consolePage, *Main, sakey.KeyFile) {
	t.Helper()
	chromium(t) // without Chromium, skip before starting a server
	m := startServer(t, opts...)
	ctx, consoleLog := browserSession(t)
	p := &consolePage{t: t, ctx: ctx, logs: consoleLog}
	var adminKey sakey.KeyFile
	if data, err := os.ReadFile(m.AdminKeyFile); err != nil || json.Unmarshal(data, &adminKey) != nil {
		t.Fatalf("read %s: %v", m.AdminKeyFile, err)
	}
	return p, m, adminKey
}
