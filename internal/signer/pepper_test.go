package signer

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// sealedStore is a memStore that also holds sealed values, as the store
// does: a fake, not SQLite, so that this package's test binary, which its
// fuzz targets run in, does not link a database.
type sealedStore struct {
	memStore
	values map[string]storage.SealedValue
}

func openStore(*testing.T) *sealedStore {
	return &sealedStore{values: map[string]storage.SealedValue{}}
}

func (m *sealedStore) GetSealedValue(_ context.Context, name string) (storage.SealedValue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[name]
	if !ok {
		return storage.SealedValue{}, storage.ErrNotFound
	}
	v.Sealed = bytes.Clone(v.Sealed)
	return v, nil
}

func (m *sealedStore) CreateSealedValue(_ context.Context, v storage.SealedValue, ev storage.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.values[v.Name]; ok {
		return storage.ErrAlreadyExists
	}
	v.Sealed = bytes.Clone(v.Sealed)
	m.values[v.Name] = v
	m.evs = append(m.evs, ev)
	return nil
}

// Reseal reseals every signing key (by its ID) and sealed value (by
// storage.SealedValueAAD of its name), all or none, as the store does.
func (m *sealedStore) Reseal(_ context.Context, fn func(aad string, sealed []byte) ([]byte, error), ev storage.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := slices.Clone(m.keys)
	for i, k := range keys {
		sealed, err := fn(k.ID, k.Sealed)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		keys[i].Sealed = sealed
	}
	values := make(map[string]storage.SealedValue, len(m.values))
	for name, v := range m.values {
		sealed, err := fn(storage.SealedValueAAD(name), v.Sealed)
		if err != nil {
			return fmt.Errorf("sealed value %s: %w", name, err)
		}
		v.Sealed = sealed
		values[name] = v
	}
	m.keys, m.values = keys, values
	m.evs = append(m.evs, ev)
	return nil
}

func TestLoadPepper(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	p1, err := LoadPepper(ctx, st, master, now)
	if err != nil {
		t.Fatal(err)
	}
	// The first pepper is the one earlier versions derived from the master
	// key, so their secrets stay valid.
	legacy, _ := hkdf.Key(sha256.New, master, nil, "keyward client-secret pepper", 32)
	if !bytes.Equal(p1, legacy) {
		t.Fatal("the first pepper is not the one derived from the master key")
	}
	if _, err := st.GetSealedValue(ctx, PepperName); err != nil {
		t.Fatalf("the pepper was not stored: %v", err)
	}
	p2, err := LoadPepper(ctx, st, master, now)
	if err != nil || !bytes.Equal(p1, p2) {
		t.Fatalf("second load: %v", err)
	}
	if _, err := LoadPepper(ctx, st, bytes.Repeat([]byte{8}, 32), now); err == nil {
		t.Fatal("another master key opened the pepper")
	}
}

// A store written before peppers were stored, opened with the wrong master
// key: nothing is stored, and the right key still works.
func TestLoadPepperWrongKeyStoresNothing(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Now()}
	newTestSigner(t, st, master, "ES256", c) // signing keys sealed under master, no pepper yet
	if _, err := LoadPepper(ctx, st, bytes.Repeat([]byte{8}, 32), c.t); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := st.GetSealedValue(ctx, PepperName); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a pepper was stored under the wrong key: %v", err)
	}
	if _, err := LoadPepper(ctx, st, master, c.t); err != nil {
		t.Fatalf("the right key: %v", err)
	}
}

// TestCheckMasterKey: CheckMasterKey refuses a master key that does not
// open the stored pepper, or, with none stored yet, a signing key, as
// LoadPepper does, and stores nothing either way.
func TestCheckMasterKey(t *testing.T) {
	ctx := context.Background()
	wrong := bytes.Repeat([]byte{8}, 32)
	c := &clock{t: time.Now()}
	withKeys := openStore(t)
	newTestSigner(t, withKeys, master, "ES256", c) // no pepper yet
	withPepper := openStore(t)
	if _, err := LoadPepper(ctx, withPepper, master, c.t); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		st        *sealedStore
		key       []byte
		wantWrong bool
		wantMsg   string
	}{
		{"empty store", openStore(t), wrong, false, ""},
		{"signing keys, right key", withKeys, master, false, ""},
		{"signing keys, wrong key", withKeys, wrong, true, "the master key does not open the stored signing key"},
		{"pepper, right key", withPepper, master, false, ""},
		{"pepper, wrong key", withPepper, wrong, true, "the master key does not open the stored client-secret pepper: it is not the key this store was sealed with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := len(tt.st.evs)
			err := CheckMasterKey(ctx, tt.st, tt.key)
			if got := errors.Is(err, ErrWrongMasterKey); got != tt.wantWrong || !tt.wantWrong && err != nil {
				t.Fatalf("CheckMasterKey: %v, want ErrWrongMasterKey %v", err, tt.wantWrong)
			}
			if tt.wantWrong && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("CheckMasterKey: %v, want it to say %q", err, tt.wantMsg)
			}
			if len(tt.st.evs) != evs {
				t.Errorf("CheckMasterKey wrote %d events, want none", len(tt.st.evs)-evs)
			}
			if tt.st != withPepper {
				if _, err := tt.st.GetSealedValue(ctx, PepperName); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("a pepper was stored: %v", err)
				}
			}
		})
	}
}

// raceStore is a store in which another replica stores the pepper between
// this one's look-up and its create.
type raceStore struct {
	*sealedStore
	other func()
}

func (s raceStore) CreateSealedValue(ctx context.Context, v storage.SealedValue, ev storage.AuditEvent) error {
	s.other()
	return s.sealedStore.CreateSealedValue(ctx, v, ev)
}

// Two replicas starting on an empty store: the one whose create finds the
// other's pepper uses it.
func TestLoadPepperAnotherReplicaFirst(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	var theirs []byte
	race := raceStore{sealedStore: st, other: func() {
		var err error
		if theirs, err = LoadPepper(ctx, st, master, now); err != nil {
			t.Fatalf("the other replica: %v", err)
		}
	}}
	ours, err := LoadPepper(ctx, race, master, now)
	if err != nil {
		t.Fatalf("the replica that lost the race: %v", err)
	}
	if !bytes.Equal(ours, theirs) {
		t.Fatal("the replicas hold different peppers")
	}
}

func TestRotateMasterKey(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	s := newTestSigner(t, st, master, "ES256", c)
	kidsBefore := jwksKIDs(t, s)
	pepper, err := LoadPepper(ctx, st, master, c.t)
	if err != nil {
		t.Fatal(err)
	}
	newMaster := bytes.Repeat([]byte{9}, 32)
	ev := storage.AuditEvent{Time: c.t, Action: "master_key.rotate", Outcome: storage.OutcomeSuccess, Actor: "op"}

	// The wrong current key changes nothing.
	if err := RotateMasterKey(ctx, st, bytes.Repeat([]byte{3}, 32), newMaster, ev); err == nil {
		t.Fatal("rotated with a wrong current master key")
	}
	if _, err := LoadPepper(ctx, st, master, c.t); err != nil {
		t.Fatalf("the store no longer opens with its key after a refused rotation: %v", err)
	}

	if err := RotateMasterKey(ctx, st, master, newMaster, ev); err != nil {
		t.Fatal(err)
	}
	// The new key opens everything: same signing keys, same pepper.
	s2 := newTestSigner(t, st, newMaster, "ES256", c)
	if kids := jwksKIDs(t, s2); !slices.Equal(kids, kidsBefore) {
		t.Fatalf("signing keys %v after rotation, want %v", kids, kidsBefore)
	}
	if p, err := LoadPepper(ctx, st, newMaster, c.t); err != nil || !bytes.Equal(p, pepper) {
		t.Fatalf("pepper after rotation: %v", err)
	}
	// The old key opens nothing.
	if _, err := LoadPepper(ctx, st, master, c.t); err == nil {
		t.Fatal("the old master key still opens the pepper")
	}
	sealer, _ := NewSealer(master)
	if _, err := New(ctx, st, sealer, Config{Policy: Policy{Algorithm: "ES256", RetainFor: time.Hour}, Now: c.now}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("start with the old master key: %v", err)
	}
	// A server still running with the old key must not add keys sealed
	// under it.
	if err := s.Rotate(ctx, "test", ""); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("rotation by a server with the old master key: %v", err)
	}
	keys, _ := st.ListSigningKeys(ctx)
	resealed, _ := NewSealer(newMaster)
	for _, k := range keys {
		if _, err := resealed.Open(k.ID, k.Sealed); err != nil {
			t.Fatalf("signing key %s is not sealed under the new master key", k.ID)
		}
	}
}

// TestLoadPepperWrongKeyRestored: the refusal of a master key that does
// not open the pepper names the key a store restored from a back-up
// needs, the one it was sealed with when backed up (the old one, for a
// back-up from before a master-key rotate): it said only "after keyward
// master-key rotate, the new key", the wrong one for such a back-up.
func TestLoadPepperWrongKeyRestored(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	if _, err := LoadPepper(ctx, st, master, now); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPepper(ctx, st, bytes.Repeat([]byte{8}, 32), now)
	if !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if want := "for one restored from a back-up, the key it was sealed with when backed up (the old one, for a back-up from before a 'keyward master-key rotate')"; !strings.Contains(err.Error(), want) {
		t.Errorf("wrong key: %v\nwant it to say %q", err, want)
	}
	// Commands are quoted '…', as every other message quotes them, not
	// in Markdown's backticks.
	if strings.Contains(err.Error(), "`") {
		t.Errorf("wrong key: %v\nholds a backtick", err)
	}
}
