package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
)

// TestSourceContextEnded: a source made with a context that has since
// ended (a request's, passed by mistake) sends no token request and says
// what is wrong, instead of a bare "Post …: context canceled".
func TestSourceContextEnded(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
	}))
	defer srv.Close()
	kf := exampleKeyFile(srv.URL + "/token")
	sources := map[string]func(context.Context) (oauth2.TokenSource, error){
		"jwt-bearer": func(ctx context.Context) (oauth2.TokenSource, error) {
			return client.TokenSource(ctx, kf, "orders.read")
		},
		"client_secret": func(ctx context.Context) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: "s3cret-value"})
		},
		"private_key_jwt": func(ctx context.Context) (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL + "/token", KeyFile: kf})
		},
	}
	shutdown := errors.New("shutting down")
	for name, make := range sources {
		for _, cause := range []error{nil, shutdown} {
			t.Run(fmt.Sprintf("%s/cause %v", name, cause), func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(context.Background())
				ts, err := make(ctx)
				if err != nil {
					t.Fatal(err)
				}
				cancel(cause)
				before := requests.Load()
				_, err = ts.Token()
				if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "the context the token source was made with has ended") {
					t.Fatalf("Token() = %v, want an error that matches context.Canceled and says the source's context has ended", err)
				}
				// The caller's reason is kept, as context.Cause gives it.
				if cause != nil && (!errors.Is(err, cause) || !strings.Contains(err.Error(), "(context canceled: shutting down)")) {
					t.Fatalf("Token() = %v, want an error that matches and shows the cause %q", err, cause)
				}
				if strings.Contains(err.Error(), "s3cret-value") {
					t.Fatalf("the error %q shows the secret", err)
				}
				if n := requests.Load() - before; n != 0 {
					t.Fatalf("%d token requests sent with an ended context, want 0", n)
				}
			})
		}
	}
}
