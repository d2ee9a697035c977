// Package introspect serves token introspection (RFC 7662) at /introspect:
// an authenticated API asks whether a token is active and what it carries.
package introspect

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/catalog"
	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/jsonappend"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
	"github.com/keyward/keyward/internal/tokenstate"
)

// Scope is the built-in scope that lets an account introspect any token.
// An account listed as an introspector of an API may introspect the tokens
// of that API only, and of a token also meant for other APIs learns only
// its own APIs' part of aud and scope.
const Scope = oauth2.IntrospectScope

// Authenticator authenticates the calling API.
type Authenticator interface {
	Require(ctx context.Context, r *http.Request, form oauth2.Form, source string, att *clientauth.Attempt) (*clientauth.Client, error)
}

// Catalog lists the APIs, for their introspectors.
type Catalog interface {
	ListAPIs(ctx context.Context) ([]storage.API, error)
}

// Journal makes the audit event durable before the response.
type Journal interface {
	Write(ctx context.Context, w storage.Write) error
}

// Summaries takes the audit events of introspections that found their
// token active, to write them after the answer, folded into one event per
// API, token, authentication method and source per interval. Add reports
// whether it took ev; when it did not, the handler writes ev itself before
// answering.
type Summaries interface {
	Add(ev storage.AuditEvent) bool
}

// writeEach takes no event: each is written before its answer.
type writeEach struct{}

func (writeEach) Add(storage.AuditEvent) bool { return false }

// Handler serves POST /introspect.
type Handler struct {
	auth      Authenticator
	resolver  *tokenstate.Resolver
	catalog   Catalog
	journal   Journal
	summaries Summaries
	now       func() time.Time
	log       *slog.Logger
	observer  oauth2.Observer
	index     catalog.Cache // of the API list, for permission
	// recorded says which 429s of the client-authentication throttle
	// (whose cause is a *throttle.Refused) are recorded: one per throttle
	// key a throttle.RecordEvery.
	recorded *throttle.Recorder
	// budget says which refusals the throttle does not count are
	// recorded (clientauth.Budgeted).
	budget *throttle.Budget
}

// NewHandler returns the introspection handler. Every introspection is
// audited durably before its answer, except, when summaries is not nil,
// those that find their token active: their events go to summaries, and
// the 429s of the client-authentication throttle, recorded once a
// throttle.RecordEvery per throttle key, and the refusals of no client
// that the throttle does not count, recorded as the audit budgets of the
// address and of all addresses allow (clientauth.Budgeted).
func NewHandler(auth Authenticator, resolver *tokenstate.Resolver, catalog Catalog, journal Journal, summaries Summaries, now func() time.Time, log *slog.Logger, observer oauth2.Observer) *Handler {
	if summaries == nil {
		summaries = writeEach{}
	}
	return &Handler{auth: auth, resolver: resolver, catalog: catalog, journal: journal, summaries: summaries, now: now, log: log, observer: observer,
		recorded: throttle.NewRecorder(throttle.MaxRecordedKeys, now), budget: throttle.NewBudget(throttle.MaxRecordedKeys, now)}
}

// Response is the introspection response (RFC 7662 §2.2). An inactive
// token's response is {"active": false} and nothing else.
type Response struct {
	Active      bool                 `json:"active"`
	Scope       string               `json:"scope,omitempty"`
	ClientID    string               `json:"client_id,omitempty"`
	Subject     string               `json:"sub,omitempty"`
	Audience    oauth2.Audience      `json:"aud,omitempty"`
	Issuer      string               `json:"iss,omitempty"`
	Expiry      int64                `json:"exp,omitempty"`
	IssuedAt    int64                `json:"iat,omitempty"`
	NotBefore   int64                `json:"nbf,omitempty"`
	TokenType   string               `json:"token_type,omitempty"`
	ID          string               `json:"jti,omitempty"`
	ClientEmail string               `json:"client_email,omitempty"`
	Actor       *oauth2.Actor        `json:"act,omitempty"`
	Cnf         *oauth2.Confirmation `json:"cnf,omitempty"`
}

// AppendJSON appends r as JSON, the same as json.Marshal writes it: every
// introspection answers with one.
func (r *Response) AppendJSON(dst []byte) []byte {
	o := jsonappend.NewObject(dst)
	o.Bool("active", r.Active)
	for _, m := range [...]struct{ k, v string }{{"scope", r.Scope}, {"client_id", r.ClientID}, {"sub", r.Subject}} {
		if m.v != "" {
			o.String(m.k, m.v)
		}
	}
	if len(r.Audience) > 0 {
		r.Audience.AppendTo(&o)
	}
	if r.Issuer != "" {
		o.String("iss", r.Issuer)
	}
	for _, m := range [...]struct {
		k string
		v int64
	}{{"exp", r.Expiry}, {"iat", r.IssuedAt}, {"nbf", r.NotBefore}} {
		if m.v != 0 {
			o.Int(m.k, m.v)
		}
	}
	for _, m := range [...]struct{ k, v string }{{"token_type", r.TokenType}, {"jti", r.ID}, {"client_email", r.ClientEmail}} {
		if m.v != "" {
			o.String(m.k, m.v)
		}
	}
	r.Actor.AppendTo(&o)
	r.Cnf.AppendTo(&o)
	return o.End()
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	now, source := h.now(), oauth2.RemoteIP(r)
	ev := storage.AuditEvent{Time: now, Action: "token.introspect", Outcome: storage.OutcomeSuccess, Source: source, Data: map[string]string{}}
	var att clientauth.Attempt
	resp, err := h.serve(w, r, &ev, &att)
	unrecorded := false
	if err != nil {
		clientauth.CountThrottled(h.observer, "introspect", err)
		var oe *oauth2.Error
		oe, unrecorded = clientauth.Refused(&ev, err, h.recorded)
		unrecorded = unrecorded || clientauth.Budgeted(h.budget, oe, &ev, att.Counted)
		err = oe
	}
	// An introspection that finds its token active is a read: its event may
	// follow the answer, in a summary. Every other is written before the
	// answer: a refused one, as every refused request is, and one answered
	// {"active":false} — a token that is not the caller's to see (a refusal
	// RFC 7662 §2.2 has the answer hide), revoked, expired or unknown, which
	// can be a stolen token in use or a search for one. A 429 of the
	// throttle is the exception: one a minute per throttle key is written;
	// so is a refusal over an audit budget, its address's or all's
	// (Budgeted).
	method := ev.Data["auth_method"]
	write := !unrecorded && (err != nil || ev.Data["active"] != "true" || !h.summaries.Add(ev))
	err = clientauth.Record(r.Context(), h.log, h.journal, &ev, write, err,
		"introspection not answered: its audit event could not be written", "introspection refused")
	if err != nil {
		oauth2.WriteError(w, err)
		h.observer.ObserveRequest("introspect", "", method, storage.OutcomeFailure, oauth2.AsError(err).Code, time.Since(start))
		return
	}
	oauth2.WriteJSON(w, http.StatusOK, resp)
	h.observer.ObserveRequest("introspect", "", method, storage.OutcomeSuccess, "", time.Since(start))
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, ev *storage.AuditEvent, att *clientauth.Attempt) (*Response, error) {
	caller, raw, err := clientauth.RequireForToken(w, r, h.auth, h.journal, ev, att)
	if err != nil {
		return nil, err
	}
	ix, allowed, all, err := h.permission(r.Context(), caller.Account)
	if err != nil {
		return nil, oauth2.StoreUnavailable(err)
	}
	if !all && len(allowed) == 0 {
		return nil, &oauth2.Error{Code: oauth2.ErrAccessDenied, Status: http.StatusForbidden,
			Description: "This account may not introspect tokens: it needs the keyward.introspect scope or to be an introspector of an API."}
	}
	info, err := h.resolver.Resolve(r.Context(), raw)
	switch {
	case errors.Is(err, tokenstate.ErrUnknown):
		ev.Data["active"], ev.Data["reason"] = "false", "unknown token"
		return &Response{Active: false}, nil
	case err != nil:
		return nil, oauth2.StoreUnavailable(err)
	}
	c := info.Claims
	ev.AccountID = c.ClientID
	ev.Data["token_id"] = c.ID
	// A caller learns only about tokens meant for it: one of its APIs must
	// be in the audience.
	if !all && !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(allowed, a) }) {
		ev.Data["active"], ev.Data["reason"] = "false", "not an audience of the caller"
		return &Response{Active: false}, nil
	}
	ev.Data["active"] = boolString(info.Active)
	if !info.Active {
		ev.Data["reason"] = info.Reason
		return &Response{Active: false}, nil
	}
	tokenType := oauth2.TokenTypeBearer
	if c.Confirmation != nil && c.Confirmation.JKT != "" {
		tokenType = oauth2.TokenTypeDPoP // RFC 9449 §6.2
	}
	aud, scope := c.Audience, c.Scope
	if !all {
		narrowed, ownScope := narrow(ix, allowed, aud, scope)
		scope = ownScope
		// A DPoP-bound token's audiences are all named: an API that makes
		// the URL a proof must name from the request's Host header, which
		// the sender picks, must refuse a token that another API received
		// too (verify does), or that API could replay to it, with its own
		// Host header, the proofs the client made for it. The holder of a
		// JWT reads them all in it anyway.
		if tokenType != oauth2.TokenTypeDPoP {
			aud = narrowed
		}
	}
	return &Response{
		Active: true, Scope: scope, ClientID: c.ClientID, Subject: c.Subject, Audience: aud, Issuer: c.Issuer,
		Expiry: c.Expiry, IssuedAt: c.IssuedAt, NotBefore: c.NotBefore, TokenType: tokenType, ID: c.ID,
		ClientEmail: c.ClientEmail, Actor: c.Actor, Cnf: c.Confirmation,
	}, nil
}

// permission returns the identifiers of the APIs whose tokens the account
// may introspect, with the catalog's index they come from, or all=true
// when it holds the keyward.introspect scope.
func (h *Handler) permission(ctx context.Context, acct storage.Account) (ix *catalog.Index, ids []string, all bool, err error) {
	if slices.Contains(acct.Scopes, Scope) {
		return nil, nil, true, nil
	}
	apis, err := h.catalog.ListAPIs(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	ix = h.index.Of(apis)
	return ix, ix.IntrospectableBy(acct.ID), false, nil
}

// narrow limits what an API's introspector learns of a token that is also
// meant for other APIs to its own part (RFC 7662 §4: the server may answer
// different protected resources differently, to keep one from learning
// about tokens meant for others): aud keeps only the caller's APIs, in the
// token's order, and scope only the scopes that, in the catalog now,
// belong to one of those (a scope since taken from its API belongs to none
// and is left out). A token all of whose audiences are the caller's — the
// common one, of one API — is returned whole, without allocating: each of
// its scopes belonged to one of them when it was issued.
func narrow(ix *catalog.Index, allowed []string, aud oauth2.Audience, scope string) (oauth2.Audience, string) {
	n := 0
	for _, a := range aud {
		if slices.Contains(allowed, a) {
			n++
		}
	}
	if n == len(aud) {
		return aud, scope
	}
	kept := make(oauth2.Audience, 0, n)
	for _, a := range aud {
		if slices.Contains(allowed, a) {
			kept = append(kept, a)
		}
	}
	var b strings.Builder
	for s := range strings.FieldsSeq(scope) {
		if api := ix.Owner(s); api != nil && kept.Contains(api.Identifier) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(s)
		}
	}
	return kept, b.String()
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
