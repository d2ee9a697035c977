package sqlstore

import (
	"context"
	"database/sql"

	"github.com/keyward/keyward/internal/storage"
)

// CreateAPI implements storage.Storage.
func (s *Store) CreateAPI(ctx context.Context, a storage.API, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q["insertAPI"], a.Name, a.Identifier, a.Description, micros(a.CreatedAt)); err != nil {
			return s.wrap("create api", err)
		}
		for i, sc := range a.Scopes {
			if _, err := tx.ExecContext(ctx, s.q["insertAPIScope"], sc, a.Name, i); err != nil {
				return s.wrap("create api scope "+sc, err)
			}
		}
		return nil
	}, ev)
}

// GetAPI implements storage.Storage.
func (s *Store) GetAPI(ctx context.Context, name string) (storage.API, error) {
	var (
		a         storage.API
		createdAt int64
	)
	err := s.r.QueryRowContext(ctx, s.q["getAPI"], name).Scan(&a.Name, &a.Identifier, &a.Description, &createdAt)
	if err != nil {
		return a, s.wrap("get api", err)
	}
	a.CreatedAt = fromMicros(createdAt)
	rows, err := s.r.QueryContext(ctx, s.q["getAPIScopes"], name)
	if err != nil {
		return a, s.wrap("get api", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sc string
		if err := rows.Scan(&sc); err != nil {
			return a, s.wrap("get api", err)
		}
		a.Scopes = append(a.Scopes, sc)
	}
	return a, s.wrap("get api", rows.Err())
}

// ListAPIs implements storage.Storage.
func (s *Store) ListAPIs(ctx context.Context) ([]storage.API, error) {
	rows, err := s.r.QueryContext(ctx, s.q["listAPIs"])
	if err != nil {
		return nil, s.wrap("list apis", err)
	}
	var out []storage.API
	index := map[string]int{}
	for rows.Next() {
		var (
			a         storage.API
			createdAt int64
		)
		if err := rows.Scan(&a.Name, &a.Identifier, &a.Description, &createdAt); err != nil {
			rows.Close()
			return nil, s.wrap("list apis", err)
		}
		a.CreatedAt = fromMicros(createdAt)
		index[a.Name] = len(out)
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list apis", err)
	}
	rows, err = s.r.QueryContext(ctx, s.q["listAPIScopes"])
	if err != nil {
		return nil, s.wrap("list apis", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, sc string
		if err := rows.Scan(&name, &sc); err != nil {
			return nil, s.wrap("list apis", err)
		}
		if i, ok := index[name]; ok {
			out[i].Scopes = append(out[i].Scopes, sc)
		}
	}
	return out, s.wrap("list apis", rows.Err())
}

// DeleteAPI implements storage.Storage.
func (s *Store) DeleteAPI(ctx context.Context, name string, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q["deleteAPIScope"], name); err != nil {
			return s.wrap("delete api", err)
		}
		return s.execOne(ctx, tx, "delete api", s.q["deleteAPI"], name)
	}, ev)
}
