package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
)

// TempSchema creates a schema with a fresh name that starts with prefix in
// the database dsn names, and returns a DSN for the same database whose
// search_path is that schema alone, and a function that drops the schema
// with everything in it. A store opened on the returned DSN starts empty
// and leaves nothing behind once dropped. dsn may be a postgres:// URL or a
// key=value string; prefix must be a lower-case SQL identifier.
func TempSchema(ctx context.Context, dsn, prefix string) (string, func(context.Context) error, error) {
	schema := prefix + strings.ToLower(rand.Text()[:12])
	scoped, err := withSearchPath(dsn, schema)
	if err != nil {
		return "", nil, err
	}
	exec := func(ctx context.Context, stmt string) error {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		return nil
	}
	if err := exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	return scoped, func(ctx context.Context) error { return exec(ctx, "DROP SCHEMA "+schema+" CASCADE") }, nil
}

// withSearchPath returns dsn with its search_path set to schema.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("postgres: the DSN is not a valid URL: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// key=value: a later setting overrides an earlier one.
	return strings.TrimSpace(dsn + " search_path=" + schema), nil
}
