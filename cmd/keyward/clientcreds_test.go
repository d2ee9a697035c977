package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/google"
)

// setupAccount creates the orders API and an account through the CLI.
func setupAccount(t *testing.T, m *Main, name string) (clientID, email string) {
	t.Helper()
	admin := []string{"--credentials", m.AdminKeyFile}
	runCLI(t, append([]string{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read,orders.write"}, admin...)...)
	var acct struct {
		ClientID string `json:"client_id"`
		Email    string `json:"email"`
	}
	out := runCLI(t, append([]string{"sa", "create", name, "--project", "billing", "--scopes", "orders.read,orders.write", "-o", "json"}, admin...)...)
	if err := json.Unmarshal([]byte(out), &acct); err != nil {
		t.Fatal(err)
	}
	return acct.ClientID, acct.Email
}

func tokenClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientCredentials drives the grant with golang.org/x/oauth2's
// clientcredentials package in both of its authentication styles, with the
// email as client ID ('@' must be form-encoded in the header).
func TestClientCredentials(t *testing.T) {
	m := startServer(t)
	clientID, email := setupAccount(t, m, "ingest")
	admin := []string{"--credentials", m.AdminKeyFile}
	var sec struct {
		ID     string `json:"secret_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "create", email, "-o", "json"}, admin...)...)), &sec); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sec.Secret, "kw_") || len(sec.Secret) < 40 {
		t.Fatalf("secret %q: want kw_ and 256 bits", sec.Secret)
	}
	for _, style := range []struct {
		name  string
		style oauth2.AuthStyle
		id    string
	}{
		{"header, email", oauth2.AuthStyleInHeader, email},
		{"params, email", oauth2.AuthStyleInParams, email},
		{"header, numeric", oauth2.AuthStyleInHeader, clientID},
		{"params, numeric", oauth2.AuthStyleInParams, clientID},
	} {
		t.Run(style.name, func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: style.id, ClientSecret: sec.Secret, TokenURL: m.Issuer + "/token", Scopes: []string{"orders.read"}, AuthStyle: style.style}
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			c := tokenClaims(t, tok.AccessToken)
			if c["client_id"] != clientID || c["scope"] != "orders.read" || c["aud"] != "https://orders.internal" || c["cnf"] != nil {
				t.Fatalf("claims = %v", c)
			}
		})
	}
	t.Run("last use is recorded", func(t *testing.T) {
		if err := m.Server.Auth.FlushUsage(context.Background(), m.Server.Cache); err != nil {
			t.Fatal(err)
		}
		var secs struct {
			Secrets []struct {
				ID       string  `json:"secret_id"`
				LastUsed *string `json:"last_used_at"`
			} `json:"secrets"`
		}
		json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "list", email, "-o", "json"}, admin...)...)), &secs)
		if len(secs.Secrets) != 1 || secs.Secrets[0].LastUsed == nil {
			t.Fatalf("secrets = %+v, want the last use recorded", secs)
		}
		// secrets get shows the one secret as the list does, never its value.
		out := runCLI(t, append([]string{"secrets", "get", email, sec.ID, "-o", "json"}, admin...)...)
		var one struct {
			ID       string  `json:"secret_id"`
			LastUsed *string `json:"last_used_at"`
			Value    string  `json:"client_secret"`
		}
		if err := json.Unmarshal([]byte(out), &one); err != nil || one.ID != sec.ID || one.LastUsed == nil || one.Value != "" || strings.Contains(out, sec.Secret) {
			t.Fatalf("secrets get = %s (%v), want the secret's record without its value", out, err)
		}
	})
	t.Run("default scopes", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: clientID, ClientSecret: sec.Secret, TokenURL: m.Issuer + "/token"}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := tokenClaims(t, tok.AccessToken)["scope"]; got != "orders.read orders.write" {
			t.Fatalf("scope = %v, want every allowed scope", got)
		}
	})
	wantError := func(t *testing.T, cc clientcredentials.Config, code string) {
		t.Helper()
		_, err := cc.Token(context.Background())
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != code {
			t.Fatalf("err = %v, want %s", err, code)
		}
	}
	t.Run("wrong secret", func(t *testing.T) {
		wantError(t, clientcredentials.Config{ClientID: clientID, ClientSecret: "kw_nope", TokenURL: m.Issuer + "/token"}, "invalid_client")
	})
	t.Run("unknown client", func(t *testing.T) {
		wantError(t, clientcredentials.Config{ClientID: "100000000000000000000", ClientSecret: sec.Secret, TokenURL: m.Issuer + "/token"}, "invalid_client")
	})
	t.Run("disabled secret", func(t *testing.T) {
		runCLI(t, append([]string{"secrets", "disable", email, sec.ID}, admin...)...)
		defer runCLI(t, append([]string{"secrets", "enable", email, sec.ID}, admin...)...)
		wantError(t, clientcredentials.Config{ClientID: clientID, ClientSecret: sec.Secret, TokenURL: m.Issuer + "/token"}, "invalid_client")
	})
	t.Run("disabled account", func(t *testing.T) {
		runCLI(t, append([]string{"sa", "disable", email}, admin...)...)
		defer runCLI(t, append([]string{"sa", "enable", email}, admin...)...)
		wantError(t, clientcredentials.Config{ClientID: clientID, ClientSecret: sec.Secret, TokenURL: m.Issuer + "/token"}, "disabled_client")
	})
	t.Run("two methods", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {sec.Secret}}
		req, _ := http.NewRequest("POST", m.Issuer+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, sec.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 400 || body.Error != "invalid_request" {
			t.Fatalf("two methods: %d %s, want 400 invalid_request", resp.StatusCode, body.Error)
		}
	})
}

// TestPrivateKeyJWT authenticates with an assertion built with go-jose and
// signed with the key file's private key.
func TestPrivateKeyJWT(t *testing.T) {
	m := startServer(t)
	clientID, email := setupAccount(t, m, "signer")
	keyFile := filepath.Join(t.TempDir(), "key.json")
	runCLI(t, "keys", "create", email, "--out", keyFile, "--credentials", m.AdminKeyFile)
	kid, priv := keyFileKey(t, keyFile)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreignSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: foreign}, nil)

	assertion := func(s jose.Signer, mod func(map[string]any)) string {
		now := time.Now()
		c := map[string]any{"iss": clientID, "sub": clientID, "aud": m.Issuer + "/token", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": rand.Text()}
		if mod != nil {
			mod(c)
		}
		raw, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	post := func(a string) (int, map[string]any) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.write"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
		resp, err := http.PostForm(m.Issuer+"/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	good := assertion(signer, nil)
	if status, body := post(good); status != 200 || body["scope"] != "orders.write" {
		t.Fatalf("private_key_jwt: %d %v", status, body)
	}
	tests := []struct {
		name string
		a    string
	}{
		{"replay", good},
		{"wrong audience", assertion(signer, func(c map[string]any) { c["aud"] = "https://elsewhere/token" })},
		{"expired", assertion(signer, func(c map[string]any) {
			c["iat"] = time.Now().Add(-time.Hour).Unix()
			c["exp"] = time.Now().Add(-10 * time.Minute).Unix()
		})},
		{"foreign key", assertion(foreignSigner, nil)},
		{"no jti", assertion(signer, func(c map[string]any) { delete(c, "jti") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := post(tt.a); status != 401 || body["error"] != "invalid_client" {
				t.Fatalf("%d %v, want 401 invalid_client", status, body)
			}
		})
	}
}

// tlsFixture makes a CA, a server certificate for 127.0.0.1 and files for
// them.
type tlsFixture struct {
	dir                           string
	caPool                        *x509.CertPool
	caCert                        *x509.Certificate
	caKey                         *ecdsa.PrivateKey
	serverCert, serverKey, caFile string
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{dir: t.TempDir()}
	f.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &f.caKey.PublicKey, f.caKey)
	f.caCert, _ = x509.ParseCertificate(der)
	f.caPool = x509.NewCertPool()
	f.caPool.AddCert(f.caCert)
	f.caFile = f.write(t, "ca.pem", "CERTIFICATE", der)
	srv := f.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	f.serverCert = f.write(t, "server.pem", "CERTIFICATE", srv.Certificate[0])
	kder, _ := x509.MarshalPKCS8PrivateKey(srv.PrivateKey)
	f.serverKey = f.write(t, "server.key", "PRIVATE KEY", kder)
	return f
}

func (f *tlsFixture) write(t *testing.T, name, typ string, der []byte) string {
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *tlsFixture) issue(t *testing.T, tmpl *x509.Certificate) tls.Certificate {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = serial, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.caCert, &k.PublicKey, f.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}
}

func thumbprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestMutualTLS gets certificate-bound tokens over a real TLS connection,
// with a CA-issued certificate bound by subject DN and with a registered
// self-signed certificate.
func TestMutualTLS(t *testing.T) {
	f := newTLSFixture(t)
	m := startServer(t, func(m *Main) {
		m.Config.TLSCert, m.Config.TLSKey, m.Config.TLSClientCA = f.serverCert, f.serverKey, f.caFile
	})
	t.Setenv("KEYWARD_CA_CERT", f.caFile)
	clientID, email := setupAccount(t, m, "mesh")
	admin := []string{"--credentials", m.AdminKeyFile}

	// A self-signed certificate, registered as one of the account's keys.
	selfKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "self"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &selfKey.PublicKey, selfKey)
	self := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: selfKey}
	certFile := f.write(t, "self.pem", "CERTIFICATE", der)
	runCLI(t, append([]string{"keys", "upload", email, "--public-key", certFile}, admin...)...)
	issued := f.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "mesh", Organization: []string{"Example"}}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	runCLI(t, append([]string{"sa", "update", email, "--auth-methods", "tls_client_auth,self_signed_tls_client_auth", "--tls-subject-dn", "CN=mesh,O=Example"}, admin...)...)

	get := func(cert tls.Certificate) (int, map[string]any) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.caPool, Certificates: []tls.Certificate{cert}}}}
		resp, err := hc.PostForm(m.Issuer+"/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {"orders.read"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	// A certificate issued by an intermediate CA, which the client sends
	// after its own: --tls-client-ca holds only the root.
	inter := f.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Test Intermediate"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign})
	interKey := inter.PrivateKey.(*ecdsa.PrivateKey)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: "mesh", Organization: []string{"Example"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, inter.Leaf, &leafKey.PublicKey, interKey)
	if err != nil {
		t.Fatal(err)
	}
	chained := tls.Certificate{Certificate: [][]byte{leafDER, inter.Certificate[0]}, PrivateKey: leafKey}
	for name, cert := range map[string]tls.Certificate{"tls_client_auth": issued, "tls_client_auth through an intermediate": chained, "self_signed_tls_client_auth": self} {
		t.Run(name, func(t *testing.T) {
			status, body := get(cert)
			if status != 200 {
				t.Fatalf("%d %v", status, body)
			}
			cnf, _ := tokenClaims(t, body["access_token"].(string))["cnf"].(map[string]any)
			if cnf["x5t#S256"] != thumbprint(cert) {
				t.Fatalf("cnf = %v, want x5t#S256 %s", cnf, thumbprint(cert))
			}
		})
	}
	t.Run("unbound certificate", func(t *testing.T) {
		other := f.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "intruder"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if status, body := get(other); status != 401 || body["error"] != "invalid_client" {
			t.Fatalf("%d %v, want 401 invalid_client", status, body)
		}
	})
	var md struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
		Bound   bool     `json:"tls_client_certificate_bound_access_tokens"`
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.caPool}}}
	resp, err := hc.Get(m.Issuer + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if !md.Bound || !strings.Contains(strings.Join(md.Methods, " "), "tls_client_auth") {
		t.Fatalf("metadata = %+v, want mTLS advertised", md)
	}
}

// TestBindingChangeEndsCertificateTokensOnly: an account that gets tokens
// with a secret, a key (the JWT-bearer grant) and a CA-issued certificate
// (tls_client_auth) has its certificate binding changed; at introspection
// the certificate's token is inactive at once, while the secret's and the
// key's stay active, and a new certificate token works.
func TestBindingChangeEndsCertificateTokensOnly(t *testing.T) {
	f := newTLSFixture(t)
	m := startServer(t, func(m *Main) {
		m.Config.TLSCert, m.Config.TLSKey, m.Config.TLSClientCA = f.serverCert, f.serverKey, f.caFile
	})
	t.Setenv("KEYWARD_CA_CERT", f.caFile)
	admin := []string{"--credentials", m.AdminKeyFile}
	runCLI(t, append([]string{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read"}, admin...)...)
	var acct struct {
		ID    string `json:"client_id"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, append([]string{"sa", "create", "mesh", "--project", "shop", "--scopes", "orders.read,keyward.introspect", "-o", "json"}, admin...)...)), &acct); err != nil {
		t.Fatal(err)
	}
	var sec struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "create", acct.Email, "-o", "json"}, admin...)...)), &sec); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.json")
	runCLI(t, append([]string{"keys", "create", acct.Email, "--out", keyFile}, admin...)...)
	update := func(args ...string) {
		runCLI(t, append(append([]string{"sa", "update", acct.Email}, args...), admin...)...)
	}
	update("--auth-methods", "client_secret_basic,private_key_jwt,tls_client_auth", "--tls-subject-dn", "CN=mesh,O=Example")
	cert := f.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "mesh", Organization: []string{"Example"}}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	// post sends form to path with the certificate, if any, or the secret.
	post := func(path string, form url.Values, cert *tls.Certificate) map[string]any {
		t.Helper()
		cfg := &tls.Config{RootCAs: f.caPool}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
			form.Set("client_id", acct.ID)
		}
		req, _ := http.NewRequest("POST", m.Issuer+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cert == nil {
			req.SetBasicAuth(acct.ID, sec.Secret)
		}
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, body)
		}
		return body
	}
	token := func(cert *tls.Certificate) string {
		t.Helper()
		tok, _ := post("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}}, cert)["access_token"].(string)
		return tok
	}
	active := func(tok string) bool {
		t.Helper()
		return post("/introspect", url.Values{"token": {tok}}, nil)["active"] == true
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := google.JWTConfigFromJSON(data, "orders.read")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.caPool}}}
	keyTok, err := conf.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, hc)).Token()
	if err != nil {
		t.Fatal(err)
	}

	// The JWT-bearer grant to a client that authenticated with the
	// certificate: its credential is the key, and it is bound to the
	// certificate.
	now := time.Now()
	assertion := signAssertion(t, keyFile, map[string]any{"iss": acct.Email, "aud": m.Issuer + "/token", "scope": "orders.read",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	bearerTok, _ := post("/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}, &cert)["access_token"].(string)

	tokens := map[string]string{"certificate": token(&cert), "secret": token(nil), "key": keyTok.AccessToken, "key and certificate": bearerTok}
	for name, tok := range tokens {
		if !active(tok) {
			t.Fatalf("the %s's token is inactive before the change", name)
		}
	}
	update("--tls-subject-dn", "CN=mesh2,O=Example")
	if out := runCLI(t, append([]string{"sa", "get", acct.Email}, admin...)...); !strings.Contains(out, "Certificate tokens revoked before:") || strings.Contains(out, "\nTokens revoked before:") {
		t.Errorf("sa get after the binding change:\n%s\nwant the certificate tokens revoked, not all tokens", out)
	}
	for name, want := range map[string]bool{"certificate": false, "secret": true, "key": true, "key and certificate": false} {
		if got := active(tokens[name]); got != want {
			t.Errorf("after the binding change, the %s's token is active %v, want %v", name, got, want)
		}
	}
	moved := f.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "mesh2", Organization: []string{"Example"}}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if tok := token(&moved); !active(tok) {
		t.Error("a token got with the newly bound certificate is inactive")
	}
}
