package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/ascii"
	"github.com/keyward/keyward/internal/storage"
)

type scanner interface{ Scan(dest ...any) error }

func scanAccount(row scanner) (storage.Account, error) {
	var (
		a                    storage.Account
		scopes, methods, tls string
		lifetime, revoked    int64
		certRevoked          int64
		disabled             int
		createdAt, updatedAt int64
	)
	err := row.Scan(&a.ID, &a.Email, &a.Name, &a.Project, &a.DisplayName, &a.Description, &scopes, &lifetime, &disabled, &createdAt, &updatedAt, &methods, &tls, &a.TokenFormat, &revoked, &certRevoked)
	if err != nil {
		return a, err
	}
	if a.Scopes, err = decodeList(scopes); err != nil {
		return a, err
	}
	if a.AuthMethods, err = decodeList(methods); err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(tls), &a.TLS); err != nil {
		return a, fmt.Errorf("corrupt TLS binding of account %s: %w", a.ID, err)
	}
	a.TokenLifetime = time.Duration(lifetime) * time.Second
	a.TokensRevokedBefore = fromMicros(revoked)
	a.CertTokensRevokedBefore = fromMicros(certRevoked)
	a.Disabled = disabled != 0
	a.CreatedAt, a.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return a, nil
}

// CreateAccount implements storage.Storage.
func (s *Store) CreateAccount(ctx context.Context, a storage.Account, ev storage.AuditEvent, guards ...storage.Guard) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockScopes(ctx, tx, guards); err != nil {
			return err
		}
		if err := s.insertAccount(ctx, tx, a); err != nil {
			return s.wrap("create account", err)
		}
		if err := s.checkGuards(ctx, tx, "create account", storage.Account{}, a, nil, guards); err != nil {
			return err
		}
		// Other processes cache that no account has an email
		// (AccountEmailAt, which refuses a delegated sub that is an
		// account's): they must drop that answer now, not after the TTL.
		return s.notify(ctx, tx, a.ID)
	}, ev)
}

// insertAccount inserts a with its indexed scopes.
func (s *Store) insertAccount(ctx context.Context, tx *sql.Tx, a storage.Account) error {
	_, err := tx.ExecContext(ctx, s.q["insertAccount"], a.ID, a.Email, a.Name, a.Project, a.DisplayName, a.Description,
		encodeList(a.Scopes), int64(a.TokenLifetime/time.Second), boolInt(a.Disabled), micros(a.CreatedAt), micros(a.UpdatedAt),
		encodeList(a.AuthMethods), encodeJSON(a.TLS), a.TokenFormat, micros(a.TokensRevokedBefore), micros(a.CertTokensRevokedBefore))
	if err != nil {
		return err
	}
	return s.putAccountScopes(ctx, tx, a.ID, a.Scopes)
}

// CreateAccounts implements storage.Storage.
func (s *Store) CreateAccounts(ctx context.Context, accounts []storage.Account, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, s.q["insertAccount"])
		if err != nil {
			return s.wrap("create accounts", err)
		}
		defer st.Close()
		scopeSt, err := tx.PrepareContext(ctx, s.q["insertAccountScope"])
		if err != nil {
			return s.wrap("create accounts", err)
		}
		defer scopeSt.Close()
		for _, a := range accounts {
			_, err := st.ExecContext(ctx, a.ID, a.Email, a.Name, a.Project, a.DisplayName, a.Description,
				encodeList(a.Scopes), int64(a.TokenLifetime/time.Second), boolInt(a.Disabled), micros(a.CreatedAt), micros(a.UpdatedAt),
				encodeList(a.AuthMethods), encodeJSON(a.TLS), a.TokenFormat, micros(a.TokensRevokedBefore), micros(a.CertTokensRevokedBefore))
			if err != nil {
				return s.wrap("create account "+a.Email, err)
			}
			for _, sc := range a.Scopes {
				if _, err := scopeSt.ExecContext(ctx, sc, a.ID); err != nil {
					return s.wrap("create account "+a.Email, err)
				}
			}
		}
		// As CreateAccount, once for them all: more IDs than a NOTIFY
		// payload holds may be made, as Load announces its accounts.
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}

// GetAccount implements storage.Storage.
func (s *Store) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	a, err := scanAccount(s.queryRow(ctx, "getAccount", id))
	return a, s.wrap("get account", err)
}

// GetAccountByEmail implements storage.Storage.
func (s *Store) GetAccountByEmail(ctx context.Context, email string) (storage.Account, error) {
	a, err := scanAccount(s.queryRow(ctx, "getAccountByEmail", email))
	return a, s.wrap("get account", err)
}

// AccountEmailAt implements storage.Storage.
func (s *Store) AccountEmailAt(ctx context.Context, local, domain string) (bool, error) {
	// A final dot names the same domain: an account email made under an
	// account domain written with one (which an import keeps) is
	// example.com.'s, and a delegated sub may be written with one.
	domain = strings.TrimSuffix(domain, ".")
	// In ASCII lower case, as the queries' lower() (Dialect.ASCIICase):
	// an email written as an account's is found, whatever its letters,
	// and so is one that differs from it only in the case of ASCII
	// letters, but not one that differs in the case of other letters.
	local, domain = ascii.Lower(local), ascii.Lower(domain)
	var row *sql.Row
	if local != "" {
		email := local + "@" + domain
		row = s.queryRow(ctx, "accountEmailIs", email, email+".")
	} else {
		row = s.queryRow(ctx, "accountEmailAt", domain, domain+".")
	}
	var one int
	err := row.Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, s.wrap("look up account emails", err)
}

// ListAccounts implements storage.Storage.
func (s *Store) ListAccounts(ctx context.Context, opts storage.ListOptions) ([]storage.Account, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if opts.Project != "" {
		rows, err = s.query(ctx, "listAccountsProj", opts.Project, opts.After, opts.PageLimit())
	} else {
		rows, err = s.query(ctx, "listAccounts", opts.After, opts.PageLimit())
	}
	if err != nil {
		return nil, s.wrap("list accounts", err)
	}
	defer rows.Close()
	var out []storage.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, s.wrap("list accounts", err)
		}
		out = append(out, a)
	}
	return out, s.wrap("list accounts", rows.Err())
}

// UpdateAccount implements storage.Storage.
func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(storage.Account) (storage.Account, error), ev storage.AuditEvent, guards ...storage.Guard) (storage.Account, error) {
	var out storage.Account
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockScopes(ctx, tx, guards); err != nil {
			return err
		}
		old, err := scanAccount(tx.QueryRowContext(ctx, s.q["getAccountForUpdate"], id))
		if err != nil {
			return s.wrap("update account", err)
		}
		wasIn, err := s.waysIn(ctx, tx, old, guards)
		if err != nil {
			return s.wrap("update account", err)
		}
		a, err := fn(old)
		if err != nil {
			return err
		}
		if a.ID != old.ID || a.Email != old.Email {
			return fmt.Errorf("update account %s: the ID and email cannot change", id)
		}
		_, err = tx.ExecContext(ctx, s.q["updateAccount"], a.Name, a.Project, a.DisplayName, a.Description, encodeList(a.Scopes),
			int64(a.TokenLifetime/time.Second), boolInt(a.Disabled), micros(a.UpdatedAt), encodeList(a.AuthMethods), encodeJSON(a.TLS),
			a.TokenFormat, micros(a.TokensRevokedBefore), micros(a.CertTokensRevokedBefore), id)
		if err != nil {
			return s.wrap("update account", err)
		}
		if !slices.Equal(a.Scopes, old.Scopes) {
			if err := s.putAccountScopes(ctx, tx, id, a.Scopes); err != nil {
				return s.wrap("update account", err)
			}
		}
		if err := s.checkGuards(ctx, tx, "update account", old, a, wasIn, guards); err != nil {
			return err
		}
		out = a
		return s.notify(ctx, tx, id)
	}, ev)
	return out, err
}

// DeleteAccount implements storage.Storage.
func (s *Store) DeleteAccount(ctx context.Context, id string, check func(storage.Account) error, ev storage.AuditEvent, guards ...storage.Guard) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var (
			old   storage.Account
			wasIn []bool
		)
		if len(guards) > 0 || check != nil {
			if err := s.lockScopes(ctx, tx, guards); err != nil {
				return err
			}
			// Locked, as UpdateAccount locks it: a change of it waits for
			// this one, and this one for a change in progress, so check
			// sees what was committed last.
			var err error
			if old, err = scanAccount(tx.QueryRowContext(ctx, s.q["getAccountForUpdate"], id)); err != nil {
				return s.wrap("delete account", err)
			}
			if check != nil {
				if err := check(old); err != nil {
					return err
				}
			}
			// Before its keys and secrets go.
			if wasIn, err = s.waysIn(ctx, tx, old, guards); err != nil {
				return s.wrap("delete account", err)
			}
		} else if s.d.ForUpdate != "" {
			// Locked first all the same, as CreateKey and CreateSecret
			// lock it: a key or secret one of them is adding is waited
			// for and deleted with the others, rather than left naming
			// the account when it goes.
			var locked string
			if err := tx.QueryRowContext(ctx, s.q["lockAccount"], id).Scan(&locked); err != nil {
				return s.wrap("delete account", err)
			}
		}
		// Its secrets' rows in the order of their IDs' bytes, the order
		// TouchSecrets updates them in: deleted in the table's order, a
		// secret a flush of last uses holds could be waited for while
		// holding one the flush waits for.
		if s.d.ForUpdate != "" {
			var n int
			if err := tx.QueryRowContext(ctx, s.q["lockAccountSecrets"], id).Scan(&n); err != nil {
				return s.wrap("delete account", err)
			}
		}
		// Its rows in account_scopes and delegation_grant_scopes go by
		// cascade.
		for _, q := range []string{"deleteAccountKeys", "deleteAccountSecrets", "deleteAccountGrants"} {
			if _, err := tx.ExecContext(ctx, s.q[q], id); err != nil {
				return s.wrap("delete account", err)
			}
		}
		if err := s.execOne(ctx, tx, "delete account", s.q["deleteAccount"], id); err != nil {
			return err
		}
		if err := s.dropIntrospector(ctx, tx, id); err != nil {
			return err
		}
		if err := s.checkGuards(ctx, tx, "delete account", old, storage.Account{}, wasIn, guards); err != nil {
			return err
		}
		// Grants and APIs changed too: every replica drops its catalog.
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}

// dropIntrospector removes the account id from every API's introspectors.
func (s *Store) dropIntrospector(ctx context.Context, tx *sql.Tx, id string) error {
	// Locked, in the order of their names' bytes (ByteOrder, whatever the
	// column's collation), so a concurrent UpdateAPI or deletion of
	// another introspector is not overwritten, nor deadlocks with this.
	rows, err := tx.QueryContext(ctx, s.q["listAPIIntrospectorsForUpdate"])
	if err != nil {
		return s.wrap("delete account", err)
	}
	type change struct {
		name string
		ids  []string
	}
	var changed []change // in name order
	for rows.Next() {
		var name, list string
		if err := rows.Scan(&name, &list); err != nil {
			rows.Close()
			return s.wrap("delete account", err)
		}
		ids, err := decodeList(list)
		if err != nil {
			rows.Close()
			return s.wrap("delete account", err)
		}
		if slices.Contains(ids, id) {
			changed = append(changed, change{name, slices.DeleteFunc(ids, func(v string) bool { return v == id })})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s.wrap("delete account", err)
	}
	for _, c := range changed {
		if _, err := tx.ExecContext(ctx, s.q["setAPIIntrospectors"], encodeList(c.ids), c.name); err != nil {
			return s.wrap("delete account", err)
		}
	}
	return nil
}

// CountAccounts implements storage.Storage.
func (s *Store) CountAccounts(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, "countAccounts").Scan(&n)
	return n, s.wrap("count accounts", err)
}

// execOne runs a statement that must affect exactly one row; none is
// ErrNotFound.
func (s *Store) execOne(ctx context.Context, tx *sql.Tx, op, q string, args ...any) error {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	}
	return nil
}
