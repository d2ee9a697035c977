package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/client"
)

// FuzzParseHead: whatever an operator gives as audit verify --head,
// parseHead never panics; it accepts only a sequence number of at least 1
// and a hash of 32 bytes, and what it accepts, written back as audit
// verify prints a head (SEQ:HASH), reads as the same head; it refuses
// the rest with an error that quotes the value and says the form.
func FuzzParseHead(f *testing.F) {
	hash := bytes.Repeat([]byte{0xab}, 32)
	for _, seed := range []string{
		"1:" + hex.EncodeToString(hash), "9223372036854775807:" + strings.ToUpper(hex.EncodeToString(hash)),
		"", ":", "1:", ":" + hex.EncodeToString(hash), "0:" + hex.EncodeToString(hash), "-1:" + hex.EncodeToString(hash),
		"+7:" + hex.EncodeToString(hash), "9223372036854775808:" + hex.EncodeToString(hash),
		"1:" + hex.EncodeToString(hash)[:63], "1:" + hex.EncodeToString(hash) + "00", "1:" + hex.EncodeToString(hash)[:62] + "zz",
		"1:" + hex.EncodeToString(hash) + ":2", " 1:" + hex.EncodeToString(hash), "1 :" + hex.EncodeToString(hash),
		"1:" + hex.EncodeToString(hash) + "\n", "\x00:\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seq, h, err := parseHead(s)
		if err != nil {
			if seq != 0 || h != nil {
				t.Fatalf("refused %q with a head: %d, %x", s, seq, h)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) || !strings.Contains(err.Error(), "SEQ:HASH") {
				t.Fatalf("the refusal of %q does not quote it and say the form: %v", s, err)
			}
			return
		}
		if seq < 1 || len(h) != 32 {
			t.Fatalf("parseHead(%q) accepted sequence %d with a hash of %d bytes", s, seq, len(h))
		}
		seq2, h2, err := parseHead(fmt.Sprintf("%d:%x", seq, h))
		if err != nil || seq2 != seq || !bytes.Equal(h2, h) {
			t.Fatalf("parseHead(%q) = %d, %x, but its head as printed reads as %d, %x, %v", s, seq, h, seq2, h2, err)
		}
	})
}

// FuzzCAPool: whatever file is named as a CA bundle (--tls-client-ca,
// --ca-cert), caPool never panics; it accepts a file only if every
// certificate it begins reads, and then trusts each of them; it refuses
// in words that name the flag and the file.
func FuzzCAPool(f *testing.F) {
	cert := func(cn string) []byte {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Unix(0, 0),
			NotAfter: time.Unix(1<<32, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			f.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	a, b := cert("CA one"), cert("CA two")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x00}})
	for _, seed := range [][]byte{
		a, append(bytes.Clone(a), b...), append([]byte("# our CAs\n"), a...), append(bytes.Clone(keyPEM), a...),
		bytes.ReplaceAll(a, []byte("\n"), []byte("\r\n")),
		bytes.Clone(a[:len(a)-len("-----END CERTIFICATE-----\n")]),               // END line missing
		append(bytes.Clone(a[:40]), a[80:]...),                                   // a line damaged
		append(bytes.Clone(a[:len(a)-len("-----END CERTIFICATE-----\n")]), b...), // END line missing before the next
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}),
		keyPEM, nil, []byte("-----BEGIN CERTIFICATE-----"), []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		pool, err := caPool("--tls-client-ca", "ca.pem", data)
		if !bytes.Equal(data, in) {
			t.Fatal("caPool changed its input")
		}
		if err != nil {
			if pool != nil {
				t.Fatalf("refused with a pool: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "--tls-client-ca ca.pem") {
				t.Fatalf("the refusal does not name the flag and the file: %v", err)
			}
			return
		}
		var certs []*x509.Certificate
		for rest := data; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			if block.Type == "CERTIFICATE" {
				c, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					t.Fatalf("accepted a bundle with a certificate that does not parse: %v", err)
				}
				certs = append(certs, c)
			}
		}
		if begun := bytes.Count(data, []byte("-----BEGIN CERTIFICATE-----")); len(certs) == 0 || begun != len(certs) {
			t.Fatalf("accepted a bundle that begins %d certificates, of which %d read", begun, len(certs))
		}
		want := x509.NewCertPool()
		for _, c := range certs {
			want.AddCert(c)
		}
		if !pool.Equal(want) {
			t.Fatalf("the pool does not trust exactly the %d certificates of the bundle", len(certs))
		}
	})
}

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
