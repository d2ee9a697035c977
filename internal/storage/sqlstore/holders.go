package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/keyward/keyward/internal/storage"
)

// The scopes of accounts and delegation grants are stored twice: as the
// JSON list read back with the row, and one row per scope in
// account_scopes and delegation_grant_scopes, which index them by scope
// (migration 00008). Every write of a list rewrites its rows in the same
// transaction; deleting an account or a grant deletes them by cascade.
func init() {
	for k, v := range map[string]string{
		"insertAccountScope":  `INSERT INTO account_scopes (scope, account_id) VALUES (?, ?) ON CONFLICT DO NOTHING`,
		"deleteAccountScopes": `DELETE FROM account_scopes WHERE account_id = ?`,
		"insertGrantScope":    `INSERT INTO delegation_grant_scopes (scope, org, client_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		"deleteGrantScopes":   `DELETE FROM delegation_grant_scopes WHERE org = ? AND client_id = ?`,
		// Whether an enabled account holds the scope: an index lookup
		// that stops at the first.
		"scopeHeld": `SELECT COUNT(*) FROM (SELECT 1 FROM account_scopes s JOIN accounts a ON a.id = s.account_id
			WHERE s.scope = ? AND a.disabled = 0 LIMIT 1) held`,
		"isAPIScope": `SELECT COUNT(*) FROM api_scopes WHERE scope = ?`,
	} {
		queries[k] = v
	}
}

// holderQueries find the accounts and grants holding any of a list of
// scopes, all of them scopes of APIs; %[1]s stands for the list's
// placeholders, which scopeHolders fills in.
var holderQueries = map[string]string{
	// Whether any holds one: index lookups that stop at the first, the
	// path of every change that goes ahead.
	"held": `SELECT
		(SELECT COUNT(*) FROM (SELECT 1 FROM account_scopes WHERE scope IN (%[1]s) LIMIT 1) a) +
		(SELECT COUNT(*) FROM (SELECT 1 FROM delegation_grant_scopes WHERE scope IN (%[1]s) LIMIT 1) g)`,
	// The holders, one row per scope held, each holder's rows together,
	// in holder order and then the scopes' order in their API; and their
	// number.
	"accountHolders": `SELECT a.id, a.email, s.scope FROM account_scopes s
		JOIN accounts a ON a.id = s.account_id JOIN api_scopes p ON p.scope = s.scope
		WHERE s.scope IN (%[1]s) ORDER BY s.account_id, p.position LIMIT ?`,
	"accountHolderCount": `SELECT COUNT(*) FROM (SELECT DISTINCT account_id FROM account_scopes
		WHERE scope IN (%[1]s)) holders`,
	"grantHolders": `SELECT g.org, g.client_id, g.scope FROM delegation_grant_scopes g
		JOIN api_scopes p ON p.scope = g.scope
		WHERE g.scope IN (%[1]s) ORDER BY g.org, g.client_id, p.position LIMIT ?`,
	"grantHolderCount": `SELECT COUNT(*) FROM (SELECT DISTINCT org, client_id FROM delegation_grant_scopes
		WHERE scope IN (%[1]s)) holders`,
}

// holderQuery is holder query name for n scopes, rebound for the dialect.
func (s *Store) holderQuery(name string, n int) string {
	return s.rebind(fmt.Sprintf(holderQueries[name], strings.TrimSuffix(strings.Repeat("?, ", n), ", ")))
}

// putAccountScopes indexes the scopes of account id, replacing what was
// indexed.
func (s *Store) putAccountScopes(ctx context.Context, tx *sql.Tx, id string, scopes []string) error {
	if _, err := tx.ExecContext(ctx, s.q["deleteAccountScopes"], id); err != nil {
		return err
	}
	for _, sc := range scopes {
		if _, err := tx.ExecContext(ctx, s.q["insertAccountScope"], sc, id); err != nil {
			return err
		}
	}
	return nil
}

// putGrantScopes replaces the indexed scopes of a grant.
func (s *Store) putGrantScopes(ctx context.Context, tx *sql.Tx, g storage.Grant) error {
	if _, err := tx.ExecContext(ctx, s.q["deleteGrantScopes"], g.Org, g.ClientID); err != nil {
		return err
	}
	for _, sc := range g.Scopes {
		if _, err := tx.ExecContext(ctx, s.q["insertGrantScope"], sc, g.Org, g.ClientID); err != nil {
			return err
		}
	}
	return nil
}

// lockScopes serializes guarded changes and API creations, updates and
// deletions (see storage.Guard), when there are guards.
func (s *Store) lockScopes(ctx context.Context, tx *sql.Tx, guards []storage.Guard) error {
	if len(guards) == 0 {
		return nil
	}
	return s.lock(ctx, tx, s.d.LockScopes, "lock scopes")
}

// holds reports whether a, enabled, holds scope.
func holds(a storage.Account, scope string) bool {
	return !a.Disabled && slices.Contains(a.Scopes, scope)
}

// checkGuards checks guards after the account old became now; a deleted
// account is the zero Account. wasIn is what waysIn said of old before
// the change (nil for a new account).
func (s *Store) checkGuards(ctx context.Context, tx *sql.Tx, op string, old, now storage.Account, wasIn []bool, guards []storage.Guard) error {
	for i, g := range guards {
		if g.KeepHeld != "" && holds(old, g.KeepHeld) && !holds(now, g.KeepHeld) {
			var n int
			if err := tx.QueryRowContext(ctx, s.q["scopeHeld"], g.KeepHeld).Scan(&n); err != nil {
				return s.wrap(op, err)
			}
			if n == 0 {
				return fmt.Errorf("%s: %w: %s", op, storage.ErrLastHolder, g.KeepHeld)
			}
		}
		if g.KeepSignIn != "" && wasIn != nil && wasIn[i] {
			if err := s.checkWayIn(ctx, tx, op, now, g); err != nil {
				return err
			}
		}
		if g.KnownScopes {
			if err := s.checkKnown(ctx, tx, op, old.Scopes, now.Scopes); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkKnown checks that the scopes in now and not in old belong to APIs.
func (s *Store) checkKnown(ctx context.Context, tx *sql.Tx, op string, old, now []string) error {
	for _, sc := range now {
		if slices.Contains(old, sc) {
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q["isAPIScope"], sc).Scan(&n); err != nil {
			return s.wrap(op, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %w: %s", op, storage.ErrUnknownScope, sc)
		}
	}
	return nil
}

// scopeHolders returns the ScopesHeldError of API api, or nil when no
// account or grant holds any of scopes, which must be in api_scopes (their
// order there orders each holder's scopes). Only a refusal counts and
// lists them.
func (s *Store) scopeHolders(ctx context.Context, tx *sql.Tx, op, api string, scopes []string) error {
	if len(scopes) == 0 {
		return nil
	}
	args := make([]any, 0, len(scopes))
	for _, sc := range scopes {
		args = append(args, sc)
	}
	var held int
	if err := tx.QueryRowContext(ctx, s.holderQuery("held", len(scopes)), slices.Concat(args, args)...).Scan(&held); err != nil {
		return s.wrap(op, err)
	}
	if held == 0 {
		return nil
	}
	e := &storage.ScopesHeldError{Op: op, API: api}
	// A holder has a row per scope it holds: the first HoldersListed
	// holders are within this many rows.
	rowsNeeded := len(scopes) * storage.HoldersListed
	for _, kind := range []string{"account", "grant"} {
		var n int
		if err := tx.QueryRowContext(ctx, s.holderQuery(kind+"HolderCount", len(scopes)), args...).Scan(&n); err != nil {
			return s.wrap(op, err)
		}
		e.Total += n
		if n == 0 || len(e.Holders) == storage.HoldersListed {
			continue
		}
		q := s.holderQuery(kind+"Holders", len(scopes))
		if err := s.listHolders(ctx, tx, q, slices.Concat(args, []any{rowsNeeded}), e, kind == "grant"); err != nil {
			return s.wrap(op, err)
		}
	}
	if e.Total == 0 {
		return nil
	}
	return e
}

// listHolders appends holders from q to e until it lists HoldersListed.
func (s *Store) listHolders(ctx context.Context, tx *sql.Tx, q string, args []any, e *storage.ScopesHeldError, grants bool) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var last *storage.ScopeHolder
	for rows.Next() {
		var h storage.ScopeHolder
		var sc string
		if grants {
			err = rows.Scan(&h.Org, &h.ClientID, &sc)
		} else {
			err = rows.Scan(&h.AccountID, &h.Email, &sc)
		}
		if err != nil {
			return err
		}
		if last == nil || last.AccountID != h.AccountID || last.Org != h.Org || last.ClientID != h.ClientID {
			if len(e.Holders) == storage.HoldersListed {
				break
			}
			e.Holders = append(e.Holders, h)
			last = &e.Holders[len(e.Holders)-1]
		}
		last.Scopes = append(last.Scopes, sc)
	}
	return rows.Err()
}
