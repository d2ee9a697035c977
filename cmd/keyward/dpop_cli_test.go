package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/dpop"
)

// TestDPoPCLI is the walk-through of 'keyward token --dpop-key' and
// 'keyward dpop proof' with curl, in-process: the CLI makes a DPoP key,
// gets a token bound to it from a real server, and makes the proofs that
// an API behind verify's middleware accepts, for the request they were
// made for only.
func TestDPoPCLI(t *testing.T) {
	m := startServer(t)
	_, keyFile := googleFlowFixture(t, m)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "dpop.pem")

	var gen struct{ File, Alg, JKT string }
	if err := json.Unmarshal([]byte(runCLI(t, "dpop", "keygen", "--out", keyPath, "-o", "json")), &gen); err != nil {
		t.Fatal(err)
	}
	if gen.File != keyPath || gen.Alg != "ES256" || gen.JKT == "" {
		t.Fatalf("keygen: %+v, want file %s, alg ES256 and a thumbprint", gen, keyPath)
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}

	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	out := runCLI(t, "token", "--key-file", keyFile, "--scopes", "orders.read", "--dpop-key", keyPath, "-o", "json")
	if err := json.Unmarshal([]byte(out), &tok); err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" || tok.ExpiresIn <= 0 {
		t.Fatalf("token: %s; want token_type DPoP and expires_in", out)
	}
	if cnf, _ := tokenClaims(t, tok.AccessToken)["cnf"].(map[string]any); cnf["jkt"] != gen.JKT {
		t.Fatalf("token cnf %v, want jkt %s", cnf, gen.JKT)
	}
	// Text output, for $(...): the token alone, bound as well.
	text := runCLI(t, "token", "--key-file", keyFile, "--scopes", "orders.read", "--dpop-key", keyPath)
	raw := strings.TrimSuffix(text, "\n")
	if strings.ContainsAny(raw, " \n") {
		t.Fatalf("token text output %q, want the token on one line", text)
	}
	if cnf, _ := tokenClaims(t, raw)["cnf"].(map[string]any); cnf["jkt"] != gen.JKT {
		t.Fatalf("text token cnf %v, want jkt %s", cnf, gen.JKT)
	}

	api := thumbprintAPI(t, m.Issuer)
	ordersURL := api.URL + "/v1/orders"

	// The same key, made again elsewhere: a proof of another key.
	otherKey := filepath.Join(dir, "other.pem")
	runCLI(t, "dpop", "keygen", "--out", otherKey)

	proof := func(args ...string) string {
		return strings.TrimSuffix(runCLI(t, append([]string{"dpop", "proof"}, args...)...), "\n")
	}
	call := func(method, url, proof string) (int, string) {
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "DPoP "+raw)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var jkt string
		json.NewDecoder(resp.Body).Decode(&jkt)
		return resp.StatusCode, jkt
	}
	accepted := []struct {
		name, method, url string
		proofArgs         []string
	}{
		{"GET", "GET", ordersURL, []string{"--dpop-key", keyPath, "--url", ordersURL, "--token", raw}},
		{"POST", "POST", ordersURL, []string{"--dpop-key", keyPath, "--method", "POST", "--url", ordersURL, "--token", raw}},
		{"the query is left out", "GET", ordersURL + "?page=2", []string{"--dpop-key", keyPath, "--url", ordersURL + "?page=2", "--token", raw}},
	}
	for _, tt := range accepted {
		t.Run("accepted/"+tt.name, func(t *testing.T) {
			if code, jkt := call(tt.method, tt.url, proof(tt.proofArgs...)); code != 200 || jkt != gen.JKT {
				t.Fatalf("API: %d, jkt %q; want 200 and %s", code, jkt, gen.JKT)
			}
		})
	}
	refused := []struct {
		name, method, url string
		proofArgs         []string
	}{
		{"no --token, no ath", "GET", ordersURL, []string{"--dpop-key", keyPath, "--url", ordersURL}},
		{"another method", "POST", ordersURL, []string{"--dpop-key", keyPath, "--url", ordersURL, "--token", raw}},
		{"another URL", "GET", api.URL + "/v1/refunds", []string{"--dpop-key", keyPath, "--url", ordersURL, "--token", raw}},
		{"another key", "GET", ordersURL, []string{"--dpop-key", otherKey, "--url", ordersURL, "--token", raw}},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			if code, _ := call(tt.method, tt.url, proof(tt.proofArgs...)); code != 401 {
				t.Fatalf("API: %d, want 401", code)
			}
		})
	}
}

// TestDPoPKeygenAlgs: every key 'dpop keygen' makes signs proofs that
// dpop.Checker accepts, with the algorithm asked for, and the thumbprint
// keygen printed.
func TestDPoPKeygenAlgs(t *testing.T) {
	const url, token = "https://orders.example/v1/orders", "tok-1"
	for _, alg := range []string{"ES256", "ES384", "EdDSA", "RS256", "eddsa"} {
		t.Run(alg, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dpop.pem")
			var gen struct{ Alg, JKT string }
			if err := json.Unmarshal([]byte(runCLI(t, "dpop", "keygen", "--out", path, "--alg", alg, "-o", "json")), &gen); err != nil {
				t.Fatal(err)
			}
			if !strings.EqualFold(gen.Alg, alg) {
				t.Fatalf("alg %q, want %s", gen.Alg, alg)
			}
			proof := strings.TrimSpace(runCLI(t, "dpop", "proof", "--dpop-key", path, "--method", "PUT", "--url", url, "--token", token))
			p, err := (&dpop.Checker{}).Check([]string{proof}, dpop.Request{Method: "PUT", URL: url, AccessToken: token})
			if err != nil {
				t.Fatal(err)
			}
			if p.Algorithm != gen.Alg || p.JKT != gen.JKT {
				t.Fatalf("proof alg %s, jkt %s; want %s, %s", p.Algorithm, p.JKT, gen.Alg, gen.JKT)
			}
		})
	}
}

// TestDPoPProofNonce: 'dpop proof --nonce' puts the server's nonce in the
// proof (RFC 9449 §8), for servers that require one.
func TestDPoPProofNonce(t *testing.T) {
	const url = "https://orders.example/v1/orders"
	path := filepath.Join(t.TempDir(), "dpop.pem")
	runCLI(t, "dpop", "keygen", "--out", path)
	for _, nonce := range []string{"", "eyJ7S_zG.eyJH0-Z.HX4w-7v"} {
		args := []string{"dpop", "proof", "--dpop-key", path, "--url", url}
		if nonce != "" {
			args = append(args, "--nonce", nonce)
		}
		p, err := (&dpop.Checker{}).Check([]string{strings.TrimSpace(runCLI(t, args...))}, dpop.Request{Method: "GET", URL: url})
		if err != nil {
			t.Fatal(err)
		}
		if p.Nonce != nonce {
			t.Errorf("nonce %q, want %q", p.Nonce, nonce)
		}
	}
}

// TestDPoPCLIErrors: every bad input to the DPoP commands and to 'token
// --dpop-key' is refused with a message that says what is wrong; mistakes
// in the command line are usage errors (exit status 2).
func TestDPoPCLIErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	good := write("good.pem", pkcs8(p256))
	p521Path := write("p521.pem", pkcs8(p521))
	rsaPath := write("rsa1024.pem", pkcs8(rsa1024))
	xPath := write("x25519.pem", pkcs8(x25519))
	sec1DER, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	sec1 := write("sec1.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1DER}))
	notPEM := write("key.json", []byte(`{"type":"service_account"}`))
	pubDER, err := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p256.PublicKey, p256)
	if err != nil {
		t.Fatal(err)
	}
	certPath := write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}))
	missing := filepath.Join(dir, "none.pem")
	existing := write("existing.pem", []byte("keep me"))

	// A token endpoint that knows nothing of DPoP: it ignores the proof
	// and issues a bearer token.
	var sawProof bool
	bearerOnly := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawProof = r.Header.Get("DPoP") != ""
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`))
	}))
	defer bearerOnly.Close()
	kf, err := json.Marshal(client.KeyFile{Type: "service_account", ClientEmail: "job@p.iam.example", PrivateKeyID: "k1",
		PrivateKey: string(pkcs8(p256)), TokenURI: bearerOnly.URL + "/token"})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := write("sa.json", kf)
	token := func(dpopKey string) []string {
		return []string{"token", "--key-file", keyFile, "--scopes", "orders.read", "--dpop-key", dpopKey}
	}
	proof := func(args ...string) []string { return append([]string{"dpop", "proof"}, args...) }
	const url = "https://orders.example/v1/orders"

	tests := []struct {
		name      string
		args      []string
		wantUsage bool
		want      string
	}{
		{"token: missing key", token(missing), false, "--dpop-key " + missing + " does not exist; to make a key there, run: keyward dpop keygen --out " + shellArg(missing)},
		{"token: not PEM", token(notPEM), false, "not PEM"},
		{"token: SEC 1 key", token(sec1), false, "a SEC 1 EC key: write it as PKCS #8 with 'openssl pkey"},
		{"token: P-521 key", token(p521Path), false, "not P-521; DPoP keys are EC P-256 (ES256) or P-384 (ES384), Ed25519 (EdDSA), or RSA of 2048 to 8192 bits"},
		{"token: RSA 1024", token(rsaPath), false, "the RSA key is not of 2048 to 8192 bits"},
		{"token: X25519", token(xPath), false, "cannot sign"},
		{"token: server without DPoP", token(good), false, "issued a Bearer token, not a DPoP-bound one: the server does not support DPoP"},

		{"proof: no key", proof("--url", url), true, "--dpop-key is required"},
		{"proof: no URL", proof("--dpop-key", good), true, "--url is required"},
		{"proof: relative URL", proof("--dpop-key", good, "--url", "/v1/orders"), true, `--url "/v1/orders": not an http or https URL`},
		{"proof: ftp URL", proof("--dpop-key", good, "--url", "ftp://orders.example/x"), true, "not an http or https URL"},
		{"proof: no host", proof("--dpop-key", good, "--url", "https:///x"), true, "no host"},
		{"proof: userinfo", proof("--dpop-key", good, "--url", "https://u:p@orders.example/x"), true, "userinfo in the URL"},
		{"proof: empty method", proof("--dpop-key", good, "--url", url, "--method", ""), true, "--method is empty"},
		{"proof: lower-case method", proof("--dpop-key", good, "--url", url, "--method", "post"), true, "HTTP methods are case-sensitive; did you mean POST?"},
		{"proof: not a method", proof("--dpop-key", good, "--url", url, "--method", "GET /"), true, `--method "GET /" is not an HTTP method`},
		{"proof: empty token", proof("--dpop-key", good, "--url", url, "--token", ""), true, "--token is empty"},
		{"proof: token with scheme", proof("--dpop-key", good, "--url", url, "--token", "DPoP abc"), true, "--token must be the access token alone"},
		{"proof: nonce with a space", proof("--dpop-key", good, "--url", url, "--nonce", "a b"), true, "--nonce must be the value of the server's DPoP-Nonce header"},
		{"proof: nonce with a quote", proof("--dpop-key", good, "--url", url, "--nonce", `a"b`), true, "--nonce must be"},
		{"proof: missing key", proof("--dpop-key", missing, "--url", url), false, "does not exist; to make a key there, run: keyward dpop keygen --out " + shellArg(missing)},
		{"proof: P-521 key", proof("--dpop-key", p521Path, "--url", url), false, "DPoP keys are EC P-256"},
		{"proof: certificate", proof("--dpop-key", certPath, "--url", url), false, "the PEM block is a certificate, not a private key"},
		{"proof: public key", proof("--dpop-key", pubPath, "--url", url), false, "the PEM block is a public key, not a private key"},
		{"token: certificate", token(certPath), false, "the PEM block is a certificate, not a private key"},
		{"proof: argument", proof("--dpop-key", good, "--url", url, "extra"), true, `unexpected argument "extra"`},

		{"keygen: no --out", []string{"dpop", "keygen"}, true, "--out is required"},
		{"keygen: --out -", []string{"dpop", "keygen", "--out", "-"}, true, "--out must be a file"},
		{"keygen: unknown alg", []string{"dpop", "keygen", "--out", filepath.Join(dir, "new.pem"), "--alg", "HS256"}, true, `--alg "HS256" must be one of ES256, ES384, EdDSA, RS256`},
		{"keygen: existing file", []string{"dpop", "keygen", "--out", existing}, false, existing + " exists: keygen never overwrites a key"},
		{"keygen: no such directory", []string{"dpop", "keygen", "--out", filepath.Join(dir, "no", "dpop.pem")}, false, filepath.Join(dir, "no", "dpop.pem")},
		{"keygen: bad output", []string{"dpop", "keygen", "--out", filepath.Join(dir, "new.pem"), "-o", "yaml"}, true, "must be table or json"},

		{"dpop: misspelt command", []string{"dpop", "prof"}, true, "did you mean proof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runCLIErr(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			var ue usageError
			if errors.As(err, &ue) != tt.wantUsage {
				t.Fatalf("usage error (exit 2): %v, want %v: %v", !tt.wantUsage, tt.wantUsage, err)
			}
		})
	}
	if !sawProof {
		t.Error("the token request to a server without DPoP carried no DPoP proof")
	}
	if b := mustReadFile(t, existing); string(b) != "keep me" {
		t.Errorf("keygen changed an existing file: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused keygen wrote new.pem: %v", err)
	}
}

// TestDPoPProofTokenFile: the token comes from a file or standard input as
// well as from --token, which the process list shows; the proof's ath is
// its hash either way.
func TestDPoPProofTokenFile(t *testing.T) {
	const url, token = "https://orders.example/v1/orders", "tok-from-a-file"
	dir := t.TempDir()
	key, file := filepath.Join(dir, "dpop.pem"), filepath.Join(dir, "token")
	runCLI(t, "dpop", "keygen", "--out", key)
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(name, proof string) {
		t.Helper()
		if _, err := (&dpop.Checker{}).Check([]string{strings.TrimSpace(proof)}, dpop.Request{Method: "GET", URL: url, AccessToken: token}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	check("--token-file", runCLI(t, "dpop", "proof", "--dpop-key", key, "--url", url, "--token-file", file))
	var out strings.Builder
	cmd := newRootCommand()
	cmd.SetArgs([]string{"dpop", "proof", "--dpop-key", key, "--url", url, "--token-file", "-"})
	cmd.SetIn(strings.NewReader(token + "\n"))
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("--token-file -", out.String())
	binary, big := filepath.Join(dir, "binary.bin"), filepath.Join(dir, "big.bin")
	if err := os.WriteFile(binary, []byte{0x00, 0xff, 'a', 0x01}, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), 64<<10+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--token", token, "--token-file", file}, "not both"},
		{[]string{"--token-file", filepath.Join(dir, "none")}, "--token-file"},
		{[]string{"--token-file", key}, "--token-file " + key + " must be the access token alone"}, // a PEM file has lines
		{[]string{"--token-file", binary}, "--token-file " + binary + " must be the access token alone"},
		{[]string{"--token-file", big}, "--token-file " + big + " is larger than 64 KiB"},
		{[]string{"--token", "tok\u00e9n"}, "--token must be the access token alone"},
	} {
		err := runCLIErr(t, append([]string{"dpop", "proof", "--dpop-key", key, "--url", url}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
}

// TestDPoPProofHelp: dpop proof --help says that an empty --token is
// refused, as it is; it did not say so.
func TestDPoPProofHelp(t *testing.T) {
	cmd, _, err := newRootCommand().Find([]string{"dpop", "proof"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `An empty --token (--token "$T" after the
command that set T failed) or --token-file is refused`; !strings.Contains(cmd.Long, want) {
		t.Errorf("dpop proof --help %q does not say %q", cmd.Long, want)
	}
}
