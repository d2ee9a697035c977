package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleUploadKey uploads public keys in the console, as keyward keys
// upload does: a pasted PEM holding a private key is refused in the page,
// nothing sent; text that is no PEM is refused with the admin API's
// description; an EC public key pasted is registered (ES256, uploaded,
// with the expiry asked for), and an RSA certificate chosen as a file
// (with a chain of more than 64 KiB) is registered with the certificate's
// expiry; the same public key again is
// refused with the API's explanation, the form keeping it.
func TestConsoleUploadKey(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	bg := context.Background()
	acct := consoleAccount(t, m, "uploader", "shop")
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSPKI, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecSPKI}))
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
	// A self-signed RSA certificate valid for ten more days, in a file.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "uploader"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rsaKey.PublicKey, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	// The file has a chain after the certificate, of more than 64 KiB,
	// as a bundle may: the admin API registers the first certificate, and
	// keyward keys upload reads files up to maxKeyFile.
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	certFile := filepath.Join(t.TempDir(), "uploader.crt")
	if err := os.WriteFile(certFile, bytes.Repeat(certPEM, 1+(64<<10)/len(certPEM)+1), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := func() []storage.Key {
		t.Helper()
		ks, err := m.store.ListKeys(bg, acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	pasted := func() string { return eval[string](p, `document.getElementById("upload-pem").value`) }
	submit := chromedp.Click(chromedp.CSS("#upload-key-form button[type=submit]"))
	step, waitAlert := p.step, p.waitAlert

	p.signIn(m)
	p.openAccount(acct, chromedp.Click(chromedp.CSS("#upload-key summary")), chromedp.WaitVisible(chromedp.ID("upload-pem")))

	// A private key is refused in the page: it is not sent. Any PEM type
	// ending in PRIVATE KEY is one, as the server and keyward keys upload
	// have it, not only those of letters, digits and spaces.
	dhPriv := "-----BEGIN X9.42 DH PRIVATE KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END X9.42 DH PRIVATE KEY-----\n"
	for _, priv := range []string{ecPriv, dhPriv} {
		step("paste a private key", setInput("upload-pem", priv), submit)
		waitAlert("private key", "error", "This holds a private key: nothing was sent.")
		if eval[bool](p, `performance.getEntriesByType("resource").some((e) => e.name.includes("/keys/upload"))`) {
			t.Fatalf("the page sent a private key to the server: %q", priv)
		}
		if ks := keys(); len(ks) != 0 || pasted() != priv {
			t.Fatalf("after the private key: %d keys, the box holds %q; want none and what was pasted", len(ks), pasted())
		}
	}

	// Days out of bounds: the admin API's description, not the browser's.
	step("upload with -1 days", setInput("upload-pem", ecPub), setInput("f-upload-days", "-1"), submit)
	waitAlert("-1 days", "error", "The lifetime must be positive, or 0 for never.")
	if ks := keys(); len(ks) != 0 {
		t.Fatalf("after the refusal: %d keys, want none", len(ks))
	}

	// Not PEM: the admin API's description.
	step("paste no PEM", setInput("upload-pem", "not a key"), submit)
	waitAlert("not PEM", "error", "The public key cannot be used: the file is not PEM")
	if ks := keys(); len(ks) != 0 || pasted() != "not a key" {
		t.Fatalf("after the refusal: %d keys, the box holds %q; want none and what was pasted", len(ks), pasted())
	}

	// The EC public key, pasted, expiring in 30 days.
	step("upload the EC key", setInput("upload-pem", ecPub), setInput("f-upload-days", "30"), submit)
	waitAlert("EC uploaded", "notice", "Uploaded the ES256 key ")
	ks := keys()
	if len(ks) != 1 || ks[0].Algorithm != "ES256" || ks[0].Origin != storage.KeyOriginUploaded || !slices.Equal(ks[0].PublicKey, ecSPKI) {
		t.Fatalf("keys after the upload: %+v, want the EC public key, uploaded", ks)
	}
	if d := time.Until(ks[0].ExpiresAt) - 30*24*time.Hour; d > time.Minute || d < -time.Minute {
		t.Errorf("the EC key expires %v, want in 30 days", ks[0].ExpiresAt)
	}
	step("the key is listed", chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//main[@id="view"]//tr[td/code[text()=%q]]/td[text()="uploaded"]`, ks[0].ID))))
	ecID := ks[0].ID

	// The certificate, chosen as a file: its notAfter is the key's expiry.
	step("upload the certificate", chromedp.Click(chromedp.CSS("#upload-key summary")),
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{certFile}),
		poll(`document.getElementById("upload-pem").value.startsWith("-----BEGIN CERTIFICATE-----")`), submit)
	waitAlert("certificate uploaded", "notice", "Uploaded the RS256 key ")
	ks = keys()
	i := slices.IndexFunc(ks, func(k storage.Key) bool { return k.ID != ecID })
	if len(ks) != 2 || i < 0 || ks[i].Algorithm != "RS256" || !slices.Equal(ks[i].Certificate, certDER) || !ks[i].ExpiresAt.Equal(notAfter) {
		t.Fatalf("keys after the certificate: %+v, want the RSA certificate's, expiring %v", ks, notAfter)
	}

	// The EC key again: the API's explanation, nothing added.
	step("upload the EC key again", chromedp.Click(chromedp.CSS("#upload-key summary")), setInput("upload-pem", ecPub), submit)
	waitAlert("duplicate", "error", "This public key is already the key "+ecID+" of "+acct.Email)
	if ks := keys(); len(ks) != 2 || pasted() != ecPub {
		t.Errorf("after the duplicate: %d keys, the box holds %q; want 2 and what was pasted", len(ks), pasted())
	}
	evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "key.upload"})
	if err != nil || len(evs) != 2 || evs[0].Actor != adminKey.ClientID || evs[0].AccountID != acct.ID {
		t.Errorf("key.upload events: %+v (%v), want two by the administrator", evs, err)
	}
	p.checkLogs("400", "409")
}

// poll waits until the JavaScript expression is true.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr)(ctx, t)
		return err
	})
}
