package postgres

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/internal/storage"
)

// channel is the SQL expression of the notification channel on which the
// store in the current schema announces changes: every transaction that
// changes an account, key, secret, API or the signing keys sends a
// payload naming what changed (an account ID, storage.ChangeAll or
// storage.ChangeSigningKeys) when it commits. Channels are per database,
// so the schema is part of the name; a schema whose name makes it longer
// than the 63 bytes PostgreSQL takes (NAMEDATALEN - 1) is named by its
// MD5 instead. The store and Watch both read it from the database, so
// they name the same channel.
const channel = `CASE WHEN octet_length(current_schema()) <= 63 - octet_length('keyward_changes_')
	THEN 'keyward_changes_' || current_schema() ELSE 'keyward_changes_' || md5(current_schema()) END`

// Watch listens for the store's change notifications until ctx ends and calls fn with each payload.
// When the connection is lost, notifications may have been missed, so it
// calls fn(storage.ChangeAll) and reconnects, backing off up to 5 seconds.
// ready, if not nil, is closed once the first LISTEN is in place.
func Watch(ctx context.Context, dsn string, log *slog.Logger, fn func(payload string), ready chan<- struct{}) {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		err := listen(ctx, dsn, fn, func() {
			backoff = 100 * time.Millisecond
			if !first {
				fn(storage.ChangeAll) // what happened while we were away is unknown
			}
			if first && ready != nil {
				close(ready)
			}
			first = false
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn("lost the PostgreSQL change notifications; caches fall back to their TTL until reconnected", "err", err, "retry_in", backoff)
		fn(storage.ChangeAll)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func listen(ctx context.Context, dsn string, fn func(string), listening func()) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var name string
	if err := conn.QueryRow(ctx, "SELECT "+channel).Scan(&name); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{name}.Sanitize()); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}
