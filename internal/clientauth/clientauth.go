// Package clientauth authenticates OAuth clients (service accounts) at the
// token, introspection and revocation endpoints: client secrets in the
// Authorization header or the body (RFC 6749 §2.3.1), private_key_jwt
// assertions (RFC 7523 §2.2) and mutual TLS (RFC 8705 §2).
package clientauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
)

// Directory is what authentication reads.
type Directory interface {
	GetAccount(ctx context.Context, id string) (storage.Account, error)
	GetAccountByEmail(ctx context.Context, email string) (storage.Account, error)
	ListKeys(ctx context.Context, accountID string) ([]storage.Key, error)
	ListSecrets(ctx context.Context, accountID string) ([]storage.Secret, error)
}

// Config configures the Authenticator.
type Config struct {
	// Issuer is this server's issuer identifier, the aud a client
	// assertion should carry (draft-ietf-oauth-rfc7523bis); its token
	// endpoint URL (Issuer + /token), which RFC 7523 §3 suggests and older
	// clients send, is accepted too unless StrictAudience is set.
	Issuer string
	// StrictAudience accepts only the issuer as a client assertion's aud.
	StrictAudience bool
	// MaxAssertionLifetime bounds exp - iat (or exp - now) of assertions.
	MaxAssertionLifetime time.Duration
	ClockSkew            time.Duration
	// Pepper keys the hash of client secrets.
	Pepper []byte
	// ClientCAs verifies CA-issued client certificates (tls_client_auth);
	// nil disables that method.
	ClientCAs *x509.CertPool
	// CertHeader, if set, names a header in which a TLS-terminating proxy
	// passes the client certificate (as parseForwardedCert reads it:
	// URL-encoded PEM, PEM, or base64 DER; PEM with its intermediates
	// after it). It is read only from TrustedProxies, and from them alone
	// names the client's certificate: a proxy's own, on a connection over
	// mTLS, is not its client's (see peerChain).
	CertHeader     string
	TrustedProxies []netip.Prefix
	Now            func() time.Time
	Logger         *slog.Logger
	// OnUnreadableCertificate, if set, is called for each request whose
	// client-certificate header from a trusted proxy does not parse (the
	// log warns of it at most once a minute).
	OnUnreadableCertificate func()
}

// Authenticator authenticates clients.
type Authenticator struct {
	cfg Config
	dir Directory
	mem AccountCache // dir's memory of accounts, or nil
	// Failures are throttled per source address and per client at an
	// address: guessing from one place slows down, while the client keeps
	// working from everywhere else — no lockout an attacker could use.
	perAddr   *throttle.Limiter
	perClient *throttle.Limiter
	usage     usage
	// hashers are HMACs keyed with the pepper: keying one costs two SHA-256
	// blocks and three allocations, paid once per pooled HMAC instead of
	// once per request.
	hashers sync.Pool
	// audiences are the aud values a client assertion may carry, and
	// audienceHint their description for the message that refuses another:
	// set once by New (see setAudiences).
	audiences    []string
	audienceHint string
	// certWarn limits the warning of a forwarded certificate that does not
	// parse, which a misconfigured proxy sends with every request, and
	// untrustedWarn that of a certificate header from an address not in
	// TrustedProxies, which any client can send with every request.
	certWarn      warnLimiter
	untrustedWarn warnLimiter
}

// New returns an Authenticator.
func New(cfg Config, dir Directory) *Authenticator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnUnreadableCertificate == nil {
		cfg.OnUnreadableCertificate = func() {}
	}
	a := &Authenticator{
		cfg:       cfg,
		dir:       dir,
		perAddr:   throttle.New(5, 50, 100_000, cfg.Now),
		perClient: throttle.New(1, 10, 100_000, cfg.Now),
		usage:     usage{m: map[string]time.Time{}},
	}
	a.mem, _ = dir.(AccountCache)
	a.setAudiences()
	return a
}

// Client is an authenticated client.
type Client struct {
	Account storage.Account
	// Method is the authentication method used.
	Method string
	// CredentialID is the ID of the secret or key that authenticated it.
	CredentialID string
	// Certificate is the client certificate it authenticated with, for
	// certificate-bound tokens (RFC 8705 §3).
	Certificate *x509.Certificate
	// JTIs are single-use assertion IDs the caller must consume with its
	// durable write (private_key_jwt).
	JTIs []storage.UsedJTI
}

// Thumbprint returns the x5t#S256 of the client certificate, or "".
func (c *Client) Thumbprint() string {
	if c == nil || c.Certificate == nil {
		return ""
	}
	return oauth2.Thumbprint(c.Certificate)
}

// Attempt describes what a request presented, for the audit log, whether
// or not it succeeded.
type Attempt struct {
	Method   string
	ClientID string // as presented, cut or replaced by a note (PresentedID)
	// UnusedCertificate reports a request that authenticated no client
	// while it presented a TLS client certificate: without client_id,
	// which RFC 8705 §2 requires, the certificate names no account.
	UnusedCertificate bool
	// UnreadableCertificate is why the client certificate a trusted
	// proxy forwarded does not parse, for a request that authenticated no
	// client: a request that needs one is refused with
	// ErrUnreadableCertificate, not told it presented no credentials.
	UnreadableCertificate error
	// IdentifyOnly, set by the caller, lets a client_id without client
	// credentials (nor a TLS client certificate) identify the client
	// instead of failing its authentication: the JWT-bearer grant's
	// assertion authenticates its account, and a client may name itself
	// beside it (RFC 6749 §3.2.1, RFC 7521 §4.1), as generic OAuth
	// libraries do. Authenticate then returns no client and sets
	// Identified to the client_id; the grant must check that it names
	// the account the assertion authenticates.
	IdentifyOnly bool
	// Identified is the client_id such a request named, as sent; "" when
	// the client authenticated, or named none.
	Identified string
	// Counted reports a refusal recorded outside the audit budget
	// (Budgeted): a failure the throttle counted (Failed), credentials
	// that did not authenticate, not a request refused for its form, the
	// throttle bounding it already; or an assertion replayed (its jti
	// used before, UseJTIs), whose signature verified: a captured one
	// sent again; or right credentials sent with a client_id that
	// disagrees. The JWT-bearer grant sets it for the assertions it
	// counts, and the token endpoint for a replay.
	Counted bool
}

// ErrCertificateWithoutClientID is the answer to a request that needs a
// client, presented a TLS client certificate and no client_id.
func ErrCertificateWithoutClientID() *oauth2.Error {
	return oauth2.Errorf(oauth2.ErrInvalidRequest,
		"A TLS client certificate was presented without client_id: client_id is required with tls_client_auth and self_signed_tls_client_auth (RFC 8705 section 2).")
}

// Challenge is the WWW-Authenticate challenge of every 401 invalid_client:
// RFC 9110 §15.5.2 requires one in every 401, and RFC 6749 §5.2 the
// scheme the client used when it used HTTP Basic. Basic is also the one
// scheme of the Authorization header these endpoints accept, whatever
// the client tried instead.
const Challenge = `Basic realm="keyward", charset="UTF-8"`

// ErrFailed is the one answer to every failed authentication, with cause as
// its internal cause: unknown client, wrong secret, bad or replayed
// assertion and disallowed method look the same, 401 invalid_client with
// Challenge.
func ErrFailed(cause error) *oauth2.Error {
	return &oauth2.Error{Code: oauth2.ErrInvalidClient, Description: "Client authentication failed.", Status: http.StatusUnauthorized, Err: cause,
		Header: http.Header{"Www-Authenticate": {Challenge}}}
}

// Authenticate authenticates the client of r. It returns a nil Client and
// a nil error when the request carries no client credentials at all.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request, form oauth2.Form, source string, att *Attempt) (*Client, error) {
	var (
		methods            []string
		clientID, password string
		basic              bool
	)
	// One header, or a proxy and this server might each read another.
	if len(r.Header.Values("Authorization")) > 1 {
		return nil, oauth2.Errorf(oauth2.ErrInvalidRequest, "The request has more than one Authorization header; send one.")
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Basic") {
			return nil, ErrFailed(errors.New("authorization scheme is not Basic"))
		}
		id, secret, err := parseBasic(rest)
		if err != nil {
			// A request the client got wrong, not credentials to judge
			// (RFC 6749 §5.2 allows invalid_request for a malformed one).
			return nil, oauth2.Errorf(oauth2.ErrInvalidRequest,
				"The Authorization header is malformed: its Basic credentials %s; send base64(client_id:client_secret) as RFC 6749 section 2.3.1 describes.", err.Error())
		}
		methods, clientID, password, basic = append(methods, storage.AuthSecretBasic), id, secret, true
	}
	if form.Has("client_secret") {
		methods = append(methods, storage.AuthSecretPost)
		password = form.Get("client_secret")
	}
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		methods = append(methods, storage.AuthPrivateKeyJWT)
	}
	if len(methods) > 1 {
		return nil, oauth2.Errorf(oauth2.ErrInvalidRequest, "The request uses more than one client authentication method (%s); use exactly one.", strings.Join(methods, ", "))
	}
	// A client_id beside other credentials must name the same account, by
	// its numeric ID or its email, whichever the credentials use: that is
	// checked against the authenticated account below, which costs no
	// store round trip of its own.
	formID := form.Get("client_id")
	if !basic {
		clientID = formID
	}
	// A forwarded certificate that does not parse (peerChain logged why)
	// counts as none, but for a request it would authenticate.
	cert, intermediates, certErr := a.peerChain(r)
	method := ""
	switch {
	case len(methods) == 1:
		method = methods[0]
	case certErr != nil && clientID != "":
		att.Method, att.ClientID = storage.AuthTLS, PresentedID(clientID)
		return nil, ErrUnreadableCertificate(certErr)
	case cert != nil && clientID != "":
		method = storage.AuthTLS // or self-signed; decided by the account
	case clientID != "" && att.IdentifyOnly:
		att.ClientID, att.Identified = PresentedID(clientID), clientID
		return nil, nil
	case clientID != "":
		return nil, ErrFailed(errors.New("client_id without credentials"))
	default:
		// A certificate alone authenticates nobody; the caller decides
		// whether the request needed a client.
		att.UnusedCertificate = cert != nil
		att.UnreadableCertificate = certErr
		return nil, nil
	}
	att.Method = method
	att.ClientID = PresentedID(clientID)

	// Throttle before any hashing or signature work, under the
	// Principal's Key: the account's ID if memory holds it, else the name
	// as sent (and the ID once resolve finds it). private_key_jwt is keyed
	// again by the assertion's iss (see privateKeyJWT).
	p := Recall(a.mem, clientID)
	if err := a.Throttled(source, p.Key()); err != nil {
		return nil, err
	}

	var (
		c   *Client
		err error
	)
	switch method {
	case storage.AuthSecretBasic, storage.AuthSecretPost:
		c, err = a.secret(ctx, source, &p, password, method)
	case storage.AuthPrivateKeyJWT:
		c, err = a.privateKeyJWT(ctx, source, &p, form)
	default:
		c, err = a.certificate(ctx, source, &p, cert, intermediates)
	}
	if err != nil {
		if att.ClientID == "" {
			// private_key_jwt without client_id: the client is the
			// assertion's iss, if it got that far.
			att.ClientID = PresentedID(p.Name)
		}
		var oe *oauth2.Error
		if errors.As(err, &oe) && (oe.Code == oauth2.ErrTemporarilyUnavailable || oe.Code == oauth2.ErrInvalidRequest || oe.Code == oauth2.ErrDisabledClient) {
			return nil, err
		}
		a.Failed(source, p.Key())
		att.Counted = true
		return nil, ErrFailed(err)
	}
	att.Method = c.Method
	if formID != "" && formID != c.Account.ID && formID != c.Account.Email {
		// Right credentials: their holder's request, recorded outside
		// the audit budget (Counted), though no client authenticated.
		att.Counted = true
		if basic {
			return nil, oauth2.Errorf(oauth2.ErrInvalidRequest, "The client_id parameter disagrees with the client authenticated in the Authorization header.")
		}
		return nil, oauth2.Errorf(oauth2.ErrInvalidRequest, "The client_id parameter disagrees with the authenticated client.")
	}
	return c, nil
}

// PresentedID is a client ID as sent, for the audit log: cut to 128
// bytes, or a note in its place when it is shaped like a credential — a
// client secret, an opaque access token or a JWT that a client sent where
// its ID goes (as the Basic user name, or the two swapped) — which the
// audit log must not keep. Shaped is oauth2.IsCredential's, as for the
// request log's path: no account's ID (digits) or email (with an @) is
// so shaped.
func PresentedID(id string) string {
	if oauth2.IsCredential(id) {
		return "(not recorded: shaped like a secret or token)"
	}
	return oauth2.Truncate(id, 128)
}

// Throttled returns the 429 answer when failures from source, or of
// client at source, are being slowed down, and nil when the request may go
// on. It is checked before any credential is looked at. Client
// authentication and the JWT-bearer grant, which shares it, key it by a
// Principal's Key, so a guesser gains nothing by switching between an
// account's email and its ID.
func (a *Authenticator) Throttled(source, client string) *oauth2.Error {
	source = sourceKey(source)
	if ok, wait := a.perAddr.Check(source); !ok {
		return tooMany(wait, &throttle.Refused{Key: source, Note: throttle.NoteAddress})
	}
	if client != "" {
		client = keyedName(client)
		if ok, wait := a.perClient.Check(clientKey(source, client)); !ok {
			// The key again: the one checked is built on the stack, and
			// keeping it in the answer would move it to the heap for
			// every request.
			return tooMany(wait, &throttle.Refused{Key: clientKey(source, client), Note: throttle.NoteClient})
		}
	}
	return nil
}

// Failed records a failed authentication from source, of client if it is
// named.
func (a *Authenticator) Failed(source, client string) {
	source = sourceKey(source)
	a.perAddr.Fail(source)
	if client != "" {
		a.perClient.Fail(clientKey(source, keyedName(client)))
	}
}

// sourceKey is the throttle key of a source address (see
// throttle.AddressKey); the audit log and the logs keep the full address.
func sourceKey(source string) string { return throttle.AddressKey(source) }

// clientKey is the throttle key of a client at a source. The client part
// is cut to 256 bytes: a client ID or iss may be 64 KiB, and the limiter
// keeps 100,000 keys. No account's ID or email is that long. Callers pass
// client through keyedName first.
func clientKey(source, client string) string {
	return oauth2.Truncate(client, 256) + "|" + source
}

// keyedName is a client as the throttle keys it: a name of its own for
// one shaped like a credential (a secret sent as the client ID), since
// the key is in the 429's cause, which the token endpoint logs. Such a
// name is no account's, so they may share one. It returns a constant or
// client itself, and allocates nothing.
func keyedName(client string) string {
	if oauth2.IsCredential(client) {
		return "(shaped like a secret or token)"
	}
	return client
}

// tooMany is the answer to a throttled source: 429 with Retry-After (RFC
// 6585 §4) and the code temporarily_unavailable. Its cause names the
// throttle key, for the endpoint to record it a throttle.RecordEvery.
//
// RFC 6749 §5.2 has no code for "try again later" at the token endpoint;
// temporarily_unavailable is registered (§11.4) for the authorization
// endpoint, where a redirect cannot carry a status, but says exactly this.
// The alternatives mislead: invalid_client tells a client whose
// credentials are right (the check comes before they are looked at) that
// they are wrong, which sends operators rotating secrets; invalid_request
// says the request is malformed. Clients act on it as meant: google-auth
// retries on temporarily_unavailable as on 429 and 503, and Keyward's
// endpoints already answer store outages with it.
func tooMany(wait time.Duration, cause *throttle.Refused) *oauth2.Error {
	return &oauth2.Error{
		Code: oauth2.ErrTemporarilyUnavailable, Status: http.StatusTooManyRequests,
		Description: "Too many failed client authentications or assertions from this address; retry later.",
		Header:      http.Header{"Retry-After": {strconv.Itoa(int(wait / time.Second))}},
		Err:         cause,
	}
}

// parseBasic decodes the Basic credentials of RFC 6749 §2.3.1: split at the
// first colon, then form-url-decode both halves. Clients that do not encode
// send the raw values, which decode to themselves unless they contain % or +;
// a half that does not decode is taken as it is. Spaces and tabs alone
// may surround b64 (RFC 7235 §2.1, RFC 9110 §5.6.3), not other white
// space. Its errors complete "its Basic credentials …" and may be shown
// to the client.
func parseBasic(b64 string) (id, secret string, err error) {
	// Decoded on the stack when it fits, as most credentials do: the
	// string made of it below is then the only allocation.
	var buf [256]byte
	raw, err := base64.StdEncoding.AppendDecode(buf[:0], []byte(strings.Trim(b64, " \t")))
	if err != nil {
		return "", "", errors.New("are not base64")
	}
	rawID, rawSecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errors.New("have no colon between the client ID and the secret")
	}
	id, secret = formDecode(rawID), formDecode(rawSecret)
	if !oauth2.IsText(id) || !oauth2.IsText(secret) {
		return "", "", errors.New("are not UTF-8 text without NUL characters")
	}
	return id, secret, nil
}

func formDecode(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// resolve makes p's account known, as Principal.Resolve does, with a
// store failure reported as unavailable.
func (a *Authenticator) resolve(ctx context.Context, source string, p *Principal) error {
	return p.Resolve(ctx, source, a.lookup, a.Throttled)
}

// lookup finds the account a client ID names: its numeric ID or email.
// None is an unknownClient, the client's mistake in the words of the
// refusal's log line, not the store's error chain.
func (a *Authenticator) lookup(ctx context.Context, clientID string) (storage.Account, error) {
	acct, err := LookupAccount(ctx, a.dir, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return acct, unknownClient{email: strings.Contains(clientID, "@")}
	}
	if err != nil {
		return acct, oauth2.StoreUnavailable(err)
	}
	return acct, nil
}

// unknownClient is the cause of a refusal of a client ID (or an email) no
// service account has. It matches storage.ErrNotFound (errors.Is).
type unknownClient struct{ email bool }

func (e unknownClient) Error() string {
	if e.email {
		return "no service account has this email"
	}
	return "no service account has this client ID"
}

func (unknownClient) Is(target error) bool { return target == storage.ErrNotFound }

// allowed checks, once the credentials are verified, that the account may
// authenticate with method. Only the holder of valid credentials learns
// that the account is disabled.
func allowed(acct storage.Account, method string) error {
	if !slices.Contains(acct.AuthMethods, method) {
		return errors.New("method " + method + " not allowed for the account")
	}
	if acct.Disabled {
		return oauth2.Errorf(oauth2.ErrDisabledClient, "The OAuth client was disabled. The service account is disabled.")
	}
	return nil
}

// HashSecret returns the keyed hash under which a secret is stored.
func HashSecret(pepper []byte, secret string) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// pooledHMAC is an HMAC of hashers and the buffer it sums into: a
// buffer of hashSecret's own, given to the HMAC's Sum (a method of an
// interface), would be moved to the heap for every secret.
type pooledHMAC struct {
	hash.Hash
	sum [sha256.Size]byte
}

// hashSecret is HashSecret with a pooled HMAC. The hash it returns is the
// caller's own copy; the pooled buffer is cleared, and the HMAC reset, so
// that neither a secret's hash nor the secret stays in the pool.
func (a *Authenticator) hashSecret(secret string) [sha256.Size]byte {
	m, _ := a.hashers.Get().(*pooledHMAC)
	if m == nil {
		m = &pooledHMAC{Hash: hmac.New(sha256.New, a.cfg.Pepper)}
	}
	m.Reset()
	// An HMAC has no WriteString, and io.WriteString would copy the
	// secret; Write neither keeps nor changes what it is given (io.Writer).
	m.Write(unsafe.Slice(unsafe.StringData(secret), len(secret)))
	m.Sum(m.sum[:0])
	sum := m.sum
	clear(m.sum[:])
	// The inner SHA-256 keeps the bytes of an unfinished block, a whole
	// Keyward secret, until a reset overwrites them.
	m.Reset()
	a.hashers.Put(m)
	return sum
}

func (a *Authenticator) secret(ctx context.Context, source string, p *Principal, secret, method string) (*Client, error) {
	// The hash is computed before the lookup, so unknown clients and wrong
	// secrets cost the same.
	sum := a.hashSecret(secret)
	if err := a.resolve(ctx, source, p); err != nil {
		return nil, err
	}
	acct := p.Account
	secrets, err := a.dir.ListSecrets(ctx, acct.ID)
	if err != nil {
		return nil, oauth2.StoreUnavailable(err)
	}
	now := a.cfg.Now()
	match := ""
	for _, s := range secrets {
		if hmac.Equal(sum[:], s.Hash) && !s.Disabled && !s.Expired(now) {
			match = s.ID
		}
	}
	if match == "" {
		return nil, errors.New("no enabled, unexpired secret matches")
	}
	if err := allowed(acct, method); err != nil {
		return nil, err
	}
	a.usage.record(match, now)
	return &Client{Account: acct, Method: method, CredentialID: match}, nil
}

// PeerCertificate returns the client certificate of the connection or,
// from a trusted proxy while CertHeader is set, the one it forwarded and
// never the proxy's own (peerChain); nil for none.
func (a *Authenticator) PeerCertificate(r *http.Request) (*x509.Certificate, error) {
	leaf, _, err := a.peerChain(r)
	return leaf, err
}

// peerChain is PeerCertificate with the certificates the client sent after
// its own (RFC 8446 §4.4.2, RFC 5246 §7.4.6): the intermediates that lead
// to a CA of ClientCAs, which tls_client_auth needs when its certificate
// was not issued by one of them directly. The connection's chain is
// unverified, since the TLS layer only requests a certificate.
//
// With CertHeader set, a request from a trusted proxy has the certificate
// its header names, or none without one: a proxy that connects over mTLS
// itself (a service mesh, an ingress with upstream TLS) presents its own
// certificate, which is not its client's, or every client would hold it.
// A connection from anywhere else is the client's own.
func (a *Authenticator) peerChain(r *http.Request) (*x509.Certificate, []*x509.Certificate, error) {
	var conn []*x509.Certificate
	if r.TLS != nil {
		conn = r.TLS.PeerCertificates
	}
	if a.cfg.CertHeader == "" {
		return leafOf(conn)
	}
	values := r.Header.Values(a.cfg.CertHeader)
	none := len(values) == 0 || len(values) == 1 && noForwardedCert(values[0])
	// The proxy itself, not the client it forwarded for, must be trusted.
	peer := oauth2.PeerIP(r)
	addr, err := netip.ParseAddr(peer)
	if err != nil || !oauth2.Trusted(a.cfg.TrustedProxies, addr) {
		if len(conn) == 0 && !none {
			if unlogged, ok := a.untrustedWarn.allow(a.cfg.Now()); ok {
				a.cfg.Logger.Warn("ignoring a client-certificate header from an untrusted address (this is logged at most once a minute; unlogged counts the headers since the last time)",
					"header", a.cfg.CertHeader, "source", peer, "unlogged", unlogged)
			}
		}
		return leafOf(conn)
	}
	if none {
		return nil, nil, nil
	}
	if len(values) > 1 {
		// A proxy that adds its header instead of setting it passes on
		// the one the client sent too, and the client's may come first:
		// certificates are public, so whichever was read, anyone could
		// name any certificate.
		err := fmt.Errorf("the header was sent %d times: the proxy must set it, replacing any the client sent, not add it", len(values))
		a.unreadableCertificate(peer, oauth2.RemoteIP(r), err)
		return nil, nil, err
	}
	chain, err := parseForwardedCert(values[0])
	if err != nil {
		// The proxy's doing, not the client's: see ErrUnreadableCertificate.
		a.unreadableCertificate(peer, oauth2.RemoteIP(r), err)
		return nil, nil, err
	}
	return chain[0], chain[1:], nil
}

// leafOf splits a chain into its leaf and the certificates after it, or
// returns none for an empty one.
func leafOf(chain []*x509.Certificate) (*x509.Certificate, []*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, nil, nil
	}
	return chain[0], chain[1:], nil
}

// noForwardedCert reports whether a proxy's header says that the client
// presented no certificate: it is empty (HAProxy's %[ssl_c_der,base64]),
// or "(null)", which Apache's mod_headers writes for %{SSL_CLIENT_CERT}s
// when there is none.
func noForwardedCert(v string) bool { return v == "" || v == "(null)" }

// warnEvery is how often at most a warnLimiter lets its warning be
// logged.
const warnEvery = time.Minute

// warnLimiter lets a warning that a client or a misconfigured proxy can
// cause on every request be logged at most once every warnEvery, and
// counts the occurrences it holds back. Its zero value is ready to use.
type warnLimiter struct {
	// last is when the warning was last logged (Unix nanoseconds, 0 for
	// never), and unlogged counts the occurrences since that were not.
	last     atomic.Int64
	unlogged atomic.Int64
}

// allow reports whether an occurrence at now is logged: the first, one
// warnEvery or more after the last logged, or one more than a second
// before it (the clock stepped back, which must not silence the warning
// until it catches up; a request that read the clock just before the
// one logged is no step back). If so, unlogged is how many it held back
// since the last; if not, it counts this one.
func (l *warnLimiter) allow(now time.Time) (unlogged int64, ok bool) {
	n := now.UnixNano()
	last := l.last.Load()
	if last != 0 && n >= last-int64(time.Second) && n-last < int64(warnEvery) || !l.last.CompareAndSwap(last, n) {
		l.unlogged.Add(1)
		return 0, false
	}
	return l.unlogged.Swap(0), true
}

// unreadableCertificate counts a forwarded certificate from the trusted
// proxy peer that does not parse, sent for client (the address the proxy
// reported in X-Forwarded-For, else peer), and warns of it at most once
// every warnEvery; the warning says how many it left out since.
func (a *Authenticator) unreadableCertificate(peer, client string, err error) {
	a.cfg.OnUnreadableCertificate()
	unlogged, ok := a.certWarn.allow(a.cfg.Now())
	if !ok {
		return
	}
	a.cfg.Logger.Warn("a trusted proxy's client-certificate header does not parse: check what the proxy forwards in it; requests that would authenticate with the certificate, or use a token bound to one, are refused, others go on as if no certificate was presented (this is logged at most once a minute; unlogged counts the headers since the last time)",
		"header", a.cfg.CertHeader, "proxy", peer, "source", client, "err", err, "unlogged", unlogged)
}

// ErrUnreadableCertificate is the answer to a request that would
// authenticate with a certificate (tls_client_auth or
// self_signed_tls_client_auth: client_id and no other credentials), or
// that needs a client and presented no other credentials, when the one a
// trusted proxy forwarded does not parse, or came in more than one
// header. That is the proxy's misconfiguration, which says nothing about
// the account, so the answer says what happened instead of "Client
// authentication failed.", and the failure is not held against the
// client in the throttle. Requests that
// authenticate otherwise go on as if no certificate was presented: their
// tokens are not certificate-bound (RFC 8705 §3 binds tokens to the
// certificate a client authenticated with).
func ErrUnreadableCertificate(cause error) *oauth2.Error {
	return &oauth2.Error{
		Code: oauth2.ErrInvalidClient, Status: http.StatusUnauthorized, Err: cause,
		Header:      http.Header{"Www-Authenticate": {Challenge}},
		Description: fmt.Sprintf("Client authentication failed: the TLS client certificate that the proxy in front of this server forwarded could not be read (it is not a certificate in URL-encoded PEM, PEM or base64 DER that this server can parse, or it is a chain of more than %d, or its header was sent more than once), so tls_client_auth and self_signed_tls_client_auth cannot be used; the server's log says why.", maxForwardedChain),
	}
}

// usage remembers when secrets were last used until Flush writes it, so
// the token endpoint does not write on every request.
type usage struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (u *usage) record(id string, t time.Time) {
	u.mu.Lock()
	u.m[id] = t
	u.mu.Unlock()
}

// UsageStore records last use.
type UsageStore interface {
	TouchSecrets(ctx context.Context, lastUsed map[string]time.Time) error
}

// FlushUsage writes the last-use times collected since the last flush.
// If the write fails, they are kept for the next flush (with the later
// time of a secret used again meanwhile).
func (a *Authenticator) FlushUsage(ctx context.Context, st UsageStore) error {
	a.usage.mu.Lock()
	m := a.usage.m
	a.usage.m = map[string]time.Time{}
	a.usage.mu.Unlock()
	err := st.TouchSecrets(ctx, m)
	if err != nil {
		a.usage.mu.Lock()
		for id, t := range m {
			if cur, ok := a.usage.m[id]; !ok || t.After(cur) {
				a.usage.m[id] = t
			}
		}
		a.usage.mu.Unlock()
	}
	return err
}

// Journal makes a write durable: the group committer, which the token
// endpoint also hands its single-use JTIs to.
type Journal interface {
	Write(ctx context.Context, w storage.Write) error
}

// UseJTIs makes the single-use assertion IDs of c (private_key_jwt) used,
// durably, in every replica's eyes. The token endpoint consumes them with
// the token it issues; introspection and revocation, which have no write
// of their own before they act, call this right after authentication. A
// replayed assertion is refused as every failed authentication is: 401
// invalid_client.
func UseJTIs(ctx context.Context, j Journal, c *Client) error {
	if c == nil || len(c.JTIs) == 0 {
		return nil
	}
	err := j.Write(ctx, storage.Write{JTIs: c.JTIs})
	switch {
	case errors.Is(err, storage.ErrReplay):
		return ErrFailed(errors.New("client assertion jti replayed"))
	case err != nil:
		return oauth2.StoreUnavailable(err)
	}
	return nil
}

// Requirer authenticates the client of a request, as Authenticator's
// Require does.
type Requirer interface {
	Require(ctx context.Context, r *http.Request, form oauth2.Form, source string, att *Attempt) (*Client, error)
}

// RequireForToken is how introspection (RFC 7662 §2.1) and revocation
// (RFC 7009 §2.1) begin: it reads the form, authenticates the client with
// auth (from ev.Source), makes the IDs of its assertion used (UseJTIs),
// and returns the client and the token parameter, which both require. ev,
// the request's audit event, gets the authentication method; then the
// client_id of a refused client, or the client as its actor; att, the
// caller's, what authentication found (its Counted, for Budgeted).
func RequireForToken(w http.ResponseWriter, r *http.Request, auth Requirer, j Journal, ev *storage.AuditEvent, att *Attempt) (*Client, string, error) {
	form, err := oauth2.ParseForm(w, r)
	if err != nil {
		return nil, "", err
	}
	caller, err := auth.Require(r.Context(), r, form, ev.Source, att)
	ev.Data["auth_method"] = att.Method
	if err != nil {
		ev.Data["client_id"] = att.ClientID
		return nil, "", err
	}
	if err := UseJTIs(r.Context(), j, caller); err != nil {
		// A client assertion used before (or whose use could not be
		// recorded) proves nothing of who sent it: the refusal names its
		// account as client_id, as a failed authentication's does, not
		// as the actor. A replay is recorded outside the audit budget
		// (Counted): its signature verified, so it is a captured
		// assertion sent again, not junk.
		ev.Data["client_id"] = caller.Account.ID
		att.Counted = true
		return nil, "", err
	}
	ev.Actor = caller.Account.ID
	raw := form.Get("token")
	if raw == "" {
		return nil, "", oauth2.Errorf(oauth2.ErrInvalidRequest, "The token parameter is required.")
	}
	return caller, raw, nil
}

// Refused marks ev, the audit event of an introspection or revocation
// refused with err, as a failure with the error's code and description,
// and returns err as an *oauth2.Error. skip says the refusal is a 429 of
// the client-authentication throttle that rec does not record (the event
// is not to be written); the one it records carries rec's note under
// "throttled".
func Refused(ev *storage.AuditEvent, err error, rec *throttle.Recorder) (oe *oauth2.Error, skip bool) {
	oe = oauth2.AsError(err)
	ev.Outcome = storage.OutcomeFailure
	ev.Data["error"], ev.Data["description"] = oe.Code, oe.Description
	note, skip := rec.Skip(oe.Err)
	if note != "" {
		ev.Data["throttled"] = note
	}
	return oe, skip
}

// Budgeted applies b, the per-address audit budget of the refusals no
// throttle counts (throttle.AuditBurst) and that of all addresses
// (throttle.AuditAllBurst), to the refusal oe of a request whose audit
// event is ev, from ev.Source: it reports skip when the event is not to
// be written, being over either budget; else, when some of the
// address's were not for its own budget, it adds their number to ev.Data
// (made if nil) as "unrecorded", and when some of any address's were not
// for that of all addresses, their number as "unrecorded_all". The
// budget is for a refusal of a request no client authenticated (ev.Actor
// is ""), that is not a failure the throttle counted nor a replay
// (counted, Attempt.Counted), that is the client's fault and not a 429
// of the throttle (which the Recorder limits) nor disabled_client (said
// only to the holder of right credentials): every other refusal is
// recorded. The answer is the same either way, and so is the log line.
func Budgeted(b *throttle.Budget, oe *oauth2.Error, ev *storage.AuditEvent, counted bool) (skip bool) {
	if ev.Actor != "" || counted || oe.ServerFault() || oe.Code == oauth2.ErrDisabledClient {
		return false
	}
	if _, ok := oe.Err.(*throttle.Refused); ok {
		return false
	}
	record, unrecorded, unrecordedAll := b.Take(sourceKey(ev.Source))
	if !record {
		return true
	}
	if (unrecorded > 0 || unrecordedAll > 0) && ev.Data == nil {
		ev.Data = map[string]string{}
	}
	if unrecorded > 0 {
		ev.Data["unrecorded"] = strconv.Itoa(unrecorded)
	}
	if unrecordedAll > 0 {
		ev.Data["unrecorded_all"] = strconv.Itoa(unrecordedAll)
	}
	return false
}

// CountThrottled counts with obs's Throttled a request to endpoint
// refused with err when err is a 429 of the client-authentication
// throttle (its cause a *throttle.Refused); any other refusal, and a nil
// err, it leaves uncounted.
func CountThrottled(obs oauth2.Observer, endpoint string, err error) {
	if err == nil {
		return
	}
	if _, ok := oauth2.AsError(err).Err.(*throttle.Refused); ok {
		obs.Throttled(endpoint)
	}
}

// Record finishes an introspection or revocation that is to be answered
// with err (nil for success) and whose audit event is ev: it writes ev to
// j first when write (with oauth2.RecordContext, so the client hanging up
// does not end the write), and logs the request's one line. An event that
// could not be written is logged by LogUnrecorded as unrecorded, and the
// answer becomes oauth2.Unrecorded; otherwise a refusal is logged by
// LogRefusal as refused. It returns the error to answer with.
func Record(ctx context.Context, log *slog.Logger, j Journal, ev *storage.AuditEvent, write bool, err error, unrecorded, refused string) error {
	if write {
		rctx, cancel := oauth2.RecordContext(ctx)
		werr := j.Write(rctx, storage.Write{Events: []storage.AuditEvent{*ev}})
		cancel()
		if werr != nil {
			LogUnrecorded(ctx, log, unrecorded, werr, err, ev)
			return oauth2.Unrecorded()
		}
	}
	if err != nil {
		// Refused, as /token logs its refusals: the client's own
		// mistakes at info, the server's failures at error.
		LogRefusal(ctx, log, refused, oauth2.AsError(err), ev)
	}
	return err
}

// LogRefusal logs, as msg, why an introspection or revocation whose audit
// event is ev was refused with oe, as the token endpoint logs its
// refusals: at error when the server is at fault (oe.ServerFault), at info
// when the client is, with the error code, description and cause, and the
// authenticated account or, when authentication failed, the client ID as
// presented (RequireForToken's client_id: cut, or a note for one shaped
// like a credential). The token endpoint logs its refusals here too, so
// that every refusal line has the same keys in the same order; extra,
// key-value pairs as slog takes them, go between the cause and the client
// (the token endpoint's grant: "grant", its name).
func LogRefusal(ctx context.Context, log *slog.Logger, msg string, oe *oauth2.Error, ev *storage.AuditEvent, extra ...any) {
	level := slog.LevelInfo
	if oe.ServerFault() {
		level = slog.LevelError
	}
	cause := ""
	if oe.Err != nil {
		cause = oe.Err.Error()
	}
	attrs := []any{"error", oe.Code, "description", oe.Description, "cause", cause}
	attrs = append(attrs, extra...)
	log.Log(ctx, level, msg, append(attrs, logClient(ev)...)...)
}

// LogUnrecorded logs at error, as msg, that the introspection or
// revocation whose audit event is ev went unanswered because werr kept
// the event from being written: one line, with the refusal it was to
// answer (refusal, nil if none) and the client as logClient has it, as
// /token logs it. A store that is down fails both, and each request
// logged two errors.
func LogUnrecorded(ctx context.Context, log *slog.Logger, msg string, werr, refusal error, ev *storage.AuditEvent) {
	attrs := []any{"err", werr}
	if refusal != nil {
		attrs = append(attrs, "refusal", refusal.Error())
	}
	log.ErrorContext(ctx, msg, append(attrs, logClient(ev)...)...)
}

// logClient is the client fields of a log line about the introspection or
// revocation whose audit event is ev, as LogRefusal logs them: the
// authenticated account or, when authentication failed, the client ID as
// presented (RequireForToken's client_id: cut, or a note for one shaped
// like a credential), and the source address.
func logClient(ev *storage.AuditEvent) []any {
	attrs := []any{"account", ev.Actor}
	if id := ev.Data["client_id"]; ev.Actor == "" && id != "" {
		attrs = append(attrs, "client_id", id)
	}
	return append(attrs, "source", ev.Source)
}

// Require authenticates the client of r like Authenticate, and refuses a
// request without client credentials with 401 invalid_client: the
// introspection and revocation endpoints serve authenticated clients only.
func (a *Authenticator) Require(ctx context.Context, r *http.Request, form oauth2.Form, source string, att *Attempt) (*Client, error) {
	c, err := a.Authenticate(ctx, r, form, source, att)
	if err == nil && c == nil {
		return nil, NoClientError(*att, "Client authentication is required")
	}
	return c, err
}

// NoClientError is the answer to a request that needs a client when
// Authenticate, which filled in att, authenticated none: a certificate
// without client_id is told so (ErrCertificateWithoutClientID), as is one
// a trusted proxy forwarded that does not parse (ErrUnreadableCertificate);
// anything else gets 401 invalid_client with a Basic challenge, its
// description needs (such as "Client authentication is required") followed
// by the credentials that would do.
func NoClientError(att Attempt, needs string) *oauth2.Error {
	switch {
	case att.UnusedCertificate:
		return ErrCertificateWithoutClientID()
	case att.UnreadableCertificate != nil:
		return ErrUnreadableCertificate(att.UnreadableCertificate)
	}
	e := ErrFailed(errors.New("no client credentials"))
	e.Description = needs + ": a client secret, a client assertion or a TLS client certificate."
	return e
}
