package token_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// A token is bound to a client certificate (cnf x5t#S256, the unpadded
// base64url SHA-256 of the certificate's DER: RFC 8705 §3, §3.1) exactly
// when its client authenticated with that certificate, whatever the
// grant; a certificate the request presented beside other client
// credentials, or without any client authentication, binds nothing.
func TestCertificateBoundTokens(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.UpdateAccount(context.Background(), e.job.ID, func(a storage.Account) (storage.Account, error) {
		a.AuthMethods = append(storage.DefaultAuthMethods, storage.AuthTLS)
		a.TLS = storage.TLSBinding{SubjectDN: "CN=job"}
		return a, nil
	}, storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}, storage.Guard{}); err != nil {
		t.Fatal(err)
	}
	conn := e.issuedCert(t, "job")
	sum := sha256.Sum256(conn.PeerCertificates[0].Raw)
	x5t := base64.RawURLEncoding.EncodeToString(sum[:])
	basic := http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}
	for _, tt := range []struct {
		name string
		req  request
		want string // cnf x5t#S256; "" for none
	}{
		{"client_credentials with the certificate", request{body: "grant_type=client_credentials&scope=orders.read&client_id=" + e.job.ID, tls: conn}, x5t},
		{"client_credentials with the secret, over the certificate's connection", request{body: "grant_type=client_credentials&scope=orders.read", header: basic, tls: conn}, ""},
		{"JWT-bearer, the client authenticated with the certificate", request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil), "client_id", e.job.ID), tls: conn}, x5t},
		{"JWT-bearer without client authentication, over the certificate's connection", request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil)), tls: conn}, ""},
		{"JWT-bearer without a certificate", request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil))}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(tt.req)
			var body map[string]any
			json.Unmarshal(w.Body.Bytes(), &body)
			raw, _ := body["access_token"].(string)
			if w.Code != 200 {
				t.Fatalf("%d %v", w.Code, body)
			}
			var c oauth2.AccessClaims
			if err := e.signer.Verify(raw, &c); err != nil {
				t.Fatal(err)
			}
			got := ""
			if c.Confirmation != nil {
				got = c.Confirmation.X5TS256
				if c.Confirmation.JKT != "" {
					t.Errorf("cnf.jkt %q without a DPoP proof", c.Confirmation.JKT)
				}
			}
			if got != tt.want || body["token_type"] != oauth2.TokenTypeBearer {
				t.Errorf("cnf x5t#S256 %q, token_type %v; want %q, Bearer", got, body["token_type"], tt.want)
			}
		})
	}
}
