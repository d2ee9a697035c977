package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2/google"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// crashBackends are the stores the crash tests run on: SQLite in the data
// directory, and PostgreSQL in a schema of the test's own when
// KEYWARD_TEST_POSTGRES_DSN is set (the subtest skips, saying so, when
// it is not).
var crashBackends = []struct {
	name string
	db   func(t *testing.T) string // the --db of the server, "" for SQLite
}{
	{"sqlite", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string { return pgtest.SchemaDSN(t) }},
}

// crashServer is a keyward server in a child process (the test binary run
// as keyward), on a data directory and store that outlive it: killed with
// SIGKILL, another starts on them.
type crashServer struct {
	t    *testing.T
	dir  string // --data-dir
	db   string // --db, "" for SQLite
	addr string // --listen
	cmd  *exec.Cmd
}

// startCrashServer starts a child keyward server on dir and db, with the
// flags extra, and waits until it answers.
func startCrashServer(t *testing.T, dir, db, addr string, extra ...string) *crashServer {
	t.Helper()
	s, err := tryCrashServer(t, dir, db, addr, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryCrashServer is startCrashServer, returning the error, with the
// server's last log lines, of a server that exits before it answers.
func tryCrashServer(t *testing.T, dir, db, addr string, extra ...string) (*crashServer, error) {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dir, "--listen", addr, "--log-level", "warn"}, extra...)
	if db != "" {
		args = append(args, "--db", db)
	}
	child := exec.Command(os.Args[0], args...)
	child.Env = append(os.Environ(), "KEYWARD_TEST_RUN_MAIN=1")
	tieToTest(child)
	var logs lockedBuffer
	stderr, _ := child.StderrPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	s := &crashServer{t: t, dir: dir, db: db, addr: addr, cmd: child}
	t.Cleanup(func() { s.kill() })
	exited := make(chan struct{})
	go func() { // keep the pipe drained, the last lines kept for a failure
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteLine(sc.Text())
		}
		close(exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.base() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-exited:
			s.kill()
			return nil, fmt.Errorf("the child server exited before it came up:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child server did not come up:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *crashServer) base() string { return "http://" + s.addr }

// kill kills the server with SIGKILL and waits for it to be gone.
func (s *crashServer) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Error(err)
	}
	s.cmd.Wait()
}

// store opens the store of a server that is no longer running, as the
// maintenance commands do.
func (s *crashServer) store() storage.Storage {
	s.t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.DB = s.dir, s.db
	st, err := openMaintenanceStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { st.Close() })
	return st
}

// lockedBuffer keeps the last lines written to it.
type lockedBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *lockedBuffer) WriteLine(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, s)
	if len(b.lines) > 50 {
		b.lines = b.lines[1:]
	}
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// auditedIDs returns, of every event of action in st, the value of the
// event's data field (or, for field "", its account).
func auditedIDs(t *testing.T, st storage.Storage, action, field string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range auditedEvents(t, st, action) {
		if field == "" {
			seen[e.AccountID] = true
		} else {
			seen[e.Data[field]] = true
		}
	}
	return seen
}

// cliResult runs a keyward command in-process, as runCLI does, but returns
// its error: under a crash a command fails, and only one that succeeded,
// that is had its 2xx answer, says anything of the store.
func cliResult(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// TestCrashSafetyAdmin kills a real keyward process with SIGKILL under a
// load of administrators creating accounts, secrets and keys, disabling
// accounts, granting delegation and rotating the signing keys, on SQLite and PostgreSQL: every write
// an administrator was answered is in the store after the crash, with its
// audit event, the chain verifies, and on a new server every secret and
// key file handed out authenticates.
func TestCrashSafetyAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, b := range crashBackends {
		t.Run(b.name, func(t *testing.T) {
			db := b.db(t)
			dir := t.TempDir()
			addr := reservePort(t) // the children bind it; no other process can meanwhile
			srv := startCrashServer(t, dir, db, addr)
			creds := filepath.Join(dir, "admin-key.json")
			admin := []string{"--credentials", creds}
			for _, args := range [][]string{
				{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read"},
				{"org", "create", "example.com"},
			} {
				runCLI(t, append(args, admin...)...)
			}

			type account struct{ ID, Email string }
			type secret struct{ ClientID, ID, Secret string }
			type keyFile struct{ ClientID, ID, Path string }
			var (
				mu       sync.Mutex
				accounts []account // created
				disabled []account // created, then disabled
				secrets  []secret
				keys     []keyFile
				grants   []string // client IDs granted at example.com
				current  []string // the current signing key after each rotation answered
				answered int
				wg       sync.WaitGroup
			)
			stop := make(chan struct{})
			keyDir := t.TempDir()
			for w := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						var a account
						out, err := cliResult(append([]string{"sa", "create", fmt.Sprintf("w%d-%d", w, i), "--project", "crash", "--scopes", "orders.read", "-o", "json"}, admin...)...)
						if err != nil {
							time.Sleep(10 * time.Millisecond)
							continue
						}
						var v struct {
							ClientID string `json:"client_id"`
							Email    string `json:"email"`
						}
						if err := json.Unmarshal([]byte(out), &v); err != nil {
							t.Errorf("sa create said %q: %v", out, err)
							return
						}
						a = account{v.ClientID, v.Email}
						mu.Lock()
						answered++
						mu.Unlock()
						switch i % 4 {
						case 0, 1: // a secret, or a key file, for it
							if i%4 == 0 {
								out, err := cliResult(append([]string{"secrets", "create", a.Email, "-o", "json"}, admin...)...)
								if err != nil {
									break
								}
								var s struct {
									ID     string `json:"secret_id"`
									Secret string `json:"client_secret"`
								}
								if err := json.Unmarshal([]byte(out), &s); err != nil || s.Secret == "" {
									t.Errorf("secrets create said %q: %v", out, err)
									return
								}
								mu.Lock()
								secrets = append(secrets, secret{a.ID, s.ID, s.Secret})
								answered++
								mu.Unlock()
							} else {
								path := filepath.Join(keyDir, a.ID+".json")
								if _, err := cliResult(append([]string{"keys", "create", a.Email, "--out", path}, admin...)...); err != nil {
									break
								}
								var k struct {
									ID string `json:"private_key_id"`
								}
								b, err := os.ReadFile(path)
								if err == nil {
									err = json.Unmarshal(b, &k)
								}
								if err != nil || k.ID == "" {
									t.Errorf("the key file of keys create holds no key ID: %v", err)
									return
								}
								mu.Lock()
								keys = append(keys, keyFile{a.ID, k.ID, path})
								answered++
								mu.Unlock()
							}
						case 2:
							if _, err := cliResult(append([]string{"sa", "disable", a.Email}, admin...)...); err != nil {
								break
							}
							mu.Lock()
							disabled = append(disabled, a)
							answered++
							mu.Unlock()
						case 3:
							if _, err := cliResult(append([]string{"delegation", "grant", "--org", "example.com", "--client-id", a.ID, "--scopes", "orders.read"}, admin...)...); err != nil {
								break
							}
							mu.Lock()
							grants = append(grants, a.ID)
							answered++
							mu.Unlock()
						}
						mu.Lock()
						accounts = append(accounts, a)
						mu.Unlock()
					}
				}()
			}
			wg.Add(1)
			go func() { // signing-key rotations
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					out, err := cliResult(append([]string{"signing-keys", "rotate", "-o", "json"}, admin...)...)
					if err != nil {
						continue
					}
					kid, err := currentSigningKey(out)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					current = append(current, kid)
					answered++
					mu.Unlock()
				}
			}()
			// Kill it under load: once every kind of write has been
			// answered a few times, or after 4 s on a machine too busy.
			for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				mu.Lock()
				n := min(len(secrets), len(keys), len(disabled), len(grants), len(current))
				mu.Unlock()
				if n >= 5 {
					break
				}
			}
			srv.kill()
			close(stop)
			wg.Wait()
			if answered == 0 {
				t.Fatal("no admin write was answered before the kill")
			}

			ctx := context.Background()
			st := srv.store()
			if _, err := storage.VerifyLog(ctx, st); err != nil {
				t.Fatalf("after SIGKILL the audit chain does not verify: %v", err)
			}
			for _, c := range []struct {
				action, field string
				want          []string
			}{
				{"account.create", "", ids(accounts, func(a account) string { return a.ID })},
				{"secret.create", "secret_id", ids(secrets, func(s secret) string { return s.ID })},
				{"key.create", "key_id", ids(keys, func(k keyFile) string { return k.ID })},
				{"account.disable", "", ids(disabled, func(a account) string { return a.ID })},
				{"delegation.grant", "", grants},
			} {
				seen := auditedIDs(t, st, c.action, c.field)
				for _, id := range c.want {
					if !seen[id] {
						t.Errorf("an administrator was answered, but the %s event of %s was lost in the crash", c.action, id)
					}
				}
			}
			if n := len(auditedEvents(t, st, "signing_key.rotate")); n < len(current) {
				t.Errorf("%d signing-key rotations were answered, but after the crash the log holds %d", len(current), n)
			}
			for _, a := range accounts {
				if _, err := st.GetAccount(ctx, a.ID); err != nil {
					t.Errorf("account %s was created, but after the crash: %v", a.ID, err)
				}
			}
			for _, a := range disabled {
				if got, err := st.GetAccount(ctx, a.ID); err != nil || !got.Disabled {
					t.Errorf("account %s was disabled, but after the crash disabled=%v (%v)", a.ID, got.Disabled, err)
				}
			}
			for _, id := range grants {
				if _, err := st.GetGrant(ctx, "example.com", id); err != nil {
					t.Errorf("%s was granted delegation at example.com, but after the crash: %v", id, err)
				}
			}
			for _, k := range keys {
				if _, err := st.GetKey(ctx, k.ID); err != nil {
					t.Errorf("key %s was created, but after the crash: %v", k.ID, err)
				}
			}
			st.Close()

			// Every credential handed out authenticates on a new server.
			srv = startCrashServer(t, dir, db, addr)
			// The current signing key is the last rotation's answered, or
			// one that came after, never one a rotation answered replaced.
			if len(current) > 0 {
				kid, err := currentSigningKey(runCLI(t, append([]string{"signing-keys", "list", "-o", "json"}, admin...)...))
				if err != nil {
					t.Fatal(err)
				}
				if i := slices.Index(current, kid); i >= 0 && i < len(current)-1 {
					t.Errorf("after the crash the current signing key is %s, which an answered rotation replaced (rotations answered: %v)", kid, current)
				}
			}
			for _, s := range secrets {
				form := url.Values{"grant_type": {"client_credentials"}}
				req, _ := http.NewRequest("POST", srv.base()+"/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(s.ClientID, s.Secret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("secret %s was handed out, but after the crash /token says %d %s", s.ID, resp.StatusCode, body)
				}
			}
			for _, k := range keys {
				conf, err := google.JWTConfigFromJSON(mustReadFile(t, k.Path), "orders.read")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := conf.TokenSource(ctx).Token(); err != nil {
					t.Errorf("key %s was handed out, but after the crash it gets no token: %v", k.ID, err)
				}
			}
			t.Logf("%d admin writes answered before SIGKILL (%d accounts, %d secrets, %d keys, %d disabled, %d grants, %d signing-key rotations)",
				answered, len(accounts), len(secrets), len(keys), len(disabled), len(grants), len(current))
		})
	}
}

// currentSigningKey returns the current key of the JSON list of signing
// keys out, of signing-keys list or rotate.
func currentSigningKey(out string) (string, error) {
	var v struct {
		Keys []admin.SigningKeyView `json:"signing_keys"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return "", fmt.Errorf("signing-keys said %q: %v", out, err)
	}
	for _, k := range v.Keys {
		if k.State == "current" {
			return k.KeyID, nil
		}
	}
	return "", fmt.Errorf("signing-keys said %q: no current key", out)
}

// auditedEvents returns every event of action in st.
func auditedEvents(t *testing.T, st storage.Storage, action string) []storage.AuditEvent {
	t.Helper()
	var all []storage.AuditEvent
	for after := int64(0); ; {
		evs, err := st.ListAuditEvents(context.Background(), storage.AuditFilter{AfterSeq: after, Action: action, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Seq
	}
}

// ids maps xs to their IDs.
func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

// killAtEnv names the step of a file's writing at which a child keyward
// of a test kills itself with SIGKILL: "publish:NAME", once the file to
// be NAME is written and synced, just before it is put in place (for
// master-key rotate, before the store is re-encrypted), "rename:NAME",
// just before it is renamed to NAME, "renamed:NAME", once it is,
// before its directory is synced, or "linked:NAME", once it is linked to
// NAME as a new file, before its temporary name is removed and its
// directory synced.
const killAtEnv = "KEYWARD_TEST_KILL_AT"

// killAt installs the kill of killAtEnv's value at in this process.
func killAt(at string) {
	step, name, ok := strings.Cut(at, ":")
	if !ok {
		return
	}
	switch step {
	case "publish":
		publishing = func(path string) {
			if filepath.Base(path) == name {
				killSelf()
			}
		}
	case "rename":
		rename := renameFile
		renameFile = func(from, to string) error {
			if filepath.Base(to) == name {
				killSelf()
			}
			return rename(from, to)
		}
	case "linked":
		link := linkFile
		linkFile = func(from, to string) error {
			err := link(from, to)
			if err == nil && filepath.Base(to) == name {
				killSelf()
			}
			return err
		}
	case "renamed":
		rename := renameFile
		renameFile = func(from, to string) error {
			err := rename(from, to)
			if err == nil && filepath.Base(to) == name {
				killSelf()
			}
			return err
		}
	}
}

// killSelf kills this process with SIGKILL.
func killSelf() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Kill()
	}
	select {}
}

// testPipeEnv tells a child keyward of a test that its standard input is
// a pipe the test process holds open (tieToTest) and that it is to kill
// itself once the pipe ends: once the test process is gone, however it
// ended. go test's -timeout, or a signal, ends it without its cleanup,
// which kills the children; a server was left running, on its port and
// its PostgreSQL connections, for good.
const testPipeEnv = "KEYWARD_TEST_PIPE"

// tieToTest makes child, a keyward of this test process, end with it
// (testPipeEnv). child.Env is set already.
func tieToTest(child *exec.Cmd) {
	// The write end stays open, held by child, until child is waited for.
	if _, err := child.StdinPipe(); err != nil {
		panic(err) // only once started
	}
	child.Env = append(child.Env, testPipeEnv+"=1")
}

// endWithTest, in a child keyward of a test, kills it once the test
// process that started it is gone (testPipeEnv).
func endWithTest() {
	if os.Getenv(testPipeEnv) != "1" {
		return
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		killSelf()
	}()
}

// TestCrashMasterKeyRotate kills `keyward master-key rotate` with SIGKILL
// at each step of replacing <data-dir>/master.key, whose new key is
// written beside it before the store is re-encrypted in its one
// transaction and put in place after, on SQLite and PostgreSQL: a server
// starts afterwards with the key in master.key or, where the kill left
// the old one there, with the new key, which the refusal of the old one
// names; either way no signing key and no client secret is lost.
func TestCrashMasterKeyRotate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, b := range crashBackends {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range []struct {
				name   string
				killAt string
				opens  string // the key that opens the store afterwards: "old" or "new"
				file   string // the key in master.key afterwards
			}{
				{"killed before the store is re-encrypted, its new master.key written", "publish:master.key", "old", "old"},
				{"killed before master.key is replaced", "rename:master.key", "new", "old"},
				{"killed after master.key is replaced, before its directory is synced", "renamed:master.key", "new", "new"},
				{"not killed", "", "new", "new"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					db := b.db(t)
					dir := t.TempDir()
					addr := reservePort(t)
					srv := startCrashServer(t, dir, db, addr)
					creds := []string{"--credentials", filepath.Join(dir, "admin-key.json")}
					runCLI(t, append([]string{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read"}, creds...)...)
					var acct struct {
						ClientID string `json:"client_id"`
						Email    string `json:"email"`
					}
					json.Unmarshal([]byte(runCLI(t, append([]string{"sa", "create", "load", "--project", "crash", "--scopes", "orders.read", "-o", "json"}, creds...)...)), &acct)
					var sec struct {
						Secret string `json:"client_secret"`
					}
					json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "create", acct.Email, "-o", "json"}, creds...)...)), &sec)
					signingKeys := func() []string {
						var v struct {
							Keys []admin.SigningKeyView `json:"signing_keys"`
						}
						json.Unmarshal([]byte(runCLI(t, append([]string{"signing-keys", "list", "-o", "json"}, creds...)...)), &v)
						return ids(v.Keys, func(k admin.SigningKeyView) string { return k.KeyID })
					}
					before := signingKeys()
					srv.kill()

					oldKey := strings.TrimSpace(string(mustReadFile(t, filepath.Join(dir, "master.key"))))
					newKey := strings.Repeat("5a", 16) + strings.Repeat("c3", 16)
					newKeyFile := filepath.Join(t.TempDir(), "new.key")
					mustWriteFile(t, newKeyFile, []byte(newKey+"\n"))
					args := []string{"master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile}
					if db != "" {
						args = append(args, "--db", db)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					rotate := exec.CommandContext(ctx, os.Args[0], args...)
					rotate.Env = append(os.Environ(), "KEYWARD_TEST_RUN_MAIN=1", killAtEnv+"="+tt.killAt)
					tieToTest(rotate)
					out, err := rotate.CombinedOutput()
					if ctx.Err() != nil {
						t.Fatalf("master-key rotate did not end within 2 minutes, and was killed:\n%s", out)
					}
					if tt.killAt == "" && err != nil {
						t.Fatalf("master-key rotate: %v\n%s", err, out)
					}
					if tt.killAt != "" && err == nil {
						t.Fatalf("master-key rotate was to be killed at %s, but it ended with %v:\n%s", tt.killAt, err, out)
					}

					want := map[string]string{"old": oldKey, "new": newKey}
					if got := strings.TrimSpace(string(mustReadFile(t, filepath.Join(dir, "master.key")))); got != want[tt.file] {
						t.Errorf("master.key holds %s, want the %s key", got, tt.file)
					}
					srv, err = tryCrashServer(t, dir, db, addr)
					if tt.file != tt.opens {
						// master.key does not open the store: the server
						// says so, naming the rotation, and starts with
						// the new key.
						if err == nil {
							t.Fatalf("the server started with the %s key in master.key, on a store sealed under the %s one", tt.file, tt.opens)
						}
						if !strings.Contains(err.Error(), "after a rotate, the new key") {
							t.Errorf("the refusal of master.key does not point to the new key of the rotation:\n%v", err)
						}
						srv = startCrashServer(t, dir, db, addr, "--master-key-file", newKeyFile)
					} else if err != nil {
						t.Fatal(err)
					}
					if after := signingKeys(); !slices.Equal(after, before) {
						t.Errorf("signing keys before the rotation %v, after %v", before, after)
					}
					req, _ := http.NewRequest("POST", srv.base()+"/token", strings.NewReader("grant_type=client_credentials"))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth(acct.ClientID, sec.Secret)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("after the rotation the client secret gets %d %s", resp.StatusCode, body)
					}
					srv.kill()
					st := srv.store()
					if _, err := storage.VerifyLog(context.Background(), st); err != nil {
						t.Errorf("after the rotation the audit chain does not verify: %v", err)
					}
					if n, want := len(auditedEvents(t, st, "master_key.rotate")), map[string]int{"old": 0, "new": 1}[tt.opens]; n != want {
						t.Errorf("the log holds %d master_key.rotate events, want %d", n, want)
					}
				})
			}
		})
	}
}

// TestCrashFirstStart kills a first start with SIGKILL at each step of
// writing master.key and admin-key.json, on SQLite and PostgreSQL: the
// master key's file written but not in place (nothing sealed yet), the
// administrator key file written but not in place (the store sealed, no
// administrator yet), and in place but its key not stored. The next
// start comes up on what the killed one left, its admin-key.json
// administers the server, and the audit chain verifies.
func TestCrashFirstStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, b := range crashBackends {
		t.Run(b.name, func(t *testing.T) {
			for _, killAt := range []string{"publish:master.key", "publish:admin-key.json", "linked:admin-key.json"} {
				t.Run(killAt, func(t *testing.T) {
					db := b.db(t)
					dir := t.TempDir()
					addr := reservePort(t)
					args := []string{"serve", "--data-dir", dir, "--listen", addr, "--log-level", "warn"}
					if db != "" {
						args = append(args, "--db", db)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					first := exec.CommandContext(ctx, os.Args[0], args...)
					first.Env = append(os.Environ(), "KEYWARD_TEST_RUN_MAIN=1", killAtEnv+"="+killAt)
					tieToTest(first)
					out, err := first.CombinedOutput()
					if ctx.Err() != nil {
						t.Fatalf("the first start was not killed at %s within 2 minutes:\n%s", killAt, out)
					}
					if ws, ok := first.ProcessState.Sys().(syscall.WaitStatus); err == nil || !ok || ws.Signal() != syscall.SIGKILL {
						t.Fatalf("the first start was to be killed at %s, but it ended with %v:\n%s", killAt, err, out)
					}
					srv, err := tryCrashServer(t, dir, db, addr)
					if err != nil {
						t.Fatalf("after a first start killed at %s: %v", killAt, err)
					}
					creds := []string{"--credentials", filepath.Join(dir, "admin-key.json")}
					if err := runCLIErr(t, append([]string{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read"}, creds...)...); err != nil {
						t.Errorf("after a first start killed at %s, admin-key.json does not administer the server: %v", killAt, err)
					}
					srv.kill()
					if _, err := storage.VerifyLog(context.Background(), srv.store()); err != nil {
						t.Errorf("after a first start killed at %s the audit chain does not verify: %v", killAt, err)
					}
				})
			}
		})
	}
}

// orphanDirEnv is, for TestCrashServerEndsWithTest run in a child test
// process, the data directory of the server that child starts.
const orphanDirEnv = "KEYWARD_TEST_ORPHAN_DIR"

// TestCrashServerEndsWithTest: a crash test's child server ends when the
// test process that started it ends without its cleanup (go test's
// -timeout, a signal). It kept running, on its port and data directory,
// after the test was gone.
func TestCrashServerEndsWithTest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	if dir := os.Getenv(orphanDirEnv); dir != "" {
		// The test process that goes: it starts a server, says where
		// and which, and ends as a -timeout ends it, cleaning up nothing.
		s := startCrashServer(t, dir, "", reservePort(t))
		fmt.Printf("%s %d\n", s.addr, s.cmd.Process.Pid)
		os.Exit(0)
	}
	mid := exec.Command(os.Args[0], "-test.run=^TestCrashServerEndsWithTest$", "-test.count=1")
	mid.Env = append(os.Environ(), orphanDirEnv+"="+t.TempDir())
	out, err := mid.Output()
	var addr string
	var pid int
	if _, serr := fmt.Sscan(string(out), &addr, &pid); serr != nil {
		t.Fatalf("the test process that started a server said %q (%v)", out, err)
	}
	answers := func() bool {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); answers(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill() // it answers still: the server, not another process since
			}
			t.Fatalf("the server %s (process %d) still answered 30 s after the test process that started it ended", addr, pid)
		}
	}
}
