package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// insertTokens stores opaque tokens inside a group-commit transaction, with
// as few statements as rowChunks allow.
func (s *Store) insertTokens(ctx context.Context, tx *sql.Tx, tokens []*storage.TokenRecord) error {
	return inChunks(rowChunks, tokens, tokenColumns, func(args []any, t *storage.TokenRecord) []any {
		return append(args, t.Hash, t.ID, t.AccountID, t.Subject, t.Scope, encodeList(t.Audience),
			t.Credential, t.Thumbprint, t.Actor, micros(t.IssuedAt), micros(t.ExpiresAt), t.JKT)
	}, func(n int, args []any) error {
		_, err := s.stmt(ctx, tx, multiRowName("insertTokens", n)).ExecContext(ctx, args...)
		return s.wrap("store token", err)
	})
}

// GetToken implements storage.Storage.
func (s *Store) GetToken(ctx context.Context, hash []byte) (storage.TokenRecord, error) {
	return s.getToken(ctx, "getToken", hash)
}

// GetTokenByID implements storage.Storage.
func (s *Store) GetTokenByID(ctx context.Context, jti string) (storage.TokenRecord, error) {
	return s.getToken(ctx, "getTokenByID", jti)
}

func (s *Store) getToken(ctx context.Context, query string, key any) (storage.TokenRecord, error) {
	var (
		t           storage.TokenRecord
		aud         string
		issued, exp int64
	)
	err := s.queryRow(ctx, query, key).Scan(&t.Hash, &t.ID, &t.AccountID, &t.Subject, &t.Scope, &aud,
		&t.Credential, &t.Thumbprint, &t.Actor, &issued, &exp, &t.JKT)
	if err != nil {
		return t, s.wrap("get token", err)
	}
	t.IssuedAt, t.ExpiresAt = fromMicros(issued), fromMicros(exp)
	t.Audience, err = decodeList(aud)
	return t, err
}

// Revoke implements storage.Storage.
func (s *Store) Revoke(ctx context.Context, r storage.Revocation, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q["insertRevocation"], r.JTI, r.AccountID, micros(r.RevokedAt), micros(r.ExpiresAt)); err != nil {
			return s.wrap("revoke", err)
		}
		return s.notify(ctx, tx, storage.ChangeRevocations)
	}, ev)
}

// IsRevoked implements storage.Storage.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	var n int
	err := s.queryRow(ctx, "isRevoked", jti).Scan(&n)
	return n > 0, s.wrap("is revoked", err)
}

// expiredBatch is how many rows of a table one transaction of
// DeleteExpired deletes (more only when rows after the last expire at the
// same microsecond): a backlog (after a long downtime, say) is deleted in
// short transactions, between which token requests' writes commit, not in
// one that holds SQLite's write lock until it is all gone.
const expiredBatch = 1000

// DeleteExpired implements storage.Storage.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{"deleteExpiredJTI", "deleteExpiredRevoc", "deleteExpiredToken"} {
		for {
			// Each batch commits on its own; the writer is free between them.
			res, err := s.w.ExecContext(ctx, s.q[q], micros(now), micros(now), expiredBatch-1, micros(now))
			if err != nil {
				return total, s.wrap("delete expired", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, s.wrap("delete expired", err)
			}
			total += n
			if n < expiredBatch {
				break
			}
		}
	}
	return total, nil
}
