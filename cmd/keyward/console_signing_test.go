package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/discovery"
	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleSigningKeys: the Signing keys page lists the server's keys
// with their states, and Rotate now, after a confirmation that says what
// rotation does (Cancel declines it), makes the next key sign at once: the
// store's current key is the former next one, tokens issued afterwards
// carry its kid, the former current key is retired and still in the JWKS,
// and the rotation is audited as the administrator's.
func TestConsoleSigningKeys(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateAPI(bg, sys, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	shop, err := m.Server.Admin.CreateAccount(bg, sys, admin.AccountInput{Name: "shop", Project: "shop", Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := m.Server.Admin.CreateSecret(bg, sys, shop.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := &lifecycle{t: t, m: m, issuer: m.Issuer}
	kid := func() string { // of a token issued now
		t.Helper()
		tok := l.token(shop.ID, secret.Value, "orders.read")
		var hdr struct{ Kid string }
		raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		if err != nil || json.Unmarshal(raw, &hdr) != nil {
			t.Fatalf("token %.20s…: not a JWT (%v)", tok, err)
		}
		return hdr.Kid
	}
	// keys returns the stored keys' IDs by state.
	keys := func() (current, next string, retired []string) {
		t.Helper()
		ks, err := m.store.ListSigningKeys(bg)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			switch {
			case !k.RetiredAt.IsZero():
				retired = append(retired, k.ID)
			case !k.ActivatedAt.IsZero():
				current = k.ID
			default:
				next = k.ID
			}
		}
		return current, next, retired
	}
	rotations := func() []storage.AuditEvent {
		t.Helper()
		evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "signing_key.rotate"})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	cur0, next0, retired0 := keys()
	if cur0 == "" || next0 == "" || len(retired0) != 0 || kid() != cur0 {
		t.Fatalf("to begin with: current %q, next %q, retired %q, want a current key signing and a next one", cur0, next0, retired0)
	}

	p.signIn(m)
	p.step("the Signing keys page", chromedp.Click(chromedp.CSS(`#nav a[href="#/signing-keys"]`)),
		chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="Signing keys"]`)))
	rows := eval[[][]string](p, `[...document.querySelectorAll("#view tbody tr")].map((r) => [...r.cells].slice(0, 3).map((c) => c.textContent))`)
	if want := [][]string{{cur0, "ES256", "current"}, {next0, "ES256", "next"}}; !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("the page lists %q, want %q", rows, want)
	}

	p.step("cancel the rotation", chromedp.Click(viewButton("Rotate now")), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm-cancel")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	if cur, _, _ := keys(); cur != cur0 || len(rotations()) != 0 {
		t.Fatalf("after Cancel the current key is %s (%d rotations), want %s and none", cur, len(rotations()), cur0)
	}
	p.step("ask to rotate", chromedp.Click(viewButton("Rotate now")), chromedp.WaitVisible(chromedp.ID("confirm")))
	msg := eval[string](p, `document.getElementById("confirm-text").textContent`)
	for _, want := range []string{"The next key " + next0 + " signs every token from now on", "The current key " + cur0 + " is retired: it stays in the JWKS until the tokens it signed have expired"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the confirmation reads %q, want %q", msg, want)
		}
	}
	p.step("rotate", chromedp.Click(chromedp.ID("confirm-ok")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	p.waitAlert("rotated", "notice", "Rotated the signing keys: "+next0+" signs from now on.")
	p.shot("signing-keys")

	cur, next, retired := keys()
	if cur != next0 || next == "" || next == next0 || !slices.Equal(retired, []string{cur0}) {
		t.Errorf("after the rotation: current %q, next %q, retired %q, want current %s, a new next key and %s retired", cur, next, retired, next0, cur0)
	}
	if got := kid(); got != next0 {
		t.Errorf("a token issued after the rotation has kid %q, want %s", got, next0)
	}
	resp, err := http.Get(m.Issuer + discovery.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct{ Keys []struct{ Kid string } }
	err = json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	var published []string
	for _, k := range jwks.Keys {
		published = append(published, k.Kid)
	}
	if err != nil || !slices.Contains(published, cur0) || !slices.Contains(published, next0) || !slices.Contains(published, next) {
		t.Errorf("the JWKS publishes %q (%v), want the retired %s, the current and the next key", published, err, cur0)
	}
	if evs := rotations(); len(evs) != 1 || evs[0].Actor != adminKey.ClientID {
		t.Errorf("signing_key.rotate events: %+v, want one by the administrator %s", evs, adminKey.ClientID)
	}
	rows = eval[[][]string](p, `[...document.querySelectorAll("#view tbody tr")].map((r) => [...r.cells].slice(0, 3).map((c) => c.textContent))`)
	if want := [][]string{{next0, "ES256", "current"}, {next, "ES256", "next"}, {cur0, "ES256", "retired"}}; !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("after the rotation the page lists %q, want %q", rows, want)
	}
	p.checkLogs()
}
