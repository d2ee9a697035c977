package admin

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/throttle"
)

// Journal makes a write durable before the response is sent: the group
// committer the token endpoint records its refusals with.
type Journal interface {
	Write(ctx context.Context, w storage.Write) error
}

// ActionRefused is the audit action of an admin request answered with a
// 4xx error.
const ActionRefused = "admin.refused"

// The reasons an admin request's token is refused, in its admin.refused
// event's reason.
const (
	reasonNoToken     = "no_token"         // no Authorization: Bearer
	reasonMalformed   = "malformed_header" // Bearer without one token, or two Authorization headers
	reasonUnknown     = "unknown_token"    // not a token this server issued
	reasonInactive    = "inactive_token"   // expired, revoked, or its account, key or secret disabled
	reasonDPoP        = "dpop_bound"
	reasonDelegated   = "delegated"   // acts for a user
	reasonCertificate = "certificate" // bound to a certificate not presented
	reasonScope       = "insufficient_scope"
	reasonAudiences   = "other_audiences"
	reasonNotAdmin    = "not_admin" // its account disabled, deleted or no longer an administrator
)

// authFailure is the cause of an authentication refusal: why, and the
// client ID of the token when it is one this server issued.
type authFailure struct {
	reason   string
	clientID string
}

func (f *authFailure) Error() string { return "admin authentication refused: " + f.reason }

// Refusals of requests that did not authenticate are limited per source
// address, as failed client authentications are at the token endpoint: a
// source may be refused refusalBurst times at once and refusalRate times a
// second after that; beyond that budget it is answered 429, and that is
// recorded once a throttle.RecordEvery per address. So an unauthenticated flood
// writes at most about one event a second per address, not one per
// request. A request with a valid admin token is never held back.
const (
	refusalRate  = 1
	refusalBurst = 20
	maxSources   = 100_000
)

// refusalThrottle holds the per-address budgets of unauthenticated
// refusals and of the events recording their 429s.
type refusalThrottle struct {
	failures *throttle.Limiter
	recorded *throttle.Recorder
}

func newRefusalThrottle(now func() time.Time) refusalThrottle {
	return refusalThrottle{
		failures: throttle.New(refusalRate, refusalBurst, maxSources, now),
		recorded: throttle.NewRecorder(maxSources, now),
	}
}

// maxAuditPath bounds the request path an admin.refused event records:
// the path is the caller's to choose.
const maxAuditPath = 200

// refused records the admin.refused event of a request answered with oe,
// a 4xx error, before it is sent, and returns the error to send: oe;
// 429 when oe refuses a request that did not authenticate from a source
// over its budget; or 503 when the event could not be written. c is the
// caller, if the request authenticated.
//
// A GET or HEAD by an administrator answered 404 is not recorded: it is
// the answer to a read (there is no such account, key, …), not a refusal
// of anything, and administrators can list everything anyway.
//
// A request refused for its token (none, malformed, unknown, inactive,
// without the admin scope, not an administrator's, …) is also logged at
// INFO with the reason, and one with a cause (a body that could not be
// read) with the cause, unless answered 503, which logs its own; a 429
// of the throttle, recorded or not, with the throttle's key as cause.
func (h *Handler) refused(r *http.Request, c caller, oe *oauth2.Error) *oauth2.Error {
	status := oe.HTTPStatus()
	if c.ID != "" && status == http.StatusNotFound && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return oe
	}
	source := oauth2.RemoteIP(r)
	var failed *authFailure
	if c.ID == "" {
		failed, _ = oe.Err.(*authFailure)
		key := throttle.AddressKey(source)
		if ok, wait := h.throttle.failures.Take(key); !ok {
			h.onThrottle()
			tm := tooManyRefusals(wait, key)
			sent := tm
			if h.throttle.recorded.Record(key) {
				data := h.refusalData(r, tm, failed)
				data["throttled"] = throttle.NoteAddress
				sent = h.writeRefusal(r, c, source, tm, data)
			}
			if sent == tm {
				// Every 429 logs a line, recorded or not, as the token
				// endpoint's do: the request line alone does not say
				// which limit it met.
				h.logRefusal(r, tm, failed, source)
			}
			return sent
		}
	}
	sent := h.writeRefusal(r, c, source, oe, h.refusalData(r, oe, failed))
	if (failed != nil || oe.Err != nil) && sent == oe {
		// Why the token was refused, or the cause of a refusal that has
		// one (the body's read error), for the server's log too, as the
		// token endpoint logs its refusals: the request line alone (a
		// 401 or 400) does not say. Never the token.
		h.logRefusal(r, oe, failed, source)
	}
	return sent
}

// logRefusal logs at INFO that r was refused with oe: why its token was
// refused (failed, if not nil) and oe's cause when it is another (a
// body's read error, the throttle's key).
func (h *Handler) logRefusal(r *http.Request, oe *oauth2.Error, failed *authFailure, source string) {
	attrs := []any{"method", oauth2.Truncate(r.Method, 16), "path", oauth2.ShownRequestPath(r, maxAuditPath),
		"error", oe.Code, "description", oe.Description}
	if failed != nil {
		attrs = append(attrs, "reason", failed.reason)
		if failed.clientID != "" {
			attrs = append(attrs, "token_client_id", failed.clientID)
		}
	}
	if oe.Err != nil && oe.Err != error(failed) {
		attrs = append(attrs, "cause", oe.Err.Error())
	}
	h.log.InfoContext(r.Context(), "admin request refused", append(attrs, "source", source)...)
}

// refusalData is the data of the admin.refused event of r, refused with
// oe; failed, if not nil, says why its token was refused.
func (h *Handler) refusalData(r *http.Request, oe *oauth2.Error, failed *authFailure) map[string]string {
	data := map[string]string{
		"method": oauth2.Truncate(r.Method, 16),
		// Escaped, the path is printable ASCII: no control character or
		// NUL the caller put in it reaches the log or a terminal; nor a
		// credential given in it (a client secret for its ID, say).
		"path":        oauth2.ShownRequestPath(r, maxAuditPath),
		"status":      strconv.Itoa(oe.HTTPStatus()),
		"error":       oe.Code,
		"description": oe.Description,
	}
	if failed != nil {
		data["reason"] = failed.reason
		if failed.clientID != "" {
			data["token_client_id"] = failed.clientID
		}
	}
	return data
}

// writeRefusal writes the event and returns oe, or the 503 to send
// instead when it could not be written, as the token endpoint does: by
// the request's deadline (oauth2.RecordContext), if the store does not
// answer.
func (h *Handler) writeRefusal(r *http.Request, c caller, source string, oe *oauth2.Error, data map[string]string) *oauth2.Error {
	ctx, cancel := oauth2.RecordContext(r.Context())
	defer cancel()
	err := h.journal.Write(ctx, storage.Write{Events: []storage.AuditEvent{{
		Time: h.svc.cfg.Now(), Action: ActionRefused, Outcome: storage.OutcomeFailure,
		Actor: c.ID, Source: source, Data: data,
	}}})
	if err != nil {
		h.log.ErrorContext(r.Context(), "admin request refused, and its audit event could not be written", "method", oauth2.Truncate(r.Method, 16), "path", oauth2.ShownRequestPath(r, maxAuditPath), "err", err, "refusal", oe.Error())
		return oauth2.Unrecorded()
	}
	return oe
}

// tooManyRefusals is the 429 of a source whose unauthenticated admin
// requests were refused more than its budget allows; its cause names
// the throttle key, as the token endpoint's 429 does.
func tooManyRefusals(wait time.Duration, key string) *oauth2.Error {
	return &oauth2.Error{
		Code: oauth2.ErrTemporarilyUnavailable, Status: http.StatusTooManyRequests,
		Description: "Too many admin requests without a valid admin token from this address; retry later.",
		Header:      http.Header{"Retry-After": {strconv.Itoa(int(wait / time.Second))}},
		Err:         &throttle.Refused{Key: key, Note: throttle.NoteAddress},
	}
}
