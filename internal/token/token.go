// Package token implements the token endpoint (RFC 6749 §3.2): a dispatcher
// that owns what every grant shares, and one file per grant.
package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/catalog"
	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/jsonappend"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
)

// Directory is what the token endpoint reads: accounts, their keys and the
// API catalog. storage.Storage satisfies it; a cache may stand in front.
type Directory interface {
	GetAccount(ctx context.Context, id string) (storage.Account, error)
	GetAccountByEmail(ctx context.Context, email string) (storage.Account, error)
	AccountEmailAt(ctx context.Context, local, domain string) (bool, error)
	ListKeys(ctx context.Context, accountID string) ([]storage.Key, error)
	ListAPIs(ctx context.Context) ([]storage.API, error)
	GetOrg(ctx context.Context, domain string) (storage.Org, error)
	GetGrant(ctx context.Context, org, clientID string) (storage.Grant, error)
	GetProjectOrg(ctx context.Context, project string) (storage.ProjectOrg, error)
	GetUser(ctx context.Context, email string) (storage.User, error)
}

// Journal makes a write durable before the response is sent.
type Journal interface {
	Write(ctx context.Context, w storage.Write) error
}

// Authenticator authenticates the client of a request, if it presents
// credentials, and throttles failures: its own, and the JWT-bearer
// grant's, which it is told of.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, form oauth2.Form, source string, att *clientauth.Attempt) (*clientauth.Client, error)
	// Throttled returns a 429 error when failures from source, or of
	// client at source, are being slowed down.
	Throttled(source, client string) *oauth2.Error
	// Failed records a failure from source, of client if set.
	Failed(source, client string)
}

// Signer signs access tokens.
type Signer interface {
	Sign(claims any) (string, error)
}

// Config configures the token endpoint.
type Config struct {
	// Issuer is the server's issuer identifier (its base URL).
	Issuer string
	// MaxAssertionLifetime bounds exp - iat of assertions (inclusive).
	MaxAssertionLifetime time.Duration
	// ClockSkew is the tolerated difference between clocks.
	ClockSkew time.Duration
	// MaxTokenLifetime caps every account's token lifetime.
	MaxTokenLifetime time.Duration
	// RequireAssertionJTI refuses a JWT-bearer assertion without a jti
	// (RFC 7523 §3 makes it optional): with one, an assertion is
	// single-use; without, it can be replayed until it expires. Google's
	// client libraries send none, so it is off by default.
	RequireAssertionJTI bool
	// DPoPNonces, if set, makes DPoP proofs carry a nonce the server
	// provided (RFC 9449 §8); nil accepts proofs without one.
	DPoPNonces *dpop.Nonces
	// Observer records each request for metrics; nil records nothing.
	Observer oauth2.Observer
}

// Handler serves POST /token.
type Handler struct {
	cfg     Config
	dir     Directory
	mem     clientauth.AccountCache // dir's memory of accounts, or nil
	journal Journal
	signer  Signer
	auth    Authenticator
	now     func() time.Time
	log     *slog.Logger
	grants  map[string]grant
	catalog catalog.Cache
	// dpop checks DPoP proofs; dpopSeen remembers this process's recent
	// ones, so that a replay to it is told apart from a replayed client
	// assertion (the store is what refuses replays to any process).
	dpop     dpop.Checker
	dpopSeen *dpop.ReplayCache
	// proofURL is the URL a proof's htu must name: the token endpoint as
	// the metadata names it, normalized once. An issuer URL that does not
	// normalize is kept as it is, for Check to refuse every proof saying
	// why, as it would.
	proofURL dpop.Request
	// assertionAud are the aud values a JWT-bearer assertion may carry,
	// and assertionAudHint what the message refusing another names; set
	// once, not for each request.
	assertionAud     []string
	assertionAudHint string
	// recorded says which 429s of the throttle (a clientauth 429, whose
	// cause is a *throttle.Refused) are recorded: one per throttle key a
	// throttle.RecordEvery.
	recorded *throttle.Recorder
	// budget says which refusals the throttle does not count are
	// recorded (clientauth.Budgeted).
	budget *throttle.Budget
}

// grant handles one grant_type.
type grant interface {
	// name is the grant in audit events, logs and metrics:
	// client_credentials or jwt-bearer.
	name() string
	handle(ctx context.Context, r *Request) (*Response, error)
}

// Request is a token request being handled. Grants fill in the audit fields
// as they learn them, so a refusal is recorded with what was known.
type Request struct {
	Form oauth2.Form
	// Client is the authenticated client, or nil.
	Client *clientauth.Client
	Source string // remote IP
	Now    time.Time
	Audit  AuditInfo
	// attempt is what client authentication found: a grant that needs a
	// client answers its absence with clientauth.NoClientError.
	attempt clientauth.Attempt
	// proof is the request's checked DPoP proof, or nil: the token is
	// bound to its key (RFC 9449 §5).
	proof *dpop.Proof
}

// AuditInfo is what the audit event of a token request records.
type AuditInfo struct {
	Grant      string
	AuthMethod string
	// AccountID is the account the request names; Actor is the same
	// account once the request has proved to come from it (its client
	// authenticated, or its assertion verified), else "": an assertion
	// anyone could have forged, or replayed, names an account, not the
	// actor.
	AccountID string
	Actor     string
	KeyID     string
	SecretID  string
	ClientID  string // clientauth.Attempt's (cut, or a note for one shaped like a credential), when authentication failed
	Scope     string
	// Subject is the user a verified assertion asks to act for
	// (domain-wide delegation), lower-cased and cut at maxAuditSubject
	// bytes: a refusal names whom the account tried to act for.
	Subject string
	// RequestClientID is the client_id a JWT-bearer request sent without
	// credentials that names another account than its assertion's, as
	// presented (clientauth.PresentedID): its refusal's event names the
	// assertion's account, and records this as request_client_id.
	RequestClientID string
}

// maxAuditSubject bounds the user a refused delegation's audit event
// names: an email has at most 254 bytes.
const maxAuditSubject = 256

// Response is the successful token response (RFC 6749 §5.1).
type Response struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// AppendJSON appends r as JSON, the same as json.Marshal writes it.
func (r *Response) AppendJSON(dst []byte) []byte {
	o := jsonappend.NewObject(dst)
	o.String("access_token", r.AccessToken)
	o.String("token_type", r.TokenType)
	o.Int("expires_in", r.ExpiresIn)
	if r.Scope != "" {
		o.String("scope", r.Scope)
	}
	return o.End()
}

// NewHandler returns the token endpoint handler.
func NewHandler(cfg Config, dir Directory, journal Journal, signer Signer, auth Authenticator, now func() time.Time, log *slog.Logger) *Handler {
	if cfg.Observer == nil {
		cfg.Observer = oauth2.NopObserver{}
	}
	h := &Handler{cfg: cfg, dir: dir, journal: journal, signer: signer, auth: auth, now: now, log: log}
	h.mem, _ = dir.(clientauth.AccountCache)
	h.dpop = dpop.Checker{Now: now, Skew: cfg.ClockSkew}
	h.proofURL = dpop.Request{URL: oauth2.TokenEndpoint(cfg.Issuer)}
	if u, err := dpop.NormalizeURL(h.proofURL.URL); err == nil {
		h.proofURL = dpop.Request{URL: u, URLNormalized: true}
	}
	h.dpopSeen = dpop.NewReplayCache(h.dpop.Retention(), 0)
	h.assertionAud = []string{oauth2.TokenEndpoint(cfg.Issuer), cfg.Issuer}
	h.assertionAudHint = "this server's token endpoint URL " + oauth2.TokenEndpoint(cfg.Issuer) + " or its issuer " + cfg.Issuer
	h.recorded = throttle.NewRecorder(throttle.MaxRecordedKeys, now)
	h.budget = throttle.NewBudget(throttle.MaxRecordedKeys, now)
	h.grants = map[string]grant{
		oauth2.GrantJWTBearer:         &jwtBearer{h: h},
		oauth2.GrantClientCredentials: &clientCredentials{h: h},
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req := &Request{Source: oauth2.RemoteIP(r), Now: h.now()}
	resp, err := h.serve(w, r, req)
	if err == nil {
		if req.proof != nil && h.cfg.DPoPNonces != nil {
			// The nonce for the client's next proof (RFC 9449 §8.2), so
			// one that asks often never meets a stale one.
			w.Header().Set(dpop.NonceHeader, h.cfg.DPoPNonces.Current(req.Now))
		}
		oauth2.WriteJSON(w, http.StatusOK, resp)
		h.cfg.Observer.ObserveRequest("token", req.Audit.Grant, req.Audit.AuthMethod, storage.OutcomeSuccess, "", time.Since(start))
		return
	}
	oe := oauth2.AsError(err)
	clientauth.CountThrottled(h.cfg.Observer, "token", oe)
	// account is the account that authenticated, the event's actor. An
	// account an assertion only names (its signature or another check
	// failed, or it was replayed) is claimed, not authenticated: anyone
	// can write its email in an iss. client_id is which client failed to
	// authenticate, as its audit event says: the client ID as presented,
	// cut, or a note for one shaped like a credential
	// (clientauth.Attempt), or an assertion's iss.
	if werr := h.recordRefusal(r.Context(), req, oe); werr != nil {
		// One line, with the refusal and the client, as /introspect and
		// /revoke log it: a store that is down fails both, and each
		// request logged an error, then the 503 with no cause.
		refusal := oe.Error()
		oe = oauth2.Unrecorded()
		attrs := []any{"error", oe.Code, "description", oe.Description, "err", werr, "refusal", refusal, "grant", req.Audit.Grant, "account", req.Audit.Actor}
		if req.Audit.Actor == "" && req.Audit.ClientID != "" {
			attrs = append(attrs, "client_id", req.Audit.ClientID)
		}
		h.log.ErrorContext(r.Context(), "token request refused, and its audit event could not be written", append(attrs, "source", req.Source)...)
	} else {
		// As /introspect and /revoke log their refusals (at info, or
		// at error when the server is at fault), with the grant.
		ev := &storage.AuditEvent{Actor: req.Audit.Actor, Source: req.Source, Data: map[string]string{"client_id": req.Audit.ClientID}}
		clientauth.LogRefusal(r.Context(), h.log, "token request refused", oe, ev, "grant", req.Audit.Grant)
	}
	oauth2.WriteError(w, oe)
	h.cfg.Observer.ObserveRequest("token", knownGrant(req.Audit.Grant), req.Audit.AuthMethod, storage.OutcomeFailure, oe.Code, time.Since(start))
}

// knownGrant keeps metric labels to a closed set.
func knownGrant(g string) string {
	switch g {
	case "jwt-bearer", "client_credentials", "unsupported", "":
		return g
	}
	return "other"
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, req *Request) (*Response, error) {
	form, err := oauth2.ParseForm(w, r)
	if err != nil {
		return nil, err
	}
	req.Form = form
	gt := form.Get("grant_type")
	req.Audit.Grant = gt
	if gt == "" {
		return nil, oauth2.Errorf(oauth2.ErrInvalidRequest, "The grant_type parameter is required.")
	}
	g, ok := h.grants[gt]
	if !ok {
		req.Audit.Grant = "unsupported"
		// Which one, for the log alone (grant is a closed set): quoted
		// as a description quotes a client's value, never a credential.
		return nil, oauth2.Errorf(oauth2.ErrUnsupportedGrantType, "The grant type is not supported; use %s or %s.",
			oauth2.GrantClientCredentials, oauth2.GrantJWTBearer).WithCause(errors.New("grant_type " + oauth2.QuoteForDescription(gt)))
	}
	// Named from here on, so that a refusal before the grant's own
	// checks (client authentication, the DPoP proof) is recorded under
	// the same name as the grant's.
	req.Audit.Grant = g.name()
	// A client_id alone identifies the client of a JWT-bearer grant,
	// whose assertion authenticates it (jwtBearer checks they agree).
	// The attempt is req's, on the heap already: an Attempt of its own
	// would be moved there too, given to an interface's method.
	req.attempt = clientauth.Attempt{IdentifyOnly: g.name() == "jwt-bearer"}
	client, err := h.auth.Authenticate(r.Context(), r, form, req.Source, &req.attempt)
	req.Audit.AuthMethod, req.Audit.ClientID = req.attempt.Method, req.attempt.ClientID
	if err != nil {
		return nil, err
	}
	if client != nil {
		req.Client = client
		req.Audit.AuthMethod = client.Method
		req.Audit.AccountID = client.Account.ID
		req.Audit.Actor = client.Account.ID
		if client.Method == storage.AuthSecretBasic || client.Method == storage.AuthSecretPost {
			req.Audit.SecretID = client.CredentialID
		} else {
			req.Audit.KeyID = client.CredentialID
		}
	}
	if req.proof, err = h.checkProof(r, req.Now); err != nil {
		return nil, err
	}
	return g.handle(r.Context(), req)
}

// recordRefusal writes the token.refused event of req, refused with oe,
// durably. A 429 of the throttle is written only when it is the first of
// its throttle key in a throttle.RecordEvery, and its event says that
// further ones are not; a refusal of no client that the throttle does not
// count (an empty body, an unknown grant type, no credentials) only as
// the audit budgets of its address and of all addresses allow
// (clientauth.Budgeted). So a flood of failures from one address, or
// from many, writes a bounded number of events, not one per request.
func (h *Handler) recordRefusal(ctx context.Context, req *Request, oe *oauth2.Error) error {
	note, skip := h.recorded.Skip(oe.Err)
	if skip {
		return nil
	}
	data := map[string]string{"error": oe.Code, "description": oe.Description}
	addNonEmpty(data, "throttled", note)
	addNonEmpty(data, "grant", req.Audit.Grant)
	addNonEmpty(data, "auth_method", req.Audit.AuthMethod)
	addNonEmpty(data, "key_id", req.Audit.KeyID)
	addNonEmpty(data, "secret_id", req.Audit.SecretID)
	addNonEmpty(data, "scope", req.Audit.Scope)
	addNonEmpty(data, "subject", req.Audit.Subject)
	addNonEmpty(data, "request_client_id", req.Audit.RequestClientID)
	if req.Audit.AccountID == "" {
		addNonEmpty(data, "client_id", req.Audit.ClientID)
	}
	ev := storage.AuditEvent{
		Time: req.Now, Action: "token.refused", Outcome: storage.OutcomeFailure,
		AccountID: req.Audit.AccountID, Actor: req.Audit.Actor, Source: req.Source, Data: data,
	}
	if clientauth.Budgeted(h.budget, oe, &ev, req.attempt.Counted) {
		return nil
	}
	ctx, cancel := oauth2.RecordContext(ctx)
	defer cancel()
	return h.journal.Write(ctx, storage.Write{Events: []storage.AuditEvent{ev}})
}

func addNonEmpty(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// newTokenID returns a random 128-bit token identifier that does not start
// with '-', so it can be passed to a command line ('keyward tokens revoke
// ID') without being taken for a flag; that leaves 127.98 bits.
func newTokenID() string {
	b := make([]byte, 16)
	for {
		rand.Read(b)
		if b[0]>>2 != 62 { // base64url's '-' is 62
			return base64.RawURLEncoding.EncodeToString(b)
		}
	}
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// credentialOf names what a client authenticated with, for the cred claim.
func credentialOf(c *clientauth.Client) string {
	switch {
	case c == nil:
		return ""
	case c.Method == storage.AuthSecretBasic || c.Method == storage.AuthSecretPost:
		return "secret:" + c.CredentialID
	case c.CredentialID != "":
		return "key:" + c.CredentialID
	case c.Certificate != nil:
		return "cert:" + c.Thumbprint()
	}
	return ""
}
