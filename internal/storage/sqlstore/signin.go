package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// Guard.KeepSignIn: whether an enabled account holding a scope can still
// get tokens after a change to an account, a key or a secret.
func init() {
	for k, v := range map[string]string{
		// The enabled accounts holding the scope.
		"enabledHolders": `SELECT ` + accountCols + ` FROM accounts
			WHERE disabled = 0 AND id IN (SELECT account_id FROM account_scopes WHERE scope = ?) ORDER BY id`,
		// Whether the account has an enabled key or secret that has not
		// expired at a time: index lookups that stop at the first.
		"usableKey": `SELECT COUNT(*) FROM (SELECT 1 FROM keys
			WHERE account_id = ? AND disabled = 0 AND (expires_at = 0 OR expires_at > ?) LIMIT 1) k`,
		"usableSecret": `SELECT COUNT(*) FROM (SELECT 1 FROM secrets
			WHERE account_id = ? AND disabled = 0 AND (expires_at = 0 OR expires_at > ?) LIMIT 1) s`,
	} {
		queries[k] = v
	}
}

// keyCounts says whether k is a way for its account to get tokens at a
// time: the JWT-bearer grant takes any enabled, unexpired key of an account.
func keyCounts(k storage.Key) func(storage.Account, time.Time) bool {
	return func(_ storage.Account, now time.Time) bool { return !k.Disabled && !k.Expired(now) }
}

// secretCounts says whether sec is a way for its account to get tokens at
// a time.
func secretCounts(sec storage.Secret) func(storage.Account, time.Time) bool {
	return func(a storage.Account, now time.Time) bool {
		return !sec.Disabled && !sec.Expired(now) && allowsSecrets(a)
	}
}

// allowsSecrets reports whether a may authenticate with a client secret.
func allowsSecrets(a storage.Account) bool {
	return slices.Contains(a.AuthMethods, storage.AuthSecretBasic) || slices.Contains(a.AuthMethods, storage.AuthSecretPost)
}

// certificateBound reports whether a may get tokens with a CA-issued
// client certificate (tls_client_auth) and names one. The store cannot
// tell whether the server trusts a CA that issues such certificates (that
// is the server's --tls-client-ca, not stored), so a binding counts, and
// without one tls_client_auth does not: no certificate would match.
func certificateBound(a storage.Account) bool {
	return slices.Contains(a.AuthMethods, storage.AuthTLS) && !a.TLS.IsZero()
}

// guardNow is the time guards judge expiry at.
func guardNow(g storage.Guard) time.Time {
	if g.Now.IsZero() {
		return time.Now()
	}
	return g.Now
}

// checkCredential checks guards after a key or secret of account
// accountID changed: was and is say whether it was, and is, a way for the
// account to get tokens at a time (is is nil for a deleted one).
func (s *Store) checkCredential(ctx context.Context, tx *sql.Tx, op, accountID string, was, is func(storage.Account, time.Time) bool, guards []storage.Guard) error {
	for _, g := range guards {
		if g.KeepSignIn == "" {
			continue
		}
		a, err := scanAccount(tx.QueryRowContext(ctx, s.q["getAccount"], accountID))
		if errors.Is(err, sql.ErrNoRows) {
			continue // a dangling credential: no account's way in
		}
		if err != nil {
			return s.wrap(op, err)
		}
		now := guardNow(g)
		if !holds(a, g.KeepSignIn) || !was(a, now) || (is != nil && is(a, now)) {
			continue
		}
		if err := s.keepWayIn(ctx, tx, op, g.KeepSignIn, now); err != nil {
			return err
		}
	}
	return nil
}

// waysIn reports, for each of guards, whether the account a is a way in
// for its KeepSignIn scope: enabled, holding it and able to get tokens. It
// runs before a change of a, while a's keys and secrets are there.
func (s *Store) waysIn(ctx context.Context, tx *sql.Tx, a storage.Account, guards []storage.Guard) ([]bool, error) {
	in := make([]bool, len(guards))
	for i, g := range guards {
		if g.KeepSignIn == "" || !holds(a, g.KeepSignIn) {
			continue
		}
		var err error
		if in[i], err = s.signsIn(ctx, tx, a, guardNow(g)); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// checkWayIn checks g after an account that was a way in for its
// KeepSignIn scope became now (the zero Account when deleted).
func (s *Store) checkWayIn(ctx context.Context, tx *sql.Tx, op string, now storage.Account, g storage.Guard) error {
	at := guardNow(g)
	if holds(now, g.KeepSignIn) {
		in, err := s.signsIn(ctx, tx, now, at)
		if err != nil || in {
			return s.wrap(op, err)
		}
	}
	return s.keepWayIn(ctx, tx, op, g.KeepSignIn, at)
}

// keepWayIn fails with ErrLastCredential unless some enabled account
// holding scope can get tokens at now.
func (s *Store) keepWayIn(ctx context.Context, tx *sql.Tx, op, scope string, now time.Time) error {
	ok, err := s.holderSignsIn(ctx, tx, scope, now)
	if err != nil {
		return s.wrap(op, err)
	}
	if !ok {
		return fmt.Errorf("%s: %w: %s", op, storage.ErrLastCredential, scope)
	}
	return nil
}

// holderSignsIn reports whether some enabled account holding scope can
// get tokens at now (see storage.Guard.KeepSignIn).
func (s *Store) holderSignsIn(ctx context.Context, tx *sql.Tx, scope string, now time.Time) (bool, error) {
	rows, err := tx.QueryContext(ctx, s.q["enabledHolders"], scope)
	if err != nil {
		return false, err
	}
	var holders []storage.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			rows.Close()
			return false, err
		}
		holders = append(holders, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	// Read every row before the next query: a transaction has one
	// connection.
	for _, a := range holders {
		ok, err := s.signsIn(ctx, tx, a, now)
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// signsIn reports whether the enabled account a can get tokens at now
// with a certificate, a key or a secret.
func (s *Store) signsIn(ctx context.Context, tx *sql.Tx, a storage.Account, now time.Time) (bool, error) {
	if certificateBound(a) {
		return true, nil
	}
	queries := []string{"usableKey"}
	if allowsSecrets(a) {
		queries = append(queries, "usableSecret")
	}
	for _, q := range queries {
		var n int
		if err := tx.QueryRowContext(ctx, s.q[q], a.ID, micros(now)).Scan(&n); err != nil {
			return false, err
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}
