package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/internal/ascii"
	"github.com/keyward/keyward/internal/dpop"
	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
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
//
// Servers that require nonces (RFC 9449 §8, §9; keyward serve
// --dpop-nonce) are followed: each response's DPoP-Nonce goes into the
// next proof for that server, and a request refused with use_dpop_nonce is
// sent once more with the new nonce, if its body can be sent again
// (Request.GetBody; http.NewRequest sets it for in-memory bodies).
type DPoP struct {
	prover *dpop.Prover
	now    func() time.Time

	mu     sync.Mutex
	nonces map[string]string // the latest DPoP-Nonce of each origin
}

// nonce returns the latest nonce origin provided, or "".
func (d *DPoP) nonce(origin string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nonces[origin]
}

// setNonce records the nonce origin provided. Only origins this DPoP is
// used with are kept, one nonce each.
func (d *DPoP) setNonce(origin, nonce string) {
	if len(nonce) > 1024 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nonces == nil {
		d.nonces = map[string]string{}
	}
	d.nonces[origin] = nonce
}

// learnNonce records the nonce resp from origin provides, if it is not
// used, the one the request's proof carried, and returns it; else "".
func (d *DPoP) learnNonce(origin, used string, resp *http.Response) string {
	fresh := resp.Header.Get(dpop.NonceHeader)
	if fresh == "" || fresh == used {
		return ""
	}
	d.setNonce(origin, fresh)
	return fresh
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
// carries a fresh proof for its method and URL. base may be nil: a client
// with a 30 s timeout, as the token sources' default.
func (d *DPoP) HTTPClient(base *http.Client) *http.Client {
	c := clientOrDefault(base, defaultHTTPClient)
	c.Transport = &proofTransport{d: d, base: c.Transport}
	return c
}

// Client returns a client for API requests that sends ts's tokens: a
// DPoP-bound token as "Authorization: DPoP <token>" with a fresh proof of
// the request's method, URL and token; a token the server did not bind
// (token_type Bearer) as a bearer token. A redirect to another host name,
// or from HTTPS down to HTTP, is followed without the token or a proof,
// and so is the rest of its chain, back on the first host too. base may
// be nil: a client with a 30 s timeout for each request (its body read
// included), as HTTPClient's and the token sources' default, not
// http.DefaultClient, which waits forever for a server that never
// answers; pass a client of your own for longer requests.
func (d *DPoP) Client(ts oauth2.TokenSource, base *http.Client) *http.Client {
	c := clientOrDefault(base, defaultHTTPClient)
	c.Transport = &proofTransport{d: d, base: c.Transport, tokens: ts}
	return c
}

// clientOrDefault returns a copy of base, or of def when base is nil, for
// the caller to set its Transport on.
func clientOrDefault(base, def *http.Client) *http.Client {
	if base == nil {
		base = def
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
	// By ASCII case alone, as sameHost: Unicode case mapping would give
	// one server's nonce to another that lowers alike (STRAẞE, straße).
	origin := r.URL.Scheme + "://" + ascii.Lower(r.URL.Host)
	nonce := t.d.nonce(origin)
	resp, err := t.send(r, token, nonce)
	if err != nil {
		return nil, err
	}
	fresh := t.d.learnNonce(origin, nonce, resp)
	if fresh == "" {
		return resp, nil
	}
	if !asksForNonce(resp) || (req.Body != nil && req.GetBody == nil) {
		return resp, nil
	}
	// Asked for a nonce (RFC 9449 §8, §9): once more, with a new proof.
	retry := req.Clone(req.Context())
	retry.Header = r.Header.Clone()
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp, err = t.send(retry, token, fresh)
	if err != nil {
		return nil, err
	}
	// A server may give a new nonce with every answer (§8.2): the next
	// request uses it, not the one it may have just used up.
	t.d.learnNonce(origin, fresh, resp)
	return resp, nil
}

// proofURL names, in a token request's context, the URL its proof is
// for when the request goes to the token endpoint under another name
// (JWTBearerConfig.TokenURL, ClientCredentialsConfig.TokenURL: a replica,
// a proxy): the server checks a proof's htu against the token endpoint
// its metadata names. Only a request to at is so proved, not one a
// redirect sends elsewhere; at is compared as the server compares htu
// (dpop.NormalizeURL), so spelling it otherwise than Go renders it
// (HTTPS://Host:443/token) does not lose the override.
type proofURL struct{ at, htu string }

type proofURLKey struct{}

// withProofURL returns ctx with requests to at proved for htu.
func withProofURL(ctx context.Context, at, htu string) context.Context {
	if u, err := url.Parse(at); err == nil && u.User != nil {
		// send compares a request's URL without its userinfo.
		u.User = nil
		at = u.String()
	}
	return context.WithValue(ctx, proofURLKey{}, proofURL{sameURL(at), htu})
}

// sameURL is the form in which proofURL compares a request's URL with at:
// the normalized URL and its query, or u itself if it does not normalize.
func sameURL(u string) string {
	n, err := dpop.NormalizeURL(u)
	if err != nil {
		return u
	}
	if _, q, ok := strings.Cut(u, "?"); ok {
		q, _, _ = strings.Cut(q, "#")
		n += "?" + q
	}
	return n
}

// send sends r with a fresh proof for it, token and nonce.
func (t *proofTransport) send(r *http.Request, token, nonce string) (*http.Response, error) {
	u := r.URL
	if u.User != nil {
		// The proof is for the target URI (RFC 9449 §4.2), which never
		// holds userinfo (RFC 9110 §4.2.4, §7.1): net/http sends it as
		// Basic credentials, if at all, and the Host header without it.
		c := *u
		c.User = nil
		u = &c
	}
	htu := u.String()
	if p, ok := r.Context().Value(proofURLKey{}).(proofURL); ok && p.at == sameURL(htu) {
		htu = p.htu
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet // as net/http sends it
	}
	proof, err := t.d.prover.ProofWithNonce(method, htu, token, nonce, t.d.now())
	if err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	r.Header.Set(dpop.Header, proof)
	return t.next().RoundTrip(r)
}

// asksForNonce reports whether resp refuses a proof for lacking the
// server's nonce: the token endpoint's 400 use_dpop_nonce (RFC 9449 §8),
// or a resource server's 401 with that error in its DPoP challenge (§9).
// It leaves resp's body readable.
func asksForNonce(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		for _, c := range resp.Header.Values("WWW-Authenticate") {
			if hasAuthParam(c, "error", kwoauth2.ErrUseDPoPNonce) {
				return true
			}
		}
	case http.StatusBadRequest:
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		var e struct {
			Error string `json:"error"`
		}
		return err == nil && json.Unmarshal(b, &e) == nil && e.Error == kwoauth2.ErrUseDPoPNonce
	}
	return false
}

// hasAuthParam reports whether the WWW-Authenticate value challenges has
// the auth-param name=value, in any of its challenges. As RFC 9110 §11.2
// allows, the name is matched in any case, the value may be a token or a
// quoted string, and "=" may have spaces around it; a quoted string's
// content is never taken for a parameter.
func hasAuthParam(challenges, name, value string) bool {
	// Tokens, "=", "," and quoted strings with their opening quote: the
	// comma is kept, so that a name with no value before it ("error=,"
	// ending a token68) is not given the next challenge's scheme as one.
	var items []string
	for s := challenges; s != ""; {
		switch s[0] {
		case ' ', '\t':
			s = s[1:]
		case '=', ',':
			items, s = append(items, s[:1]), s[1:]
		case '"':
			var b strings.Builder
			b.WriteByte('"')
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			items, s = append(items, b.String()), s[min(i+1, len(s)):]
		default:
			i := strings.IndexAny(s, " \t,=\"")
			if i < 0 {
				i = len(s)
			}
			items, s = append(items, s[:i]), s[i:]
		}
	}
	for i := 0; i+2 < len(items); i++ {
		if strings.EqualFold(items[i], name) && items[i+1] == "=" && strings.TrimPrefix(items[i+2], `"`) == value {
			return true
		}
	}
	return false
}

// redirectedAway reports whether req follows a redirect chain that was,
// at any hop, on another host name than req, or on HTTPS where req is
// not. A chain that left the host and came back counts: once stripped,
// the token stays off, as net/http keeps the Authorization header it was
// given off since Go 1.23.5 (CVE-2024-45336). Else the other host, once
// sent a client, could have it send its token with a valid proof to any
// URL of the first, its method kept (307).
func redirectedAway(req *http.Request) bool {
	for prev := req; prev.Response != nil && prev.Response.Request != nil; {
		prev = prev.Response.Request
		if !sameHost(prev.URL.Hostname(), req.URL.Hostname()) {
			return true
		}
		if prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return true // down to plain HTTP, where anyone on the path reads the token
		}
	}
	return false
}

// sameHost reports whether the host names a and b are the same: equal but
// for the case of ASCII letters. Unicode case folding (strings.EqualFold)
// is not enough: net/http dials a name's IDNA mapping, and "straße" and
// "STRAẞE" fold alike but map to two domains, xn--strae-oqa and strasse.
// Names that differ otherwise are taken for different hosts, the safe way
// to be wrong.
func sameHost(a, b string) bool {
	return len(a) == len(b) && ascii.Lower(a) == ascii.Lower(b)
}

func (t *proofTransport) next() http.RoundTripper {
	if t.base == nil {
		return http.DefaultTransport
	}
	return t.base
}
