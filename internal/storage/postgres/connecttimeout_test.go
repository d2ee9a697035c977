package postgres

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testkeyward"
)

// The connect timeout's errors name what set it: the DSN's
// connect_timeout (URL or key=value), which wins over PGCONNECT_TIMEOUT,
// PGCONNECT_TIMEOUT, or Keyward's default.
func TestConnectTimeoutSource(t *testing.T) {
	serviceFile := writeServiceFile(t, "[seven]\nhost=h\nconnect_timeout=7\n[none]\nhost=h\n")
	for _, tt := range []struct {
		name, dsn, env string
		pgservice      string // PGSERVICE
		want           time.Duration
		source         string
	}{
		{"default", "postgres://u@h/db", "", "", defaultConnectTimeout, "the default when neither"},
		{"default for 0", "postgres://u@h/db?connect_timeout=0", "", "", defaultConnectTimeout, "the default, in place of a connect_timeout of 0"},
		{"default for PGCONNECT_TIMEOUT 0", "host=h user=u", "0", "", defaultConnectTimeout, "the default, in place of a connect_timeout of 0"},
		{"default for 0 over PGCONNECT_TIMEOUT", "host=h user=u connect_timeout=0", "5", "", defaultConnectTimeout, "the default, in place of a connect_timeout of 0"},
		{"URL", "postgres://u@h/db?connect_timeout=3", "", "", 3 * time.Second, "the DSN's connect_timeout"},
		{"key=value", "host=h user=u connect_timeout = 4", "", "", 4 * time.Second, "the DSN's connect_timeout"},
		{"PGCONNECT_TIMEOUT", "postgres://u@h/db", "5", "", 5 * time.Second, "PGCONNECT_TIMEOUT sets this"},
		{"key=value with PGCONNECT_TIMEOUT", "host=h user=u", "5", "", 5 * time.Second, "PGCONNECT_TIMEOUT sets this"},
		{"the DSN's over PGCONNECT_TIMEOUT", "postgres://u@h/db?connect_timeout=3", "5", "", 3 * time.Second, "the DSN's connect_timeout"},
		{"service", "postgres://u@h/db?service=seven", "", "", 7 * time.Second, "the connect_timeout of the DSN's PostgreSQL service"},
		// A service's connect_timeout wins over PGCONNECT_TIMEOUT.
		{"service over PGCONNECT_TIMEOUT", "postgres://u@h/db?service=seven", "5", "", 7 * time.Second, "the connect_timeout of the DSN's PostgreSQL service"},
		{"PGCONNECT_TIMEOUT with a service without one", "postgres://u@h/db?service=none", "5", "", 5 * time.Second, "PGCONNECT_TIMEOUT sets this"},
		// A service PGSERVICE names is not the DSN's; the DSN's wins.
		{"PGSERVICE", "postgres://u@h/db", "", "seven", 7 * time.Second, "the connect_timeout of the PostgreSQL service PGSERVICE names"},
		{"PGSERVICE, key=value", "host=h user=u", "5", "seven", 7 * time.Second, "the connect_timeout of the PostgreSQL service PGSERVICE names"},
		{"the DSN's service over PGSERVICE", "host=h user=u service = seven", "", "none", 7 * time.Second, "the connect_timeout of the DSN's PostgreSQL service"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PGCONNECT_TIMEOUT", tt.env)
			t.Setenv("PGSERVICE", tt.pgservice)
			t.Setenv("PGSERVICEFILE", serviceFile)
			cfg, source, err := connConfig(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ConnectTimeout != tt.want || !strings.HasPrefix(source, tt.source) {
				t.Errorf("connect timeout %v from %q, want %v from %q…", cfg.ConnectTimeout, source, tt.want, tt.source)
			}
		})
	}
}

// Open's checks of a database that stops answering once connected are
// each given up after the connect timeout, and their warnings say so and
// what set it, instead of holding the start for ever.
func TestChecksBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	// No connect_timeout of pgx's own: only the checks' bound ends the
	// connection attempts that go nowhere.
	db, err := sql.Open("pgx", "postgres://postgres@"+ln.Addr().String()+"/test?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out testkeyward.SyncBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(context.Background(), db, slog.New(slog.NewTextHandler(&out, nil)), 100*time.Millisecond, "PGCONNECT_TIMEOUT sets this")
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the checks still wait after a minute for a database that does not answer")
	}
	for _, what := range []string{"synchronous_commit", "clock"} {
		if !strings.Contains(out.String(), "could not read PostgreSQL's "+what) {
			t.Errorf("no warning that the %s check could not be made; the log: %s", what, out.String())
		}
	}
	if n := strings.Count(out.String(), "the database did not answer within 100ms (PGCONNECT_TIMEOUT sets this)"); n != 2 {
		t.Errorf("%d warnings say the database did not answer within the connect timeout, want 2; the log: %s", n, out.String())
	}
}

// A connect timeout that is not a whole number of seconds is refused
// naming the setting that gave it, not with pgx's "strconv.ParseInt:
// parsing ..." alone, and without the DSN's password.
func TestConnectTimeoutInvalid(t *testing.T) {
	serviceFile := writeServiceFile(t, "[bad]\nhost=h\nconnect_timeout=1m\n[negative]\nhost=h\nconnect_timeout=-3\n")
	for _, tt := range []struct {
		name, dsn, env, pgservice, want string
	}{
		{"URL", "postgres://u:secret@h/db?connect_timeout=x", "", "", `the DSN's connect_timeout "x" is not a whole number of seconds: give whole seconds, such as 10, or 0 for the default (10s)`},
		{"key=value", "host=h user=u password=secret connect_timeout=1.5", "", "", `the DSN's connect_timeout "1.5" is not a whole number of seconds`},
		{"negative", "postgres://u:secret@h/db?connect_timeout=-5", "", "", `the DSN's connect_timeout is negative: give whole seconds`},
		{"too large", "postgres://u:secret@h/db?connect_timeout=99999999999999999999", "", "", `the DSN's connect_timeout "99999999999999999999" is too large`},
		{"PGCONNECT_TIMEOUT", "postgres://u:secret@h/db", "10s", "", `PGCONNECT_TIMEOUT "10s" is not a whole number of seconds`},
		{"PGCONNECT_TIMEOUT negative", "postgres://u:secret@h/db", "-1", "", `PGCONNECT_TIMEOUT is negative`},
		{"service", "postgres://u:secret@h/db?service=bad", "", "", `the connect_timeout of the DSN's PostgreSQL service "1m" is not a whole number of seconds`},
		// A service's connect_timeout wins over PGCONNECT_TIMEOUT: the
		// value refused is the service's.
		{"service over PGCONNECT_TIMEOUT", "postgres://u:secret@h/db?service=bad", "5", "", `the connect_timeout of the DSN's PostgreSQL service "1m" is not a whole number of seconds`},
		{"negative service over PGCONNECT_TIMEOUT", "postgres://u:secret@h/db?service=negative", "5", "", `the connect_timeout of the DSN's PostgreSQL service is negative`},
		{"PGSERVICE", "postgres://u:secret@h/db", "5", "bad", `the connect_timeout of the PostgreSQL service PGSERVICE names "1m" is not a whole number of seconds`},
		{"PGSERVICE negative", "host=h user=u password=secret", "", "negative", `the connect_timeout of the PostgreSQL service PGSERVICE names is negative`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PGCONNECT_TIMEOUT", tt.env)
			t.Setenv("PGSERVICE", tt.pgservice)
			t.Setenv("PGSERVICEFILE", serviceFile)
			_, _, err := connConfig(tt.dsn)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("%v, want an error starting %q", err, tt.want)
			}
			for _, bad := range []string{"secret", "strconv"} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("%v holds %q", err, bad)
				}
			}
		})
	}
}

// writeServiceFile writes a PostgreSQL service file (PGSERVICEFILE) that
// holds content, and returns its path.
func writeServiceFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pg_service.conf")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
