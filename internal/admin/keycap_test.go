package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

// An account has at most admin.MaxKeys keys, disabled ones included:
// generating or uploading one more is 409 conflict, naming the cap and
// how to make room; deleting a key makes room. An account that has more
// (from before the cap) keeps them, and is refused until it is under it.
func TestKeyCap(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	const email = "job@shop.iam.test"
	if status, out, _ := f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: "job", Project: "shop"}); status != 201 {
		t.Fatalf("creating the account: %d %v", status, out)
	}
	base := "/v1/service-accounts/" + email + "/keys"
	newPEM := func() string {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		return pemOf("PUBLIC KEY", spki)
	}
	var ids []string
	var firstPEM string
	for i := range admin.MaxKeys {
		p := newPEM()
		if i == 0 {
			firstPEM = p
		}
		status, out, _ := f.call(t, "POST", base+"/upload", auth, admin.KeyRequest{PublicKeyPEM: p})
		if status != 201 {
			t.Fatalf("key %d of %d: %d %v", i+1, admin.MaxKeys, status, out)
		}
		ids = append(ids, out["key_id"].(string))
	}
	// Disabled keys count: they still cost a signature check each.
	if status, out, _ := f.call(t, "POST", base+"/"+ids[0]+"/disable", auth, nil); status != 200 {
		t.Fatalf("disabling a key: %d %v", status, out)
	}

	refused := func(t *testing.T, have int) {
		t.Helper()
		for _, add := range []struct {
			name, path string
			body       any
		}{
			{"generate", base, nil},
			{"upload", base + "/upload", admin.KeyRequest{PublicKeyPEM: newPEM()}},
		} {
			status, out, _ := f.call(t, "POST", add.path, auth, add.body)
			desc, _ := out["error_description"].(string)
			for _, want := range []string{email, fmt.Sprintf("already has %d keys", have), fmt.Sprintf("at most %d", admin.MaxKeys), "keyward keys delete " + email} {
				if status != 409 || out["error"] != admin.ErrConflict || !strings.Contains(desc, want) {
					t.Fatalf("%s at %d keys: %d %v, want 409 conflict saying %q", add.name, have, status, out, want)
				}
			}
		}
		keys, err := f.store.ListKeys(ctx, mustAccount(t, f, email).ID)
		if err != nil || len(keys) != have {
			t.Fatalf("after refusals: %d keys, %v; want %d", len(keys), err, have)
		}
	}
	refused(t, admin.MaxKeys)

	// A duplicate is still told apart from a full account.
	status, out, _ := f.call(t, "POST", base+"/upload", auth, admin.KeyRequest{PublicKeyPEM: firstPEM})
	if desc, _ := out["error_description"].(string); status != 409 || !strings.Contains(desc, ids[0]) {
		t.Fatalf("uploading key %s again at the cap: %d %v, want 409 naming it", ids[0], status, out)
	}

	if status, out, _ := f.call(t, "DELETE", base+"/"+ids[0], auth, nil); status != 204 {
		t.Fatalf("deleting the disabled key: %d %v", status, out)
	}
	if status, out, _ := f.call(t, "POST", base+"/upload", auth, admin.KeyRequest{PublicKeyPEM: newPEM()}); status != 201 {
		t.Fatalf("uploading after a deletion made room: %d %v", status, out)
	}

	// Over the cap from before it: the keys stay listed; adding is
	// refused until deletions bring the account under the cap.
	a := mustAccount(t, f, email)
	for _, id := range []string{"over-1", "over-2"} {
		k := storage.Key{ID: id, AccountID: a.ID, Algorithm: "ES256", PublicKey: []byte(id), Origin: storage.KeyOriginUploaded, CreatedAt: f.now}
		if err := f.store.CreateKey(ctx, k, nil, storage.AuditEvent{Time: f.now, Action: "key.create", Outcome: storage.OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	if status, out, _ := f.call(t, "GET", base, auth, nil); status != 200 || len(out["keys"].([]any)) != admin.MaxKeys+2 {
		t.Fatalf("listing %d keys: %d %v", admin.MaxKeys+2, status, out)
	}
	refused(t, admin.MaxKeys+2)
	if status, out, _ := f.call(t, "DELETE", base+"/over-1", auth, nil); status != 204 {
		t.Fatalf("deleting a key: %d %v", status, out)
	}
	refused(t, admin.MaxKeys+1)
}

// accountDeletingStore deletes a credential's account just before it is
// added, once armed: an account deleted between the admin API's lookup
// and the add.
type accountDeletingStore struct {
	storage.Storage
	armed *atomic.Bool
}

func (s accountDeletingStore) deleteAccount(ctx context.Context, id string) error {
	if !s.armed.Load() {
		return nil
	}
	return s.Storage.DeleteAccount(ctx, id, nil, storage.AuditEvent{Time: time.Now(), Action: "account.delete", Outcome: storage.OutcomeSuccess, Actor: "test"})
}

func (s accountDeletingStore) CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error {
	if err := s.deleteAccount(ctx, k.AccountID); err != nil {
		return err
	}
	return s.Storage.CreateKey(ctx, k, check, ev)
}

func (s accountDeletingStore) CreateSecret(ctx context.Context, sec storage.Secret, check func([]storage.Secret) error, ev storage.AuditEvent) error {
	if err := s.deleteAccount(ctx, sec.AccountID); err != nil {
		return err
	}
	return s.Storage.CreateSecret(ctx, sec, check, ev)
}

// A key or secret added to an account deleted meanwhile (after the admin
// API found it) is a 404 naming the account, not one saying that the key
// or secret being created does not exist.
func TestCredentialOfAccountDeletedMeanwhile(t *testing.T) {
	st := openSQLite(t)
	var armed atomic.Bool
	f := newFixtureOn(t, accountDeletingStore{st, &armed})
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	for i, tc := range []struct {
		name, path string
		body       any
	}{
		{"generate a key", "keys", nil},
		{"upload a key", "keys/upload", admin.KeyRequest{PublicKeyPEM: pemOf("PUBLIC KEY", spki)}},
		{"create a secret", "secrets", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("job%d", i)
			email := name + "@shop.iam.test"
			if status, out, _ := f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: name, Project: "shop"}); status != 201 {
				t.Fatalf("creating the account: %d %v", status, out)
			}
			// One an import made, its email over 64 bytes: quoted and cut.
			long := strings.Repeat("a", 60) + fmt.Sprint(i) + "@shop.iam.test"
			now := time.Now()
			if err := st.CreateAccount(context.Background(), storage.Account{ID: fmt.Sprintf("legacy-%d", i), Email: long, Name: "job", Project: "shop",
				TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods, CreatedAt: now, UpdatedAt: now},
				storage.AuditEvent{Time: now, Action: "account.create", Outcome: storage.OutcomeSuccess, Actor: "test"}); err != nil {
				t.Fatal(err)
			}
			armed.Store(true)
			defer armed.Store(false)
			for _, ref := range []struct{ email, shown string }{
				{email, strconv.Quote(email)},
				{long, validate.QuoteClip(long)},
			} {
				status, out, _ := f.call(t, "POST", "/v1/service-accounts/"+ref.email+"/"+tc.path, auth, tc.body)
				want := "The service account " + ref.shown + " does not exist."
				if desc, _ := out["error_description"].(string); status != 404 || desc != want {
					t.Fatalf("%d %v, want 404 with %q", status, out, want)
				}
			}
		})
	}
}
