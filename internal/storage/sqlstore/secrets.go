package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

func scanSecret(row scanner) (storage.Secret, error) {
	var (
		sec                            storage.Secret
		disabled                       int
		expiresAt, createdAt, lastUsed int64
	)
	err := row.Scan(&sec.ID, &sec.AccountID, &sec.Hash, &sec.Hint, &disabled, &expiresAt, &createdAt, &lastUsed)
	sec.Disabled = disabled != 0
	sec.ExpiresAt, sec.CreatedAt, sec.LastUsedAt = fromMicros(expiresAt), fromMicros(createdAt), fromMicros(lastUsed)
	return sec, err
}

// CreateSecret implements storage.Storage. The account's row is locked
// first, as CreateKey locks it, so that the secrets check is given are
// those of the last change to commit, and stay so until this one commits.
func (s *Store) CreateSecret(ctx context.Context, sec storage.Secret, check func([]storage.Secret) error, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var id string
		if err := tx.QueryRowContext(ctx, s.q["lockAccount"], sec.AccountID).Scan(&id); err != nil {
			return s.wrap("create secret: account", err)
		}
		if err := checkList(ctx, s, tx, "create secret", "listSecrets", sec.AccountID, scanSecrets, check); err != nil {
			return err
		}
		if err := s.insertSecret(ctx, tx, sec); err != nil {
			return err
		}
		return s.notify(ctx, tx, sec.AccountID)
	}, ev)
}

// checkList calls check, if not nil, with the items (keys or secrets) of
// the account accountID as tx sees them: those the query list returns,
// read by scan.
func checkList[T any](ctx context.Context, s *Store, tx *sql.Tx, op, list, accountID string, scan func(*sql.Rows) ([]T, error), check func([]T) error) error {
	if check == nil {
		return nil
	}
	rows, err := tx.QueryContext(ctx, s.q[list], accountID)
	if err != nil {
		return s.wrap(op, err)
	}
	items, err := scan(rows)
	if err != nil {
		return s.wrap(op, err)
	}
	return check(items)
}

func (s *Store) insertSecret(ctx context.Context, tx *sql.Tx, sec storage.Secret) error {
	_, err := tx.ExecContext(ctx, s.q["insertSecret"], sec.ID, sec.AccountID, sec.Hash, sec.Hint, boolInt(sec.Disabled),
		micros(sec.ExpiresAt), micros(sec.CreatedAt), micros(sec.LastUsedAt))
	return s.wrap("create secret", err)
}

// ListSecrets implements storage.Storage.
func (s *Store) ListSecrets(ctx context.Context, accountID string) ([]storage.Secret, error) {
	rows, err := s.query(ctx, "listSecrets", accountID)
	if err != nil {
		return nil, s.wrap("list secrets", err)
	}
	secs, err := scanSecrets(rows)
	return secs, s.wrap("list secrets", err)
}

// scanSecrets reads the secrets rows holds, and closes it.
func scanSecrets(rows *sql.Rows) ([]storage.Secret, error) {
	defer rows.Close()
	var out []storage.Secret
	for rows.Next() {
		sec, err := scanSecret(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, rows.Err()
}

// UpdateSecret implements storage.Storage. Only Disabled and ExpiresAt
// change. With a check, the account's row is locked before the secret's,
// the order DeleteAccount locks them in, and check is given the secrets
// as the update left them in the transaction.
func (s *Store) UpdateSecret(ctx context.Context, id string, fn func(storage.Secret) (storage.Secret, error), check func([]storage.Secret) error, ev storage.AuditEvent, guards ...storage.Guard) (storage.Secret, error) {
	var out storage.Secret
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockScopes(ctx, tx, guards); err != nil {
			return err
		}
		if check != nil {
			// A secret's account never changes: read unlocked, it is the
			// account of the row locked below.
			sec, err := scanSecret(tx.QueryRowContext(ctx, s.q["getSecret"], id))
			if err != nil {
				return s.wrap("update secret", err)
			}
			var accountID string
			if err := tx.QueryRowContext(ctx, s.q["lockAccount"], sec.AccountID).Scan(&accountID); err != nil {
				return s.wrap("update secret: account", err)
			}
		}
		old, err := scanSecret(tx.QueryRowContext(ctx, s.q["getSecretForUpdate"], id))
		if err != nil {
			return s.wrap("update secret", err)
		}
		sec, err := fn(old)
		if err != nil {
			return err
		}
		if sec.ID != old.ID || sec.AccountID != old.AccountID {
			return fmt.Errorf("update secret %s: the ID and account cannot change", id)
		}
		_, err = tx.ExecContext(ctx, s.q["updateSecret"], boolInt(sec.Disabled), micros(sec.ExpiresAt), id)
		out = sec
		if err != nil {
			return s.wrap("update secret", err)
		}
		if err := checkList(ctx, s, tx, "update secret", "listSecrets", sec.AccountID, scanSecrets, check); err != nil {
			return err
		}
		if err := s.checkCredential(ctx, tx, "update secret", sec.AccountID, secretCounts(old), secretCounts(sec), guards); err != nil {
			return err
		}
		return s.notify(ctx, tx, sec.AccountID)
	}, ev)
	return out, err
}

// DeleteSecret implements storage.Storage.
func (s *Store) DeleteSecret(ctx context.Context, id string, check func(storage.Secret) error, ev storage.AuditEvent, guards ...storage.Guard) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var old storage.Secret
		if len(guards) > 0 || check != nil {
			if err := s.lockScopes(ctx, tx, guards); err != nil {
				return err
			}
			var err error
			// Locked, as UpdateSecret locks it, so check sees what was
			// committed last and nothing changes it until this commits.
			if old, err = scanSecret(tx.QueryRowContext(ctx, s.q["getSecretForUpdate"], id)); err != nil {
				return s.wrap("delete secret", err)
			}
			if check != nil {
				if err := check(old); err != nil {
					return err
				}
			}
		}
		if err := s.execOne(ctx, tx, "delete secret", s.q["deleteSecret"], id); err != nil {
			return err
		}
		if len(guards) > 0 {
			if err := s.checkCredential(ctx, tx, "delete secret", old.AccountID, secretCounts(old), nil, guards); err != nil {
				return err
			}
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}

// TouchSecrets implements storage.Storage. A time older than the stored one
// is ignored, so replicas flushing out of order never move it back. The
// rows are updated in the order of their IDs: replicas flushing the same
// secrets at once lock them in one order, and do not deadlock.
func (s *Store) TouchSecrets(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(lastUsed))
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			t := lastUsed[id]
			if _, err := tx.ExecContext(ctx, s.q["touchSecret"], micros(t), id, micros(t)); err != nil {
				return s.wrap("touch secrets", err)
			}
		}
		return nil
	})
}
