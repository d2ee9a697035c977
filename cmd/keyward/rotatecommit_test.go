package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/masterkey"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// On PostgreSQL, a master-key rotate whose COMMIT was sent but whose
// answer was lost (interrupted, or its connection dropped) does not read
// the old key in the store as "nothing was changed": the server may carry
// the COMMIT out after that read, as here, and the store then needs the
// new key while master.key still holds the old one. It says the outcome is
// not known, naming both keys, and keeps master.key.
func TestMasterKeyRotateLateCommit(t *testing.T) {
	t.Setenv(masterKeyEnv, "")
	for _, tt := range []struct {
		name      string
		interrupt bool // the command's context is cancelled; else the connection is dropped
	}{
		{"interrupted", true},
		{"connection lost", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn, dir := pgtest.SchemaDSN(t), t.TempDir()
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir, cfg.DB, cfg.Issuer = "127.0.0.1:0", dir, dsn, "http://keyward.test"
			first := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := first.Open(context.Background()) // generates dir/master.key, seals the store under it
			first.Close()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "master.key")
			old := mustReadFile(t, path)
			newKey := strings.Repeat("a5", 32) + "\n"
			newKeyFile := filepath.Join(t.TempDir(), "new.key")
			mustWriteFile(t, newKeyFile, []byte(newKey))

			p := newCommitHolder(t, dsn)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			defer func(f func(context.Context, signer.ResealStore, []byte, []byte, storage.AuditEvent) error) {
				rotateStore = f
			}(rotateStore)
			rotateStore = func(ctx context.Context, st signer.ResealStore, oldKey, newKey []byte, ev storage.AuditEvent) error {
				p.arm(func(client net.Conn) {
					if tt.interrupt {
						cancel()
					} else {
						client.Close()
					}
				})
				return signer.RotateMasterKey(ctx, st, oldKey, newKey, ev)
			}
			err = runCLIErrContext(ctx, "master-key", "rotate", "--db", p.dsn, "--data-dir", dir, "--new-master-key-file", newKeyFile)
			if !p.wasHeld() {
				t.Fatalf("rotate: %v, and no COMMIT was held", err)
			}
			p.let() // the COMMIT reaches the server after the command read the store again
			st, oerr := postgres.Open(context.Background(), dsn, postgres.Options{})
			if oerr != nil {
				t.Fatal(oerr)
			}
			defer st.Close()
			oldRaw, err1 := masterkey.Parse(old)
			newRaw, err2 := masterkey.Parse([]byte(newKey))
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			for start := time.Now(); resealedUnder(st, oldRaw, newRaw) != sealedNew; time.Sleep(50 * time.Millisecond) {
				if time.Since(start) > 30*time.Second {
					t.Fatal("the held COMMIT did not land within 30 s")
				}
			}
			if err == nil || strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "whether the store was re-encrypted under the new master key is not known") ||
				!strings.Contains(err.Error(), "--master-key-file "+newKeyFile) {
				t.Fatalf("rotate whose COMMIT landed after it read the store: %v, want its outcome said to be unknown, naming the new key's file", err)
			}
			if got := mustReadFile(t, path); !bytes.Equal(got, old) {
				t.Errorf("master.key = %q, want the old key %q, kept while the store may need it", got, old)
			}
		})
	}
}

// commitHolder is a TCP proxy to the PostgreSQL server of a DSN. Armed,
// it holds back the next COMMIT a client sends (simple query protocol,
// as pgx sends it), calls the armed function with the client's end, and
// sends the COMMIT on, alone, once let go: a commit whose answer the
// client lost, carried out late.
type commitHolder struct {
	dsn     string
	mu      sync.Mutex
	onHold  func(client net.Conn)
	held    chan struct{}
	release chan struct{}
}

// commitQuery is the Query message of pgx's "commit".
var commitQuery = []byte("Q\x00\x00\x00\x0bcommit\x00")

func newCommitHolder(t *testing.T, dsn string) *commitHolder {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		t.Skipf("%s is not a postgres:// URL", pgtest.DSNEnv)
	}
	if u.Query().Get("host") != "" || strings.HasPrefix(u.Hostname(), "/") {
		t.Skip("the server is reached by a Unix socket")
	}
	upstream := u.Host
	if u.Port() == "" {
		upstream = net.JoinHostPort(u.Hostname(), "5432")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String()
	p := &commitHolder{dsn: u.String(), held: make(chan struct{}), release: make(chan struct{})}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		p.let()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go func() {
				defer c.Close()
				io.Copy(c, s)
			}()
			go p.up(c, s)
		}
	}()
	return p
}

// arm makes the next COMMIT held, calling onHold once it is.
func (p *commitHolder) arm(onHold func(client net.Conn)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onHold = onHold
}

// let sends the held COMMIT on (once).
func (p *commitHolder) let() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

// wasHeld reports whether a COMMIT was held.
func (p *commitHolder) wasHeld() bool {
	select {
	case <-p.held:
		return true
	default:
		return false
	}
}

// up copies what client sends to server, holding an armed COMMIT.
func (p *commitHolder) up(client, server net.Conn) {
	defer server.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if i := bytes.Index(buf[:n], commitQuery); i >= 0 {
			p.mu.Lock()
			onHold := p.onHold
			p.onHold = nil
			p.mu.Unlock()
			if onHold != nil {
				if _, err := server.Write(buf[:i]); err != nil {
					return
				}
				close(p.held)
				onHold(client)
				<-p.release
				// The COMMIT alone: what the client sent after it (its
				// Terminate) is dropped, and the connection closed after
				// the server has read it.
				server.Write(commitQuery)
				time.Sleep(100 * time.Millisecond)
				return
			}
		}
		if _, werr := server.Write(buf[:n]); werr != nil || err != nil {
			return
		}
	}
}
