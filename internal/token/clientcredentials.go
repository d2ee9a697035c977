package token

import (
	"context"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
)

// clientCredentials is the client-credentials grant (RFC 6749 §4.4): the
// authenticated client gets a token for itself.
type clientCredentials struct{ h *Handler }

func (g *clientCredentials) name() string { return "client_credentials" }

func (g *clientCredentials) handle(ctx context.Context, req *Request) (*Response, error) {
	c := req.Client
	if c == nil {
		return nil, clientauth.NoClientError(req.attempt, "The client_credentials grant needs client authentication")
	}
	if c.Account.Disabled {
		return nil, oauth2.Errorf(oauth2.ErrDisabledClient, "The OAuth client was disabled. The service account is disabled.")
	}
	// Without a scope parameter the token carries every scope the account
	// is allowed (RFC 6749 §3.3 lets the server choose a default).
	scopes := c.Account.Scopes
	if req.Form.Has("scope") {
		var err error
		if scopes, err = oauth2.ParseScope(req.Form.Get("scope")); err != nil {
			return nil, scopeError(err)
		}
	}
	return g.h.issue(ctx, req, issuance{
		account:    c.Account,
		subject:    c.Account.ID,
		scopes:     scopes,
		resources:  req.Form.Values("resource"),
		jtis:       c.JTIs,
		thumbprint: c.Thumbprint(),
		credential: credentialOf(c),
	})
}
