package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/client"
)

// FuzzAdminKeyFile: whatever the administrator key file (admin-key.json,
// --credentials) holds, the admin commands' client never panics; it
// refuses in words that carry nothing unprintable from the file (they go
// to the operator's terminal); and it accepts only a key file whose
// token_uri is the token endpoint under the base URL it then calls the
// admin API at, which is an http or https URL with a host.
func FuzzAdminKeyFile(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		f.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	file := func(tokenURI string) []byte {
		b, err := json.Marshal(map[string]string{"type": "service_account", "project_id": "keyward", "private_key_id": "k1", "private_key": keyPEM,
			"client_email": "admin@keyward.iam.test", "client_id": "123", "token_uri": tokenURI})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	for _, uri := range []string{"https://keyward.internal/token", "http://127.0.0.1:8080/token", "https://keyward.internal/iam/token",
		"https://keyward.internal/", "https://keyward.internal/token?x=1",
		"https://u:p@keyward.internal/token", "ftp://keyward.internal/token", "/token", "", "https://keyward.internal/token\x1b[31m"} {
		f.Add(file(uri))
	}
	for _, seed := range []string{``, `{}`, `null`, `{"type":"service_account"}`, "{\"type\":\"\x1b[2J\"}", "\xff\xfe"} {
		f.Add([]byte(seed))
	}
	f.Setenv("KEYWARD_SERVER", "")
	path := filepath.Join(f.TempDir(), "admin-key.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := &cobra.Command{}
		cmd.SetContext(context.Background())
		fl := clientFlags{credentials: path, noEnvCA: true, output: "json"}
		c, err := fl.client(cmd)
		if err != nil {
			if c != nil {
				t.Fatalf("refused with a client: %v", err)
			}
			if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }) {
				t.Fatalf("the refusal carries unprintable text: %q", msg)
			}
			return
		}
		kf, err := client.ParseKeyFile(data)
		if err != nil {
			t.Fatalf("the client accepted a key file ParseKeyFile refuses: %v", err)
		}
		if c.base+"/token" != kf.TokenURI {
			t.Fatalf("token_uri %q: the admin API is called at %q, not where the token endpoint is", kf.TokenURI, c.base)
		}
		if err := checkServerURL("base", c.base); err != nil {
			t.Fatalf("token_uri %q: the admin API is called at %v", kf.TokenURI, err)
		}
	})
}
