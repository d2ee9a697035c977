package token

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// stubAuth authenticates every request as its client.
type stubAuth struct{ client *clientauth.Client }

func (a stubAuth) Authenticate(_ context.Context, _ *http.Request, _ oauth2.Form, _ string, att *clientauth.Attempt) (*clientauth.Client, error) {
	att.Method = a.client.Method
	return a.client, nil
}
func (stubAuth) Throttled(string, string) *oauth2.Error { return nil }
func (stubAuth) Failed(string, string)                  {}

// stubGrant answers every request with its response.
type stubGrant struct{ resp *Response }

func (stubGrant) name() string                                          { return oauth2.GrantClientCredentials }
func (g stubGrant) handle(context.Context, *Request) (*Response, error) { return g.resp, nil }

// rewound is a request body read again from the start after Reset.
type rewound struct{ strings.Reader }

func (*rewound) Close() error { return nil }

// serve's own allocations, before the grant's, are the form's four: the
// MaxBytesReader, the body, and the Form's map and its entries. Client
// authentication fills in the Request's attempt, which is on the heap
// already, not an Attempt of its own that the Authenticator interface
// moved there: every token request authenticates.
func TestServeAllocs(t *testing.T) {
	client := &clientauth.Client{Account: storage.Account{ID: "1"}, Method: storage.AuthSecretBasic, CredentialID: "s1"}
	h := &Handler{auth: stubAuth{client}, grants: map[string]grant{oauth2.GrantClientCredentials: stubGrant{&Response{}}}}
	const form = "grant_type=client_credentials"
	body := &rewound{}
	r := httptest.NewRequest(http.MethodPost, "/token", body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.ContentLength = int64(len(form))
	w := httptest.NewRecorder()
	req := &Request{}
	serve := func() {
		body.Reset(form)
		*req = Request{}
		if _, err := h.serve(w, r, req); err != nil {
			t.Fatal(err)
		}
	}
	serve()
	if req.Client != client || req.attempt.Method != storage.AuthSecretBasic || req.Audit.AuthMethod != storage.AuthSecretBasic || req.Audit.SecretID != "s1" {
		t.Fatalf("serve: client %v, attempt %+v, audit %+v; want the stub's client, its method and secret", req.Client, req.attempt, req.Audit)
	}
	if n := testing.AllocsPerRun(100, serve); n > 4 {
		t.Errorf("serve: %v allocations, want 4", n)
	}
}
