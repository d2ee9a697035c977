package clientauth

import (
	"context"
	"errors"

	"github.com/keyward/keyward/internal/assertion"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// privateKeyJWT checks a client assertion (RFC 7523 §2.2 and §3, OpenID
// Connect Core §9): signed with one of the account's keys, iss = sub = the
// client ID, a single aud naming this server (see setAudiences), and a jti
// that is single-use until exp.
//
// The assertion, not client_id (which RFC 7523 §2.2 makes optional), names
// the account whose keys are tried: p, checked by Authenticate under
// client_id if the form has one, else under none (the address only), is
// made the account iss names, and the throttle checked under it before
// the signature is. Without that, a guesser leaving client_id out got the
// address's allowance of failures against one account, five times a
// client's, and one naming another account in client_id spent that one's.
func (a *Authenticator) privateKeyJWT(ctx context.Context, source string, p *Principal, form oauth2.Form) (*Client, error) {
	if form.Get("client_assertion_type") != oauth2.ClientAssertionJWT {
		return nil, oauth2.Errorf(oauth2.ErrInvalidRequest, "client_assertion_type must be %s.", oauth2.ClientAssertionJWT)
	}
	raw := form.Get("client_assertion")
	if raw == "" {
		return nil, oauth2.Errorf(oauth2.ErrInvalidRequest, "client_assertion is required with client_assertion_type.")
	}
	tok, err := assertion.Parse(raw)
	if err != nil {
		return nil, err
	}
	c := tok.Claims
	if c.Issuer == "" || c.Subject != c.Issuer {
		return nil, errors.New("client assertion: iss and sub must both be the client ID")
	}
	// A client_id that names the account otherwise (its email for its
	// numeric ID, or the reverse) is accepted: Authenticate compares it with
	// the account the assertion authenticates.
	if c.ID == "" {
		return nil, errors.New("client assertion: jti is required")
	}
	if c.Issuer != p.Name {
		checked := p.Key()
		*p = Recall(a.mem, c.Issuer)
		if k := p.Key(); k != checked {
			if terr := a.Throttled(source, k); terr != nil {
				return nil, terr
			}
		}
	}
	if err := a.resolve(ctx, source, p); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			// Refused as a bad signature is (Authenticate), and no
			// sooner: the signature is checked with a decoy key, so that
			// timing does not tell which client IDs are accounts.
			tok.VerifyDecoy()
		}
		return nil, err
	}
	acct := p.Account
	keys, err := a.dir.ListKeys(ctx, acct.ID)
	if err != nil {
		return nil, oauth2.StoreUnavailable(err)
	}
	key, err := tok.Verify(keys, assertion.Expect{
		Audiences:      a.audiences,
		AudienceHint:   a.audienceHint,
		SingleAudience: true,
		MaxLifetime:    a.cfg.MaxAssertionLifetime,
		Skew:           a.cfg.ClockSkew,
		Now:            a.cfg.Now(),
		Logger:         a.cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if err := allowed(acct, storage.AuthPrivateKeyJWT); err != nil {
		return nil, err
	}
	return &Client{
		Account: acct, Method: storage.AuthPrivateKeyJWT, CredentialID: key.ID,
		JTIs: []storage.UsedJTI{{Issuer: acct.ID, JTI: c.ID, ExpiresAt: c.UsedUntil(a.cfg.ClockSkew)}},
	}, nil
}

// setAudiences sets the aud values a client assertion may carry, with
// their description for the message that refuses another. The issuer is
// the one draft-ietf-oauth-rfc7523bis requires, as aud's sole value (a
// string or an array of one), so that an assertion made for another
// server's endpoint can never be one for this server; the token endpoint
// URL, which RFC 7523 §3 and OpenID Connect Core §9 suggested and many
// clients still send, is accepted beside it unless StrictAudience is set.
func (a *Authenticator) setAudiences() {
	issuer := a.cfg.Issuer
	if a.cfg.StrictAudience {
		a.audiences, a.audienceHint = []string{issuer}, "this server's issuer "+issuer
		return
	}
	endpoint := oauth2.TokenEndpoint(issuer)
	a.audiences, a.audienceHint = []string{issuer, endpoint}, "this server's issuer "+issuer+" or its token endpoint URL "+endpoint
}
