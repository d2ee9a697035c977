package admin_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// silentStore is a store whose account reads, once silent is set, and
// audit reads, once silentAudit is set, wait until their context ends: a
// database whose connection went silent.
type silentStore struct {
	storage.Storage
	silent, silentAudit atomic.Bool
}

func (s *silentStore) ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	if s.silentAudit.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Storage.ListAuditEvents(ctx, f)
}

func (s *silentStore) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	if s.silent.Load() {
		<-ctx.Done()
		return storage.Account{}, ctx.Err()
	}
	return s.Storage.GetAccount(ctx, id)
}

// An admin change sent while the store does not answer is answered 503
// within the change's bound, its authentication included: the reads that
// check the administrator's token and account waited for the cache's own
// bound (30 s), so the answer came no sooner than the server's write
// timeout, which dropped it.
func TestChangeDeadlineCoversAuthentication(t *testing.T) {
	checkSilentStoreAnswers503(t, "change", "POST", "/v1/service-accounts", map[string]any{"name": "job", "project": "shop"}, "the change's 20 s")
}

// An admin read (a GET, but a long poll of the audit log) sent while the
// store does not answer is answered 503 within the same bound: it waited
// for the cache's 30 s, and then on its own read for as long as the
// connection took to fail (minutes, with a peer gone without a word),
// holding one of the store's connections meanwhile.
func TestReadDeadline(t *testing.T) {
	checkSilentStoreAnswers503(t, "read", "GET", "/v1/service-accounts", nil, "20 s")
}

// checkSilentStoreAnswers503 sends one admin request, with the
// administrator's token no longer fresh in the cache, while the store's
// account reads do not answer, and checks that it is answered 503
// temporarily_unavailable within 20 s.
func checkSilentStoreAnswers503(t *testing.T, what, method, path string, body any, within string) {
	synctest.Test(t, func(t *testing.T) {
		st := &silentStore{Storage: openSQLite(t)}
		f := newFixtureOn(t, st)
		auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
		time.Sleep(time.Minute) // nothing fresh in the cache
		st.silent.Store(true)
		start := time.Now()
		code, out, _ := f.call(t, method, path, auth, body)
		took := time.Since(start)
		if code != 503 || out["error"] != "temporarily_unavailable" {
			t.Errorf("%s with a store that does not answer = %d %v, want 503 temporarily_unavailable", what, code, out)
		}
		if took > 20*time.Second {
			t.Errorf("answered after %v, want within %s", took, within)
		}
		st.silent.Store(false)
		time.Sleep(time.Minute) // the cache's shared load gives up too
	})
}

// A request for the audit log, with wait or not, sent while the store
// does not answer is answered 503 within the bound of other requests: its
// authentication and its first read are bounded so, only a long poll's
// wait is not. Any wait, even 0 or one refused, left the request
// unbounded, waiting on the store for as long as it did not answer.
func TestAuditReadDeadline(t *testing.T) {
	for _, tt := range []struct {
		name  string
		query string
		audit bool // the audit read is silent, not the authentication's
	}{
		{"authentication, wait", "?wait=50s", false},
		{"authentication, wait=0", "?wait=0s", false},
		{"authentication, invalid wait", "?wait=soon", false},
		{"first read, wait", "?wait=50s", true},
		{"first read, wait=0", "?wait=0s", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Shorter than the cache's own bound on a load (20 s),
				// which would end the authentication's reads anyway.
				admin.SetRequestTimeout(t, 5*time.Second)
				st := &silentStore{Storage: openSQLite(t)}
				f := newFixtureOn(t, st)
				auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
				time.Sleep(time.Minute) // nothing fresh in the cache
				if tt.audit {
					st.silentAudit.Store(true)
				} else {
					st.silent.Store(true)
				}
				start := time.Now()
				code, out, _ := f.call(t, "GET", "/v1/audit"+tt.query, auth, nil)
				took := time.Since(start)
				if code != 503 || out["error"] != "temporarily_unavailable" {
					t.Errorf("audit read with a store that does not answer = %d %v, want 503 temporarily_unavailable", code, out)
				}
				if took > 5*time.Second {
					t.Errorf("answered after %v, want within the request bound, 5 s", took)
				}
				st.silent.Store(false)
				st.silentAudit.Store(false)
				time.Sleep(time.Minute) // the cache's shared load gives up too
			})
		})
	}
}

// A long poll of the audit log waits as long as it asked, past the bound
// of other requests.
func TestLongPollOutlastsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
		code, out, _ := f.call(t, "GET", "/v1/audit?order=desc&limit=1", auth, nil)
		if code != 200 {
			t.Fatalf("audit list = %d %v", code, out)
		}
		evs, _ := out["events"].([]any)
		if len(evs) != 1 {
			t.Fatalf("audit list has %d events, want 1", len(evs))
		}
		seq := evs[0].(map[string]any)["seq"]
		start := time.Now()
		code, out, _ = f.call(t, "GET", fmt.Sprintf("/v1/audit?after=%v&wait=50s", seq), auth, nil)
		took := time.Since(start)
		if code != 200 {
			t.Errorf("long poll = %d %v, want 200", code, out)
		}
		if took < 50*time.Second {
			t.Errorf("long poll answered after %v, want the 50 s it asked for", took)
		}
	})
}
