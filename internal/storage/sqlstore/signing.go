package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keyward/keyward/internal/storage"
)

func (s *Store) listSigningKeys(ctx context.Context, q queryer) ([]storage.SigningKey, error) {
	rows, err := q.QueryContext(ctx, s.q["listSigningKeys"])
	if err != nil {
		return nil, s.wrap("list signing keys", err)
	}
	defer rows.Close()
	var out []storage.SigningKey
	for rows.Next() {
		var (
			k                           storage.SigningKey
			created, activated, retired int64
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Sealed, &created, &activated, &retired); err != nil {
			return nil, s.wrap("list signing keys", err)
		}
		k.CreatedAt, k.ActivatedAt, k.RetiredAt = fromMicros(created), fromMicros(activated), fromMicros(retired)
		out = append(out, k)
	}
	return out, s.wrap("list signing keys", rows.Err())
}

// ListSigningKeys implements storage.Storage.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	return s.listSigningKeys(ctx, s.reader(ctx))
}

// UpdateSigningKeys implements storage.Storage.
func (s *Store) UpdateSigningKeys(ctx context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error), ev storage.AuditEvent) ([]storage.SigningKey, error) {
	var out []storage.SigningKey
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, s.d.LockSigningKeys, "lock signing keys"); err != nil {
			return err
		}
		old, err := s.listSigningKeys(ctx, tx)
		if err != nil {
			return err
		}
		keys, err := fn(old)
		if err != nil {
			return err
		}
		if err := s.replaceSigningKeys(ctx, tx, keys); err != nil {
			return err
		}
		out = keys
		return s.notify(ctx, tx, storage.ChangeSigningKeys)
	}, ev)
	return out, err
}

// replaceSigningKeys replaces the signing keys with keys, in a transaction
// holding the signing keys' lock.
func (s *Store) replaceSigningKeys(ctx context.Context, tx *sql.Tx, keys []storage.SigningKey) error {
	if _, err := tx.ExecContext(ctx, s.q["deleteSigningKeys"]); err != nil {
		return s.wrap("update signing keys", err)
	}
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, s.q["insertSigningKey"], k.ID, k.Algorithm, k.Sealed, micros(k.CreatedAt), micros(k.ActivatedAt), micros(k.RetiredAt)); err != nil {
			return s.wrap("update signing keys", err)
		}
	}
	return nil
}

// GetSealedValue implements storage.Storage.
func (s *Store) GetSealedValue(ctx context.Context, name string) (storage.SealedValue, error) {
	v := storage.SealedValue{Name: name}
	var created int64
	err := s.queryRow(ctx, "getSealedValue", name).Scan(&v.Sealed, &created)
	v.CreatedAt = fromMicros(created)
	return v, s.wrap("get sealed value", err)
}

// ListSealedValues implements storage.Storage.
func (s *Store) ListSealedValues(ctx context.Context) ([]storage.SealedValue, error) {
	return s.listSealedValues(ctx, s.reader(ctx))
}

func (s *Store) listSealedValues(ctx context.Context, q queryer) ([]storage.SealedValue, error) {
	rows, err := q.QueryContext(ctx, s.q["listSealedValues"])
	if err != nil {
		return nil, s.wrap("list sealed values", err)
	}
	defer rows.Close()
	var out []storage.SealedValue
	for rows.Next() {
		var (
			v       storage.SealedValue
			created int64
		)
		if err := rows.Scan(&v.Name, &v.Sealed, &created); err != nil {
			return nil, s.wrap("list sealed values", err)
		}
		v.CreatedAt = fromMicros(created)
		out = append(out, v)
	}
	return out, s.wrap("list sealed values", rows.Err())
}

// CreateSealedValue implements storage.Storage.
func (s *Store) CreateSealedValue(ctx context.Context, v storage.SealedValue, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// What is sealed under the master key changes under one lock:
		// Load's check of what the store has sealed holds until it
		// commits (a first start sealing its pepper waits for it).
		if err := s.lock(ctx, tx, s.d.LockSigningKeys, "lock signing keys"); err != nil {
			return err
		}
		return s.insertSealedValue(ctx, tx, v)
	}, ev)
}

func (s *Store) insertSealedValue(ctx context.Context, tx *sql.Tx, v storage.SealedValue) error {
	_, err := tx.ExecContext(ctx, s.q["insertSealedValue"], v.Name, v.Sealed, micros(v.CreatedAt))
	return s.wrap("create sealed value", err)
}

// Reseal implements storage.Storage.
func (s *Store) Reseal(ctx context.Context, fn func(aad string, sealed []byte) ([]byte, error), ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, s.d.LockSigningKeys, "lock signing keys"); err != nil {
			return err
		}
		keys, err := s.listSigningKeys(ctx, tx)
		if err != nil {
			return err
		}
		values, err := s.listSealedValues(ctx, tx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			sealed, err := fn(k.ID, k.Sealed)
			if err != nil {
				return fmt.Errorf("signing key %s: %w", k.ID, err)
			}
			if _, err := tx.ExecContext(ctx, s.q["resealSigningKey"], sealed, k.ID); err != nil {
				return s.wrap("reseal signing key", err)
			}
		}
		for _, v := range values {
			sealed, err := fn(storage.SealedValueAAD(v.Name), v.Sealed)
			if err != nil {
				return fmt.Errorf("sealed value %s: %w", v.Name, err)
			}
			if _, err := tx.ExecContext(ctx, s.q["resealValue"], sealed, v.Name); err != nil {
				return s.wrap("reseal value", err)
			}
		}
		return s.notify(ctx, tx, storage.ChangeSigningKeys)
	}, ev)
}
