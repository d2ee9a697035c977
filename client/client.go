// Package client gets access tokens from Keyward for the jobs and services
// that call APIs, on golang.org/x/oauth2 types:
//
//	keyFile, err := os.ReadFile("key.json") // as `keyward keys create` wrote it
//	if err != nil {
//		return err
//	}
//	ts, err := client.TokenSource(context.Background(), keyFile, "orders.read")
//	if err != nil {
//		return err // the key file is malformed or its key cannot sign
//	}
//	httpClient := &http.Client{Transport: &oauth2.Transport{Source: ts}}
//	resp, err := httpClient.Get("https://orders.internal/v1/orders")
//
// A token source makes its token requests with the context it was made
// with: give it one that lasts as long as the source, not a request's. A
// token request Keyward refuses is an *oauth2.RetrieveError with the OAuth
// error code and description (wrapped in a *url.Error when it comes
// through oauth2.Transport); a success that is no token response (a
// proxy's HTML page) matches ErrNotTokenResponse.
//
// Tokens are reused until shortly before they expire, refreshed early with
// jitter, and concurrent callers share one refresh: a thousand goroutines
// asking at once cause one token request. (oauth2.NewClient would put
// x/oauth2's own cache in front of ts, which keeps a token until 10 s
// before it expires: no early refresh.) A token request refused with 429
// or 503 and a Retry-After is not sent again before then (5 minutes at
// most): meanwhile callers get that refusal, or the still-valid token;
// another failed refresh, while the token is valid, is not tried again
// for a few seconds (see Reuse). A
// token request made without an HTTP client of the caller's gives up after
// 30 s.
package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/keyward/keyward/internal/keyfile"
	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
)

// KeyFile is a service-account JSON key file, as `keyward keys create`
// writes it: field for field Google's format, so Google's client libraries
// read it unchanged. It has no universe_domain: libraries that see one
// compare it with Google's.
type KeyFile struct {
	Type              string `json:"type"`
	ProjectID         string `json:"project_id"`
	PrivateKeyID      string `json:"private_key_id"`
	PrivateKey        string `json:"private_key"`
	ClientEmail       string `json:"client_email"`
	ClientID          string `json:"client_id"`
	AuthURI           string `json:"auth_uri"`
	TokenURI          string `json:"token_uri"`
	ClientX509CertURL string `json:"client_x509_cert_url"`
}

// ParseKeyFile reads a key file and checks that it can sign something
// Keyward accepts: an RSA key of 2048 to 8192 bits (RS256) or an EC P-256
// key (ES256), PEM-encoded PKCS #8 or PKCS #1.
func ParseKeyFile(data []byte) (*KeyFile, error) {
	kf, _, err := parseKeyFile(data)
	return kf, err
}

// parseKeyFile reads a key file and returns it with the signer of its
// private key (typ JWT, kid private_key_id).
func parseKeyFile(data []byte) (*KeyFile, jose.Signer, error) {
	var kf KeyFile
	if err := keyfile.DecodeJSON(data, &kf); err != nil {
		return nil, nil, fmt.Errorf("client: the key file %w", err)
	}
	if kf.Type == "" {
		return nil, nil, notKeyFile(data)
	}
	if kf.Type != "service_account" {
		return nil, nil, otherCredential(kf.Type)
	}
	if kf.ClientEmail == "" || kf.TokenURI == "" || kf.PrivateKey == "" {
		return nil, nil, errors.New("client: the key file lacks client_email, token_uri or private_key")
	}
	s, err := keyfile.NewSigner(kf.PrivateKey, kf.PrivateKeyID)
	if err != nil {
		return nil, nil, fmt.Errorf("client: key file: %w", err)
	}
	return &kf, s, nil
}

// notKeyFile words the refusal of data, a JSON object without "type": a
// Keyward export ("format": "keyward-export/…") is named as one.
func notKeyFile(data []byte) error {
	var doc struct {
		Format string `json:"format"`
	}
	if keyfile.DecodeJSON(data, &doc) == nil && strings.HasPrefix(doc.Format, "keyward-export/") {
		return errors.New("client: the file is not a service-account key file but a Keyward export ('keyward export' wrote it): give the JSON file 'keyward keys create' wrote")
	}
	return errors.New(`client: the file is not a service-account key file: it has no "type" (a key file's is "service_account"): give the JSON file 'keyward keys create' wrote`)
}

// otherCredential says what a JSON file with a "type" other than
// service_account is, as far as Google's credential types tell, and that a
// service-account key file is wanted.
func otherCredential(typ string) error {
	what := ""
	switch typ {
	case "authorized_user":
		what = " (a gcloud user credential, as 'gcloud auth application-default login' writes)"
	case "external_account":
		what = " (a workload identity federation configuration)"
	case "impersonated_service_account":
		what = " (a configuration to impersonate a service account)"
	}
	return fmt.Errorf("client: the file is a Google credential of type %q%s, not a service-account key file (type service_account): give the JSON file 'keyward keys create' wrote", typ, what)
}

// TokenSource returns tokens for the key file's service account from the
// JWT-bearer grant (RFC 7523 §2.1) at the key file's token_uri, with the
// assertion Google's libraries send (iss, scope, aud, iat, exp), signed
// RS256 or ES256 by the key. A token_uri with a user name or password, or
// plain http to a host that is not loopback, is refused, as
// JWTBearerConfig.TokenURL says: give JWTBearer a TokenURL to send
// requests elsewhere.
//
// The source keeps ctx for every token request it makes: its HTTP client
// (oauth2.HTTPClient) and its end, after which every request fails. Give it
// a context that lasts as long as the source is used, not a request's.
func TokenSource(ctx context.Context, keyFileJSON []byte, scopes ...string) (oauth2.TokenSource, error) {
	return JWTBearer(ctx, JWTBearerConfig{KeyFile: keyFileJSON, Scopes: scopes})
}

// JWTBearerConfig configures the JWT-bearer grant for a key file.
type JWTBearerConfig struct {
	// KeyFile is the service account's JSON key file.
	KeyFile []byte
	// Scopes are the scopes to ask for, at least one: Keyward answers a
	// request without invalid_scope.
	Scopes []string
	// TokenURL is where token requests go; default: the key file's
	// token_uri, unless that is plain http to a host that is not loopback
	// (refused, as one with a user name or password always is). A TokenURL
	// with a user name or password is refused too. The
	// assertion's audience stays token_uri, the issuer's token endpoint,
	// and so does the htu of a DPoP proof (NewDPoP's HTTPClient), so
	// requests may go to one replica, or through a proxy, under another
	// name.
	TokenURL string
	// HTTPClient is used for token requests; default: the one ctx carries
	// (oauth2.HTTPClient), else one with a 30 s timeout.
	HTTPClient *http.Client
}

// JWTBearer returns tokens for the key file's service account from the
// JWT-bearer grant, as TokenSource does, configured by cfg. It keeps ctx
// for every token request, as TokenSource does.
func JWTBearer(ctx context.Context, cfg JWTBearerConfig) (oauth2.TokenSource, error) {
	kf, js, err := parseKeyFile(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	tokenURL, check := kf.TokenURI, func(u string) error { return checkTokenURL("the key file's token_uri", u) }
	if cfg.TokenURL != "" {
		tokenURL, check = cfg.TokenURL, checkGivenTokenURL
	}
	if err := check(tokenURL); err != nil {
		return nil, err
	}
	if err := checkKeyFileTokenURI(kf.TokenURI, cfg.TokenURL == ""); err != nil {
		return nil, err
	}
	ctx = withHTTPClient(ctx, cfg.HTTPClient)
	// A DPoP proof, if the HTTP client adds one, is for the token
	// endpoint as the server names it, as the assertion's aud is.
	ctx = proveFor(ctx, tokenURL, kf.TokenURI)
	return Reuse(&bearerSource{ctx: ctx, kf: kf, tokenURL: tokenURL, scope: strings.Join(cfg.Scopes, " "), signer: js}), nil
}

// bearerSource runs the JWT-bearer grant, fetching a new token on every
// call.
type bearerSource struct {
	ctx      context.Context
	kf       *KeyFile
	tokenURL string
	scope    string
	signer   jose.Signer
}

func (s *bearerSource) Token() (*oauth2.Token, error) {
	if err := ended(s.ctx); err != nil {
		return nil, err
	}
	// Back-dated like Google's libraries, for clocks slightly ahead. Unlike
	// theirs, with a jti: the server takes each assertion once, so one
	// seen on its way cannot be replayed, and a server that requires a
	// jti accepts it.
	iat := time.Now().Add(-10 * time.Second)
	claims := map[string]any{"iss": s.kf.ClientEmail, "aud": s.kf.TokenURI, "iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(), "jti": rand.Text()}
	if s.scope != "" {
		claims["scope"] = s.scope
	}
	a, err := jwt.Signed(s.signer).Claims(claims).Serialize()
	if err != nil {
		return nil, fmt.Errorf("client: sign the assertion: %w", err)
	}
	// The clientcredentials package lets grant_type be replaced, and
	// parses the answer and OAuth errors; with no client ID and secret it
	// authenticates no client, as the grant wants.
	cc := clientcredentials.Config{TokenURL: s.tokenURL, AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{"grant_type": {kwoauth2.GrantJWTBearer}, "assertion": {a}}}
	return cc.Token(s.ctx)
}

// defaultHTTPClient sends token requests when neither the config nor ctx
// (oauth2.HTTPClient) names a client: http.DefaultClient waits forever for
// a token endpoint that never answers, and every caller of the source
// waits with it.
var defaultHTTPClient = &http.Client{Timeout: 30 * time.Second}

// withHTTPClient returns ctx with c as the client of its token requests;
// with c nil, the one ctx names (a nil one names none), else
// defaultHTTPClient. The client is a copy that follows no redirect: a
// token request carries the client's credentials (a secret, an
// assertion), which a 307 or 308 would send on to wherever it points, and
// a same-host one down to plain HTTP.
func withHTTPClient(ctx context.Context, c *http.Client) context.Context {
	if c == nil {
		if cc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && cc != nil {
			c = cc
		} else {
			c = defaultHTTPClient
		}
	}
	nc := *c
	nc.CheckRedirect = refuseTokenRedirect
	nc.Transport = tokenResponseCheck{base: c.Transport}
	return context.WithValue(ctx, oauth2.HTTPClient, &nc)
}

// tokenResponseCheck refuses a 2xx answer to a token request that is no
// token response: one whose content type x/oauth2 reads as JSON (any but
// a form's or text/plain) and whose body is no JSON object, such as a
// proxy's or sign-in portal's HTML page. x/oauth2 would report only
// encoding/json's "invalid character '<' looking for beginning of value".
type tokenResponseCheck struct{ base http.RoundTripper }

func (t tokenResponseCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ctype == "application/x-www-form-urlencoded" || ctype == "text/plain" {
		return resp, nil // x/oauth2 reads these as a form
	}
	// As much as x/oauth2 reads of it.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	if trimmed := bytes.TrimLeft(b, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	what := "no content type"
	if ctype != "" {
		what = ctype
	}
	return nil, notTokenResponse(fmt.Sprintf("client: the token endpoint answered %s with %s, not a token response (a JSON object): is the token URL Keyward's token endpoint, with no proxy or sign-in page answering for it?", resp.Status, what))
}

// ErrNotTokenResponse is matched (errors.Is) by the error of a token
// request answered with success (2xx) but no token response, such as a
// proxy's or sign-in page's HTML: the token URL is not Keyward's token
// endpoint, or something else answers for it.
var ErrNotTokenResponse = errors.New("client: not a token response")

type notTokenResponse string

func (e notTokenResponse) Error() string        { return string(e) }
func (e notTokenResponse) Is(target error) bool { return target == ErrNotTokenResponse }

func refuseTokenRedirect(req *http.Request, via []*http.Request) error {
	return fmt.Errorf("client: the token endpoint %s redirected to %s; token requests carry the client's credentials and follow no redirect: use the token endpoint's own URL (the key file's token_uri)",
		via[0].URL.Redacted(), req.URL.Redacted())
}

// ended reports, once the context a token source was made with has ended,
// that it has: the source sends every token request with it, so from then
// on every request would fail, with an error naming neither the source nor
// the cause (a request's context passed to TokenSource, say). It matches
// (errors.Is) the context's error, and the cause given to
// context.WithCancelCause or the like, if one was.
func ended(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	why := err
	if cause := context.Cause(ctx); cause != nil && cause != err {
		why = fmt.Errorf("%w: %w", err, cause)
	}
	return fmt.Errorf("client: the context the token source was made with has ended (%w), and it is used for every token request: make the source with a context that lasts as long as the source is used, such as context.Background(), not a request's", why)
}

// checkTokenURL refuses a token endpoint URL that is not an http or https
// URL with a host when the source is made, rather than at each token
// request with url.Parse's or net/http's words ("first path segment in URL
// cannot contain colon"). name says where u came from.
func checkTokenURL(name, u string) error {
	p, err := url.Parse(u)
	if err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != "" {
		return nil
	}
	return fmt.Errorf("client: %s %q is not an http or https URL with a host, such as https://keyward.internal/token", name, kwoauth2.RedactURL(u))
}

// checkGivenTokenURL is checkTokenURL of a TokenURL the caller gives, which
// may not have a user name or password either: net/http would send them as
// Basic authentication with every token request without an Authorization
// header of its own (the JWT-bearer grant, private_key_jwt), and Keyward
// takes no client credentials from a URL.
func checkGivenTokenURL(u string) error {
	if err := checkTokenURL("TokenURL", u); err != nil {
		return err
	}
	if p, _ := url.Parse(u); p.User != nil {
		return fmt.Errorf("client: TokenURL %q has a user name or password, which the HTTP client would send as Basic authentication with every token request: give the URL without them (a client secret goes in ClientSecret)", kwoauth2.RedactURL(u))
	}
	return nil
}

// checkKeyFileTokenURI refuses a key file's token_uri with a user name or
// password, which Keyward never writes there (its issuer has none) and
// which would go to the token endpoint, and, when token requests go to it
// (sent: no TokenURL was given), one of plain http to a host that is not
// loopback, as keyward serve refuses such an issuer without
// --insecure-http: the signed assertion and the token it gets would cross
// the network unencrypted. A TokenURL the caller gives is the caller's
// choice, as --insecure-http is the operator's. checkTokenURL has already
// refused a token_uri that requests go to and that is no http(s) URL.
func checkKeyFileTokenURI(uri string, sent bool) error {
	u, err := url.Parse(uri)
	if err != nil {
		return nil
	}
	if u.User != nil {
		return fmt.Errorf("client: the key file's token_uri %q has a user name or password, which Keyward never writes there and which would go to the token endpoint: get a new key file ('keyward keys create')", kwoauth2.RedactURL(uri))
	}
	if sent && u.Scheme == "http" && !kwoauth2.IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("client: the key file's token_uri %q is plain http:// to a host that is not loopback, so the signed assertion and the token would cross the network unencrypted: get a key file of the server's https:// issuer, or give TokenURL to send token requests over plain HTTP all the same", kwoauth2.RedactURL(uri))
	}
	return nil
}

// fetchFunc is a TokenSource that fetches a new token on every call.
type fetchFunc func() (*oauth2.Token, error)

func (f fetchFunc) Token() (*oauth2.Token, error) { return f() }

// ClientCredentialsConfig configures the client-credentials grant.
type ClientCredentialsConfig struct {
	// TokenURL is where token requests go: Keyward's token endpoint.
	// Required with a ClientSecret; default with a KeyFile: the file's
	// token_uri, unless that is plain http to a host that is not loopback
	// (refused, as one with a user name or password always is). A TokenURL
	// with a user name or password is refused too: the secret goes in
	// ClientSecret.
	TokenURL string
	// TokenEndpoint is the token endpoint as the server names it (its
	// metadata's token_endpoint), when TokenURL reaches it under another
	// name (a replica, a proxy): a DPoP proof (NewDPoP's HTTPClient) is
	// made for it, and the default Audience is its issuer. Default: with a
	// KeyFile, the file's token_uri; else TokenURL.
	TokenEndpoint string
	// ClientID is the account's numeric client ID (or email); default with
	// a KeyFile: its client_id, else its client_email.
	ClientID string
	// ClientSecret authenticates with the secret (client_secret_basic).
	ClientSecret string
	// KeyFile, instead of a secret, authenticates with private_key_jwt:
	// each request carries a fresh assertion signed with the file's key.
	// An empty one is none, as an empty ClientSecret is.
	KeyFile []byte
	// Audience is the aud of those assertions; default: the issuer,
	// TokenEndpoint without its /token path, which
	// draft-ietf-oauth-rfc7523bis makes a client assertion's audience and
	// a server started with --strict-client-assertion-audience requires
	// (a TokenEndpoint of another path is used as it is).
	Audience string
	// Scopes are the scopes to ask for, at least one: Keyward answers a
	// request without invalid_scope.
	Scopes []string
	// HTTPClient is used for token requests; default: the one ctx carries
	// (oauth2.HTTPClient), else one with a 30 s timeout.
	HTTPClient *http.Client
}

// ClientCredentials returns tokens from the client-credentials grant
// (RFC 6749 §4.4). It keeps ctx for every token request, as TokenSource
// does.
func ClientCredentials(ctx context.Context, cfg ClientCredentialsConfig) (oauth2.TokenSource, error) {
	ctx = withHTTPClient(ctx, cfg.HTTPClient)
	if len(cfg.KeyFile) == 0 {
		if cfg.KeyFile != nil && cfg.ClientSecret == "" {
			return nil, errors.New("client: the KeyFile is empty, and no ClientSecret was given")
		}
		if cfg.TokenURL == "" {
			return nil, errors.New("client: TokenURL is required")
		}
		if err := checkGivenTokenURL(cfg.TokenURL); err != nil {
			return nil, err
		}
		if cfg.ClientID == "" || cfg.ClientSecret == "" {
			return nil, errors.New("client: ClientID and ClientSecret (or a KeyFile) are required")
		}
		ctx = proveFor(ctx, cfg.TokenURL, cfg.TokenEndpoint)
		cc := clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: cfg.TokenURL, Scopes: cfg.Scopes,
			AuthStyle: oauth2.AuthStyleInHeader}
		// cc.Token fetches every time; cc.TokenSource would cache the token
		// itself and defeat Reuse's early refresh.
		return Reuse(fetchFunc(func() (*oauth2.Token, error) {
			if err := ended(ctx); err != nil {
				return nil, err
			}
			return cc.Token(ctx)
		})), nil
	}
	kf, js, err := parseKeyFile(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	sent := cfg.TokenURL == ""
	if sent {
		cfg.TokenURL = kf.TokenURI
		err = checkTokenURL("the key file's token_uri", cfg.TokenURL)
	} else {
		err = checkGivenTokenURL(cfg.TokenURL)
	}
	if err != nil {
		return nil, err
	}
	if err := checkKeyFileTokenURI(kf.TokenURI, sent); err != nil {
		return nil, err
	}
	id := cmp.Or(cfg.ClientID, kf.ClientID, kf.ClientEmail)
	if cfg.TokenEndpoint == "" {
		cfg.TokenEndpoint = kf.TokenURI
	}
	ctx = proveFor(ctx, cfg.TokenURL, cfg.TokenEndpoint)
	aud := cfg.Audience
	if aud == "" {
		aud = issuerOf(cfg.TokenEndpoint)
	}
	return Reuse(&assertionSource{ctx: ctx, cfg: cfg, id: id, aud: aud, signer: js}), nil
}

// issuerOf is the issuer of a Keyward token endpoint URL: the URL without
// its /token path. Another URL is returned as it is.
func issuerOf(tokenEndpoint string) string {
	if issuer, ok := strings.CutSuffix(tokenEndpoint, kwoauth2.TokenPath); ok && strings.Contains(issuer, "://") {
		return issuer
	}
	return tokenEndpoint
}

// proveFor returns ctx with DPoP proofs of requests to tokenURL made for
// endpoint, the token endpoint as the server names it, if it is another
// URL.
func proveFor(ctx context.Context, tokenURL, endpoint string) context.Context {
	if endpoint == "" || endpoint == tokenURL {
		return ctx
	}
	return withProofURL(ctx, tokenURL, endpoint)
}

// assertionSource runs the client-credentials grant with private_key_jwt.
type assertionSource struct {
	ctx    context.Context
	cfg    ClientCredentialsConfig
	id     string
	aud    string
	signer jose.Signer
}

func (s *assertionSource) Token() (*oauth2.Token, error) {
	if err := ended(s.ctx); err != nil {
		return nil, err
	}
	now := time.Now()
	a, err := jwt.Signed(s.signer).Claims(map[string]any{
		"iss": s.id, "sub": s.id, "aud": s.aud, "jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}).Serialize()
	if err != nil {
		return nil, fmt.Errorf("client: sign the client assertion: %w", err)
	}
	// The clientcredentials package sends the extra parameters with the
	// grant; AuthStyleInParams with no secret sends no Basic header.
	cc := clientcredentials.Config{ClientID: s.id, TokenURL: s.cfg.TokenURL, Scopes: s.cfg.Scopes, AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {kwoauth2.ClientAssertionJWT},
			"client_assertion":      {a},
		}}
	return cc.Token(s.ctx)
}

// SelfSignedJWT returns tokens that are the service account's own JWTs,
// signed locally with the key file — no token request at all (the seed's
// "authorization without OAuth"). The API must accept them
// (verify.WithSelfSignedJWTs) and audience must be its identifier.
func SelfSignedJWT(keyFileJSON []byte, audience string) (oauth2.TokenSource, error) {
	kf, js, err := parseKeyFile(keyFileJSON)
	if err != nil {
		return nil, err
	}
	if audience == "" {
		return nil, errors.New("client: the audience (the API's identifier) is required")
	}
	return Reuse(selfSigned{email: kf.ClientEmail, aud: audience, signer: js}), nil
}

type selfSigned struct {
	email, aud string
	signer     jose.Signer
}

func (s selfSigned) Token() (*oauth2.Token, error) {
	now := time.Now()
	exp := now.Add(time.Hour)
	raw, err := jwt.Signed(s.signer).Claims(map[string]any{"iss": s.email, "sub": s.email, "aud": s.aud, "iat": now.Unix(), "exp": exp.Unix()}).Serialize()
	if err != nil {
		return nil, fmt.Errorf("client: sign the self-signed JWT: %w", err)
	}
	return &oauth2.Token{AccessToken: raw, TokenType: "Bearer", Expiry: exp}, nil
}

// CredentialsEnv names the environment variable with the path of the
// default key file.
const CredentialsEnv = "KEYWARD_CREDENTIALS"

// DefaultCredentialsFile returns where FindDefaultCredentials looks when
// KEYWARD_CREDENTIALS is unset: $XDG_CONFIG_HOME/keyward/credentials.json,
// or ~/.config/keyward/credentials.json.
func DefaultCredentialsFile() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "keyward", "credentials.json")
}

// FindDefaultCredentials finds a key file the way Google's application
// default credentials do — the file named by KEYWARD_CREDENTIALS, else
// DefaultCredentialsFile — and returns a JWT-bearer TokenSource for it.
// As TokenSource does, it refuses a key file whose token_uri has a user
// name or password, or is plain http to a host that is not loopback.
func FindDefaultCredentials(ctx context.Context, scopes ...string) (oauth2.TokenSource, error) {
	path := os.Getenv(CredentialsEnv)
	if path == "" {
		path = DefaultCredentialsFile()
	}
	data, err := readCredentials(path)
	if err != nil {
		return nil, fmt.Errorf("client: no default credentials (set %s to a key file): %w", CredentialsEnv, err)
	}
	ts, err := TokenSource(ctx, data, scopes...)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s, the default credentials)", err, path) // a file the caller did not name
	}
	return ts, nil
}

// maxCredentialsFile bounds what FindDefaultCredentials reads: a key file
// is a few KiB, and a path to /dev/zero must not take all memory.
const maxCredentialsFile = 1 << 20

func readCredentials(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCredentialsFile {
		return nil, fmt.Errorf("%s is over 1 MiB, so no key file", path)
	}
	return data, nil
}

// Reuse wraps ts so that a token is reused until shortly before it expires
// — refreshed when about a tenth of its lifetime (at least 10 s) is left,
// with jitter so a fleet does not refresh in step — and concurrent callers
// share one refresh. If a refresh fails while the current token is still
// valid, the current token is returned, and no refresh is tried for 2 s,
// then 4, 8, … after each next failure in a row (at most a minute, and at
// most a quarter of the token's remaining life): a server that refuses
// for good (a disabled key) or is down is not asked on every call. A new
// token that has already expired (an expires_in of 0 or less) is an
// error, and such a failure. A token request refused
// with 429 or 503 and a Retry-After (of at most 5 minutes; a longer one
// counts as 5) is not sent again before then: meanwhile every call gets
// that refusal, or the still-valid token. A token is due once the wall
// clock or the monotonic clock says so: after the machine slept (which
// Linux's monotonic clock does not count), or the wall clock was set back.
func Reuse(ts oauth2.TokenSource) oauth2.TokenSource {
	if r, ok := ts.(*reuseSource); ok {
		return r
	}
	return &reuseSource{base: ts, now: time.Now}
}

type reuseSource struct {
	base oauth2.TokenSource
	now  func() time.Time
	sf   singleflight.Group
	// beforeFlight, if set, runs between the check of the cached token
	// and the refresh (tests).
	beforeFlight func()

	mu        sync.Mutex
	tok       *oauth2.Token
	refreshAt time.Time
	// retryErr, a refusal with a Retry-After, is every refresh's error
	// until retryAt.
	retryErr error
	retryAt  time.Time
	// failures counts the refreshes that failed in a row; till holdUntil,
	// after one that failed while the token was still valid, no refresh
	// is tried and the token is served.
	failures  int
	holdUntil time.Time
}

// cached returns the stored token, and whether it is not yet due for a
// refresh.
func (r *reuseSource) cached() (tok *oauth2.Token, current bool) {
	r.mu.Lock()
	tok, refreshAt := r.tok, r.refreshAt
	r.mu.Unlock()
	return tok, tok != nil && before(r.now(), refreshAt)
}

func (r *reuseSource) Token() (*oauth2.Token, error) {
	tok, current := r.cached()
	if current {
		return tok, nil
	}
	if r.beforeFlight != nil {
		r.beforeFlight()
	}
	v, err, _ := r.sf.Do("token", func() (any, error) {
		// A caller that read the old token as another's refresh ended
		// gets here after that flight: take the token it stored.
		if cur, current := r.cached(); current {
			return cur, nil
		}
		r.mu.Lock()
		retryErr, retryAt := r.retryErr, r.retryAt
		r.mu.Unlock()
		if retryErr != nil && before(r.now(), retryAt) {
			return nil, retryErr // the server asked not to be asked before retryAt
		}
		if cur, held := r.held(); held {
			return cur, nil
		}
		fresh, err := r.base.Token()
		if err != nil {
			return nil, r.failed(err)
		}
		if fresh == nil {
			return nil, errors.New("client: the wrapped token source returned no token and no error")
		}
		if fresh.Expiry.IsZero() && zeroExpiresIn(fresh) || !fresh.Expiry.IsZero() && !before(r.now(), fresh.Expiry) {
			// Handed out, it would be refused; kept, fetched again on
			// every call.
			return nil, r.failed(fmt.Errorf("client: the new token has already expired (%s)", expiresIn(fresh)))
		}
		r.mu.Lock()
		r.tok, r.refreshAt = fresh, refreshTime(fresh, r.now())
		r.failures, r.holdUntil = 0, time.Time{}
		r.mu.Unlock()
		return fresh, nil
	})
	if err != nil {
		// Valid now, after the refresh, not when it began.
		if tok != nil && (tok.Expiry.IsZero() || before(r.now(), tok.Expiry)) {
			return tok, nil // keep serving the valid token; try again next call
		}
		return nil, err
	}
	return v.(*oauth2.Token), nil
}

// failed records err, a failed refresh, and returns it: a refusal with a
// Retry-After is every refresh's error till then; another failure, while
// the stored token is valid, holds the next refresh off (holdOff).
func (r *reuseSource) failed(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.failures++
	if d := retryAfter(err, now); d > 0 {
		r.retryErr, r.retryAt = err, now.Add(d)
	} else if r.tok != nil && !r.tok.Expiry.IsZero() {
		r.holdUntil = now.Add(holdOff(r.failures, r.tok.Expiry.Sub(now)))
	}
	return err
}

// held returns the stored token, and whether a refresh that failed while
// it was valid holds the next one off, and it is still valid.
func (r *reuseSource) held() (tok *oauth2.Token, held bool) {
	r.mu.Lock()
	tok, holdUntil := r.tok, r.holdUntil
	r.mu.Unlock()
	now := r.now()
	return tok, tok != nil && before(now, holdUntil) && before(now, tok.Expiry)
}

// holdOff is how long after the failures-th failed refresh in a row, with
// left of the current token's life, no refresh is tried: 2 s, doubled
// with each failure, at most a minute and a quarter of left, so it ends
// well before the token does and several tries fit in between. A server
// that refuses for good (a disabled key) or is down gets a request every
// few seconds, each an audit event there, not one per call.
func holdOff(failures int, left time.Duration) time.Duration {
	d := maxHoldOff
	if failures <= 6 {
		d = min(2*time.Second<<(failures-1), maxHoldOff)
	}
	return max(min(d, left/4), 0)
}

// maxHoldOff bounds holdOff.
const maxHoldOff = time.Minute

// before reports whether t is before u by the monotonic clock, which a
// step of the wall clock does not move, and by the wall clock, which runs
// on while the machine sleeps and Linux's monotonic clock does not (the
// wall clock alone is what x/oauth2's expiry check reads): a token's
// lifetime, and a Retry-After, run on both.
func before(t, u time.Time) bool { return t.Before(u) && t.Round(0).Before(u.Round(0)) }

// zeroExpiresIn reports whether t came with an expires_in of 0: a token
// that expires as it arrives, which x/oauth2 leaves without an Expiry, as
// one that came with no expires_in, and so never expiring.
func zeroExpiresIn(t *oauth2.Token) bool {
	switch v := t.Extra("expires_in").(type) {
	case float64: // JSON
		return v == 0
	case int64: // a form
		return v == 0
	case string: // a JSON string, which x/oauth2 reads as a number too
		n, err := strconv.ParseFloat(v, 64)
		return err == nil && n == 0
	}
	return false
}

// expiresIn words how long the server said t lasts: the expires_in it
// sent, as it sent it (t.ExpiresIn is 0 after a form answer, and after a
// JSON one through x/oauth2's clientcredentials), else t's expiry.
func expiresIn(t *oauth2.Token) string {
	if v := t.Extra("expires_in"); v != nil && v != "" {
		return fmt.Sprintf("expires_in %v", v)
	}
	if t.ExpiresIn != 0 {
		return fmt.Sprintf("expires_in %d", t.ExpiresIn)
	}
	return "expiry " + t.Expiry.UTC().Format(time.RFC3339)
}

// maxRetryAfter bounds how long a token source waits, as a refusal's
// Retry-After asks, before it sends another token request: a proxy's
// "Retry-After: 86400" must not stop a service's tokens for a day.
const maxRetryAfter = 5 * time.Minute

// retryAfter returns how long after now the Retry-After of err, a token
// request refused with 429 or 503, asks to wait (RFC 9110 §10.2.3:
// seconds or an HTTP date), at most maxRetryAfter; else 0.
func retryAfter(err error, now time.Time) time.Duration {
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	if !ok || re.Response == nil {
		return 0
	}
	if c := re.Response.StatusCode; c != http.StatusTooManyRequests && c != http.StatusServiceUnavailable {
		return 0
	}
	v := strings.TrimSpace(re.Response.Header.Get("Retry-After"))
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		d = time.Duration(min(n, uint64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// refreshTime is when a token should be replaced: a tenth of its remaining
// lifetime before expiry (at least 10 s), minus up to another twentieth,
// at random.
func refreshTime(t *oauth2.Token, now time.Time) time.Time {
	if t.Expiry.IsZero() {
		return now.Add(24 * 365 * time.Hour)
	}
	life := t.Expiry.Sub(now)
	early := max(life/10, 10*time.Second)
	if j := int64(life / 20); j > 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(j))
		early += time.Duration(n.Int64())
	}
	return t.Expiry.Add(-min(early, life))
}
