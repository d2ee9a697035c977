package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
)

// hangingStore is a store whose account reads, once hang is set, wait
// until their context ends: a database whose connection went silent.
type hangingStore struct {
	storage.Storage
	hang atomic.Bool
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
		sq, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		st := &hangingStore{Storage: sq}
		f := newFixtureOn(t, st)
		st.hang.Store(true)
		start := time.Now()
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(f.clientID, f.secret)
		w := httptest.NewRecorder()
		f.handler.ServeHTTP(w, r)
		took := time.Since(start)
		var body map[string]any
		json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != 503 || body["error"] != "temporarily_unavailable" {
			t.Errorf("token with a store that does not answer = %d %v, want 503 temporarily_unavailable", w.Code, body)
		}
		if took > server.RequestTimeout {
			t.Errorf("answered after %v, want within %v", took, server.RequestTimeout)
		}
		time.Sleep(time.Minute) // the cache's shared load gives up too
	})
}
