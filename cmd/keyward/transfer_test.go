package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2/google"

	"github.com/keyward/keyward/internal/exportfile"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/transfer"
)

// TestExportImport moves a served SQLite store to PostgreSQL with the CLI
// and checks that the key file still gets tokens there.
func TestExportImport(t *testing.T) {
	master := filepath.Join(t.TempDir(), "master.key")
	mustWriteFile(t, master, []byte(strings.Repeat("cd", 32)))
	src := startServer(t, func(m *Main) { m.Config.MasterKeyFile = master })
	_, email := setupAccount(t, src, "mover")
	keyFile := filepath.Join(t.TempDir(), "key.json")
	runCLI(t, "keys", "create", email, "--out", keyFile, "--credentials", src.AdminKeyFile)
	dump := filepath.Join(t.TempDir(), "export.json")
	runCLI(t, "export", "--data-dir", src.Config.DataDir, "--out", dump)
	// It holds the secrets' hashes, the sealed signing keys and pepper.
	if fi, err := os.Stat(dump); err != nil || runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	dsn := pgtest.SchemaDSN(t)
	out := runCLI(t, "import", "--db", dsn, dump)
	if !strings.Contains(out, "2 accounts") {
		t.Fatalf("import said %q", out)
	}
	dst := startServer(t, func(m *Main) {
		m.Config.DB, m.Config.MasterKeyFile = dsn, master
		m.Config.Issuer = src.Issuer // clients' key files name the old URL
		m.Config.Listen = "127.0.0.1:0"
	})
	if dst.AdminKeyFile != "" {
		t.Fatal("the imported store was bootstrapped again")
	}
	if dst.signer.CurrentKeyID() != src.signer.CurrentKeyID() {
		t.Fatal("the signing keys did not move")
	}
	// The old key file gets a token from the new server (same issuer).
	data := mustReadFile(t, keyFile)
	conf, err := google.JWTConfigFromJSON(data, "orders.read")
	if err != nil {
		t.Fatal(err)
	}
	conf.Audience, conf.TokenURL = conf.TokenURL, dst.URL()+"/token"
	if _, err := conf.TokenSource(context.Background()).Token(); err != nil {
		t.Fatalf("the moved account gets no token: %v", err)
	}
}

// TestExportOutExists: export --out refuses a file that exists (a dangling
// symbolic link too), leaving it as it was, as the other commands that
// write an output file refuse theirs; --force replaces it. It replaced
// the file silently.
func TestExportOutExists(t *testing.T) {
	src := startServer(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		make    func(path string) error // what is at --out before
		force   bool
		refused bool
	}{
		{"new file", func(string) error { return nil }, false, false},
		{"existing file", func(p string) error { return os.WriteFile(p, []byte("kept\n"), 0o600) }, false, true},
		{"dangling link", func(p string) error { return os.Symlink(filepath.Join(dir, "nowhere"), p) }, false, true},
		{"existing file, --force", func(p string) error { return os.WriteFile(p, []byte("kept\n"), 0o600) }, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "export.json")
			if err := tt.make(out); err != nil {
				t.Skip(err) // no symbolic links here
			}
			args := []string{"export", "--data-dir", src.Config.DataDir, "--out", out}
			if tt.force {
				args = append(args, "--force")
			}
			err := runCLIErr(t, args...)
			if !tt.refused {
				if err != nil {
					t.Fatalf("export: %v", err)
				}
				if b, err := os.ReadFile(out); err != nil || !bytes.Contains(b, []byte(`"format": "keyward-export/2"`)) {
					t.Fatalf("--out holds %.40q (%v), want the export", b, err)
				}
				return
			}
			want := "--out " + out + " already exists; name a new file, or pass --force to replace it"
			if _, ok := errors.AsType[usageError](err); ok || err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("export: %v; want a failure (exit 1) saying %q", err, want)
			}
			if b, _ := os.ReadFile(out); tt.name == "existing file" && string(b) != "kept\n" {
				t.Errorf("the refused export left %.40q in the file, want it as it was", b)
			}
			if fi, err := os.Lstat(out); err != nil || tt.name == "dangling link" && fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the refused export replaced the link: %v", err)
			}
		})
	}
}

// TestServeImportedWithoutMasterKey: serve on an imported store without the
// exported store's master key refuses to generate one (a new key opens
// nothing there) and says which key to give; with it, serve starts.
func TestServeImportedWithoutMasterKey(t *testing.T) {
	master := filepath.Join(t.TempDir(), "master.key")
	mustWriteFile(t, master, []byte(strings.Repeat("ab", 32)))
	src := startServer(t, func(m *Main) { m.Config.MasterKeyFile = master })
	dump := filepath.Join(t.TempDir(), "export.json")
	runCLI(t, "export", "--data-dir", src.Config.DataDir, "--out", dump)

	for _, tc := range []struct {
		name string
		db   func(t testing.TB) string
	}{
		{"sqlite", func(testing.TB) string { return "" }},
		{"postgres", pgtest.SchemaDSN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, dsn := t.TempDir(), tc.db(t)
			args := []string{"import", "--data-dir", dir, dump}
			if dsn != "" {
				args = append(args, "--db", dsn)
			}
			if out := runCLI(t, args...); !strings.Contains(out, "--master-key-file") {
				t.Errorf("import said %q; want it to name the master key to start with", out)
			}
			t.Setenv("KEYWARD_MASTER_KEY", "")
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir, cfg.DB = "127.0.0.1:0", dir, dsn
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := m.Open(context.Background())
			m.Close()
			if err == nil || !strings.Contains(err.Error(), "sealed with another master key") ||
				!strings.Contains(err.Error(), "--master-key-file") || !strings.Contains(err.Error(), "KEYWARD_MASTER_KEY") ||
				strings.Contains(err.Error(), "rotate") {
				t.Fatalf("serve without the master key: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "master.key")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("serve created master.key: %v", err)
			}
			dst := startServer(t, func(m *Main) { m.Config.DataDir, m.Config.DB, m.Config.MasterKeyFile = dir, dsn, master })
			if dst.signer.CurrentKeyID() != src.signer.CurrentKeyID() {
				t.Fatal("the signing keys did not move")
			}
		})
	}
}

// TestServeWithoutMasterKeyAfterOthers: a server started without the
// master key on a store another server sealed (a replica on PostgreSQL, or
// a restart that forgot --master-key-file) is told to give the key the
// store's servers use, not only that of an import or a back-up, which would
// send its operator looking for an export that never was.
func TestServeWithoutMasterKeyAfterOthers(t *testing.T) {
	master := filepath.Join(t.TempDir(), "master.key")
	mustWriteFile(t, master, []byte(strings.Repeat("cd", 32)))
	for _, tc := range []struct {
		name string
		db   func(t testing.TB) string
	}{
		{"sqlite restart", func(testing.TB) string { return "" }},
		{"postgres replica", pgtest.SchemaDSN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, dsn := t.TempDir(), tc.db(t)
			_, stop := launchServer(t, func(m *Main) { m.Config.DataDir, m.Config.DB, m.Config.MasterKeyFile = dir, dsn, master })
			if dsn == "" {
				stop() // one SQLite server per data directory
			} else {
				defer stop()
				dir = t.TempDir() // the replica's own
			}
			t.Setenv("KEYWARD_MASTER_KEY", "")
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir, cfg.DB = "127.0.0.1:0", dir, dsn
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := m.Open(context.Background())
			m.Close()
			if err == nil || !strings.Contains(err.Error(), "the one every server on this store uses") {
				t.Fatalf("serve without the master key: %v; want it to ask for the key the store's servers use", err)
			}
		})
	}
}

// TestTransferSummary: export and import say how many organizations,
// users, project placements and delegations they moved, as well as APIs,
// accounts and keys; a summary without them reads as if the delegation
// directory had stayed behind.
func TestTransferSummary(t *testing.T) {
	src := startServer(t)
	clientID, _ := setupAccount(t, src, "mover")
	admin := []string{"--credentials", src.AdminKeyFile}
	for _, args := range [][]string{
		{"org", "create", "example.com"},
		{"users", "add", "alice@example.com", "bob@example.com"},
		{"org", "add-project", "example.com", "billing"},
		{"delegation", "grant", "--org", "example.com", "--client-id", clientID, "--scopes", "orders.read"},
	} {
		runCLI(t, append(args, admin...)...)
	}
	dump := filepath.Join(t.TempDir(), "export.json")
	var stderr bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs([]string{"export", "--data-dir", src.Config.DataDir, "--out", dump})
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	imported := runCLI(t, "import", "--data-dir", t.TempDir(), dump)
	const want = "1 organization with 2 users, 1 project placement and 1 delegation"
	for name, out := range map[string]string{"export": stderr.String(), "import": imported} {
		if !strings.Contains(out, want) {
			t.Errorf("%s said %q; want it to name %q", name, out, want)
		}
	}
}

// TestDumpSummary counts in the singular what there is one of: it used to
// say "1 APIs, 1 accounts".
func TestDumpSummary(t *testing.T) {
	one := transfer.Dump{APIs: make([]storage.API, 1), Accounts: make([]storage.Account, 1), Keys: make([]storage.Key, 1),
		Secrets: make([]storage.Secret, 1), SigningKeys: make([]storage.SigningKey, 1), Orgs: make([]storage.Org, 1),
		Users: make([]storage.User, 1), Projects: make([]storage.ProjectOrg, 1), Grants: make([]storage.Grant, 1)}
	two := transfer.Dump{APIs: make([]storage.API, 2), Accounts: make([]storage.Account, 2), Keys: make([]storage.Key, 2),
		Secrets: make([]storage.Secret, 2), SigningKeys: make([]storage.SigningKey, 2), Orgs: make([]storage.Org, 2),
		Users: make([]storage.User, 2), Projects: make([]storage.ProjectOrg, 2), Grants: make([]storage.Grant, 2)}
	for _, tt := range []struct {
		d    transfer.Dump
		want string
	}{
		{transfer.Dump{}, "0 APIs, 0 accounts, 0 keys, 0 secrets, 0 signing keys, 0 organizations with 0 users, 0 project placements and 0 delegations"},
		{one, "1 API, 1 account, 1 key, 1 secret, 1 signing key, 1 organization with 1 user, 1 project placement and 1 delegation"},
		{two, "2 APIs, 2 accounts, 2 keys, 2 secrets, 2 signing keys, 2 organizations with 2 users, 2 project placements and 2 delegations"},
	} {
		if got := dumpSummary(tt.d); got != tt.want {
			t.Errorf("dumpSummary = %q, want %q", got, tt.want)
		}
	}
}

// TestImportWarns: the export of a store served with --account-domain
// ending in "." (which an older release took for a new store, and serve
// still takes for one that holds accounts) holds the administrator
// admin@keyward.iam.example.com., an email the admin API would refuse on
// create; import brings it in, and says so on stderr, naming the account,
// before the summary. Before, import refused the file: the backup could
// not be restored.
func TestImportWarns(t *testing.T) {
	src := startServer(t, func(m *Main) {
		m.Config.AccountDomain = "iam.example.com."
		seedAccounts(t, m.Config)
	})
	dump := filepath.Join(t.TempDir(), "export.json")
	runCLI(t, "export", "--data-dir", src.Config.DataDir, "--out", dump)

	var out, errOut bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs([]string{"import", "--data-dir", t.TempDir(), dump})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("import: %v", err)
	}
	if !strings.HasPrefix(out.String(), "imported ") {
		t.Fatalf("import said %q", out.String())
	}
	want := `its email "admin@keyward.iam.example.com." is not one the admin API would accept now; it is imported as it is`
	if !strings.HasPrefix(errOut.String(), "warning: the service account ") || !strings.Contains(errOut.String(), want) {
		t.Fatalf("import's stderr %q, want a warning saying %q", errOut.String(), want)
	}
}

// TestImportWarnsPepperKept: the file of a release that exported no
// pepper, with a client secret but no signing keys, imported over a
// store where a first start sealed a pepper, which stays, is imported
// with a warning that its secret needs that start's master key to be the
// exported store's. It was imported silently.
func TestImportWarnsPepperKept(t *testing.T) {
	src := startServer(t)
	_, email := setupAccount(t, src, "pepper")
	runCLI(t, "secrets", "create", email, "--credentials", src.AdminKeyFile)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(runCLI(t, "export", "--data-dir", src.Config.DataDir)), &fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["secrets"]; !ok {
		t.Fatalf("the export has no secrets: %s", fields)
	}
	delete(fields, "sealed_values")
	delete(fields, "signing_keys")
	b, _ := json.Marshal(fields)
	file := filepath.Join(t.TempDir(), "export.json")
	mustWriteFile(t, file, b)

	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "keyward.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.CreateSealedValue(ctx, storage.SealedValue{Name: "client-secret-pepper", Sealed: []byte{1}, CreatedAt: time.Now()},
		storage.AuditEvent{Time: time.Now(), Action: "sealed_value.create", Outcome: storage.OutcomeSuccess, Actor: "system"})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs([]string{"import", "--data-dir", dir, file})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("import: %v", err)
	}
	want := "warning: the file, of a release that exported no client-secret pepper, has client secrets but no signing keys"
	if !strings.Contains(errOut.String(), want) {
		t.Fatalf("import's stderr %q, want a warning saying %q", errOut.String(), want)
	}
}

// TestImportStdin: import - reads the export from standard input, as
// export writes it to standard output, so that one pipes into the other;
// it said "open -: no such file or directory".
func TestImportStdin(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
		fails          bool
	}{
		{"an export", `{"format":"keyward-export/2","orgs":[{"domain":"example.com","created_at":"2026-01-01T00:00:00Z"}]}`, "imported 0 APIs, 0 accounts, 0 keys, 0 secrets, 0 signing keys, 1 organization", false},
		{"no export", `{"type":"service_account"}`, "standard input is not a file 'keyward export' writes: it is a service-account key file", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := newRootCommand()
			cmd.SetArgs([]string{"import", "--data-dir", t.TempDir(), "-"})
			cmd.SetIn(strings.NewReader(tt.in))
			cmd.SetOut(&out)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(context.Background())
			got := out.String()
			if err != nil {
				got = err.Error()
			}
			if (err != nil) != tt.fails || !strings.Contains(got, tt.want) {
				t.Fatalf("import - said %q (error: %v), want %q", got, err != nil, tt.want)
			}
		})
	}
}

// TestImportStdinDevice: import - refuses a device for its standard
// input, as it refuses one named for its file: a terminal would be waited
// on, /dev/zero read until memory ran out.
func TestImportStdinDevice(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no /dev/null")
	}
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := newRootCommand()
	cmd.SetArgs([]string{"import", "--data-dir", t.TempDir(), "-"})
	cmd.SetIn(f)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	want := "standard input is not a file 'keyward export' writes: it is a character device"
	if err := cmd.ExecuteContext(context.Background()); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("import - from /dev/null: %v, want %q", err, want)
	}
}

// An export with a byte order mark is parsed where it is, not copied
// whole to replace the mark: parsing it allocates no more bytes than
// parsing the same export without the mark, give or take far less than
// the file (a copy is the whole file). It compared the number of
// allocations, which differs by a few between runs under -race, which
// drops sync.Pool items at random.
func TestImportByteOrderMarkNoCopy(t *testing.T) {
	data := bigExport(t, 50)
	withBOM := append([]byte("\ufeff"), data...)
	allocated := func(b []byte) uint64 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		const runs = 5
		parse := func() {
			if _, err := exportfile.Parse(b); err != nil {
				t.Fatal(err)
			}
		}
		parse() // warm up
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			parse()
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / runs
	}
	without, with := allocated(data), allocated(withBOM)
	if with > without+uint64(len(data))/2 {
		t.Fatalf("parsing with a byte order mark allocated %d bytes, %d without: the %d-byte file was copied", with, without, len(data))
	}
}

// TestPrintWarnings: import prints at most 20 warnings, then how many more
// there are, as its refusals name at most 20 items.
func TestPrintWarnings(t *testing.T) {
	for _, tt := range []struct {
		n         int
		lines     int
		wantFinal string
	}{
		{0, 0, ""},
		{1, 1, "warning: w0\n"},
		{20, 20, "warning: w19\n"},
		{21, 21, "warning: and 1 more\n"},
		{5000, 21, "warning: and 4980 more\n"},
	} {
		var ws []string
		for i := range tt.n {
			ws = append(ws, fmt.Sprintf("w%d", i))
		}
		var b strings.Builder
		printWarnings(&b, ws)
		out := b.String()
		if got := strings.Count(out, "\n"); got != tt.lines || !strings.HasSuffix(out, tt.wantFinal) {
			t.Errorf("%d warnings: %d lines ending %q, want %d ending %q", tt.n, got, out[max(0, len(out)-60):], tt.lines, tt.wantFinal)
		}
	}
}

// cancelOnWrite is the writer of an export's file that cancels the
// command's context on its first write, as a SIGINT or SIGTERM would.
type cancelOnWrite struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c cancelOnWrite) Write(p []byte) (int, error) {
	c.cancel()
	return c.w.Write(p)
}

// TestExportInterrupted: an export --out interrupted (its context
// cancelled, as SIGINT and SIGTERM do) while it writes the file stops,
// says so, and leaves nothing: neither --out nor its temporary file.
// Before, it wrote and put the file in place regardless. A temporary
// file a killed export left (SIGKILL) is not in the way of the next,
// which leaves it, since another export may be writing it.
func TestExportInterrupted(t *testing.T) {
	src := startServer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "export.json")
	unhooked := writingFile
	defer func() { writingFile = unhooked }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writingFile = func(_ string, w io.Writer) io.Writer { return cancelOnWrite{w, cancel} }
	err := runCLIErrContext(ctx, "export", "--data-dir", src.Config.DataDir, "--out", out)
	want := "export interrupted: --out " + out + " was not written"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("export interrupted while it wrote: %v, want an error saying %q", err, want)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("the interrupted export left %v, want nothing", names)
	}

	writingFile = unhooked
	stale := filepath.Join(dir, ".export.json.123456")
	mustWriteFile(t, stale, []byte(`{"format": "keyw`))
	runCLI(t, "export", "--data-dir", src.Config.DataDir, "--out", out)
	if b, err := os.ReadFile(out); err != nil || !bytes.Contains(b, []byte(`"format": "keyward-export/2"`)) {
		t.Fatalf("--out beside a stale temporary file holds %.40q (%v), want the export", b, err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{".export.json.123456", "export.json"}) {
		t.Fatalf("after the export the directory holds %v, want the stale temporary file and the export", names)
	}
}

// An export --out interrupted whose temporary file could not be removed
// names that file, to be removed, instead of saying nothing is left.
func TestExportInterruptedTempLeft(t *testing.T) {
	src := startServer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "export.json")
	defer func(w func(string, io.Writer) io.Writer, r func(string) error) { writingFile, removeFile = w, r }(writingFile, removeFile)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writingFile = func(_ string, w io.Writer) io.Writer { return cancelOnWrite{w, cancel} }
	removeFile = func(name string) error {
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.EIO}
	}
	err := runCLIErrContext(ctx, "export", "--data-dir", src.Config.DataDir, "--out", out)
	names := dirNames(t, dir)
	if len(names) != 1 || !strings.HasPrefix(names[0], ".export.json.") {
		t.Fatalf("the directory holds %v, want the temporary file alone", names)
	}
	want := "export interrupted: --out " + out + " was not written; its temporary file " + filepath.Join(dir, names[0]) + " is left, which could not be removed (input/output error): remove it"
	if err == nil || err.Error() != want {
		t.Fatalf("export interrupted, its temporary file not removed: %v, want %q", err, want)
	}
}

// TestExportInterruptedReading: an export interrupted (its context
// cancelled, as SIGINT and SIGTERM do) while it opens or reads the store
// says so, and that nothing was written, to --out or to standard output;
// it showed the store's error, "postgres: list accounts: context
// canceled".
func TestExportInterruptedReading(t *testing.T) {
	src := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	out := filepath.Join(dir, "export.json")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", out}, "export interrupted: --out " + out + " was not written"},
		{nil, "export interrupted: nothing was written"},
	} {
		err := runCLIErrContext(ctx, append([]string{"export", "--data-dir", src.Config.DataDir}, tt.args...)...)
		if err == nil || err.Error() != tt.want {
			t.Errorf("export %v interrupted before the store was read: %v, want %q", tt.args, err, tt.want)
		}
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("the interrupted export left %v, want nothing", names)
	}
}

// TestImportInterrupted: an import interrupted (its context cancelled,
// as SIGINT and SIGTERM do) before it committed says so, and that nothing
// was imported; it showed the store's error, "nothing was imported:
// postgres: prepare auditHead: context canceled".
func TestImportInterrupted(t *testing.T) {
	src := startServer(t)
	dump := filepath.Join(t.TempDir(), "export.json")
	runCLI(t, "export", "--data-dir", src.Config.DataDir, "--out", dump)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	target := t.TempDir()
	err := runCLIErrContext(ctx, "import", "--data-dir", target, dump)
	if want := "import interrupted: nothing was imported"; err == nil || err.Error() != want {
		t.Errorf("import interrupted: %v, want %q", err, want)
	}
}

// cancelAtCommit is a store whose Load is cancelled as it ends: with
// commit set, after it committed (the cancel landing during COMMIT, whose
// answer is lost); lose also closes the store then, so that it cannot be
// read again.
type cancelAtCommit struct {
	storage.Storage
	cancel       context.CancelFunc
	commit, lose bool
}

func (s cancelAtCommit) Load(ctx context.Context, b storage.Bulk, evs []storage.AuditEvent) error {
	if !s.commit {
		s.cancel()
		return s.Storage.Load(ctx, b, evs)
	}
	if err := s.Storage.Load(ctx, b, evs); err != nil {
		return err
	}
	s.cancel()
	if s.lose {
		s.Storage.Close()
	}
	return fmt.Errorf("sqlite: commit: %w", ctx.Err())
}

// TestImportInterruptedAtCommit: an import interrupted (its context
// cancelled, as SIGINT and SIGTERM do) as its store commits reads the
// store again to say what became of it: imported (reported as any
// import), nothing imported, or, the store unread, not known. It said
// "import interrupted: nothing was imported" though the store held the
// file.
func TestImportInterruptedAtCommit(t *testing.T) {
	src := startServer(t)
	dump := filepath.Join(t.TempDir(), "export.json")
	runCLI(t, "export", "--data-dir", src.Config.DataDir, "--out", dump)
	empty := filepath.Join(t.TempDir(), "empty.json")
	mustWriteFile(t, empty, []byte(`{"format": "`+transfer.Format+`"}`))
	for _, tt := range []struct {
		name         string
		file         string
		commit, lose bool
		want         string // the error, or "" for an import done
		imported     bool   // whether the store holds the file's accounts
	}{
		{"before the commit", dump, false, false, "import interrupted: nothing was imported", false},
		{"after the commit", dump, true, false, "", true},
		{"after the commit, store lost", dump, true, true, "import interrupted, maybe as the store committed: whether the file was imported is not known; run the import again to see: it imports the file if it was not, and refuses it, naming what the store holds, if it was", true},
		{"empty file, before the commit", empty, false, false, "import interrupted: nothing was imported", false},
		{"empty file, after the commit", empty, true, false, "import interrupted: nothing was imported", false},
		{"empty file, store lost", empty, true, true, "import interrupted: nothing was imported", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			defer func(f func(context.Context, storage.Storage, transfer.Dump, time.Time) ([]string, error)) {
				importInto = f
			}(importInto)
			importInto = func(ctx context.Context, s storage.Storage, d transfer.Dump, now time.Time) ([]string, error) {
				return transfer.ImportWarnings(ctx, cancelAtCommit{s, cancel, tt.commit, tt.lose}, d, now)
			}
			target := t.TempDir()
			err := runCLIErrContext(ctx, "import", "--data-dir", target, tt.file)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || err.Error() != tt.want) {
				t.Fatalf("import interrupted: %v, want %q", err, tt.want)
			}
			// Run again, it imports what is not there yet.
			importInto = transfer.ImportWarnings
			err = runCLIErr(t, "import", "--data-dir", target, dump)
			if held := errors.Is(err, transfer.ErrNotEmpty); held != tt.imported || !held && err != nil {
				t.Errorf("import run again: %v; want it refused as the store holds the file: %v", err, tt.imported)
			}
		})
	}
}

// connReset is a commit's error with the connection lost once COMMIT may
// have been sent: storage.ErrCommitUnknown, as PostgreSQL's store wraps
// it.
type connReset struct{}

func (connReset) Error() string { return "connection reset" }

func (connReset) Is(target error) bool { return target == storage.ErrCommitUnknown }

// loadCommitLost is a store whose Load fails as a commit whose answer was
// lost (storage.ErrCommitUnknown): with commit set, after it committed,
// else with nothing written (a COMMIT the server may yet carry out); lose
// also closes the store then, so that it cannot be read again.
type loadCommitLost struct {
	storage.Storage
	commit, lose bool
}

func (s loadCommitLost) Load(ctx context.Context, b storage.Bulk, evs []storage.AuditEvent) error {
	if s.commit {
		if err := s.Storage.Load(ctx, b, evs); err != nil {
			return err
		}
	}
	if s.lose {
		s.Storage.Close()
	}
	return fmt.Errorf("postgres: commit: %w", connReset{})
}

// TestImportCommitLost: an import whose commit's answer was lost (the
// connection dropped during COMMIT, storage.ErrCommitUnknown), not
// interrupted, reads the store again as an interrupted one does: imported
// is reported as any import; found not imported, or the store unread, it
// is not known, as the server may carry the COMMIT out after the read. It
// said "nothing was imported" though the commit may have gone through. A
// file with nothing to import says nothing was imported, true either way.
func TestImportCommitLost(t *testing.T) {
	src := startServer(t)
	dump := filepath.Join(t.TempDir(), "export.json")
	runCLI(t, "export", "--data-dir", src.Config.DataDir, "--out", dump)
	empty := filepath.Join(t.TempDir(), "empty.json")
	mustWriteFile(t, empty, []byte(`{"format": "`+transfer.Format+`"}`))
	unknown := "whether the file was imported is not known (postgres: commit: connection reset); run the import again to see: it imports the file if it was not, and refuses it, naming what the store holds, if it was"
	for _, tt := range []struct {
		name         string
		file         string
		commit, lose bool
		want         string // the error, or "" for an import done
		imported     bool   // whether the store holds the file's accounts
	}{
		{"committed", dump, true, false, "", true},
		{"not committed", dump, false, false, unknown, false},
		{"committed, store lost", dump, true, true, unknown, true},
		{"not committed, store lost", dump, false, true, unknown, false},
		{"empty file", empty, true, false, "nothing was imported: postgres: commit: connection reset", false},
		{"empty file, store lost", empty, true, true, "nothing was imported: postgres: commit: connection reset", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func(f func(context.Context, storage.Storage, transfer.Dump, time.Time) ([]string, error)) {
				importInto = f
			}(importInto)
			importInto = func(ctx context.Context, s storage.Storage, d transfer.Dump, now time.Time) ([]string, error) {
				return transfer.ImportWarnings(ctx, loadCommitLost{s, tt.commit, tt.lose}, d, now)
			}
			target := t.TempDir()
			err := runCLIErr(t, "import", "--data-dir", target, tt.file)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || err.Error() != tt.want) {
				t.Fatalf("import whose commit's answer was lost: %v, want %q", err, tt.want)
			}
			importInto = transfer.ImportWarnings
			err = runCLIErr(t, "import", "--data-dir", target, dump)
			if held := errors.Is(err, transfer.ErrNotEmpty); held != tt.imported || !held && err != nil {
				t.Errorf("import run again: %v; want it refused as the store holds the file: %v", err, tt.imported)
			}
		})
	}
}

// TestImportLateCommit: on PostgreSQL, an import whose COMMIT was sent
// and its connection then lost reads the store again and, finding the
// file not imported yet, says whether it was imported is not known: the
// server carries the COMMIT out after that read, as here. It said
// "nothing was imported".
func TestImportLateCommit(t *testing.T) {
	src := startServer(t)
	dump := filepath.Join(t.TempDir(), "export.json")
	runCLI(t, "export", "--data-dir", src.Config.DataDir, "--out", dump)
	dsn := pgtest.SchemaDSN(t)
	p := newCommitHolder(t, dsn)
	defer func(f func(context.Context, storage.Storage, transfer.Dump, time.Time) ([]string, error)) {
		importInto = f
	}(importInto)
	importInto = func(ctx context.Context, s storage.Storage, d transfer.Dump, now time.Time) ([]string, error) {
		p.arm(func(client net.Conn) { client.Close() })
		return transfer.ImportWarnings(ctx, s, d, now)
	}
	err := runCLIErr(t, "import", "--db", p.dsn, "--data-dir", t.TempDir(), dump)
	if !p.wasHeld() {
		t.Fatalf("import: %v, and no COMMIT was held", err)
	}
	p.let() // the COMMIT reaches the server after the import read the store again
	if want := "whether the file was imported is not known ("; err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; run the import again to see: it imports the file if it was not, and refuses it, naming what the store holds, if it was") {
		t.Fatalf("import whose COMMIT landed after it read the store: %v, want it to start %q and say to run it again", err, want)
	}
	importInto = transfer.ImportWarnings
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		err := runCLIErr(t, "import", "--db", dsn, "--data-dir", t.TempDir(), dump)
		if errors.Is(err, transfer.ErrNotEmpty) {
			break
		}
		if err == nil || time.Since(start) > 30*time.Second {
			t.Fatalf("import run again: %v, want it refused as the late COMMIT stored the file", err)
		}
	}
}
