package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// TestConsoleKeyAfterLeaving: a key whose creation is answered after the
// user left the account's page, or signed out, is not downloaded: its key
// file, the one copy of its private key, is not handed to a page or a
// user that no longer asked for it. The console says so, naming the key
// to delete, and the key is listed on the account's page; a key created
// while the page is still shown is downloaded as before.
func TestConsoleKeyAfterLeaving(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave func(p *consolePage)
	}{
		{"page left", func(p *consolePage) {
			eval[string](p, `location.hash = "#/apis"`)
			p.step("go to the APIs", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="APIs"]`)))
		}},
		{"signed out", func(p *consolePage) {
			p.step("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, m, _ := consoleTest(t)
			bg := context.Background()
			acct := consoleAccount(t, m, "nightly-report", "billing")
			p.signIn(m)
			downloads := t.TempDir()
			p.step("allow downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
					Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID})
				return err
			}))
			// The page counts the files it offers for download (download
			// in dom.js makes an object URL for each).
			eval[any](p, `(() => {
				window.offered = 0;
				const make = URL.createObjectURL;
				URL.createObjectURL = (b) => { window.offered++; return make(b); };
			})()`)
			p.openAccount(acct)

			// The browser pauses the answer to the POST …/keys until
			// told to go on; other answers go through.
			held := p.holdAnswers("*/keys", "POST")
			p.step("create a key", chromedp.Click(viewButton("Create key")))
			id := p.awaitHeld(held, "the key's creation was not held")
			keys, err := m.Server.Admin.ListKeys(bg, acct.ID)
			if err != nil || len(keys) != 1 {
				t.Fatalf("the server has %d keys (%v) before the answer was let through, want 1", len(keys), err)
			}

			tc.leave(p)
			p.release(id)
			p.waitAlert("key not downloaded", "error", "Created the key "+keys[0].ID+" of "+acct.Email+", but its page was left, shown again or signed out of")
			if n := eval[int](p, `window.offered`); n != 0 {
				t.Errorf("the page offered %d files for download, want none", n)
			}

			// The key is on the account's page, signed in (again).
			if eval[bool](p, `document.getElementById("view").hidden`) {
				p.step("sign in again", chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
					chromedp.Click(chromedp.CSS("#keyfile-form button")))
			}
			keyRow := chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//td/code[text()=%q]`, keys[0].ID)))
			p.openAccount(acct, keyRow)

			// Still on its page, a key is downloaded.
			p.step("create another key", chromedp.Click(viewButton("Create key")))
			id = p.awaitHeld(held, "the other key's creation was not held")
			p.release(id)
			p.waitAlert("key created", "notice", "Its key file was downloaded")
			if n := eval[int](p, `window.offered`); n != 1 {
				t.Errorf("the page offered %d files for download, want the other key's", n)
			}
			p.checkLogs()
		})
	}
}

// TestConsoleKeyFileURLRevokedOnPageHide: the object URL of a key file
// downloaded (which holds its private key) is revoked as the page is
// hidden, not only 10 s later: timers do not run while the browser keeps
// the page in its back/forward cache, where the URL would otherwise
// stay good for as long as the page is kept.
func TestConsoleKeyFileURLRevokedOnPageHide(t *testing.T) {
	p, m, _ := consoleTest(t)
	acct := consoleAccount(t, m, "nightly-report", "billing")
	p.signIn(m)
	downloads := t.TempDir()
	p.step("allow downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID})
		return err
	}))
	// The page notes the object URLs it makes and revokes.
	eval[any](p, `(() => {
		window.made = []; window.revoked = [];
		const make = URL.createObjectURL, revoke = URL.revokeObjectURL;
		URL.createObjectURL = (b) => { const u = make(b); window.made.push(u); return u; };
		URL.revokeObjectURL = (u) => { window.revoked.push(u); revoke(u); };
	})()`)
	p.openAccount(acct)
	p.step("create a key", chromedp.Click(viewButton("Create key")))
	p.waitAlert("key created", "notice", "Its key file was downloaded")
	state := func() (made, revoked []string) {
		t.Helper()
		got := eval[map[string][]string](p, `({made: window.made, revoked: window.revoked})`)
		return got["made"], got["revoked"]
	}
	if made, revoked := state(); len(made) != 1 || len(revoked) != 0 {
		t.Fatalf("after the download the page made object URLs %q and revoked %q, want one made and none revoked yet", made, revoked)
	}
	p.pageTransition("pagehide", true)
	if made, revoked := state(); len(revoked) != 1 || revoked[0] != made[0] {
		t.Errorf("after pagehide the page revoked %q, want the key file's %q", revoked, made)
	}
	p.checkLogs()
}
