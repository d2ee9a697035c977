package oauth2

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/jsonappend"
)

// errorBody is the RFC 6749 §5.2 error response.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// WriteError writes err as an RFC 6749 §5.2 JSON error response with
// Cache-Control: no-store. Errors that are not *Error become server_error;
// their text is never sent. The description is sent as DescriptionText,
// in the characters §5.2 allows.
func WriteError(w http.ResponseWriter, err error) { writeError(w, err, DescriptionText) }

// WriteErrorVerbatim writes err as WriteError does, with its description
// as it is: for the admin API, which is no OAuth endpoint, and whose
// descriptions quote names and values in any script.
func WriteErrorVerbatim(w http.ResponseWriter, err error) {
	writeError(w, err, func(s string) string { return s })
}

func writeError(w http.ResponseWriter, err error, description func(string) string) {
	oe := AsError(err)
	for k, vs := range oe.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	WriteJSON(w, oe.HTTPStatus(), errorBody{Error: oe.Code, ErrorDescription: description(oe.Description)})
}

// WriteJSON writes v as JSON with the headers RFC 6749 §5.1 requires of
// token responses, Cache-Control: no-store and Pragma: no-cache, and
// X-Content-Type-Options: nosniff, so that no browser takes the JSON for
// anything else.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	if a, ok := v.(jsonappend.Appender); ok {
		buf := bodyBuffers.Get().(*[]byte)
		b = append(a.AppendJSON((*buf)[:0]), '\n')
		defer func() {
			if cap(b) <= 64<<10 {
				*buf = b[:0]
				bodyBuffers.Put(buf)
			}
		}()
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			status = http.StatusInternalServerError
			b = []byte(`{"error":"server_error"}`)
		}
		b = append(b, '\n')
	}
	setJSONHeaders(w.Header())
	w.WriteHeader(status)
	w.Write(b)
}

// The values of WriteJSON's headers, shared by every response so that
// setting them allocates nothing. Each has len == cap, so a later Add to
// the same header appends to a copy, never to the shared array; nothing
// in net/http changes a value in place.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
	noCache         = []string{"no-cache"}
	noSniff         = []string{"nosniff"}
)

// setJSONHeaders does what h.Set would for each of WriteJSON's headers,
// under their canonical keys, without allocating a slice for each.
func setJSONHeaders(h http.Header) {
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["Pragma"] = noCache
	h["X-Content-Type-Options"] = noSniff
}

// bodyBuffers hold response bodies while they are written: Write copies
// them.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// Observer records OAuth endpoint requests, for metrics. Label values must
// come from closed sets: grant types, authentication methods, error codes.
type Observer interface {
	ObserveRequest(endpoint, grant, authMethod, outcome, errorCode string, d time.Duration)
	// Throttled records a request to endpoint answered 429 by the
	// throttle of failed client authentications (its error's cause a
	// *throttle.Refused).
	Throttled(endpoint string)
}

// NopObserver records nothing.
type NopObserver struct{}

// ObserveRequest implements Observer.
func (NopObserver) ObserveRequest(string, string, string, string, string, time.Duration) {}

// Throttled implements Observer.
func (NopObserver) Throttled(string) {}
