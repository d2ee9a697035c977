package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
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
