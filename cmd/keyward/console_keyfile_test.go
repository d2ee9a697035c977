package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/keyfile"
)

// TestConsoleSignInKeyFileForms: the console signs in with a key file
// whose private_key keyward itself reads (keyfile.ParsePrivateKey, as
// keyward token --key-file does): a PKCS #1 RSA key (RSA PRIVATE KEY, as
// openssl genrsa wrote it), PKCS #1 bytes under the PRIVATE KEY type, and
// a PKCS #8 key after an EC PARAMETERS block; and a key file without
// private_key_id, whose assertion has no kid, as keyward's client sends it.
// A SEC 1 EC key (EC PRIVATE KEY), which keyward does not read, is refused
// saying how to convert it, as keyward says.
func TestConsoleSignInKeyFileForms(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	block, _ := pem.Decode([]byte(adminKey.PrivateKey))
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	forms := []struct{ name, priv, kid string }{
		{"RSA PRIVATE KEY", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1})), adminKey.PrivateKeyID},
		{"PKCS #1 as PRIVATE KEY", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs1})), adminKey.PrivateKeyID},
		{"after EC PARAMETERS", string(params) + adminKey.PrivateKey, adminKey.PrivateKeyID},
		{"no private_key_id", adminKey.PrivateKey, ""},
	}
	// An EC key in a key file Keyward reads is PKCS #8; a SEC 1 one (EC
	// PRIVATE KEY) is refused by both.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	sec1PEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	const hint = "a SEC 1 EC key: write it as PKCS #8 with 'openssl pkey -in FILE -out NEW'"
	if _, err := keyfile.ParsePrivateKey([]byte(sec1PEM)); err == nil || !strings.Contains(err.Error(), hint) {
		t.Fatalf("keyfile.ParsePrivateKey of a SEC 1 EC key: %v, want a refusal saying %q", err, hint)
	}
	dir := t.TempDir()
	for _, f := range forms {
		name := f.name
		kf := adminKey
		kf.PrivateKey, kf.PrivateKeyID = f.priv, f.kid
		data, err := json.Marshal(kf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.ParseKeyFile(data); err != nil {
			t.Fatalf("%s: keyward does not read it either: %v", name, err)
		}
		file := filepath.Join(dir, "key.json")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p.step("sign in: "+name, chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")),
			chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{file}),
			chromedp.Click(chromedp.CSS("#keyfile-form button")),
			chromedp.WaitVisible(chromedp.CSS("#view table")))
	}
	// Refused as keyward refuses it, saying how to convert it.
	kf := adminKey
	kf.PrivateKey = sec1PEM
	data, err := json.Marshal(kf)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "sec1.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p.step("sign in: SEC 1", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{file}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")))
	p.waitAlert("SEC 1", "error", "The key file's private key (EC PRIVATE KEY) is neither a PKCS #8 nor a PKCS #1 key: it is "+hint+".")
	p.checkLogs()
}

// TestConsoleKeyFileFieldsParity: the console reads a key file's fields as
// keyward does (encoding/json into client.KeyFile): a name the same but
// for case is its field's, the last of a field's names counts, null
// leaves a field as it was, and a field of another kind refuses the file.
func TestConsoleKeyFileFieldsParity(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	files := []string{
		`{"client_email":"a@x.com","private_key":"k","private_key_id":"1"}`,
		`{"Client_Email":"a@x.com","PRIVATE_KEY":"k","Private_Key_ID":"1"}`,
		`{"client_email":"a@x.com","CLIENT_EMAIL":"b@x.com","private_key":"k","Private_Key":"l","private_key":"m"}`,
		`{"client_email":"a@x.com","private_key":"k","private_key_id":"1","PRIVATE_KEY_ID":null}`,
		"{\"client_email\":\"a@x.com\",\"private_\u212aey\":\"k\",\"note\":{\"client_email\":\"c@x.com\"}}",
		`{"client_email":"a@x.com","private_key":"k","private_key_id":5}`,
		`{"client_email":"a@x.com","private_key":"k","Client_ID":5}`,
		`{"client_email":"a@x.com","private_key":"k","type":["service_account"]}`,
		`{"client_email":"a@x.com","private_key":"k","universe_domain":5}`,
	}
	type fields struct {
		Email, Key, KeyID string
		Refused           bool
	}
	for i, f := range files {
		var want fields
		var kf client.KeyFile
		if err := keyfile.DecodeJSON([]byte(f), &kf); err != nil {
			want.Refused = true
		} else {
			want = fields{Email: kf.ClientEmail, Key: kf.PrivateKey, KeyID: kf.PrivateKeyID}
		}
		js := fmt.Sprintf(`import("./signin.js").then((m) => {
			try { const kf = m.parseKeyFile(%s); return JSON.stringify({Email: kf.client_email, Key: kf.private_key, KeyID: kf.private_key_id ?? ""}); }
			catch (e) { return JSON.stringify({Refused: true, Error: e.message}); }
		})`, jsString(f))
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		var got fields
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("file %d %s: the console reads %+v (%s), keyward %+v", i, f, got, out, want)
		}
	}
}
