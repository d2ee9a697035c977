package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/keyfile"
)

// FuzzTokenResponse: whatever a token endpoint (or, for a DPoP client, an
// API) answers — status, Content-Type, DPoP-Nonce, WWW-Authenticate and
// body — the token sources of every grant never panic and send a request
// at most twice (once more only for a nonce, RFC 9449 §8, §9); a token
// comes only from a 2xx answer, with an access token.
func FuzzTokenResponse(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	kf, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "shop", "private_key_id": "k1", "private_key": pkcs8PEM(f, k),
		"client_email": "job@shop.iam.test", "client_id": "123", "token_uri": "https://issuer.test/token",
	})
	if err != nil {
		f.Fatal(err)
	}
	const good = `{"access_token":"kwat_x","token_type":"Bearer","expires_in":3600}`
	for _, seed := range []struct {
		status             int
		contentType, nonce string
		challenge, body    string
	}{
		{200, "application/json", "", "", good},
		{200, "application/json", "n1", "", `{"access_token":"kwat_x","token_type":"DPoP","expires_in":3600,"scope":"a b"}`},
		{200, "application/json; charset=utf-8", "", "", `{"access_token":"kwat_x","token_type":"Bearer","expires_in":9223372036854775807}`},
		{200, "application/json", "", "", `{"access_token":"kwat_x","expires_in":-1}`},
		{200, "application/json", "", "", `{"access_token":"kwat_x","expires_in":"3600"}`},
		{200, "application/json", "", "", `{"access_token":"","token_type":"Bearer"}`},
		{200, "application/x-www-form-urlencoded", "", "", `access_token=kwat_x&token_type=bearer&expires_in=60`},
		{200, "text/plain", "", "", `access_token=kwat_x&expires_in=1e99`},
		{200, "application/json", "", "", `[1,2]`},
		{400, "application/json", "n2", "", `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`},
		{400, "application/json", "", "", `{"error":"invalid_grant","error_description":"the assertion has expired","error_uri":"https://x"}`},
		{401, "application/json", "n3", `DPoP error="use_dpop_nonce", algs="ES256"`, `{"error":"invalid_client"}`},
		{401, "", "", `Bearer realm="x", error="invalid_token"`, ``},
		{500, "text/html", "", "", `<html>oops</html>`},
	} {
		f.Add(seed.status, seed.contentType, seed.nonce, seed.challenge, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, status int, contentType, nonce, challenge string, body []byte) {
		if status < 100 || status > 999 {
			return // not an HTTP status line
		}
		requests := 0
		base := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			requests++
			if r.Body != nil {
				r.Body.Close()
			}
			h := http.Header{}
			for name, v := range map[string]string{"Content-Type": contentType, "DPoP-Nonce": nonce, "WWW-Authenticate": challenge} {
				if v != "" {
					h.Set(name, v)
				}
			}
			return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Request: r,
				Body: io.NopCloser(bytes.NewReader(body))}, nil
		})}
		d, err := client.NewDPoP(k)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		hc := d.HTTPClient(base)
		sources := map[string]func() (oauth2.TokenSource, error){
			"client_secret_basic": func() (oauth2.TokenSource, error) {
				return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: "https://issuer.test/token", ClientID: "123", ClientSecret: "s", HTTPClient: hc})
			},
			"private_key_jwt": func() (oauth2.TokenSource, error) {
				return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: "https://replica.test/token", KeyFile: kf, HTTPClient: hc})
			},
			"jwt-bearer": func() (oauth2.TokenSource, error) {
				return client.JWTBearer(ctx, client.JWTBearerConfig{KeyFile: kf, Scopes: []string{"orders.read"}, HTTPClient: hc})
			},
		}
		for name, source := range sources {
			ts, err := source()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			requests = 0
			tok, err := ts.Token()
			if requests > 2 {
				t.Fatalf("%s: %d token requests for one token", name, requests)
			}
			if err != nil && status == http.StatusOK && contentType == "application/json" && string(body) == good {
				t.Fatalf("%s: a good answer refused: %v", name, err)
			}
			if err != nil {
				continue
			}
			if status < 200 || status > 299 || tok.AccessToken == "" {
				t.Fatalf("%s: a token %+v from a %d answer", name, tok, status)
			}
		}
		// An API's answer to a request with a DPoP-bound token.
		api := d.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "kwat_x", TokenType: "DPoP"}), base)
		req, err := http.NewRequest(http.MethodPost, "https://api.test/orders", bytes.NewReader([]byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		requests = 0
		resp, err := api.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if requests > 2 {
			t.Fatalf("the API was sent %d requests for one", requests)
		}
	})
}

// FuzzParseKeyFile: whatever file a user gives as a key file, ParseKeyFile
// never panics, refuses in words about the file (never Go's), and accepts
// only a service-account file with an email, token_uri and a key that
// signs: the self-signed JWT of an accepted file verifies with its key,
// names its account and carries its private_key_id.
func FuzzParseKeyFile(f *testing.F) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	file := func(fields map[string]string) []byte {
		b, err := json.Marshal(fields)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	google := map[string]string{"type": "service_account", "project_id": "shop", "private_key_id": "k1", "private_key": pkcs8PEM(f, ec),
		"client_email": "job@shop.iam.test", "client_id": "123", "auth_uri": "https://issuer.test/auth", "token_uri": "https://issuer.test/token",
		"client_x509_cert_url": "https://issuer.test/certs", "universe_domain": "googleapis.com"}
	f.Add(file(google))
	google["private_key"], google["private_key_id"] = string(pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk))), ""
	f.Add(file(google))
	for _, seed := range []string{``, ` `, `null`, `[]`, `{}`, `"x"`, `{"type":"authorized_user"}`, `{"type":"service_account","client_email":7}`,
		`{"type":"service_account","client_email":"a@b","token_uri":"x","private_key":"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}`,
		"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "{\"type\":\"service_account\"\xff}"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := client.ParseKeyFile(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "client: ") || strings.Contains(err.Error(), "Go value") || strings.Contains(err.Error(), "Go struct") {
				t.Fatalf("refused in other words than the file's: %v", err)
			}
			return
		}
		if kf.Type != "service_account" || kf.ClientEmail == "" || kf.TokenURI == "" {
			t.Fatalf("accepted %+v", kf)
		}
		key, err := keyfile.ParsePrivateKey([]byte(kf.PrivateKey))
		if err != nil {
			t.Fatalf("accepted a key file whose key does not parse: %v", err)
		}
		ts, err := client.SelfSignedJWT(data, "https://orders.internal")
		if err != nil {
			t.Fatalf("SelfSignedJWT refuses a file ParseKeyFile accepts: %v", err)
		}
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(key.Public())
		if err != nil {
			t.Fatalf("the self-signed JWT does not verify with the file's key: %v", err)
		}
		var c struct{ Iss, Sub string }
		if err := json.Unmarshal(payload, &c); err != nil || c.Iss != kf.ClientEmail || c.Sub != kf.ClientEmail {
			t.Fatalf("claims %+v (%v), want the account %q", c, err, kf.ClientEmail)
		}
		if kid := jws.Signatures[0].Protected.KeyID; kid != kf.PrivateKeyID {
			t.Fatalf("kid %q, want private_key_id %q", kid, kf.PrivateKeyID)
		}
	})
}
