package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeECKeyFile writes a service-account key file, of a new P-256 key,
// whose token_uri is tokenURI, and returns its path.
func writeECKeyFile(t *testing.T, tokenURI string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{"type": "service_account", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "job@p.iam.keyward.internal", "token_uri": tokenURI})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "key.json")
	mustWriteFile(t, file, b)
	return file
}

// TestKeyFileTokenURISpeaksTLS: a key file whose token_uri is http://, of
// a server that speaks TLS there now, is said to be the key file's
// doing, with what to do about it; the error said "use an https:// URL"
// of a URL the operator never gave. Of a URL given with --server, it
// still says that.
func TestKeyFileTokenURISpeaksTLS(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	plain := "http://" + tlsSrv.Listener.Addr().String()
	keyFile := writeECKeyFile(t, plain+"/token")
	keyFileHint := "the server speaks TLS, but the token_uri of the key file " + keyFile + " is an http:// URL"
	for _, tt := range []struct {
		name    string
		args    []string
		want    []string
		notWant string
	}{
		{"token", []string{"token", "--key-file", keyFile, "--scopes", "a"},
			[]string{keyFileHint, "get a new key file"}, "use an https:// URL"},
		{"admin command", []string{"sa", "list", "--credentials", keyFile},
			[]string{keyFileHint, "get a new key file", "--server"}, "use an https:// URL"},
		{"admin command with --server", []string{"sa", "list", "--credentials", keyFile, "--server", plain},
			[]string{"the server speaks TLS: use an https:// URL"}, "token_uri"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := runCLIErrWithin(t, 20*time.Second, tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("%q says %q", err, tt.notWant)
			}
		})
	}
}
