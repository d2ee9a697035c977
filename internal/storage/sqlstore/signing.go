package sqlstore

import (
	"context"
	"database/sql"

	"github.com/keyward/keyward/internal/storage"
)

func (s *Store) listSigningKeys(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]storage.SigningKey, error) {
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
	return s.listSigningKeys(ctx, s.r)
}

// UpdateSigningKeys implements storage.Storage.
func (s *Store) UpdateSigningKeys(ctx context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error), ev storage.AuditEvent) ([]storage.SigningKey, error) {
	var out []storage.SigningKey
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.d.LockSigningKeys != "" {
			if _, err := tx.ExecContext(ctx, s.d.LockSigningKeys); err != nil {
				return s.wrap("lock signing keys", err)
			}
		}
		old, err := s.listSigningKeys(ctx, tx)
		if err != nil {
			return err
		}
		keys, err := fn(old)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q["deleteSigningKeys"]); err != nil {
			return s.wrap("update signing keys", err)
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, s.q["insertSigningKey"], k.ID, k.Algorithm, k.Sealed, micros(k.CreatedAt), micros(k.ActivatedAt), micros(k.RetiredAt)); err != nil {
				return s.wrap("update signing keys", err)
			}
		}
		out = keys
		return s.notify(ctx, tx, storage.ChangeSigningKeys)
	}, ev)
	return out, err
}
