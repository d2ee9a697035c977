package token_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRefusalLogNamesTheClient: the log line of a refused token request
// names the client whose authentication failed, as its audit event does
// (client_id), so that an operator sees which client is failing; a client
// ID shaped like a secret is not logged, and an authenticated account is
// named as account alone.
func TestRefusalLogNamesTheClient(t *testing.T) {
	const pasted = "kw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	tests := []struct {
		name     string
		id, sec  string
		scope    string
		want     []string
		wantNot  []string
		wantCode int
	}{
		{"wrong secret", "100000000000000000001", "kw_wrong", "", []string{`account="" client_id=100000000000000000001 `}, nil, 401},
		{"unknown client", "999", "kw_wrong", "", []string{`account="" client_id=999 `}, nil, 401},
		{"secret as client ID", pasted, "kw_wrong", "", []string{`client_id="(not recorded: shaped like a secret or token)"`}, []string{pasted}, 401},
		{"authenticated, scope refused", "100000000000000000001", jobSecret, "nope.read", []string{"account=100000000000000000001 source="}, []string{"client_id="}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			body := url.Values{"grant_type": {"client_credentials"}}
			if tt.scope != "" {
				body.Set("scope", tt.scope)
			}
			w := e.do(request{body: body.Encode(), header: http.Header{"Authorization": {basicAuth(tt.id, tt.sec)}}})
			if w.Code != tt.wantCode {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.wantCode)
			}
			var line string
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(l, `msg="token request refused"`) {
					line = l
				}
			}
			for _, want := range tt.want {
				if !strings.Contains(line, want) {
					t.Errorf("refusal log line %q, want it to hold %q", line, want)
				}
			}
			for _, not := range tt.wantNot {
				if strings.Contains(line, not) {
					t.Errorf("refusal log line %q holds %q", line, not)
				}
			}
		})
	}
}
