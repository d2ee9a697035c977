package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage/postgres"
)

// mute accepts TCP connections and never answers them, as a database that
// is stuck, a proxy whose database is gone or a network that drops what
// follows the handshake does.
func mute(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	return "postgres://postgres@" + host + ":" + port + "/test?sslmode=disable"
}

// hangGuard is how long a test waits before calling a wait that should
// end on its own a hang.
const hangGuard = time.Minute

// Open fails, instead of waiting for ever, when the server accepts the
// connection and says nothing: keyward serve neither started nor exited.
func TestOpenGivesUpOnMuteServer(t *testing.T) {
	postgres.SetDefaultConnectTimeout(t, 100*time.Millisecond)
	err := openMute(t, mute(t))
	if err == nil {
		t.Fatal("Open succeeded against a server that says nothing")
	}
	if !strings.Contains(err.Error(), "did not answer within 100ms (the default when neither the DSN's connect_timeout nor PGCONNECT_TIMEOUT sets one)") {
		t.Errorf("Open = %v, want it to say the database did not answer within the connect timeout", err)
	}
}

// openMute opens dsn, a server that says nothing, and returns Open's
// error; it fails the test if Open is still waiting after hangGuard.
func openMute(t *testing.T, dsn string) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err == nil {
			s.Close()
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(hangGuard):
		t.Fatalf("Open still waiting after %v for a server that says nothing", hangGuard)
		return nil
	}
}

// Watch, reconnecting, gives up on a server that says nothing and tries
// again: it does not wait on it for ever, nor flush the caches only once.
func TestWatchRetriesMuteServer(t *testing.T) {
	postgres.SetDefaultConnectTimeout(t, 100*time.Millisecond)
	dsn := mute(t)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		postgres.Watch(ctx, dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p string) {
			select {
			case got <- p:
			default:
			}
		}, nil, nil)
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-got: // a failed attempt ends in a flush
	case <-time.After(hangGuard):
		t.Fatalf("Watch still connecting after %v to a server that says nothing", hangGuard)
	}
}

// The error names PGCONNECT_TIMEOUT when it, not the DSN, set the connect
// timeout.
func TestOpenGivesUpOnMuteServerPGCONNECT_TIMEOUT(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "1")
	err := openMute(t, mute(t))
	if err == nil || !strings.Contains(err.Error(), "did not answer within 1s (PGCONNECT_TIMEOUT sets this)") {
		t.Errorf("Open = %v, want it to say the database did not answer within the 1s PGCONNECT_TIMEOUT set", err)
	}
}
