package admin

import (
	"net/http"
	"strings"
	"time"
)

// WhoAmIView is the caller of the admin API as GET /v1/whoami shows it:
// the administrator account its access token belongs to, and that token
// as the server knows it. The console asks for it after signing in, so
// that it can name who is signed in and sign out when the token expires,
// also for a pasted opaque token, whose expiry only the server knows.
type WhoAmIView struct {
	ClientID    string    `json:"client_id"`
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	Project     string    `json:"project"`
	DisplayName string    `json:"display_name"`
	Token       TokenView `json:"token"`
}

// TokenView is the access token of an admin request.
type TokenView struct {
	// ID is the token's jti, by which POST /v1/tokens/revoke revokes it.
	ID string `json:"jti"`
	// Format is jwt or opaque.
	Format string `json:"format"`
	// Credential is what the token was got with, as its cred claim names
	// it: "key:ID", "secret:ID" or "cert:THUMBPRINT" (a CA-issued
	// certificate, tls_client_auth), if known. The console tells by it
	// whether a change of its account's certificate binding ends its own
	// token.
	Credential string    `json:"credential,omitempty"`
	Scopes     []string  `json:"scopes"`
	IssuedAt   time.Time `json:"issued_at"`
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time `json:"expires_at"`
	// ExpiresIn is the seconds from the server's clock to ExpiresAt, as in
	// a token response (RFC 6749 §5.1): a client whose own clock is off
	// can still tell when the token expires.
	ExpiresIn int64 `json:"expires_in"`
}

// whoAmI answers GET /v1/whoami. The caller is the account authenticate
// read for this very request, so the answer is as fresh as the check.
func (h *Handler) whoAmI(_ *http.Request, c caller) (int, any, error) {
	claims := c.token.Claims
	exp := time.Unix(claims.Expiry, 0).UTC()
	format := "jwt"
	if c.token.Opaque {
		format = "opaque"
	}
	a := c.account
	return http.StatusOK, WhoAmIView{
		ClientID: a.ID, Email: a.Email, Name: a.Name, Project: a.Project, DisplayName: a.DisplayName,
		Token: TokenView{
			ID: claims.ID, Format: format, Credential: claims.Credential, Scopes: strings.Fields(claims.Scope),
			IssuedAt: time.Unix(claims.IssuedAt, 0).UTC(), ExpiresAt: exp,
			ExpiresIn: max(0, int64(exp.Sub(h.svc.cfg.Now())/time.Second)),
		},
	}, nil
}
