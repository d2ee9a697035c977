package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
)

// hangingStore is a store whose account reads, once hang is set, wait
// until their context ends: a database whose connection went silent; and
// whose commits too, once hangCommits is set.
type hangingStore struct {
	storage.Storage
	hang, hangCommits atomic.Bool
}

func (s *hangingStore) Commit(ctx context.Context, writes []storage.Write) ([]error, error) {
	if s.hangCommits.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Storage.Commit(ctx, writes)
}

func (s *hangingStore) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	if s.hang.Load() {
		<-ctx.Done()
		return storage.Account{}, ctx.Err()
	}
	return s.Storage.GetAccount(ctx, id)
}

// A token request whose store does not answer is answered 503
// temporarily_unavailable within server.RequestTimeout, in time for the
// server's 30-second write timeout: the cache's own bound on the read
// (30 s) let it answer only when no answer could reach the client any
// more.
func TestTokenRequestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &hangingStore{Storage: openSQLite(t)}
		f := newFixtureOn(t, st)
		st.hang.Store(true)
		code, body, took := f.postTimed("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}})
		if code != 503 || body["error"] != "temporarily_unavailable" {
			t.Errorf("token with a store that does not answer = %d %v, want 503 temporarily_unavailable", code, body)
		}
		if took > server.RequestTimeout {
			t.Errorf("answered after %v, want within %v", took, server.RequestTimeout)
		}
		time.Sleep(time.Minute) // the cache's shared load gives up too
	})
}

// With a store that answers neither reads nor commits (a database gone
// without a word), the 503 of a request to /token, /introspect or
// /revoke comes within server.RequestTimeout as well: the audit event
// of the refusal, which cannot be written, is given up with the request,
// not waited for another group commit, past the server's write timeout.
func TestRequestDeadlineStoreDown(t *testing.T) {
	for _, path := range []string{"/token", "/introspect", "/revoke"} {
		t.Run(path[1:], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &hangingStore{Storage: openSQLite(t)}
				f := newFixtureOn(t, st)
				st.hang.Store(true)
				st.hangCommits.Store(true)
				form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}, "token": {"x"}}
				code, body, took := f.postTimed(path, form)
				if code != 503 || body["error"] != "temporarily_unavailable" {
					t.Errorf("%s with a store that does not answer = %d %v, want 503 temporarily_unavailable", path, code, body)
				}
				if took > server.RequestTimeout {
					t.Errorf("%s answered after %v, want within %v", path, took, server.RequestTimeout)
				}
				st.hangCommits.Store(false)
				time.Sleep(time.Minute) // the cache's shared load and the group commit give up too
			})
		})
	}
}

// postTimed posts form to path with the client's Basic credentials and
// returns the status, the JSON body and how long the answer took.
func (f *fixture) postTimed(path string, form url.Values) (int, map[string]any, time.Duration) {
	start := time.Now()
	w := f.doPath(path, form.Encode(), "Basic "+base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret)))
	took := time.Since(start)
	var body map[string]any
	json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, body, took
}
