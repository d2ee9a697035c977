package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/storage"
)

// Load implements storage.Storage.
func (s *Store) Load(ctx context.Context, b storage.Bulk, evs []storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// First, holding nothing else: a server starting holds it while
		// it seals and bootstraps, taking the locks below meanwhile.
		if err := s.loadFirstStart(ctx, tx, b.Waiting); err != nil {
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				// Ended while it waited: database/sql may have closed the
				// connection under the statement first, which then says
				// only "driver: bad connection".
				err = fmt.Errorf("%w (%w)", cerr, err)
			}
			return s.wrap("wait for a server's first start", err)
		}
		// The order every other change takes these locks in, scopes then
		// signing keys then (appending evs) the audit log: no deadlock.
		if err := s.lock(ctx, tx, s.d.LockScopes, "lock scopes"); err != nil {
			return err
		}
		if err := s.lock(ctx, tx, s.d.LockSigningKeys, "lock signing keys"); err != nil {
			return err
		}
		// The count must hold until commit: keep new accounts out.
		if err := s.lock(ctx, tx, s.d.LockAccounts, "lock accounts"); err != nil {
			return err
		}
		if err := s.loadEmpty(ctx, tx, b); err != nil {
			return err
		}
		if err := s.loadCheck(ctx, tx, b); err != nil {
			return err
		}
		for _, a := range b.APIs {
			if err := s.insertAPI(ctx, tx, a); err != nil {
				return &storage.LoadError{Kind: "API", ID: a.Name, Err: err}
			}
		}
		for _, a := range b.ReplaceAPIs {
			if err := s.replaceAPI(ctx, tx, a); err != nil {
				return &storage.LoadError{Kind: "API", ID: a.Name, Err: err}
			}
		}
		for _, a := range b.Accounts {
			if err := s.insertAccount(ctx, tx, a); err != nil {
				return &storage.LoadError{Kind: "service account", ID: a.ID, Err: s.wrap("insert account", err)}
			}
		}
		for _, k := range b.Keys {
			if err := s.insertKey(ctx, tx, k); err != nil {
				return &storage.LoadError{Kind: "key", ID: k.ID, Err: err}
			}
		}
		for _, sec := range b.Secrets {
			if err := s.insertSecret(ctx, tx, sec); err != nil {
				return &storage.LoadError{Kind: "secret", ID: sec.ID, Err: err}
			}
		}
		for _, o := range b.Orgs {
			if err := s.insertOrg(ctx, tx, o); err != nil {
				return &storage.LoadError{Kind: "organization", ID: o.Domain, Err: err}
			}
		}
		if err := s.putUsers(ctx, tx, b.Users); err != nil {
			return &storage.LoadError{Kind: "users", Err: err}
		}
		for _, p := range b.Projects {
			if err := s.putProjectOrg(ctx, tx, p); err != nil {
				return &storage.LoadError{Kind: "project placement", ID: p.Project, Err: err}
			}
		}
		for _, g := range b.Grants {
			if err := s.putGrant(ctx, tx, g); err != nil {
				return &storage.LoadError{Kind: "delegation", ID: g.ClientID + " in " + g.Org, Err: err}
			}
		}
		for _, name := range b.DropSealedValues {
			if _, err := tx.ExecContext(ctx, s.q["deleteValue"], name); err != nil {
				return &storage.LoadError{Kind: "sealed value", ID: name, Err: s.wrap("delete sealed value", err)}
			}
		}
		for _, v := range b.SealedValues {
			if err := s.insertSealedValue(ctx, tx, v); err != nil {
				return &storage.LoadError{Kind: "sealed value", ID: v.Name, Err: err}
			}
		}
		for _, v := range b.ReplaceSealedValues {
			if err := s.replaceSealedValue(ctx, tx, v); err != nil {
				return &storage.LoadError{Kind: "sealed value", ID: v.Name, Err: err}
			}
		}
		if len(b.SigningKeys) > 0 {
			if err := s.replaceSigningKeys(ctx, tx, b.SigningKeys); err != nil {
				return &storage.LoadError{Kind: "signing keys", Err: err}
			}
			if err := s.notify(ctx, tx, storage.ChangeSigningKeys); err != nil {
				return err
			}
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, evs...)
}

// loadFirstStart takes the dialect's LockFirstStart in tx, until it
// ends. If another session holds it (a server starting), it calls
// waiting, if set, and waits as Store.LockFirstStart does: for as long
// as that session holds it, or until ctx is done, not cut short by a
// role's or DSN's lock_timeout or statement_timeout, meant for queries,
// which are then set back for the rest of tx.
func (s *Store) loadFirstStart(ctx context.Context, tx *sql.Tx, waiting func()) error {
	if s.d.LockFirstStart == "" {
		return nil
	}
	if s.d.TryLockFirstStart == "" {
		_, err := tx.ExecContext(ctx, s.d.LockFirstStart)
		return err
	}
	var got bool
	if err := tx.QueryRowContext(ctx, s.d.TryLockFirstStart).Scan(&got); err != nil || got {
		return err
	}
	if waiting != nil {
		waiting()
	}
	var statement, lock string
	if err := tx.QueryRowContext(ctx, s.d.Timeouts).Scan(&statement, &lock); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.d.NoTimeouts); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.d.LockFirstStart); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, s.d.SetTimeouts, statement, lock)
	return err
}

// loadEmpty fails with a *storage.NotEmptyError unless the store holds
// nothing of what Load writes but the APIs of b.ReplaceAPIs (and of
// b.APIs, which Load then fails to insert), and the
// sealed values and signing keys a first start makes: no account and no
// organization (users, project placements and grants each need one),
// nor another API. The accounts lock keeps another Load out until
// commit; nothing else adds an organization or an API to a store without
// accounts.
func (s *Store) loadEmpty(ctx context.Context, tx *sql.Tx, b storage.Bulk) error {
	var accounts, orgs int
	if err := tx.QueryRowContext(ctx, s.q["countAccountsOrgs"]).Scan(&accounts, &orgs); err != nil {
		return s.wrap("load", err)
	}
	rows, err := tx.QueryContext(ctx, s.q["listAPINames"])
	if err != nil {
		return s.wrap("load", err)
	}
	defer rows.Close()
	var apis []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return s.wrap("load", err)
		}
		// One of b.APIs there is not counted: its insert fails, naming it
		// (a *storage.LoadError of ErrAlreadyExists), so that Load's
		// caller, which found none there, can tell that it was made since.
		named := func(a storage.API) bool { return a.Name == name }
		if !slices.ContainsFunc(b.ReplaceAPIs, named) && !slices.ContainsFunc(b.APIs, named) {
			apis = append(apis, name)
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap("load", err)
	}
	var holds []string
	if accounts > 0 {
		holds = append(holds, count(accounts, "service account"))
	}
	if orgs > 0 {
		holds = append(holds, count(orgs, "organization"))
	}
	if len(apis) > 0 {
		holds = append(holds, count(len(apis), "API")+" ("+strings.Join(apis, ", ")+")")
	}
	if len(holds) > 0 {
		return &storage.NotEmptyError{Holds: strings.Join(holds, ", ")}
	}
	return nil
}

// loadCheck calls b.Check, if set, with the store's signing keys and
// sealed values, read in tx under Load's signing-keys lock.
func (s *Store) loadCheck(ctx context.Context, tx *sql.Tx, b storage.Bulk) error {
	if b.Check == nil {
		return nil
	}
	keys, err := s.listSigningKeys(ctx, tx)
	if err != nil {
		return err
	}
	values, err := s.listSealedValues(ctx, tx)
	if err != nil {
		return err
	}
	return b.Check(keys, values)
}

// count is n followed by noun, made plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// replaceAPI rewrites the API of a's name and identifier to a, in a
// transaction holding the scopes lock.
func (s *Store) replaceAPI(ctx context.Context, tx *sql.Tx, a storage.API) error {
	res, err := tx.ExecContext(ctx, s.q["replaceAPI"], a.Description, micros(a.CreatedAt), formatOrDefault(a.TokenFormat),
		encodeList(a.Introspectors), a.Name, a.Identifier)
	if err != nil {
		return s.wrap("replace api", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.wrap("replace api", err)
	} else if n != 1 {
		return fmt.Errorf("replace api: no API of identifier %s: %w", a.Identifier, storage.ErrNotFound)
	}
	old, err := s.apiScopes(ctx, tx, a.Name)
	if err != nil {
		return s.wrap("replace api", err)
	}
	if slices.Equal(old, a.Scopes) {
		return nil
	}
	return s.replaceAPIScopes(ctx, tx, a.Name, old, a.Scopes)
}

// replaceSealedValue rewrites the sealed value of v's name to v.
func (s *Store) replaceSealedValue(ctx context.Context, tx *sql.Tx, v storage.SealedValue) error {
	res, err := tx.ExecContext(ctx, s.q["replaceValue"], v.Sealed, micros(v.CreatedAt), v.Name)
	if err != nil {
		return s.wrap("replace sealed value", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.wrap("replace sealed value", err)
	} else if n != 1 {
		return fmt.Errorf("replace sealed value: no sealed value %s: %w", v.Name, storage.ErrNotFound)
	}
	return nil
}
