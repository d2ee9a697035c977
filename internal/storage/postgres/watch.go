package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/internal/failurelog"
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
// calls fn(storage.ChangeAll) and reconnects, backing off up to 5 seconds,
// logging the loss as a warning, the failed reconnections after it as one
// warning a minute at most, and the reconnection as information (and a
// first connection that fails, and the tries after it, likewise, as
// never had rather than lost);
// a connection that has been quiet for pingQuiet is pinged, and lost if
// it does not answer within pingQuiet more.
// ready, if not nil, is closed once the first LISTEN is in place.
// listening, if not nil, is called with true each time a LISTEN is in
// place and with false each time the connection is lost.
func Watch(ctx context.Context, dsn string, log *slog.Logger, fn func(payload string), ready chan<- struct{}, listening func(bool)) {
	watch(ctx, dsn, log, fn, ready, listening, pingQuiet)
}

// pingQuiet is how long a LISTEN connection may be quiet before Watch
// pings it, and how long the ping may go unanswered before Watch takes
// the connection as lost. A connection whose peer went away without a
// word (a NAT or firewall that forgot it, a proxy whose server went away:
// no RST) is so noticed within twice pingQuiet, 20 s, and replaced, the
// caches flushed; until then the changes made on other replicas go
// unheard, and only --cache-ttl bounds how long they are unseen. TCP
// keepalives, minutes apart, would take far longer, or never end it
// when a proxy answers them. The ping, an empty query, is cheap enough
// to send every 10 s, and keeps the connection alive in the eyes of
// NATs and firewalls that would otherwise forget it.
const pingQuiet = 10 * time.Second

// watch is Watch, pinging a connection quiet for ping.
func watch(ctx context.Context, dsn string, log *slog.Logger, fn func(payload string), ready chan<- struct{}, listening func(bool), ping time.Duration) {
	watchAt(ctx, dsn, log, fn, ready, listening, ping, time.Now)
}

// watchAt is watch, reading the time of the log's lines from now.
func watchAt(ctx context.Context, dsn string, log *slog.Logger, fn func(payload string), ready chan<- struct{}, listening func(bool), ping time.Duration, now func() time.Time) {
	if listening == nil {
		listening = func(bool) {}
	}
	backoff := 100 * time.Millisecond
	first := true
	// The loss and the failed reconnections after it are logged as a
	// failurelog.Spell: a warning at each, every 5 seconds while the store
	// is down, would read as the notifications lost again, 12 times a minute.
	var lost failurelog.Spell
	for ctx.Err() == nil {
		listened := false
		err := listen(ctx, dsn, ping, fn, func() {
			listened = true
			listening(true)
			backoff = 100 * time.Millisecond
			lostFor, failed := lost.Succeeded(now())
			if !first {
				fn(storage.ChangeAll) // what happened while we were away is unknown
				log.Info("listening again for the PostgreSQL change notifications; caches flushed", "lost_for", lostFor.Round(time.Millisecond))
			} else if failed {
				// The first connection failed, which was logged: say
				// that it is over, as a reconnection is.
				log.Info("listening for the PostgreSQL change notifications", "waited_for", lostFor.Round(time.Millisecond))
			}
			if first && ready != nil {
				close(ready)
			}
			first = false
		})
		if listened {
			listening(false)
		}
		if ctx.Err() != nil {
			return
		}
		switch n := lost.Failed(now()); {
		case n.First && first:
			// Never had them: the first connection failed.
			log.Warn("could not listen for the PostgreSQL change notifications; caches fall back to their TTL until connected (while this lasts, it is logged at most once a minute)", "err", err, "retry_in", backoff)
		case n.First:
			log.Warn("lost the PostgreSQL change notifications; caches fall back to their TTL until reconnected (while they stay lost, this is logged at most once a minute)", "err", err, "retry_in", backoff)
		case n.Again && first:
			// Never had them: none was lost, nor is a try to have them a
			// reconnection.
			log.Warn("still without the PostgreSQL change notifications; caches fall back to their TTL until connected", "err", err,
				"waited_for", n.For.Round(time.Second), "failed_connections", n.Failures)
		case n.Again:
			log.Warn("still without the PostgreSQL change notifications; caches fall back to their TTL until reconnected", "err", err,
				"lost_for", n.For.Round(time.Second), "failed_reconnections", n.Failures)
		}
		fn(storage.ChangeAll)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func listen(ctx context.Context, dsn string, ping time.Duration, fn func(string), listening func()) error {
	cfg, _, err := connConfig(dsn)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
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
		wctx, cancel := context.WithTimeout(ctx, ping)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) {
			// Quiet for ping: a connection whose peer is gone without a
			// word (a NAT or firewall that dropped it, a proxy whose
			// server went away) would wait for ever, so it must answer a
			// ping as soon. A timed-out wait leaves the connection usable.
			pctx, cancel := context.WithTimeout(ctx, ping)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping after %s without a notification: %w", ping, err)
			}
			continue
		}
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}
