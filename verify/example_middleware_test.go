package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/verify"
)

// fakeKeyward stands in for Keyward: it publishes its metadata and one
// ES256 key, and sign returns an access token for aud with scope, as
// Keyward's token endpoint would.
func fakeKeyward() (srv *httptest.Server, sign func(aud, scope string) string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	mux := http.NewServeMux()
	srv = httptest.NewServer(mux)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		log.Fatal(err)
	}
	sign = func(aud, scope string) string {
		now := time.Now()
		raw, err := jwt.Signed(signer).Claims(map[string]any{
			"iss": srv.URL, "sub": "561503838024504424557", "client_id": "561503838024504424557",
			"client_email": "nightly-report@billing.iam.keyward.internal", "aud": aud, "scope": scope,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j" + fmt.Sprint(now.UnixNano()),
		}).Serialize()
		if err != nil {
			log.Fatal(err)
		}
		return raw
	}
	return srv, sign
}

// An API lets through requests whose token is for it and carries the
// route's scope.
func ExampleMiddleware() {
	keyward, sign := fakeKeyward()
	defer keyward.Close()
	ctx, stop := context.WithCancel(context.Background()) // the server's life
	defer stop()

	v, err := verify.New(ctx, keyward.URL, "https://orders.internal")
	if err != nil {
		log.Fatal(err)
	}
	auth := verify.Middleware(v, verify.OnError(func(r *http.Request, err error) {
		fmt.Println("refused:", err)
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /v1/orders", auth(verify.RequireScopes("orders.read")(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			c, _ := verify.ClaimsFromContext(r.Context())
			fmt.Fprintln(w, "orders for", c.ClientEmail)
		}))))
	api := httptest.NewServer(mux)
	defer api.Close()

	for _, token := range []string{
		sign("https://orders.internal", "orders.read"),
		sign("https://billing.internal", "billing.read"),
		sign("https://orders.internal", "orders.write"),
	} {
		req, _ := http.NewRequest("GET", api.URL+"/v1/orders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %s", resp.Status, body)
	}
	// Output:
	// 200 OK orders for nightly-report@billing.iam.keyward.internal
	// refused: invalid_token: the token is not for this API (https://orders.internal) (aud ["https://billing.internal"])
	// 401 Unauthorized {"error":"invalid_token","error_description":"the token is not for this API (https://orders.internal)"}
	// refused: insufficient_scope: the token lacks the scope orders.read
	// 403 Forbidden {"error":"insufficient_scope","error_description":"the token lacks the scope orders.read"}
}

// An API on another framework than net/http checks the token itself. A
// refused token is an *Error: its Description is for the caller, the
// whole error for the API's logs.
func ExampleVerifier_Verify() {
	keyward, sign := fakeKeyward()
	defer keyward.Close()
	ctx, stop := context.WithCancel(context.Background()) // the server's life
	defer stop()
	v, err := verify.New(ctx, keyward.URL, "https://orders.internal")
	if err != nil {
		log.Fatal(err)
	}

	for _, raw := range []string{sign("https://orders.internal", "orders.read"), "not-a-token"} {
		c, err := v.Verify(context.Background(), raw) // the request's context
		var ve *verify.Error
		switch {
		case errors.Is(err, verify.ErrUnavailable):
			fmt.Println("503: the issuer cannot be reached; try again")
		case errors.As(err, &ve):
			fmt.Println("401:", ve.Code, ve.Description)
		default:
			fmt.Println(c.ClientEmail, c.Scopes, c.HasScope("orders.read"))
		}
	}
	// Output:
	// nightly-report@billing.iam.keyward.internal [orders.read] true
	// 401: invalid_token the token is neither a JWT nor a Keyward opaque token
}
