package token

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/tokenstate"
)

// badScope is the service-account flow's description of invalid_scope:
// no scope requested, or one that does not exist. What is wrong follows.
const badScope = "Invalid OAuth scope or ID token audience provided."

// scopeError is invalid_scope for a scope parameter or claim that
// oauth2.ParseScope refused with err.
func scopeError(err error) error {
	msg := err.Error()
	return oauth2.Errorf(oauth2.ErrInvalidScope, "%s %s%s.", badScope, strings.ToUpper(msg[:1]), msg[1:])
}

// issuance is everything needed to mint one access token.
type issuance struct {
	account storage.Account
	// subject is the token's sub; the account's ID unless delegated.
	subject string
	// delegated: the account acts for subject, a user, with the grant's
	// scopes instead of its own.
	delegated bool
	granted   []string
	// delegatedSince, when delegated, is the later of the creation of the
	// grant and of the user: a token issued in an earlier second is not
	// the grant's (delegation.Check).
	delegatedSince time.Time
	// scopes are the requested scopes, already parsed.
	scopes []string
	// resources are the RFC 8707 resource parameters: the APIs the token
	// is for.
	resources []string
	// jtis are consumed atomically with the audit event.
	jtis []storage.UsedJTI
	// grantJTI says jtis holds the JWT-bearer assertion's own jti: without
	// it, a replay among jtis (DPoP's aside) is the client assertion's.
	grantJTI bool
	// thumbprint, if set, binds the token to a client certificate.
	thumbprint string
	// credential names the key or secret the client authenticated with.
	credential string
}

// resolveScopes checks the requested scopes against the catalog and the
// account and returns the token's audience. Every scope must belong to an
// API and be allowed to the account; resources (RFC 8707) narrow the
// audience to those APIs and keep only their scopes.
//
// The token is opaque when the account says so, or when any API of its
// audience wants opaque tokens (then no claims reach anyone), unless the
// account says jwt.
func (h *Handler) resolveScopes(ctx context.Context, acct storage.Account, allowed, scopes, resources []string) ([]string, oauth2.Audience, bool, error) {
	if len(scopes) == 0 {
		return nil, nil, false, oauth2.Errorf(oauth2.ErrInvalidScope, "%s No scope was requested.", badScope)
	}
	apis, err := h.dir.ListAPIs(ctx)
	if err != nil {
		return nil, nil, false, oauth2.StoreUnavailable(err)
	}
	ix := h.catalog.Of(apis)
	var targets []*storage.API
	for _, r := range resources {
		if r == "" {
			continue // an empty parameter asks for nothing
		}
		api := ix.API(r)
		if api == nil {
			return nil, nil, false, oauth2.Errorf(oauth2.ErrInvalidTarget, "The resource %s is not a registered API.", oauth2.QuoteForDescription(r))
		}
		if !slices.Contains(targets, api) {
			targets = append(targets, api)
		}
	}
	var (
		kept   []string
		aud    oauth2.Audience
		opaque = acct.TokenFormat == storage.TokenOpaque
	)
	for _, s := range scopes {
		api := ix.Owner(s)
		if api == nil {
			return nil, nil, false, oauth2.Errorf(oauth2.ErrInvalidScope, "%s No registered API has the scope %s.", badScope, oauth2.QuoteForDescription(s))
		}
		if !slices.Contains(allowed, s) {
			return nil, nil, false, oauth2.Errorf(oauth2.ErrInvalidScope, "The service account is not allowed the scope %s.", oauth2.QuoteForDescription(s))
		}
		if len(targets) > 0 {
			if !slices.Contains(targets, api) {
				continue
			}
			kept = append(kept, s)
		}
		if !aud.Contains(api.Identifier) {
			aud = append(aud, api.Identifier)
			if api.TokenFormat == storage.TokenOpaque && acct.TokenFormat != storage.TokenJWT {
				opaque = true
			}
		}
	}
	if len(targets) == 0 {
		// Every scope passed, and each is kept: no resource narrows them.
		kept = scopes
	}
	if len(kept) == 0 {
		return nil, nil, false, oauth2.Errorf(oauth2.ErrInvalidScope, "None of the requested scopes belongs to the resource %s.", quoteAPIs(targets))
	}
	return kept, aud, opaque, nil
}

// maxQuoted is how many APIs a message names: a request may repeat
// resource parameters by the thousand, and the message goes to the
// response, the log and the audit event.
const maxQuoted = 3

// quoteAPIs quotes the identifiers of apis for an error description: 'a',
// or 'a', 'b', at most maxQuoted of them and how many more.
func quoteAPIs(apis []*storage.API) string {
	q := make([]string, 0, min(len(apis), maxQuoted)+1)
	for _, a := range apis[:min(len(apis), maxQuoted)] {
		q = append(q, oauth2.QuoteForDescription(a.Identifier))
	}
	if n := len(apis) - maxQuoted; n > 0 {
		q = append(q, "and "+strconv.Itoa(n)+" more")
	}
	return strings.Join(q, ", ")
}

// maxRevocationLead bounds how far ahead of this server's clock a
// revocation of an account's tokens, or the creation of a delegation's
// grant or user, may be for a token request to wait for it (see issue):
// one made by a replica whose clock is ahead, by less than clocks kept by
// NTP ever differ. One further ahead (a clock wrong by more, or stepped
// back) is not waited for.
const maxRevocationLead = 2 * time.Second

// issue mints an access token and records it durably before returning.
func (h *Handler) issue(ctx context.Context, req *Request, is issuance) (*Response, error) {
	allowed := is.account.Scopes
	if is.delegated {
		allowed = is.granted
	}
	scopes, aud, opaque, err := h.resolveScopes(ctx, is.account, allowed, is.scopes, is.resources)
	if err != nil {
		return nil, err
	}
	if err := h.bindProof(req, &is); err != nil {
		return nil, err
	}
	scope := strings.Join(scopes, " ")
	req.Audit.Scope = scope
	lifetime := is.account.TokenLifetime
	if lifetime <= 0 || lifetime > h.cfg.MaxTokenLifetime {
		lifetime = h.cfg.MaxTokenLifetime
	}
	now := req.Now.Truncate(time.Second)
	// Got with a CA-issued certificate: client_credentials names it as the
	// credential; the JWT-bearer grant names the assertion's key, and
	// binds the token to the certificate the client authenticated with.
	byCert := tokenstate.ByCertificate(is.credential) || req.Client != nil && req.Client.Method == storage.AuthTLS
	// issueIn is the second the token is issued in: this one, or a later
	// one it must wait for. near reports whether t, set by a replica whose
	// clock may be ahead of this one's, is not so far ahead that it is not
	// waited for (maxRevocationLead).
	issueIn := now.Unix()
	near := func(t time.Time) bool { return t.Sub(req.Now) < maxRevocationLead }
	if r := is.account.TokensRevokedBefore; near(r) {
		issueIn = max(issueIn, r.Unix()+1)
	}
	if r := is.account.CertTokensRevokedBefore; byCert && near(r) {
		issueIn = max(issueIn, r.Unix()+1)
	}
	// A grant or user made by a replica whose clock is ahead may be in a
	// later second of this clock: a delegated token issued now would be
	// older than them, and inactive from the start. Wait for that second.
	if c := is.delegatedSince; is.delegated && near(c) {
		issueIn = max(issueIn, c.Unix())
	}
	// notBefore is the earliest the answer can go: the request's time,
	// or the second waited for.
	notBefore := req.Now
	if issueIn > now.Unix() {
		// The account's tokens were revoked in this second (sa
		// revoke-tokens), or its certificate tokens (a change of its
		// certificate binding) and this one is got with a certificate,
		// which ends every such token with this iat: one issued now would
		// be born revoked, and the client (the CLI's next call, say)
		// refused with it. Wait for the next second, less than one, and
		// issue it then. A revocation made by a replica whose clock is
		// ahead is in a later second of this clock: wait for the second
		// after it.
		next := now.Add(time.Duration(issueIn-now.Unix()) * time.Second)
		t := time.NewTimer(next.Sub(req.Now))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, oauth2.StoreUnavailable(ctx.Err())
		}
		now, notBefore = next, next
	}
	claims := oauth2.AccessClaims{
		Issuer:      h.cfg.Issuer,
		Subject:     is.subject,
		Audience:    aud,
		ClientID:    is.account.ID,
		ClientEmail: is.account.Email,
		IssuedAt:    now.Unix(),
		Expiry:      now.Add(lifetime).Unix(),
		ID:          newTokenID(), // fresh randomness in every signed message: see signer's ES256
		Scope:       scope,
	}
	jkt := ""
	if req.proof != nil {
		jkt = req.proof.JKT
	}
	if is.thumbprint != "" || jkt != "" {
		claims.Confirmation = &oauth2.Confirmation{X5TS256: is.thumbprint, JKT: jkt}
	}
	actor := ""
	if is.delegated {
		claims.Actor = &oauth2.Actor{Subject: is.account.ID, ClientEmail: is.account.Email}
		actor = is.account.ID
	}
	var (
		raw    string
		record *storage.TokenRecord
	)
	if opaque {
		raw = tokenstate.OpaquePrefix + randomToken()
		record = &storage.TokenRecord{
			Hash: tokenstate.HashOpaque(raw), ID: claims.ID, AccountID: is.account.ID, Subject: claims.Subject,
			Scope: scope, Audience: aud, Credential: is.credential, Thumbprint: is.thumbprint, JKT: jkt, Actor: actor,
			IssuedAt: now, ExpiresAt: now.Add(lifetime),
		}
	} else {
		claims.Credential = is.credential
		if raw, err = h.signer.Sign(&claims); err != nil {
			return nil, oauth2.AsError(err)
		}
	}
	data := map[string]string{
		"grant":    req.Audit.Grant,
		"scope":    scope,
		"aud":      strings.Join(aud, " "),
		"token_id": claims.ID,
		"expires":  strconv.FormatInt(claims.Expiry, 10),
	}
	addNonEmpty(data, "auth_method", req.Audit.AuthMethod)
	addNonEmpty(data, "key_id", req.Audit.KeyID)
	addNonEmpty(data, "secret_id", req.Audit.SecretID)
	addNonEmpty(data, "cnf_x5t", is.thumbprint)
	addNonEmpty(data, "cnf_jkt", jkt)
	if opaque {
		data["format"] = storage.TokenOpaque
	}
	if is.delegated {
		// The delegation chain: who acted (the account) for whom.
		data["subject"] = is.subject
		data["delegation"] = is.account.Email + " acting for " + is.subject
	}
	err = h.journal.Write(ctx, storage.Write{JTIs: is.jtis, Token: record, Events: []storage.AuditEvent{{
		Time: req.Now, Action: "token.issued", Outcome: storage.OutcomeSuccess,
		AccountID: is.account.ID, Actor: is.account.ID, Source: req.Source, Data: data,
	}}})
	if errors.Is(err, storage.ErrReplay) && slices.ContainsFunc(is.jtis, func(j storage.UsedJTI) bool { return !strings.HasPrefix(j.Issuer, "dpop:") }) {
		// An assertion's jti, maybe (the store does not say which): one
		// used before proves nothing of who sent it again, so the
		// refusal names its account (AccountID), not as the actor. It is
		// recorded all the same, outside the audit budget (Counted): its
		// signature verified, so it is a captured assertion sent again.
		req.Audit.Actor = ""
		req.attempt.Counted = true
	}
	if errors.Is(err, storage.ErrReplay) && req.proof != nil {
		// The proof's jti, or an assertion's: the store does not say.
		return nil, oauth2.Errorf(oauth2.ErrInvalidDPoPProof, "Invalid DPoP proof: it or the request's client assertion was used before: make new ones for every request.")
	}
	if errors.Is(err, storage.ErrReplay) {
		if !is.grantJTI {
			// The only single-use ID was the client assertion's (the
			// client_credentials grant, or a JWT-bearer assertion without
			// a jti): a failed client authentication (RFC 7523 §3.2).
			return nil, clientauth.ErrFailed(errors.New("client assertion jti replayed"))
		}
		if len(is.jtis) > 1 {
			// The grant assertion's jti or the client assertion's: the
			// store does not say which, and a client told only of the
			// grant assertion's would sign new ones and resend the same
			// client assertion.
			return nil, oauth2.Errorf(oauth2.ErrInvalidGrant, "Invalid JWT: the assertion's jti or the client assertion's was already used; sign new ones for every request.")
		}
		return nil, oauth2.Errorf(oauth2.ErrInvalidGrant, "Invalid JWT: the assertion's jti was already used; sign a new assertion for every request.")
	}
	if err != nil {
		return nil, oauth2.StoreUnavailable(err)
	}
	tokenType := oauth2.TokenTypeBearer
	if jkt != "" {
		tokenType = oauth2.TokenTypeDPoP // RFC 9449 §5
	}
	// expires_in is the whole seconds from when the answer goes (now,
	// after the store's write; not before notBefore, whatever the clock
	// says) to exp, rounded down, and never below 0: a client reuses the
	// token for that long (RFC 6749 §5.1, and the service-account flow's
	// "duration window"), and exp, in whole seconds, leaves a token issued
	// within a second less than lifetime.
	sent := h.now()
	if sent.Before(notBefore) {
		sent = notBefore
	}
	expiresIn := max(int64(time.Unix(claims.Expiry, 0).Sub(sent)/time.Second), 0)
	return &Response{AccessToken: raw, TokenType: tokenType, ExpiresIn: expiresIn, Scope: scope}, nil
}
