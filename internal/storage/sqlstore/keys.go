package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keyward/keyward/internal/storage"
)

func scanKey(row scanner) (storage.Key, error) {
	var (
		k                    storage.Key
		disabled             int
		expiresAt, createdAt int64
	)
	err := row.Scan(&k.ID, &k.AccountID, &k.Algorithm, &k.PublicKey, &k.Certificate, &k.Origin, &disabled, &expiresAt, &createdAt)
	k.Disabled = disabled != 0
	k.ExpiresAt, k.CreatedAt = fromMicros(expiresAt), fromMicros(createdAt)
	if len(k.Certificate) == 0 {
		k.Certificate = nil
	}
	return k, err
}

// CreateKey implements storage.Storage. The account's row is locked
// first, so that the keys check is given are those of the last CreateKey
// to commit, and stay so until this one commits: two keys added at once
// are checked one after the other, each counting the other's.
func (s *Store) CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var id string
		if err := tx.QueryRowContext(ctx, s.q["lockAccount"], k.AccountID).Scan(&id); err != nil {
			return s.wrap("create key: account", err)
		}
		if err := checkList(ctx, s, tx, "create key", "listKeys", k.AccountID, scanKeys, check); err != nil {
			return err
		}
		if err := s.insertKey(ctx, tx, k); err != nil {
			return err
		}
		return s.notify(ctx, tx, k.AccountID)
	}, ev)
}

func (s *Store) insertKey(ctx context.Context, tx *sql.Tx, k storage.Key) error {
	cert := k.Certificate
	if cert == nil {
		cert = []byte{}
	}
	_, err := tx.ExecContext(ctx, s.q["insertKey"], k.ID, k.AccountID, k.Algorithm, k.PublicKey, cert, k.Origin,
		boolInt(k.Disabled), micros(k.ExpiresAt), micros(k.CreatedAt))
	return s.wrap("create key", err)
}

// GetKey implements storage.Storage.
func (s *Store) GetKey(ctx context.Context, id string) (storage.Key, error) {
	k, err := scanKey(s.queryRow(ctx, "getKey", id))
	return k, s.wrap("get key", err)
}

// ListKeys implements storage.Storage.
func (s *Store) ListKeys(ctx context.Context, accountID string) ([]storage.Key, error) {
	rows, err := s.query(ctx, "listKeys", accountID)
	if err != nil {
		return nil, s.wrap("list keys", err)
	}
	keys, err := scanKeys(rows)
	return keys, s.wrap("list keys", err)
}

// scanKeys reads the keys rows holds, and closes it.
func scanKeys(rows *sql.Rows) ([]storage.Key, error) {
	defer rows.Close()
	var out []storage.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// UpdateKey implements storage.Storage. Only Disabled and ExpiresAt change.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(storage.Key) (storage.Key, error), ev storage.AuditEvent, guards ...storage.Guard) (storage.Key, error) {
	var out storage.Key
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockScopes(ctx, tx, guards); err != nil {
			return err
		}
		old, err := scanKey(tx.QueryRowContext(ctx, s.q["getKeyForUpdate"], id))
		if err != nil {
			return s.wrap("update key", err)
		}
		k, err := fn(old)
		if err != nil {
			return err
		}
		if k.ID != old.ID || k.AccountID != old.AccountID {
			return fmt.Errorf("update key %s: the ID and account cannot change", id)
		}
		_, err = tx.ExecContext(ctx, s.q["updateKey"], boolInt(k.Disabled), micros(k.ExpiresAt), id)
		out = k
		if err != nil {
			return s.wrap("update key", err)
		}
		if err := s.checkCredential(ctx, tx, "update key", k.AccountID, keyCounts(old), keyCounts(k), guards); err != nil {
			return err
		}
		return s.notify(ctx, tx, k.AccountID)
	}, ev)
	return out, err
}

// DeleteKey implements storage.Storage.
func (s *Store) DeleteKey(ctx context.Context, id string, check func(storage.Key) error, ev storage.AuditEvent, guards ...storage.Guard) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var old storage.Key
		if len(guards) > 0 || check != nil {
			if err := s.lockScopes(ctx, tx, guards); err != nil {
				return err
			}
			var err error
			// Locked, as UpdateKey locks it, so check sees what was
			// committed last and nothing changes it until this commits.
			if old, err = scanKey(tx.QueryRowContext(ctx, s.q["getKeyForUpdate"], id)); err != nil {
				return s.wrap("delete key", err)
			}
			if check != nil {
				if err := check(old); err != nil {
					return err
				}
			}
		}
		if err := s.execOne(ctx, tx, "delete key", s.q["deleteKey"], id); err != nil {
			return err
		}
		if len(guards) > 0 {
			if err := s.checkCredential(ctx, tx, "delete key", old.AccountID, keyCounts(old), nil, guards); err != nil {
				return err
			}
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}
