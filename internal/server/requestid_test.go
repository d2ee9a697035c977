package server_test

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// What a handler logs about a request carries the request's ID, the one
// its "request" line has and its client got in X-Request-Id: an operator
// given that ID finds why the request was refused, or why it could not
// be recorded. The request line keeps one id.
func TestHandlerLogLinesCarryTheRequestID(t *testing.T) {
	f, logs, j := newLoggedFailingFixture(t)
	tests := []struct {
		name, path, header string
		auditFails         bool
		status             int
		msg                string
	}{
		{"refused, server's ID", "/token", "", false, 401, `msg="token request refused"`},
		{"refused, client's ID", "/token", "incident-42", false, 401, `msg="token request refused"`},
		{"token refusal unrecorded", "/token", "", true, 503, `msg="token request refused, and its audit event could not be written"`},
		{"introspection unrecorded", "/introspect", "", true, 503, `msg="introspection not answered: its audit event could not be written"`},
		{"revocation unrecorded", "/revoke", "", true, 503, `msg="revocation request not answered: its audit event could not be written"`},
		{"admin refusal unrecorded", "/v1/apis", "", true, 503, `msg="admin request refused, and its audit event could not be written"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j.fail.Store(tt.auditFails)
			defer j.fail.Store(false)
			before := len(logs.String())
			r := httptest.NewRequest("POST", tt.path, strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "token": {"x"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(f.clientID, "kw_wrong")
			if tt.header != "" {
				r.Header.Set("X-Request-Id", tt.header)
			}
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, r)
			id := w.Header().Get("X-Request-Id")
			if w.Code != tt.status || id == "" || (tt.header != "" && id != tt.header) {
				t.Fatalf("%d %s, X-Request-Id %q; want %d with an ID (%q if given)", w.Code, w.Body, id, tt.status, tt.header)
			}
			var line, request string
			for l := range strings.Lines(logs.String()[before:]) {
				switch {
				case strings.Contains(l, tt.msg+" "):
					line = l
				case strings.Contains(l, "msg=request "):
					request = l
				}
			}
			if !strings.HasSuffix(line, " id="+id+"\n") {
				t.Errorf("line %q, want %s with id=%s", line, tt.msg, id)
			}
			if n := strings.Count(request, " id="); n != 1 || !strings.Contains(request, " id="+id+" ") {
				t.Errorf("request line %q, want id=%s once", request, id)
			}
		})
	}
}
