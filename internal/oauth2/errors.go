// Package oauth2 holds the OAuth 2.0 vocabulary shared by every Keyward
// endpoint: grant types, error codes, the Error type and the writer that turns
// an error into the RFC 6749 §5.2 JSON body.
//
// It is a leaf package: it imports only the standard library.
package oauth2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Error codes of RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 8707 §2,
// RFC 9449
// and the service-account flow's own table of JWT error codes.
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrInvalidScope            = "invalid_scope"
	ErrInvalidTarget           = "invalid_target"
	ErrAccessDenied            = "access_denied"
	ErrServerError             = "server_error"
	ErrTemporarilyUnavailable  = "temporarily_unavailable"
	ErrUnsupportedTokenType    = "unsupported_token_type"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrInvalidToken            = "invalid_token"
	ErrInsufficientScope       = "insufficient_scope"
	ErrDisabledClient          = "disabled_client"
	ErrAdminPolicyEnforced     = "admin_policy_enforced"
	ErrOrgInternal             = "org_internal"
	ErrSlowDown                = "slow_down"
	// ErrInvalidDPoPProof is a DPoP proof that fails its checks (RFC 9449
	// §5, §7.1).
	ErrInvalidDPoPProof = "invalid_dpop_proof"
	// ErrUseDPoPNonce asks for a DPoP proof with the nonce the response's
	// DPoP-Nonce header carries (RFC 9449 §8).
	ErrUseDPoPNonce = "use_dpop_nonce"
)

// Grant types and token type identifiers.
const (
	GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// ClientAssertionJWT is the client_assertion_type of private_key_jwt
	// (RFC 7523 §2.2).
	ClientAssertionJWT     = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	GrantClientCredentials = "client_credentials"
	TokenTypeBearer        = "Bearer"
	TokenTypeDPoP          = "DPoP"
)

// OpaqueTokenPrefix starts every opaque access token Keyward issues; the
// rest is 256 random bits in unpadded base64url. The token endpoint mints
// them with it, and verify sends only tokens so shaped to introspection.
const OpaqueTokenPrefix = "kwat_"

// Error is an OAuth error: what the client is told (Code, Description, Status)
// and, separately, the cause, which is logged and never sent.
type Error struct {
	Code        string // RFC 6749 §5.2 error code
	Description string // human-readable, safe to show the client
	Status      int    // HTTP status; 0 means the code's default
	Err         error  // internal cause, for the log only
	// Header holds extra response headers, such as WWW-Authenticate or
	// Retry-After.
	Header http.Header
}

// Errorf returns an Error with the given code and a formatted description.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// Error implements error. It includes the cause, so it must not be sent to
// clients; WriteError sends only Code and Description.
func (e *Error) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// WithCause returns a copy of e that records err as its internal cause.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// WithStatus returns a copy of e with the given HTTP status.
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.Status = status
	return &c
}

// HTTPStatus is the status the error is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Code {
	case ErrInvalidClient, ErrInvalidToken:
		return http.StatusUnauthorized
	case ErrInsufficientScope:
		return http.StatusForbidden
	case ErrServerError:
		return http.StatusInternalServerError
	case ErrTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// ServerFault reports whether e is the server's failure rather than the
// client's: a 5xx with an internal cause, other than the client's own
// request ending (it hung up). Its cause is worth an error in the log,
// since neither the answer nor the audit event carries it.
func (e *Error) ServerFault() bool {
	return e.HTTPStatus() >= http.StatusInternalServerError && e.Err != nil && !clientGone(e.Err)
}

// clientGone reports whether err is a request's context ending because its
// client hung up (net/http cancels it). A client sets the server no
// deadline, so context.DeadlineExceeded is a timeout of the server's own,
// such as the store's (PostgreSQL's connect_timeout) or the cache's bound
// on a shared load: the store failing, not the client going.
func clientGone(err error) bool { return errors.Is(err, context.Canceled) }

// StoreUnavailable is the error for a request the store failed, with err as
// its cause: temporarily_unavailable (503) with Retry-After, which invites
// a retry. When err is the client hanging up (clientGone), it says the
// request was canceled.
func StoreUnavailable(err error) *Error {
	if clientGone(err) {
		return Unavailable("The request was canceled.").WithCause(err)
	}
	return Unavailable("The server cannot reach its store right now; try again later.").WithCause(err)
}

// Unrecorded is the error for a request answered with neither a result nor
// its refusal because its audit event could not be written: Keyward answers
// nothing it has not recorded.
func Unrecorded() *Error {
	return Unavailable("The server cannot record requests right now; try again later.")
}

// RecordContext is the context to write a request's audit event with once
// its answer is known: one its client hanging up does not end (a request
// is recorded whether or not its client waits for the answer), but that
// keeps the request's deadline, if it has one (server.RequestTimeout):
// with a store that does not answer, the write is given up with the
// request, and Unrecorded reaches the client before the server's write
// timeout, rather than after another wait of its own for the store.
//
// A request's context from package deadline has one ready, which ends at
// the deadline it shares with other requests: no timer of its own.
func RecordContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dc, ok := ctx.(interface{ Detached() context.Context }); ok {
		if d := dc.Detached(); d != nil {
			return d, func() {}
		}
	}
	detached := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(detached, d)
	}
	return detached, func() {}
}

// Unavailable is temporarily_unavailable (503) with description and
// Retry-After: 5 (RFC 9110 §10.2.3), the answer to a failure of the
// server's own that is likely brief, such as its store failing.
func Unavailable(description string) *Error {
	return &Error{Code: ErrTemporarilyUnavailable, Description: description, Header: http.Header{"Retry-After": {"5"}}}
}

// AsError returns the *Error in err's chain, or a server_error wrapping err
// when there is none. A nil err gives nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	return &Error{
		Code:        ErrServerError,
		Description: "The server could not complete the request.",
		Err:         err,
	}
}

// Keyward's own scopes, of its built-in API: AdminScope manages Keyward
// through the admin API; IntrospectScope lets an account introspect any
// token (an account listed as an API's introspector may introspect that
// API's tokens without it).
const (
	AdminScope      = "keyward.admin"
	IntrospectScope = "keyward.introspect"
)

// Delegable reports whether a delegation grant may carry scope: Keyward's
// own scopes are for the account itself, and the admin API refuses tokens
// that act for a user.
func Delegable(scope string) bool { return scope != AdminScope && scope != IntrospectScope }
