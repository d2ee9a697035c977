package admin_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// TestAccountsPageAfterImportedID: a client ID the admin API never makes
// (not digits: an import brings what the file has) still continues the
// service-account list from the page it ends; its next_page_token was
// refused, so the list could not go past it; deleted since, it still
// does. A page_token that is no account's ID, nor was one, and not of the
// shape of one stays refused.
func TestAccountsPageAfterImportedID(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, id := range []string{"legacy-job", "legacy-kob"} {
		a := storage.Account{ID: id, Email: "job@" + id + ".iam.test", Name: "job", Project: id}
		if err := f.store.CreateAccount(ctx, a, storage.AuditEvent{Time: time.Now(), Action: "account.create", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	var ids []string
	for q := "limit=1"; ; {
		code, out, _ := f.call(t, "GET", "/v1/service-accounts?"+q, auth, nil)
		if code != 200 {
			t.Fatalf("GET /v1/service-accounts?%s: %d %v, after %v", q, code, out, ids)
		}
		for _, a := range out["service_accounts"].([]any) {
			ids = append(ids, a.(map[string]any)["client_id"].(string))
		}
		next, ok := out["next_page_token"].(string)
		if !ok {
			break
		}
		q = "limit=1&page_token=" + url.QueryEscape(next)
	}
	if n := len(ids); n < 3 || ids[n-2] != "legacy-job" || ids[n-1] != "legacy-kob" {
		t.Errorf("listed %v, want every account, legacy-job and legacy-kob last", ids)
	}
	if code, out, _ := f.call(t, "GET", "/v1/service-accounts?page_token=legacy-jo", auth, nil); code != 400 || out["error"] != "invalid_request" {
		t.Errorf("page_token=legacy-jo: %d %v, want 400 invalid_request", code, out)
	}
	// Deleted between two pages, such an ID still continues the list, as
	// a deleted client ID of digits does: the audit log knows it was one.
	if code, out, _ := f.call(t, "DELETE", "/v1/service-accounts/legacy-job", auth, nil); code != 204 {
		t.Fatalf("DELETE legacy-job: %d %v", code, out)
	}
	code, out, _ := f.call(t, "GET", "/v1/service-accounts?limit=1&page_token=legacy-job", auth, nil)
	if page, _ := out["service_accounts"].([]any); code != 200 || len(page) != 1 || page[0].(map[string]any)["client_id"] != "legacy-kob" {
		t.Errorf("page_token=legacy-job, deleted: %d %v, want 200 listing legacy-kob", code, out)
	}
}

// deleteLookupStore records the filters of the audit reads that look for
// an account.delete event.
type deleteLookupStore struct {
	storage.Storage
	mu      sync.Mutex
	filters []storage.AuditFilter
}

func (s *deleteLookupStore) ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	if f.Action == "account.delete" {
		s.mu.Lock()
		s.filters = append(s.filters, f)
		s.mu.Unlock()
	}
	return s.Storage.ListAuditEvents(ctx, f)
}

// TestAccountsPageAfterDeletedImportedIDNewest: the page_token of an
// imported client ID deleted since is looked up by its latest
// account.delete event (newest first, one event), the one a prune of the
// oldest events keeps longest; it asked for the oldest.
func TestAccountsPageAfterDeletedImportedIDNewest(t *testing.T) {
	st := &deleteLookupStore{Storage: openSQLite(t)}
	f := newFixtureOn(t, st)
	ctx := context.Background()
	for _, id := range []string{"legacy-job", "legacy-kob"} {
		a := storage.Account{ID: id, Email: "job@" + id + ".iam.test", Name: "job", Project: id}
		if err := f.store.CreateAccount(ctx, a, storage.AuditEvent{Time: time.Now(), Action: "account.create", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if code, out, _ := f.call(t, "DELETE", "/v1/service-accounts/legacy-job", auth, nil); code != 204 {
		t.Fatalf("DELETE legacy-job: %d %v", code, out)
	}
	code, out, _ := f.call(t, "GET", "/v1/service-accounts?limit=1&page_token=legacy-job", auth, nil)
	if page, _ := out["service_accounts"].([]any); code != 200 || len(page) != 1 || page[0].(map[string]any)["client_id"] != "legacy-kob" {
		t.Errorf("page_token=legacy-job, deleted: %d %v, want 200 listing legacy-kob", code, out)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.filters) != 1 {
		t.Fatalf("account.delete lookups: %+v, want one", st.filters)
	}
	if got := st.filters[0]; !got.Newest || got.Limit != 1 || got.AccountID != "legacy-job" {
		t.Errorf("account.delete lookup: %+v, want Newest, Limit 1, AccountID legacy-job", got)
	}
}
