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

// The enabled keys and secrets of an account (the first argument) that
// have not expired at a time (the second, in microseconds).
const (
	usableKeys    = `FROM keys WHERE account_id = ? AND disabled = 0 AND (expires_at = 0 OR expires_at > ?)`
	usableSecrets = `FROM secrets WHERE account_id = ? AND disabled = 0 AND (expires_at = 0 OR expires_at > ?)`
)

// Guard.KeepSignIn and SignInExpiry: whether an enabled account holding a scope can still
// get tokens after a change to an account, a key or a secret.
func init() {
	for k, v := range map[string]string{
		// The enabled accounts holding the scope.
		"enabledHolders": `SELECT ` + accountCols + ` FROM accounts
			WHERE disabled = 0 AND id IN (SELECT account_id FROM account_scopes WHERE scope = ?) ORDER BY id`,
		// How many enabled keys or secrets the account has that have not
		// expired at a time, and the earliest and latest of their expiries
		// (0 for never): signsInUntil.
		"usableKeysUntil":    `SELECT COUNT(*), COALESCE(MIN(expires_at), 0), COALESCE(MAX(expires_at), 0) ` + usableKeys,
		"usableSecretsUntil": `SELECT COUNT(*), COALESCE(MIN(expires_at), 0), COALESCE(MAX(expires_at), 0) ` + usableSecrets,
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
// is the server's --tls-client-ca, not stored), so a binding counts unless
// the caller says the server takes none (signInRules.certificates), and
// without one tls_client_auth does not: no certificate would match.
func certificateBound(a storage.Account) bool {
	return slices.Contains(a.AuthMethods, storage.AuthTLS) && !a.TLS.IsZero()
}

// signInRules is how a guard or SignInExpiry judges an account's ways in:
// keys and secrets expired at now, and certificate bindings only if
// certificates (the server takes CA-issued client certificates).
type signInRules struct {
	now          time.Time
	certificates bool
}

// guardRules is g's signInRules: at its Now, or the store's clock when
// that is zero, and counting bindings unless g.NoCertificates.
func guardRules(g storage.Guard) signInRules {
	r := signInRules{now: g.Now, certificates: !g.NoCertificates}
	if r.now.IsZero() {
		r.now = time.Now()
	}
	return r
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
		r := guardRules(g)
		if !holds(a, g.KeepSignIn) || !was(a, r.now) || (is != nil && is(a, r.now)) {
			continue
		}
		if err := s.keepWayIn(ctx, tx, op, g.KeepSignIn, r); err != nil {
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
		if in[i], err = s.signsIn(ctx, tx, a, guardRules(g)); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// checkWayIn checks g after an account that was a way in for its
// KeepSignIn scope became now (the zero Account when deleted).
func (s *Store) checkWayIn(ctx context.Context, tx *sql.Tx, op string, now storage.Account, g storage.Guard) error {
	r := guardRules(g)
	if holds(now, g.KeepSignIn) {
		in, err := s.signsIn(ctx, tx, now, r)
		if err != nil || in {
			return s.wrap(op, err)
		}
	}
	return s.keepWayIn(ctx, tx, op, g.KeepSignIn, r)
}

// keepWayIn fails with ErrLastCredential unless some enabled account
// holding scope can get tokens by r.
func (s *Store) keepWayIn(ctx context.Context, tx *sql.Tx, op, scope string, r signInRules) error {
	ok, err := s.holderSignsIn(ctx, tx, scope, r)
	if err != nil {
		return s.wrap(op, err)
	}
	if !ok {
		return fmt.Errorf("%s: %w: %s", op, storage.ErrLastCredential, scope)
	}
	return nil
}

// holderSignsIn reports whether some enabled account holding scope can
// get tokens by r (see storage.Guard.KeepSignIn).
func (s *Store) holderSignsIn(ctx context.Context, tx *sql.Tx, scope string, r signInRules) (bool, error) {
	holders, err := s.enabledHolders(ctx, tx, scope)
	if err != nil {
		return false, err
	}
	for _, a := range holders {
		ok, err := s.signsIn(ctx, tx, a, r)
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// rowQueryer runs a single-row query: a *sql.Conn or a *sql.Tx.
type rowQueryer interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// enabledHolders returns the enabled accounts holding scope. It reads
// every row before returning: a transaction has one connection, and the
// caller's next query needs it.
func (s *Store) enabledHolders(ctx context.Context, q queryer, scope string) ([]storage.Account, error) {
	rows, err := q.QueryContext(ctx, s.q["enabledHolders"], scope)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var holders []storage.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		holders = append(holders, a)
	}
	return holders, rows.Err()
}

// SignInExpiry implements storage.Storage: the latest time until which an
// enabled account holding scope can get tokens, by the rules of
// Guard.KeepSignIn, counting certificate bindings if certificates. It
// reads on one connection of the reader pool, not in a transaction
// (SQLite's begin writes): a change between its reads shows at the next
// call.
func (s *Store) SignInExpiry(ctx context.Context, scope string, certificates bool, now time.Time) (until time.Time, ok bool, err error) {
	const op = "sign-in expiry"
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return time.Time{}, false, s.wrap(op, err)
	}
	defer conn.Close()
	holders, err := s.enabledHolders(ctx, conn, scope)
	if err != nil {
		return time.Time{}, false, s.wrap(op, err)
	}
	for _, a := range holders {
		u, in, err := s.signsInUntil(ctx, conn, a, signInRules{now: now, certificates: certificates})
		if err != nil {
			return time.Time{}, false, s.wrap(op, err)
		}
		if !in {
			continue
		}
		if u.IsZero() {
			return time.Time{}, true, nil // a way in that never expires
		}
		if !ok || u.After(until) {
			until, ok = u, true
		}
	}
	return until, ok, nil
}

// signsInUntil reports whether the enabled account a can get tokens by r
// with a certificate (if r counts them), a key or a secret, and until
// when: the zero Time when some way in never expires (a certificate
// binding, or a key or secret without expiry). It is the one place that
// counts a certificate binding.
func (s *Store) signsInUntil(ctx context.Context, q rowQueryer, a storage.Account, r signInRules) (until time.Time, ok bool, err error) {
	if r.certificates && certificateBound(a) {
		return time.Time{}, true, nil
	}
	queries := []string{"usableKeysUntil"}
	if allowsSecrets(a) {
		queries = append(queries, "usableSecretsUntil")
	}
	var latest int64
	for _, name := range queries {
		var n, lo, hi int64
		if err := q.QueryRowContext(ctx, s.q[name], a.ID, micros(r.now)).Scan(&n, &lo, &hi); err != nil {
			return time.Time{}, false, err
		}
		if n == 0 {
			continue
		}
		if lo == 0 {
			return time.Time{}, true, nil
		}
		ok, latest = true, max(latest, hi)
	}
	return fromMicros(latest), ok, nil
}

// signsIn reports whether the enabled account a can get tokens by r:
// signsInUntil without the until. Its aggregates read all of a's usable
// keys and secrets rather than stop at the first, a few rows.
func (s *Store) signsIn(ctx context.Context, q rowQueryer, a storage.Account, r signInRules) (bool, error) {
	_, ok, err := s.signsInUntil(ctx, q, a, r)
	return ok, err
}
