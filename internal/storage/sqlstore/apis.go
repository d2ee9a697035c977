package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

func scanAPI(row scanner) (storage.API, error) {
	var (
		a             storage.API
		createdAt     int64
		introspectors string
	)
	err := row.Scan(&a.Name, &a.Identifier, &a.Description, &createdAt, &a.TokenFormat, &introspectors)
	if err != nil {
		return a, err
	}
	a.CreatedAt = fromMicros(createdAt)
	a.Introspectors, err = decodeList(introspectors)
	return a, err
}

// CreateAPI implements storage.Storage.
func (s *Store) CreateAPI(ctx context.Context, a storage.API, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, s.d.LockScopes, "lock scopes"); err != nil {
			return err
		}
		// Under the scopes lock, which every CreateAPI takes, so that two
		// creations of https://orders.internal and https://orders.internal/
		// cannot each pass before the other's insert.
		if err := s.checkIdentifierFree(ctx, tx, a.Identifier); err != nil {
			return err
		}
		if err := s.insertAPI(ctx, tx, a); err != nil {
			return err
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}

// checkIdentifierFree fails with an *IdentifierTakenError when another
// API's identifier names id but for case or a trailing slash
// (oauth2.NamesAPI). The same identifier is left to the insert's unique
// constraint (ErrAlreadyExists).
func (s *Store) checkIdentifierFree(ctx context.Context, tx *sql.Tx, id string) error {
	rows, err := tx.QueryContext(ctx, s.q["listAPIIdentifiers"])
	if err != nil {
		return s.wrap("create api", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, other string
		if err := rows.Scan(&name, &other); err != nil {
			return s.wrap("create api", err)
		}
		if other != id && oauth2.NamesAPI(id, other) {
			return &storage.IdentifierTakenError{API: name, Identifier: other}
		}
	}
	return s.wrap("create api", rows.Err())
}

// insertAPI inserts a and its scopes, in a transaction holding the scopes
// lock.
func (s *Store) insertAPI(ctx context.Context, tx *sql.Tx, a storage.API) error {
	if _, err := tx.ExecContext(ctx, s.q["insertAPI"], a.Name, a.Identifier, a.Description, micros(a.CreatedAt),
		formatOrDefault(a.TokenFormat), encodeList(a.Introspectors)); err != nil {
		return s.wrap("create api", err)
	}
	for i, sc := range a.Scopes {
		if _, err := tx.ExecContext(ctx, s.q["insertAPIScope"], sc, a.Name, i); err != nil {
			return s.wrap("create api scope "+sc, err)
		}
	}
	// Holders of the new scopes are left from a deleted API: they would
	// get the new API's access unnoticed.
	return s.scopeHolders(ctx, tx, "create api", a.Name, a.Scopes)
}

func formatOrDefault(f string) string {
	if f == "" {
		return storage.TokenJWT
	}
	return f
}

func (s *Store) apiScopes(ctx context.Context, q queryer, name string) ([]string, error) {
	rows, err := q.QueryContext(ctx, s.q["getAPIScopes"], name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sc string
		if err := rows.Scan(&sc); err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// GetAPI implements storage.Storage.
func (s *Store) GetAPI(ctx context.Context, name string) (storage.API, error) {
	a, err := scanAPI(s.queryRow(ctx, "getAPI", name))
	if err != nil {
		return a, s.wrap("get api", err)
	}
	a.Scopes, err = s.apiScopes(ctx, s.reader(ctx), name)
	return a, s.wrap("get api", err)
}

// ListAPIs implements storage.Storage.
func (s *Store) ListAPIs(ctx context.Context) ([]storage.API, error) {
	rows, err := s.query(ctx, "listAPIs")
	if err != nil {
		return nil, s.wrap("list apis", err)
	}
	var out []storage.API
	index := map[string]int{}
	for rows.Next() {
		a, err := scanAPI(rows)
		if err != nil {
			rows.Close()
			return nil, s.wrap("list apis", err)
		}
		index[a.Name] = len(out)
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list apis", err)
	}
	rows, err = s.query(ctx, "listAPIScopes")
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

// UpdateAPI implements storage.Storage.
func (s *Store) UpdateAPI(ctx context.Context, name string, fn func(storage.API) (storage.API, error), ev storage.AuditEvent) (storage.API, error) {
	var out storage.API
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// The scopes lock before the API's row, as CreateAPI, DeleteAPI
		// and the guarded changes take them (DeleteAccount locks APIs'
		// rows in dropIntrospector): the other order could deadlock.
		if err := s.lock(ctx, tx, s.d.LockScopes, "lock scopes"); err != nil {
			return err
		}
		old, err := scanAPI(tx.QueryRowContext(ctx, s.q["getAPIForUpdate"], name))
		if err != nil {
			return s.wrap("update api", err)
		}
		if old.Scopes, err = s.apiScopes(ctx, tx, name); err != nil {
			return s.wrap("update api", err)
		}
		a, err := fn(old)
		if err != nil {
			return err
		}
		if a.Name != old.Name || a.Identifier != old.Identifier {
			return fmt.Errorf("update api %s: the name and identifier cannot change", name)
		}
		// An introspector added must be an account: one deleted since the
		// caller looked it up (its deletion, guarded, holds the scopes
		// lock this holds, so it committed before) is ErrNotFound, not
		// left naming no account.
		for _, id := range a.Introspectors {
			if slices.Contains(old.Introspectors, id) {
				continue
			}
			if _, err := scanAccount(tx.QueryRowContext(ctx, s.q["getAccount"], id)); err != nil {
				return s.wrap("update api: introspector "+id, err)
			}
		}
		if _, err = tx.ExecContext(ctx, s.q["updateAPI"], a.Description, formatOrDefault(a.TokenFormat), encodeList(a.Introspectors), name); err != nil {
			return s.wrap("update api", err)
		}
		if !slices.Equal(a.Scopes, old.Scopes) {
			if err := s.replaceAPIScopes(ctx, tx, name, old.Scopes, a.Scopes); err != nil {
				return err
			}
		}
		out = a
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
	return out, err
}

// replaceAPIScopes makes now the scopes of API name, in now's order, in
// place of old. A scope it removes must be held by no account or grant,
// as DeleteAPI requires of all of them; a scope it adds must belong to no
// other API (ErrAlreadyExists) and be held by none, left from a deleted
// API, as CreateAPI requires.
func (s *Store) replaceAPIScopes(ctx context.Context, tx *sql.Tx, name string, old, now []string) error {
	// Checked while they are still the API's.
	if err := s.scopeHolders(ctx, tx, "update api", name, without(old, now)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q["deleteAPIScope"], name); err != nil {
		return s.wrap("update api", err)
	}
	for i, sc := range now {
		if _, err := tx.ExecContext(ctx, s.q["insertAPIScope"], sc, name, i); err != nil {
			return s.wrap("update api scope "+sc, err)
		}
	}
	return s.scopeHolders(ctx, tx, "update api", name, without(now, old))
}

// without returns the scopes of l not in drop, in l's order.
func without(l, drop []string) []string {
	var out []string
	for _, sc := range l {
		if !slices.Contains(drop, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// DeleteAPI implements storage.Storage.
func (s *Store) DeleteAPI(ctx context.Context, name string, check func(storage.API) error, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, s.d.LockScopes, "lock scopes"); err != nil {
			return err
		}
		scopes, err := s.apiScopes(ctx, tx, name)
		if err != nil {
			return s.wrap("delete api", err)
		}
		if check != nil {
			// Locked, as UpdateAPI and dropIntrospector lock it: check
			// sees the introspectors a deletion of an account committed
			// last, and the scopes lock keeps UpdateAPI out.
			old, err := scanAPI(tx.QueryRowContext(ctx, s.q["getAPIForUpdate"], name))
			if err != nil {
				return s.wrap("delete api", err)
			}
			old.Scopes = scopes
			if err := check(old); err != nil {
				return err
			}
		}
		if err := s.scopeHolders(ctx, tx, "delete api", name, scopes); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q["deleteAPIScope"], name); err != nil {
			return s.wrap("delete api", err)
		}
		if err := s.execOne(ctx, tx, "delete api", s.q["deleteAPI"], name); err != nil {
			return err
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}
