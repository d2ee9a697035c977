package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
)

// fakeKeyward stands in for Keyward's token endpoint: it answers every
// token request with the token "at-1" for an hour, and counts them.
func fakeKeyward(requests *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`))
	}))
}

// exampleKeyFile returns a key file as `keyward keys create` writes it,
// for a new key, naming tokenURI.
func exampleKeyFile(tokenURI string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		log.Fatal(err)
	}
	b, err := json.Marshal(client.KeyFile{Type: "service_account", ProjectID: "billing", PrivateKeyID: "k1",
		PrivateKey:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		ClientEmail: "nightly-report@billing.iam.keyward.internal", ClientID: "561503838024504424557", TokenURI: tokenURI})
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// A job calls an API with tokens from its key file (in real use, read from
// the file `keyward keys create` wrote). The token is got once and reused
// for both requests.
func ExampleTokenSource() {
	var tokenRequests atomic.Int32
	keyward := fakeKeyward(&tokenRequests)
	defer keyward.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("the API got:", r.Header.Get("Authorization"))
	}))
	defer api.Close()
	keyFile := exampleKeyFile(keyward.URL + "/token") // os.ReadFile("key.json")

	ts, err := client.TokenSource(context.Background(), keyFile, "orders.read")
	if err != nil {
		log.Fatal(err)
	}
	// Not oauth2.NewClient, whose own cache would keep ts from refreshing
	// tokens early.
	httpClient := &http.Client{Transport: &oauth2.Transport{Source: ts}}
	for range 2 {
		resp, err := httpClient.Get(api.URL + "/v1/orders")
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	fmt.Println("token requests:", tokenRequests.Load())
	// Output:
	// the API got: Bearer at-1
	// the API got: Bearer at-1
	// token requests: 1
}

// A service with a client secret (`keyward secrets create`) gets tokens
// from the client-credentials grant; the secret goes in a Basic
// Authorization header.
func ExampleClientCredentials() {
	keyward := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _, _ := r.BasicAuth()
		fmt.Println("Keyward got:", r.PostFormValue("grant_type"), "for", id, "with scope", r.PostFormValue("scope"))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`))
	}))
	defer keyward.Close()

	ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{
		TokenURL:     keyward.URL + "/token", // https://keyward.internal/token
		ClientID:     "561503838024504424557",
		ClientSecret: "the secret", // from a secret store, never from the code
		Scopes:       []string{"orders.read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Type(), tok.AccessToken)
	// Output:
	// Keyward got: client_credentials for 561503838024504424557 with scope orders.read
	// Bearer at-1
}

// A token request Keyward refuses is an *oauth2.RetrieveError with the
// OAuth error code and description.
func ExampleTokenSource_errors() {
	keyward := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_scope","error_description":"The service account is not allowed the scope 'orders.write'."}`))
	}))
	defer keyward.Close()

	ts, err := client.TokenSource(context.Background(), exampleKeyFile(keyward.URL+"/token"), "orders.write")
	if err != nil {
		log.Fatal(err) // a key file that cannot be read or cannot sign
	}
	_, err = ts.Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		fmt.Println(re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
	}
	// Output:
	// 400 invalid_scope The service account is not allowed the scope 'orders.write'.
}

// A DPoP-bound token is useless without the key d holds: the token request
// and every API request carry a proof made with it.
func ExampleNewDPoP() {
	keyward := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("Keyward got a DPoP proof:", r.Header.Get("DPoP") != "")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-1","token_type":"DPoP","expires_in":3600}`))
	}))
	defer keyward.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("the API got:", r.Header.Get("Authorization"), "and a proof:", r.Header.Get("DPoP") != "")
	}))
	defer api.Close()

	d, err := client.NewDPoP(nil) // a new P-256 key, in memory
	if err != nil {
		log.Fatal(err)
	}
	ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{
		TokenURL: keyward.URL + "/token", ClientID: "561503838024504424557", ClientSecret: "the secret",
		Scopes:     []string{"orders.read"},
		HTTPClient: d.HTTPClient(nil), // token requests carry a proof
	})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := d.Client(ts, nil).Get(api.URL + "/v1/orders") // so do API requests
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	// Output:
	// Keyward got a DPoP proof: true
	// the API got: DPoP at-1 and a proof: true
}
