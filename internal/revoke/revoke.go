// Package revoke serves token revocation (RFC 7009) at /revoke: a client
// revokes a token it was issued.
package revoke

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
	"github.com/keyward/keyward/internal/tokenstate"
)

// Authenticator authenticates the client.
type Authenticator interface {
	Require(ctx context.Context, r *http.Request, form oauth2.Form, source string, att *clientauth.Attempt) (*clientauth.Client, error)
}

// Store records revocations; Revoke writes the audit event in the same
// transaction.
type Store interface {
	Revoke(ctx context.Context, r storage.Revocation, ev storage.AuditEvent) error
}

// Journal records refusals.
type Journal interface {
	Write(ctx context.Context, w storage.Write) error
}

// Handler serves POST /revoke.
type Handler struct {
	auth     Authenticator
	resolver *tokenstate.Resolver
	store    Store
	journal  Journal
	now      func() time.Time
	log      *slog.Logger
	observer oauth2.Observer
	// recorded says which 429s of the client-authentication throttle
	// (whose cause is a *throttle.Refused) are recorded: one per throttle
	// key a throttle.RecordEvery.
	recorded *throttle.Recorder
	// budget says which refusals the throttle does not count are
	// recorded (clientauth.Budgeted).
	budget *throttle.Budget
}

// NewHandler returns the revocation handler. Every request is audited
// durably before its answer, except the 429s of the client-authentication
// throttle, recorded once a throttle.RecordEvery per throttle key, and the
// refusals of no client that the throttle does not count, recorded as the
// audit budgets of the address and of all addresses allow
// (clientauth.Budgeted).
func NewHandler(auth Authenticator, resolver *tokenstate.Resolver, store Store, journal Journal, now func() time.Time, log *slog.Logger, observer oauth2.Observer) *Handler {
	return &Handler{auth: auth, resolver: resolver, store: store, journal: journal, now: now, log: log, observer: observer,
		recorded: throttle.NewRecorder(throttle.MaxRecordedKeys, now), budget: throttle.NewBudget(throttle.MaxRecordedKeys, now)}
}

// ServeHTTP implements http.Handler. Success is 200 with an empty body,
// also for tokens Keyward does not know (RFC 7009 §2.2).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	now, source := h.now(), oauth2.RemoteIP(r)
	ev := storage.AuditEvent{Time: now, Action: "token.revoke", Outcome: storage.OutcomeSuccess, Source: source, Data: map[string]string{}}
	var att clientauth.Attempt
	written, err := h.serve(w, r, &ev, &att)
	if err != nil {
		clientauth.CountThrottled(h.observer, "revoke", err)
		// A 429 of the throttle not to be recorded counts as written, as
		// does a refusal over an audit budget (the address's, all's).
		var oe *oauth2.Error
		oe, written = clientauth.Refused(&ev, err, h.recorded)
		written = written || clientauth.Budgeted(h.budget, oe, &ev, att.Counted)
		err = oe
	}
	err = clientauth.Record(r.Context(), h.log, h.journal, &ev, !written, err,
		"revocation request not answered: its audit event could not be written", "revocation refused")
	if err != nil {
		oauth2.WriteError(w, err)
		h.observer.ObserveRequest("revoke", "", ev.Data["auth_method"], storage.OutcomeFailure, oauth2.AsError(err).Code, time.Since(start))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	h.observer.ObserveRequest("revoke", "", ev.Data["auth_method"], storage.OutcomeSuccess, "", time.Since(start))
}

// serve revokes; written reports that the audit event was already written
// with the revocation.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, ev *storage.AuditEvent, att *clientauth.Attempt) (written bool, err error) {
	caller, raw, err := clientauth.RequireForToken(w, r, h.auth, h.journal, ev, att)
	if err != nil {
		return false, err
	}
	// token_type_hint is not read: Keyward tells its tokens apart itself,
	// and RFC 7009 §2.2.1 lets a server ignore a hint it does not know
	// (unsupported_token_type is for a type it cannot revoke, and every
	// token Keyward issues is an access token it can).
	info, err := h.resolver.Resolve(r.Context(), raw)
	switch {
	case errors.Is(err, tokenstate.ErrUnknown):
		ev.Data["result"] = "unknown token"
		return false, nil
	case err != nil:
		return false, unavailable(err)
	}
	c := info.Claims
	ev.AccountID, ev.Data["token_id"] = c.ClientID, c.ID
	if c.ClientID != caller.Account.ID {
		return false, oauth2.Errorf(oauth2.ErrUnauthorizedClient, "The token was not issued to this client; a client may revoke only its own tokens.")
	}
	if time.Unix(c.Expiry, 0).Before(ev.Time) {
		ev.Data["result"] = "already expired"
		return false, nil
	}
	if info.Reason == tokenstate.ReasonRevoked {
		ev.Data["result"] = "already revoked"
		return false, nil
	}
	ev.Data["result"] = "revoked"
	rev := storage.Revocation{JTI: c.ID, AccountID: c.ClientID, RevokedAt: ev.Time, ExpiresAt: time.Unix(c.Expiry, 0)}
	if err := h.store.Revoke(r.Context(), rev, *ev); err != nil {
		// Never a 200 that left the token alive, nor a failure event that
		// says it was revoked.
		ev.Data["result"] = "not revoked"
		return false, unavailable(err)
	}
	return true, nil
}

func unavailable(err error) error {
	return oauth2.Unavailable("The server cannot record the revocation right now; the token is still valid. Try again.").WithCause(err)
}
