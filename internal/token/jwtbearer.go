package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyward/keyward/internal/assertion"
	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// jwtBearer is the JWT-bearer authorization grant (RFC 7523 §2.1 and §3),
// as the service-account flow uses it.
type jwtBearer struct{ h *Handler }

func (g *jwtBearer) name() string { return "jwt-bearer" }

func (g *jwtBearer) handle(ctx context.Context, req *Request) (*Response, error) {
	h := g.h
	if req.Client == nil {
		req.Audit.AuthMethod = "jwt_assertion"
	}
	raw := req.Form.Get("assertion")
	if raw == "" {
		return nil, oauth2.Errorf(oauth2.ErrInvalidRequest, "The assertion parameter is required: a JWT signed with the service account's private key.")
	}
	// Failed assertions are throttled as failed client authentications
	// are, per source and per iss at the source, before any lookup or
	// signature work.
	tok, err := assertion.Parse(raw)
	if err != nil {
		if terr := h.auth.Throttled(req.Source, ""); terr != nil {
			return nil, terr
		}
		h.auth.Failed(req.Source, "")
		req.attempt.Counted = true
		return nil, assertionError(err)
	}
	c := tok.Claims
	// An account is named by its email or its numeric ID: its failures
	// count under the clientauth.Principal's Key, its ID once known (from
	// memory here, else after the lookup below), so a client that
	// alternates the two does not get two allowances.
	p := clientauth.Recall(h.mem, c.Issuer)
	if terr := h.auth.Throttled(req.Source, p.Key()); terr != nil {
		return nil, terr
	}
	fail := func(err error) error {
		h.auth.Failed(req.Source, p.Key())
		req.attempt.Counted = true
		return err
	}
	if c.Issuer == "" {
		return nil, fail(oauth2.Errorf(oauth2.ErrInvalidGrant, "Invalid JWT: the iss claim must be the service account's email address."))
	}
	if req.Client == nil {
		// Who is failing while no account is known (the log and the
		// audit event name it): the iss as sent, as a client ID sent
		// with a secret is named.
		req.Audit.ClientID = clientauth.PresentedID(c.Issuer)
	} else if a := req.Client.Account; c.Issuer != a.ID && c.Issuer != a.Email {
		// Refused before any lookup (iss is looked up as sent, so no
		// other name is the client's account): the same answer whether
		// iss names another account or none, or an authenticated client
		// could learn which emails and IDs are accounts.
		return nil, oauth2.Errorf(oauth2.ErrInvalidGrant, "The assertion was issued by another service account than the authenticated client.")
	}
	if err := p.Resolve(ctx, req.Source, h.lookupAccount, h.auth.Throttled); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			// Answered as a signature no key of a known account verifies:
			// one signing with a key of its own must not learn which iss
			// names an account (client authentication hides an unknown
			// client alike). The log and the audit event say why. The
			// signature is checked all the same, with a decoy key, so the
			// answer comes no sooner than a known account's.
			tok.VerifyDecoy()
			return nil, fail(oauth2.Errorf(oauth2.ErrInvalidGrant, "Invalid JWT Signature.").WithCause(errors.New("no account has the iss")))
		}
		return nil, err
	}
	acct := p.Account
	if req.Client != nil && req.Client.Account.ID != acct.ID {
		// Named as the client's account is, yet another (a store that
		// changed under the cache): refused all the same.
		return nil, oauth2.Errorf(oauth2.ErrInvalidGrant, "The assertion was issued by another service account than the authenticated client.")
	}
	req.Audit.AccountID = acct.ID
	keys, err := h.dir.ListKeys(ctx, acct.ID)
	if err != nil {
		return nil, oauth2.StoreUnavailable(err)
	}
	// The signature is checked before the account's state is reported, so
	// only the key holder learns that the account is disabled.
	key, err := tok.Verify(keys, assertion.Expect{
		Audiences:       h.assertionAud,
		AudienceHint:    h.assertionAudHint,
		MaxLifetime:     h.cfg.MaxAssertionLifetime,
		RequireIssuedAt: true,
		RequireID:       h.cfg.RequireAssertionJTI,
		Skew:            h.cfg.ClockSkew,
		Now:             req.Now,
		Logger:          h.log,
	})
	if req.Client == nil {
		req.Audit.KeyID = key.ID
	}
	if err == nil {
		// Signed by a key of the account, for this server, and fresh: the
		// account is the actor. One that fails a check may be another's
		// replay of it, or a forgery.
		req.Audit.Actor = acct.ID
	}
	if err != nil {
		if assertion.IsReason(err, assertion.DisabledKey) {
			// The signature is good: the key holder, not a guesser.
			return nil, assertionError(err)
		}
		return nil, fail(assertionError(err))
	}
	if id := req.attempt.Identified; id != "" && id != acct.ID && id != acct.Email {
		// A client_id without credentials (RFC 7521 §4.1) that names
		// another client than the one the assertion authenticates: the
		// seed's invalid_client, a JWT not "issued for the client ID in
		// the request". Checked after the signature, so that only the
		// key holder learns whether an ID and an email name one account.
		req.Audit.RequestClientID = clientauth.PresentedID(id)
		e := clientauth.ErrFailed(fmt.Errorf("client_id %q is not the assertion's account", req.Audit.RequestClientID))
		e.Description = "The assertion was not issued for the client ID in the request: client_id names another client than its issuer (iss); send the service account's own client ID or email, or no client_id."
		return nil, e
	}
	if acct.Disabled {
		return nil, oauth2.Errorf(oauth2.ErrDisabledClient, "The OAuth client was disabled. The service account is disabled.")
	}

	subject := c.Subject
	if subject == "" {
		subject = c.Prn
	} else if c.Prn != "" && c.Prn != subject {
		return nil, oauth2.Errorf(oauth2.ErrInvalidGrant, "Invalid JWT: the sub and prn claims name different users.")
	}

	scope := c.Scope
	if form := req.Form.Get("scope"); form != "" {
		if scope != "" && !sameScopes(scope, form) {
			return nil, oauth2.Errorf(oauth2.ErrInvalidScope, "The scope claim of the assertion and the scope parameter disagree; send one of them.")
		}
		scope = form
	}
	scopes, err := oauth2.ParseScope(scope)
	if err != nil {
		return nil, scopeError(err)
	}
	if len(scopes) == 0 && c.TargetAudience != nil {
		return nil, oauth2.Errorf(oauth2.ErrInvalidScope, "%s This server issues access tokens, not ID tokens (target_audience); request the API's scopes instead.", badScope)
	}

	is := issuance{account: acct, subject: acct.ID, scopes: scopes, resources: req.Form.Values("resource"), credential: "key:" + key.ID}
	// A sub that is the account's email names the account itself whatever
	// its capitals, and whatever those of the email stored (a store made
	// before the account domain had to be lower case may hold capitals);
	// iss, by contrast, is looked up as sent.
	if subject != "" && !strings.EqualFold(subject, acct.Email) && subject != acct.ID {
		// Domain-wide delegation: only through a key-signed assertion. A
		// refusal names the user, as the issued token's event does.
		req.Audit.Subject = oauth2.Truncate(strings.ToLower(subject), maxAuditSubject)
		if is.granted, is.delegatedSince, err = h.delegate(ctx, acct, subject, scopes); err != nil {
			return nil, err
		}
		is.delegated, is.subject = true, strings.ToLower(subject)
	}
	if req.Client != nil {
		is.jtis = req.Client.JTIs
		is.thumbprint = req.Client.Thumbprint()
	}
	if c.ID != "" {
		is.jtis = append(slices.Clip(is.jtis), storage.UsedJTI{Issuer: acct.ID, JTI: c.ID, ExpiresAt: c.UsedUntil(h.cfg.ClockSkew)})
		is.grantJTI = true
	}
	return h.issue(ctx, req, is)
}

// lookupAccount finds an account by email, or by numeric client ID. A
// store failure is temporarily_unavailable.
func (h *Handler) lookupAccount(ctx context.Context, name string) (storage.Account, error) {
	acct, err := clientauth.LookupAccount(ctx, h.dir, name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		err = oauth2.StoreUnavailable(err)
	}
	return acct, err
}

// assertionError maps a refused assertion to the JWT-bearer grant's errors.
func assertionError(err error) error {
	var ae *assertion.Error
	if !errors.As(err, &ae) {
		return err
	}
	code := oauth2.ErrInvalidGrant
	if ae.Reason == assertion.DisabledKey {
		code = oauth2.ErrDisabledClient
	}
	return &oauth2.Error{Code: code, Description: ae.Description, Err: ae.Err}
}

// sameScopes reports whether the scope claim and the scope parameter ask
// for the same scopes: equal, or the same scope tokens (RFC 6749 §3.3, in
// any order) with other spaces between them, which ParseScope tolerates
// in either.
func sameScopes(claim, form string) bool {
	if claim == form {
		return true
	}
	a, errA := oauth2.ParseScope(claim)
	b, errB := oauth2.ParseScope(form)
	if errA != nil || errB != nil || len(a) != len(b) {
		return false
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
