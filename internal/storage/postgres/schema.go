package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// tempSchemaSuffix is how many random lower-case base32 characters follow
// the prefix in a temporary schema's name. (Versions that did not mark
// their schemas used 12; the sweep leaves those alone.)
const tempSchemaSuffix = 13

// validPrefix is what TempSchema accepts as a prefix: a lower-case SQL
// identifier, which CREATE SCHEMA does not fold.
var validPrefix = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// tempSchemaLock is the first key of the session advisory lock that marks a
// temporary schema as in use; the second is the hash of its name. (Two-key
// advisory locks never collide with the store's one-key locks.)
const tempSchemaLock = 0x6b77 // "kw"

// TempSchema creates a schema with a fresh name that starts with prefix in
// the database dsn names, and returns a DSN for the same database whose
// search_path is that schema alone, and a function that drops the schema
// with everything in it. A store opened on the returned DSN starts empty
// and leaves nothing behind once dropped. dsn may be a postgres:// URL or a
// key=value string; prefix must be a lower-case SQL identifier.
//
// Until it is dropped, the schema is marked in use by an advisory lock held
// on a connection of its own. A process killed before it could drop its
// schema loses that connection and the lock with it, and the next
// TempSchema with the same prefix drops the schema it left. (So dsn must
// not go through a proxy that pools connections by transaction, which
// would share the locks between sessions.) The marking session is kept
// from idling out (idle_session_timeout); a session ended by an
// administrator or a failover still loses the mark.
func TempSchema(ctx context.Context, dsn, prefix string) (string, func(context.Context) error, error) {
	if !validPrefix.MatchString(prefix) {
		return "", nil, fmt.Errorf("postgres: temporary schema prefix %q is not a lower-case SQL identifier", prefix)
	}
	if _, err := withSearchPath(dsn, prefix); err != nil {
		return "", nil, err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	closeAll := func() { conn.Close(); db.Close() }
	// The mark lasts as long as this session: it must not time out idle
	// (PostgreSQL 14 and later have the setting; earlier ones never do).
	conn.ExecContext(ctx, "SET idle_session_timeout = 0")
	if err := dropAbandoned(ctx, conn, prefix); err != nil {
		closeAll()
		return "", nil, err
	}
	// Marked in use before it exists, so a sweep never sees it unmarked; a
	// name whose mark is taken (another schema's hash) is not used.
	var schema string
	for tries, locked := 0, false; !locked; tries++ {
		if tries == 10 {
			closeAll()
			return "", nil, errors.New("postgres: could not mark a new temporary schema in use (advisory locks taken)")
		}
		schema = prefix + strings.ToLower(rand.Text()[:tempSchemaSuffix])
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", tempSchemaLock, schema).Scan(&locked); err != nil {
			closeAll()
			return "", nil, fmt.Errorf("postgres: %w", err)
		}
	}
	scoped, _ := withSearchPath(dsn, schema) // dsn parsed above
	if _, err := conn.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		closeAll()
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	drop := func(ctx context.Context) error {
		defer closeAll() // and with the connection, the lock
		if _, err := conn.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		return nil
	}
	return scoped, drop, nil
}

// dropAbandoned drops the schemas TempSchema named with prefix, owned by
// this user, that no session marks in use: what killed processes left. A
// schema it cannot drop, or not at once (a session holds a lock on one of
// its tables), is left; only a failure to look is an error.
func dropAbandoned(ctx context.Context, conn *sql.Conn, prefix string) error {
	rows, err := conn.QueryContext(ctx, `SELECT nspname FROM pg_namespace
		WHERE left(nspname, length($1)) = $1 AND substr(nspname, length($1) + 1) ~ $2
		AND nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)`,
		prefix, fmt.Sprintf("^[a-z2-7]{%d}$", tempSchemaSuffix))
	if err != nil {
		return fmt.Errorf("postgres: listing abandoned temporary schemas: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if len(names) == 0 {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "SET lock_timeout = '2s'"); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.ExecContext(ctx, "RESET lock_timeout")
	for _, n := range names {
		var free bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", tempSchemaLock, n).Scan(&free); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if !free {
			continue // in use
		}
		conn.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{n}.Sanitize()+" CASCADE")
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1, hashtext($2))", tempSchemaLock, n); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	return nil
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
