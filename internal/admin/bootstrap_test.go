package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/storage"
)

func newService(t *testing.T) (*admin.Service, storage.Storage) {
	t.Helper()
	st := openSQLite(t)
	t.Cleanup(func() { st.Close() })
	return admin.NewService(st, admin.Config{Issuer: issuer, AccountDomain: "iam.test", DefaultTokenLifetime: time.Hour, MaxTokenLifetime: time.Hour}), st
}

// keep records the key files Bootstrap and RecoverAdmin save.
type keep struct{ files []sakey.KeyFile }

func (k *keep) save(kf sakey.KeyFile) error { k.files = append(k.files, kf); return nil }

func keyIDs(t *testing.T, st storage.Storage, accountID string) []string {
	t.Helper()
	keys, err := st.ListKeys(context.Background(), accountID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

func TestBootstrapFinishesAnInterruptedFirstStart(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	// The first start died after storing the account, before its key.
	now := time.Now()
	a := storage.Account{ID: admin.NewClientID(), Email: svc.Email(admin.AdminAccountName, admin.AdminProject), Name: admin.AdminAccountName,
		Project: admin.AdminProject, Scopes: []string{admin.AdminScope}, TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods,
		CreatedAt: now, UpdatedAt: now}
	if err := st.CreateAccount(ctx, a, storage.AuditEvent{Time: now, Action: "account.create", Outcome: storage.OutcomeSuccess, Actor: "system"}); err != nil {
		t.Fatal(err)
	}
	var k keep
	b, created, err := svc.Bootstrap(ctx, k.save)
	if err != nil || !created || b.ID != a.ID || len(k.files) != 1 {
		t.Fatalf("second start: created=%v account %s (want %s) files=%d err=%v", created, b.ID, a.ID, len(k.files), err)
	}
	if ids := keyIDs(t, st, a.ID); !slices.Equal(ids, []string{k.files[0].PrivateKeyID}) {
		t.Fatalf("admin keys %v, want the saved one %s", ids, k.files[0].PrivateKeyID)
	}
	// Finished: later starts do nothing.
	if _, created, err := svc.Bootstrap(ctx, k.save); err != nil || created || len(k.files) != 1 {
		t.Fatalf("third start: created=%v files=%d err=%v", created, len(k.files), err)
	}
}

func TestBootstrapSaveFails(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	boom := errors.New("disk full")
	if _, _, err := svc.Bootstrap(ctx, func(sakey.KeyFile) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if n, _ := st.CountAccounts(ctx); n != 0 {
		t.Fatalf("%d accounts after a failed save; the store must stay empty", n)
	}
}

func TestRecoverAdmin(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	var k keep
	a, _, err := svc.Bootstrap(ctx, k.save)
	if err != nil {
		t.Fatal(err)
	}
	operator := admin.Actor{ID: "local operator (keyward recover-admin)"}

	// Lost the key file: a new key, the old one stays.
	if _, err := svc.RecoverAdmin(ctx, operator, false, k.save); err != nil {
		t.Fatal(err)
	}
	if ids := keyIDs(t, st, a.ID); len(k.files) != 2 || !slices.Contains(ids, k.files[1].PrivateKeyID) || len(ids) != 2 {
		t.Fatalf("keys %v after recovery", ids)
	}

	// Disabled and stripped of the admin scope by mistake (the API refuses
	// to lock out the last administrator, so straight in the store, as an
	// older release or a hand-edited database could leave it).
	if _, err := st.UpdateAccount(ctx, a.ID, func(old storage.Account) (storage.Account, error) {
		old.Disabled, old.Scopes = true, []string{}
		return old, nil
	}, storage.AuditEvent{Time: time.Now(), Action: "account.update", Outcome: storage.OutcomeSuccess, Actor: "another-admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecoverAdmin(ctx, operator, false, k.save); !errors.Is(err, admin.ErrAdminDisabled) {
		t.Fatalf("disabled admin without enable: err = %v", err)
	}
	if len(k.files) != 2 {
		t.Fatal("a key was saved although recovery was refused")
	}
	// A save that fails with --enable changes nothing: the account stays
	// disabled, its old keys unusable.
	if r, err := svc.RecoverAdmin(ctx, operator, true, func(sakey.KeyFile) error { return errors.New("disk full") }); err == nil || r.KeyStored {
		t.Fatalf("failed save: %+v %v", r, err)
	}
	if stored, _ := st.GetAccount(ctx, a.ID); !stored.Disabled {
		t.Fatal("a failed recovery enabled the account")
	}
	r, err := svc.RecoverAdmin(ctx, operator, true, k.save)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Account
	if got.Disabled || !slices.Contains(got.Scopes, admin.AdminScope) || !r.KeyStored || len(r.OtherKeys) != 2 {
		t.Fatalf("recovery %+v: want enabled with %s, the key stored and 2 other keys", r, admin.AdminScope)
	}
	if stored, _ := st.GetAccount(ctx, a.ID); stored.Disabled || !slices.Contains(stored.Scopes, admin.AdminScope) {
		t.Fatalf("stored account %+v", stored)
	}

	// The audit log names the operator.
	evs, err := st.ListAuditEvents(ctx, storage.AuditFilter{Action: "key.create", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(evs); n != 3 || evs[1].Actor != operator.ID || evs[2].Actor != operator.ID {
		t.Fatalf("key.create events %+v", evs)
	}

	// A save that fails stores nothing.
	before := keyIDs(t, st, a.ID)
	if _, err := svc.RecoverAdmin(ctx, operator, false, func(sakey.KeyFile) error { return errors.New("exists") }); err == nil {
		t.Fatal("no error from a failed save")
	}
	if after := keyIDs(t, st, a.ID); !slices.Equal(before, after) {
		t.Fatalf("keys %v, want %v", after, before)
	}
}

// An administrator that deleted its admin key on purpose — signing in with
// a secret instead, or with other accounts in place — gets no new key at
// the next start: only a first start that never stored one resumes.
func TestBootstrapLeavesAnAdministeredStoreAlone(t *testing.T) {
	for name, setup := range map[string]func(svc *admin.Service, a storage.Account) error{
		"a secret instead": func(svc *admin.Service, a storage.Account) error {
			_, err := svc.CreateSecret(context.Background(), admin.Actor{ID: a.ID}, a.ID, 0)
			return err
		},
		"other accounts": func(svc *admin.Service, a storage.Account) error {
			_, err := svc.CreateAccount(context.Background(), admin.Actor{ID: a.ID}, admin.AccountInput{Name: "job", Project: "proj"})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			svc, st := newService(t)
			var k keep
			a, _, err := svc.Bootstrap(ctx, k.save)
			if err != nil {
				t.Fatal(err)
			}
			if err := setup(svc, a); err != nil {
				t.Fatal(err)
			}
			// Straight in the store: the admin API refuses to delete the
			// last credential of every administrator, which the key is
			// with only other accounts in place.
			if err := st.DeleteKey(ctx, k.files[0].PrivateKeyID, nil, storage.AuditEvent{Time: time.Now(), Action: "key.delete", Outcome: storage.OutcomeSuccess, Actor: a.ID}); err != nil {
				t.Fatal(err)
			}
			// Even with the key's creation pruned from the audit log.
			if _, err := st.PruneAudit(ctx, time.Now().Add(time.Hour), storage.PruneLimits{},
				storage.AuditEvent{Time: time.Now(), Outcome: storage.OutcomeSuccess, Actor: "op"}); err != nil {
				t.Fatal(err)
			}
			if _, created, err := svc.Bootstrap(ctx, k.save); err != nil || created || len(k.files) != 1 {
				t.Fatalf("created=%v files=%d err=%v", created, len(k.files), err)
			}
			if ids := keyIDs(t, st, a.ID); len(ids) != 0 {
				t.Fatalf("keys %v", ids)
			}
		})
	}
}

func TestRecoverAdminWrongStore(t *testing.T) {
	svc, _ := newService(t)
	if _, err := svc.RecoverAdmin(context.Background(), admin.Actor{ID: "op"}, false, (&keep{}).save); err == nil {
		t.Fatal("recovered an administrator in an empty store")
	}
}

// Recovery adds its key even to an administrator account with the most
// keys an account may have: with every one of them lost, the cap must not
// keep the operator out. The admin API still refuses to add one.
func TestRecoverAdminAtKeyCap(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	var k keep
	a, _, err := svc.Bootstrap(ctx, k.save)
	if err != nil {
		t.Fatal(err)
	}
	operator := admin.Actor{ID: "op"}
	for range admin.MaxKeys - 1 {
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(&p256.PublicKey)
		if _, err := svc.UploadKey(ctx, operator, a.Email, []byte(pemOf("PUBLIC KEY", spki)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.CreateKey(ctx, operator, a.Email, 0); err == nil {
		t.Fatalf("the admin API added key %d", admin.MaxKeys+1)
	}
	r, err := svc.RecoverAdmin(ctx, operator, false, k.save)
	if err != nil || !r.KeyStored {
		t.Fatalf("recovery at %d keys: %+v, %v", admin.MaxKeys, r, err)
	}
	if ids := keyIDs(t, st, a.ID); len(ids) != admin.MaxKeys+1 || !slices.Contains(ids, k.files[len(k.files)-1].PrivateKeyID) {
		t.Fatalf("keys %v after recovery, want %d with the new one", ids, admin.MaxKeys+1)
	}
}

// emptyOnce is a store that says it has no accounts: as a replica starting
// at the same time as another, on an empty store, found it.
type emptyOnce struct{ storage.Storage }

func (emptyOnce) CountAccounts(context.Context) (int, error) { return 0, nil }

// Two servers bootstrapping one empty store at once: the one whose
// administrator is stored second fails with ErrBootstrappedElsewhere,
// having saved a key file of its own, and leaves the store as the first
// made it: one administrator, with the first's key, and one built-in API.
func TestBootstrapRace(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	var first, second keep
	a, created, err := svc.Bootstrap(ctx, first.save)
	if err != nil || !created {
		t.Fatalf("first Bootstrap: created %v, %v", created, err)
	}
	late := admin.NewService(emptyOnce{st}, admin.Config{Issuer: issuer, AccountDomain: "iam.test", DefaultTokenLifetime: time.Hour, MaxTokenLifetime: time.Hour})
	if _, created, err := late.Bootstrap(ctx, second.save); !errors.Is(err, admin.ErrBootstrappedElsewhere) || created {
		t.Fatalf("second Bootstrap: created %v, %v; want ErrBootstrappedElsewhere", created, err)
	}
	if len(second.files) != 1 {
		t.Fatalf("the second saved %d key files, want 1 (to discard)", len(second.files))
	}
	if n, err := st.CountAccounts(ctx); err != nil || n != 1 {
		t.Fatalf("%d accounts (%v), want the first's administrator alone", n, err)
	}
	if ids := keyIDs(t, st, a.ID); !slices.Equal(ids, []string{first.files[0].PrivateKeyID}) {
		t.Fatalf("the administrator's keys %v, want the first's alone", ids)
	}
}

// beforeKey runs its hook, once, before the first key is created: another
// replica's start in the moment between Bootstrap's account and its key.
type beforeKey struct {
	storage.Storage
	hook func()
}

func (b *beforeKey) CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error {
	if h := b.hook; h != nil {
		b.hook = nil
		h()
	}
	return b.Storage.CreateKey(ctx, k, check, ev)
}

// TestBootstrapRacesAnInterruptedLooking: replicas starting at once on an
// empty store. A stores the administrator account; B, starting before A
// stores its key, finds the account alone and without a key, as an
// interrupted first start leaves it, and gives it a key. A's key, stored
// second, is refused (ErrBootstrappedElsewhere, whose key file serve
// discards): one key, one key file kept. Both were stored, and two
// replicas kept key files.
func TestBootstrapRacesAnInterruptedLooking(t *testing.T) {
	ctx := context.Background()
	b, st := newService(t)
	var bFiles keep
	var bCreated bool
	var bErr error
	race := &beforeKey{Storage: st, hook: func() { _, bCreated, bErr = b.Bootstrap(ctx, bFiles.save) }}
	a := admin.NewService(race, admin.Config{Issuer: issuer, AccountDomain: "iam.test", DefaultTokenLifetime: time.Hour, MaxTokenLifetime: time.Hour})
	var aFiles keep
	acct, aCreated, aErr := a.Bootstrap(ctx, aFiles.save)
	if bErr != nil || !bCreated || len(bFiles.files) != 1 {
		t.Fatalf("B, between A's account and key: created=%v files=%d err=%v", bCreated, len(bFiles.files), bErr)
	}
	if !errors.Is(aErr, admin.ErrBootstrappedElsewhere) || aCreated {
		t.Fatalf("A, storing its key second: created=%v err=%v; want ErrBootstrappedElsewhere", aCreated, aErr)
	}
	if ids := keyIDs(t, st, acct.ID); !slices.Equal(ids, []string{bFiles.files[0].PrivateKeyID}) {
		t.Fatalf("administrator keys %v, want B's alone (%s)", ids, bFiles.files[0].PrivateKeyID)
	}
}
