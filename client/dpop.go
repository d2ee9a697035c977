package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/internal/dpop"
)

// DPoP binds a client's tokens to a key it holds (RFC 9449), so that a
// token that leaks — from a log, a proxy, a compromised API — is useless
// without the key. Token requests made through HTTPClient carry a proof of
// the key, and Keyward binds the token to it (token_type "DPoP"); API
// requests made through Client carry the token with the DPoP scheme and a
// fresh proof each:
//
//	d, err := client.NewDPoP(nil)
//	ts, err := client.ClientCredentials(ctx, client.ClientCredentialsConfig{
//		TokenURL: "https://keyward.internal/token", ClientID: id, ClientSecret: secret,
//		HTTPClient: d.HTTPClient(nil),
//	})
//	api := d.Client(ts, nil)
//
// For the JWT-bearer grant (TokenSource), put d.HTTPClient(nil) in the
// context as oauth2.HTTPClient. Keep one DPoP for the life of its tokens:
// a token is bound to that key only.
type DPoP struct {
	prover *dpop.Prover
	now    func() time.Time
}

// NewDPoP returns a DPoP with key, an EC P-256 (ES256) or P-384 (ES384),
// Ed25519 (EdDSA) or RSA (RS256, 2048 to 8192 bits) private key; with nil,
// a new P-256 key that lives in memory only.
func NewDPoP(key crypto.Signer) (*DPoP, error) {
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	}
	p, err := dpop.NewProver(key)
	if err != nil {
		return nil, errors.New("client: " + strings.TrimPrefix(err.Error(), "dpop: "))
	}
	return &DPoP{prover: p, now: time.Now}, nil
}

// JKT returns the JWK thumbprint of the key: the cnf.jkt of bound tokens.
func (d *DPoP) JKT() string { return d.prover.JKT() }

// HTTPClient returns a client for token requests: each request it sends
// carries a fresh proof for its method and URL. base may be nil
// (http.DefaultClient).
func (d *DPoP) HTTPClient(base *http.Client) *http.Client {
	c := clientOrDefault(base)
	c.Transport = &proofTransport{d: d, base: c.Transport}
	return c
}

// Client returns a client for API requests that sends ts's tokens: a
// DPoP-bound token as "Authorization: DPoP <token>" with a fresh proof of
// the request's method, URL and token; a token the server did not bind
// (token_type Bearer) as a bearer token. A redirect to another host name
// is followed without the token or a proof. base may be nil.
func (d *DPoP) Client(ts oauth2.TokenSource, base *http.Client) *http.Client {
	c := clientOrDefault(base)
	c.Transport = &proofTransport{d: d, base: c.Transport, tokens: ts}
	return c
}

func clientOrDefault(base *http.Client) *http.Client {
	if base == nil {
		base = http.DefaultClient
	}
	c := *base
	return &c
}

// proofTransport adds a proof to each request, and the token of tokens,
// if set.
type proofTransport struct {
	d      *DPoP
	base   http.RoundTripper
	tokens oauth2.TokenSource
}

func (t *proofTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	r := req.Clone(req.Context()) // a RoundTripper must not change req
	token := ""
	if t.tokens != nil && redirectedAway(req) {
		// http.Client drops the Authorization header it was given when a
		// redirect leaves the host; the token added here must go too, and
		// a proof the new host could use with it.
		return t.next().RoundTrip(r)
	}
	if t.tokens != nil {
		tok, err := t.tokens.Token()
		if err != nil {
			closeBody()
			return nil, err
		}
		if !strings.EqualFold(tok.Type(), dpop.Scheme) {
			tok.SetAuthHeader(r)
			return t.next().RoundTrip(r)
		}
		token = tok.AccessToken
		r.Header.Set("Authorization", dpop.Scheme+" "+token)
	}
	proof, err := t.d.prover.Proof(r.Method, r.URL.String(), token, t.d.now())
	if err != nil {
		closeBody()
		return nil, err
	}
	r.Header.Set(dpop.Header, proof)
	return t.next().RoundTrip(r)
}

// redirectedAway reports whether req follows a redirect to another host
// name than the request that started the chain.
func redirectedAway(req *http.Request) bool {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	return !strings.EqualFold(first.URL.Hostname(), req.URL.Hostname())
}

func (t *proofTransport) next() http.RoundTripper {
	if t.base == nil {
		return http.DefaultTransport
	}
	return t.base
}
