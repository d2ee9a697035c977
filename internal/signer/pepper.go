package signer

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// PepperName names the sealed value that holds the client-secret pepper.
const PepperName = "client-secret-pepper"

// PepperStore is the part of storage LoadPepper needs.
type PepperStore interface {
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	GetSealedValue(ctx context.Context, name string) (storage.SealedValue, error)
	CreateSealedValue(ctx context.Context, v storage.SealedValue, ev storage.AuditEvent) error
}

// LoadPepper returns the pepper that keys the hashes of client secrets. It
// lives in the store, sealed under the master key, so that rotating the
// master key keeps every secret valid. A store without one gets the pepper
// that versions before master-key rotation derived from the master key, so
// the secrets they hashed stay valid too; it is stored on first use.
func LoadPepper(ctx context.Context, st PepperStore, master []byte, now time.Time) ([]byte, error) {
	sealer, err := NewSealer(master)
	if err != nil {
		return nil, err
	}
	aad := storage.SealedValueAAD(PepperName)
	v, err := st.GetSealedValue(ctx, PepperName)
	if errors.Is(err, storage.ErrNotFound) {
		// Store nothing under a master key that is not the store's: a
		// wrong key would seal a wrong pepper for good.
		if err := openSigningKeys(ctx, st, sealer); err != nil {
			return nil, err
		}
		pepper, kerr := hkdf.Key(sha256.New, master, nil, "keyward client-secret pepper", 32)
		if kerr != nil {
			return nil, kerr
		}
		err = st.CreateSealedValue(ctx, storage.SealedValue{Name: PepperName, Sealed: sealer.Seal(aad, pepper), CreatedAt: now},
			storage.AuditEvent{Time: now, Action: "sealed_value.create", Outcome: storage.OutcomeSuccess, Actor: "system",
				Data: map[string]string{"name": PepperName}})
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return pepper, err
		}
		// Another replica stored it first: use theirs.
		v, err = st.GetSealedValue(ctx, PepperName)
	}
	if err != nil {
		return nil, fmt.Errorf("load the client-secret pepper: %w", err)
	}
	return openPepper(sealer, v)
}

// CheckMasterKey checks that master opens st, as LoadPepper does, and
// with its errors, but changes nothing: it opens the stored pepper, or,
// with none stored yet, every signing key. A master key that does not
// open them is ErrWrongMasterKey.
func CheckMasterKey(ctx context.Context, st PepperStore, master []byte) error {
	sealer, err := NewSealer(master)
	if err != nil {
		return err
	}
	v, err := st.GetSealedValue(ctx, PepperName)
	if errors.Is(err, storage.ErrNotFound) {
		return openSigningKeys(ctx, st, sealer)
	} else if err != nil {
		return fmt.Errorf("load the client-secret pepper: %w", err)
	}
	_, err = openPepper(sealer, v)
	return err
}

// openPepper opens v, the stored pepper.
func openPepper(sealer *Sealer, v storage.SealedValue) ([]byte, error) {
	pepper, err := sealer.Open(storage.SealedValueAAD(PepperName), v.Sealed)
	if err != nil {
		return nil, fmt.Errorf("the master key does not open the stored client-secret pepper: it is not the key this store was sealed with (for an imported store, give the key of the server the export came from; for one restored from a back-up, the key it was sealed with when backed up (the old one, for a back-up from before a 'keyward master-key rotate'); else, after a rotate, the new key): %w", ErrWrongMasterKey)
	}
	return pepper, nil
}

// openSigningKeys checks that sealer opens every stored signing key.
func openSigningKeys(ctx context.Context, st PepperStore, sealer *Sealer) error {
	keys, err := st.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := sealer.Open(k.ID, k.Sealed); err != nil {
			return fmt.Errorf("the master key does not open the stored signing key %s: %w", k.ID, err)
		}
	}
	return nil
}

// ResealStore is the part of storage RotateMasterKey needs.
type ResealStore interface {
	PepperStore
	Reseal(ctx context.Context, fn func(aad string, sealed []byte) ([]byte, error), ev storage.AuditEvent) error
}

// RotateMasterKey re-encrypts everything sealed under oldMaster — every
// signing key and sealed value — under newMaster, in one transaction: after
// it, only newMaster opens the store. It first stores the pepper if the
// store has none yet, since it would otherwise be derived from the new key.
func RotateMasterKey(ctx context.Context, st ResealStore, oldMaster, newMaster []byte, ev storage.AuditEvent) error {
	if _, err := LoadPepper(ctx, st, oldMaster, ev.Time); err != nil {
		return err
	}
	from, err := NewSealer(oldMaster)
	if err != nil {
		return fmt.Errorf("the current master key: %w", err)
	}
	to, err := NewSealer(newMaster)
	if err != nil {
		return fmt.Errorf("the new master key: %w", err)
	}
	return st.Reseal(ctx, func(aad string, sealed []byte) ([]byte, error) {
		plain, err := from.Open(aad, sealed)
		if err != nil {
			return nil, err
		}
		return to.Seal(aad, plain), nil
	}, ev)
}
