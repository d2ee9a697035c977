package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/sakey"
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

// browserSession starts a headless Chromium for the test and returns its
// context, and a func that reports what the page wrote to its console.
func browserSession(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first Run starts the browser; it must not have a deadline, as the
	// browser lives as long as its context. Starting is bounded all the same.
	started := make(chan error, 1)
	go func() {
		_, err := chromedp.Run(ctx, chromedp.Func(func(context.Context, *chromedp.Target) error { return nil }))
		started <- err
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("chromium did not start within 60 seconds")
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

// TestConsoleBrowser drives the web console in a real browser against a
// real server: it signs in with the bootstrap administrator's key file
// (signed in the page with WebCrypto), shows an admin API error as the API
// wrote it, creates a service account, disables it and creates a key whose
// key file the browser downloads, and checks each change on the server.
func TestConsoleBrowser(t *testing.T) {
	ctx, consoleLog := browserSession(t)
	m := startServer(t)
	if m.AdminKeyFile == "" {
		t.Fatal("first start did not write an administrator key file")
	}
	var adminKey sakey.KeyFile
	if data, err := os.ReadFile(m.AdminKeyFile); err != nil || json.Unmarshal(data, &adminKey) != nil {
		t.Fatalf("read %s: %v", m.AdminKeyFile, err)
	}
	downloads := t.TempDir()

	// step runs actions with a deadline, so no wait hangs the test.
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			alert, _ := alertText(ctx)
			t.Fatalf("%s: %v\nalert: %q\nconsole: %q", name, err, alert, consoleLog())
		}
	}
	// waitAlert waits for the alert area to show text containing want.
	waitAlert := func(name, class, want string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		expr := fmt.Sprintf(`(() => { const a = document.getElementById("alert"); return !a.hidden && a.className === %q && a.textContent.includes(%q) ? a.textContent : ""; })()`, class, want)
		got, err := chromedp.Run(sctx, chromedp.Poll[string](expr))
		if err != nil {
			alert, _ := alertText(ctx)
			t.Fatalf("%s: no %s alert with %q: %v\nalert: %q\nconsole: %q", name, class, want, err, alert, consoleLog())
		}
		return got
	}
	// shot saves a screenshot into $KEYWARD_TEST_SCREENSHOTS, if set, for
	// a look at the page.
	shot := func(name string) {
		t.Helper()
		dir := os.Getenv("KEYWARD_TEST_SCREENSHOTS")
		if dir == "" {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	button := func(label string) chromedp.Search {
		return chromedp.Search(fmt.Sprintf(`//main[@id="view"]//button[normalize-space()=%q]`, label))
	}

	step("open the console",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
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
	who, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("who")))
	if err != nil || !strings.Contains(who, adminKey.ClientEmail) || !strings.Contains(who, "token expires") {
		t.Errorf("session line = %q (%v), want the admin's email and the token's expiry", who, err)
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
	if bold, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#view b") !== null`)); err != nil || bold {
		t.Errorf("the display name became markup (%v)", err)
	}

	step("disable the account", chromedp.Click(button("Disable")), chromedp.WaitVisible(button("Enable")))
	waitAlert("disabled", "notice", "Disabled "+email)
	if acct, err = m.Server.Admin.GetAccount(context.Background(), email); err != nil || !acct.Disabled {
		t.Fatalf("after Disable: disabled = %v (%v), want true", acct.Disabled, err)
	}

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
	shot("account")
	// The audit log, newest first: the key just created is on top.
	step("the audit log", chromedp.Navigate(m.Issuer+"/console/#/audit"),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="Audit log"]`)))
	newest, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#view tbody tr:first-child td")].map((td) => td.textContent)`))
	if err != nil || len(newest) < 5 || newest[2] != "key.create" || newest[4] != acct.ID {
		t.Errorf("the newest audit event shown: %q (%v), want key.create of %s", newest, err, acct.ID)
	}
	shot("audit")

	step("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("view").childElementCount`)); err != nil || n != 0 {
		t.Errorf("after sign-out the view holds %d elements (%v), want none", n, err)
	}

	for _, l := range consoleLog() {
		// The bad token's 401 is logged by the browser as a failed
		// request; anything else is a fault of the page.
		if strings.Contains(l, "401 (Unauthorized)") || strings.Contains(l, "400 (Bad Request)") {
			continue
		}
		t.Errorf("browser console: %s", l)
	}
}

// clearInput empties an input as a user selecting all and deleting would.
func clearInput(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](fmt.Sprintf(`document.getElementById(%q).value = ""`, id))(ctx, t)
		return err
	})
}

// alertText returns the text of the console's alert area.
func alertText(ctx context.Context) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(sctx, chromedp.Evaluate[string](`document.getElementById("alert").textContent`))
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
