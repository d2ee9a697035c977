package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/exportfile"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/transfer"
)

func newExportCommand() *cobra.Command {
	cfg := DefaultConfig()
	var (
		applyConfig func() error
		out         string
		force       bool
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the store's APIs, accounts, keys and organizations as JSON",
		Long: `Read the store directly (no server needed) and write its configuration as
JSON: APIs, service accounts, the public halves of their keys, the keyed
hashes of their secrets, the sealed signing keys and secret pepper, and the
organizations with their users, policies and delegations. The audit log, used
assertion IDs, revocations and opaque tokens are not exported.

Secrets and signing keys stay usable only with the same master key: move
it along. 'keyward import' loads the file into a new store.

--out names a new file: one that exists is refused, as other commands
refuse to overwrite their output files, unless --force is given; one
made while the store is read is refused too, and left as it is. It is
written to a temporary file next to it, .NAME.<digits>, then put in
place: an export interrupted (Ctrl-C, SIGTERM) writes no --out and
removes that file; one killed outright (SIGKILL, a crash) may leave it,
with part of the export (mode 0600): remove it. It is in no later
export's way.

` + storeSettingsHelp,
		Example: `  keyward export --data-dir keyward-data --out keyward.json
  keyward import --db postgres://keyward@db/keyward keyward.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(); err != nil {
				return err
			}
			toFile := out != "" && out != "-"
			if toFile {
				// Before the store is read: a path that cannot be written
				// (a directory, which --force would not replace either),
				// then one that exists.
				if err := checkWritable(out, force); err != nil {
					return err
				}
				if _, err := os.Lstat(out); err == nil && !force {
					// Not a usage error: the command line may be right,
					// the file in the way (an earlier export, say).
					return fmt.Errorf("--out %s already exists; name a new file, or pass --force to replace it", out)
				}
			}
			// Interrupted while it opens or reads the store, it has
			// written nothing: it says so, not the store's "context
			// canceled".
			readErr := func(err error) error {
				if ctxErr := cmd.Context().Err(); ctxErr == nil || !errors.Is(err, ctxErr) {
					return err
				}
				if toFile {
					return fmt.Errorf("export interrupted: --out %s was not written", out)
				}
				return errors.New("export interrupted: nothing was written")
			}
			st, err := openMaintenanceStore(cmd.Context(), cfg, commandLogger(cmd))
			if err != nil {
				return readErr(err)
			}
			defer st.Close()
			d, err := transfer.Export(cmd.Context(), st, time.Now())
			if err != nil {
				return readErr(err)
			}
			b, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if !toFile {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			// Written, but its temporary file, a second name of it,
			// could not be removed: a warning names it.
			err, tempLeft := writtenTempLeft(writeOutFile(cmd.Context(), out, b, force))
			// The messages below name --out alone; sayInstead adds its
			// temporary file, when it could not be removed.
			if errors.Is(err, fs.ErrExist) && !force {
				// Made since it was checked for, and left as it is.
				return sayInstead(fmt.Errorf("--out %s already exists (made while the store was read); name a new file, or pass --force to replace it", out), err)
			} else if errors.Is(err, fs.ErrExist) {
				// --force renames over a file, but not over a directory
				// with something in it.
				return sayInstead(fmt.Errorf("--out %s is a directory (made while the store was read), which --force does not replace; name a new file", out), err)
			} else if ctxErr := cmd.Context().Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				if _, left := splitTempLeft(err); left != "" {
					return sayInstead(fmt.Errorf("export interrupted: --out %s was not written", out), err)
				}
				return fmt.Errorf("export interrupted: --out %s was not written, nor is any part of it left", out)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %s from %s to %s\n", dumpSummary(d), storeName(cfg), out)
			warnTempLeft(cmd.ErrOrStderr(), out, tempLeft)
			return nil
		},
	}
	applyConfig = cfg.addServerSettings(cmd.Flags(), "directory of the SQLite database to export")
	cmd.Flags().StringVar(&out, "out", "", "file to write, which must not exist (default: standard output)")
	cmd.Flags().BoolVar(&force, "force", false, "replace --out if it exists")
	return cmd
}

// dumpSummary counts what an export holds, the delegation directory too.
func dumpSummary(d transfer.Dump) string {
	return fmt.Sprintf("%s, %s, %s, %s, %s, %s with %s, %s and %s",
		counted(len(d.APIs), "API"), counted(len(d.Accounts), "account"), counted(len(d.Keys), "key"), counted(len(d.Secrets), "secret"),
		counted(len(d.SigningKeys), "signing key"), counted(len(d.Orgs), "organization"), counted(len(d.Users), "user"),
		counted(len(d.Projects), "project placement"), counted(len(d.Grants), "delegation"))
}

func newImportCommand() *cobra.Command {
	cfg := DefaultConfig()
	var applyConfig func() error
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Load an export into a new, empty store",
		Long: `Load a file written by 'keyward export' into a store that has no accounts,
organizations or APIs yet but the file's (run it before the first 'keyward
serve' on that store; one that refuses it says what the store holds). Every
imported item is audited. The import is one transaction: a file it refuses
(it names each item that refers to an account or organization the file does
not hold, lacks a value the store needs, or repeats one the store keeps
unique) or an import that fails or is killed part way leaves the store as it
was, so it can be run again. An item with a value the admin API would refuse
now (an email, a label or a scope of a store made before a rule, or an
organization under the --account-domain of these settings) is imported as it
is, with a warning on stderr naming it. Start the server with the master key
of the exported store (--master-key-file or KEYWARD_MASTER_KEY): the signing
keys and the secret pepper are sealed under it, and 'keyward serve' refuses
to generate a new one for a store that holds them.

A FILE of - reads the export from standard input.

` + storeSettingsHelp + `

It creates the schema of a database that has none. One whose schema is
older than this release's is left as it is and refused, since a release
still running may serve from it: run 'keyward migrate' first if that
store is the one meant. With no-migrate set (--no-migrate,
KEYWARD_NO_MIGRATE or the --config file), the schema must be up to date
already.`,
		Example: `  keyward import --data-dir keyward-data keyward.json
  keyward import --config /etc/keyward/keyward.yaml keyward.json
  keyward export --data-dir keyward-data |
    keyward import --db postgres://keyward@db/keyward -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyConfig(); err != nil {
				return err
			}
			if err := checkDB(cfg.flag("db"), cfg.DB); err != nil {
				return usageError{err}
			}
			name := args[0]
			var (
				b   []byte
				err error
			)
			if name == "-" {
				// keyward export | keyward import --db … -
				name = "standard input"
				if f, ok := cmd.InOrStdin().(*os.File); ok {
					b, err = readExport(f, name)
				} else {
					b, err = io.ReadAll(cmd.InOrStdin())
				}
			} else {
				b, err = readExportFile(name)
			}
			if err != nil {
				return err
			}
			d, err := exportfile.Parse(b)
			if _, ok := errors.AsType[*exportfile.ValueError](err); ok {
				return fmt.Errorf("%s: %w", name, err)
			} else if err != nil {
				return fmt.Errorf("%s is not a file 'keyward export' writes: %w", name, err)
			}
			// Interrupted before it commits, it has imported nothing: it
			// says so, not the store's "context canceled". Interrupted as
			// the store committed, or its COMMIT's answer lost, the import
			// reads the store again: done, it is reported as any other;
			// else it may not be known.
			const runAgain = "run the import again to see: it imports the file if it was not, and refuses it, naming what the store holds, if it was"
			interrupted := func(err error) error {
				ctxErr := cmd.Context().Err()
				cancelled := ctxErr != nil && errors.Is(err, ctxErr)
				unknown := errors.Is(err, transfer.ErrOutcomeUnknown)
				switch {
				case cancelled && unknown:
					return errors.New("import interrupted, maybe as the store committed: whether the file was imported is not known; " + runAgain)
				case cancelled:
					return errors.New("import interrupted: nothing was imported")
				case unknown:
					return fmt.Errorf("%w; %s", err, runAgain)
				}
				return err
			}
			cfg.migrateNewOnly = true
			st, err := openStore(cmd.Context(), cfg, commandLogger(cmd))
			if err != nil {
				return interrupted(err)
			}
			defer st.Close()
			unlock, err := lockForMaintenance(cfg, "keyward import")
			if err != nil {
				return err
			}
			defer unlock()
			now := time.Now()
			log := commandLogger(cmd)
			waitLogged := loadWaiting{st, func() {
				log.Warn("waiting for a server's start on this store, a master-key rotate of it or another import into it, to end: it holds the store's first-start lock (interrupt to stop the import)", "store", storeName(cfg))
			}}
			warnings, err := importInto(cmd.Context(), waitLogged, d, now)
			if err != nil {
				return interrupted(err)
			}
			printWarnings(cmd.ErrOrStderr(), append(warnings, transfer.Warnings(d, cfg.AccountDomain, now)...))
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s into %s\n", dumpSummary(d), storeName(cfg))
			fmt.Fprintln(cmd.OutOrStdout(), "start the server with the master key of the server the export came from: --master-key-file FILE or KEYWARD_MASTER_KEY")
			return nil
		},
	}
	applyConfig = cfg.addServerSettings(cmd.Flags(), "directory of the SQLite database to import into (created if missing)", "no-migrate", "account-domain")
	return cmd
}

// importInto imports a dump into the store; tests replace it to cancel
// an import as its store commits.
var importInto = transfer.ImportWarnings

// loadWaiting is a store whose Load calls waiting before it waits for a
// server's start on the store to end (storage.Bulk.Waiting), as serve
// says when it waits for an import.
type loadWaiting struct {
	storage.Storage
	waiting func()
}

func (s loadWaiting) Load(ctx context.Context, b storage.Bulk, evs []storage.AuditEvent) error {
	b.Waiting = s.waiting
	return s.Storage.Load(ctx, b, evs)
}

// maxWarnings is how many of import's warnings are printed, as its
// refusals name at most 20 items: an old store with thousands of items the
// admin API would now refuse says how many, not each.
const maxWarnings = 20

// printWarnings writes import's warnings to w, one a line, at most
// maxWarnings of them and then how many more there are.
func printWarnings(w io.Writer, warnings []string) {
	for i, s := range warnings {
		if i == maxWarnings {
			fmt.Fprintf(w, "warning: and %d more\n", len(warnings)-maxWarnings)
			return
		}
		fmt.Fprintf(w, "warning: %s\n", s)
	}
}

// readExportFile reads the file import is given: a regular file, or a
// pipe (<(gunzip -c …)), but no device, which would be read until memory
// ran out (/dev/zero) or for ever. An export's size grows with the store,
// so a regular file's is not bounded.
func readExportFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readExport(f, path)
}

// readExport reads f, the file of an import that name names: standard
// input too, which may be a terminal or /dev/zero as well as a pipe, or a
// socket, read as a pipe: Node.js (libuv) gives a child process UNIX
// sockets for the stdio it pipes. Past its first MiB it reads only up
// to a byte that no JSON has (jsonBytes), for exportfile.Parse to say what
// is wrong.
func readExport(f *os.File, name string) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if m := fi.Mode(); m&(os.ModeDevice|os.ModeCharDevice) != 0 || m.IsDir() {
		return nil, fmt.Errorf("%s is not a file 'keyward export' writes: it is a %s; give the export's file (or a pipe)", name, fileKind(m))
	}
	var buf bytes.Buffer
	if n := fi.Size(); fi.Mode().IsRegular() && n > 0 {
		// Read into a buffer of its size, as os.ReadFile does, not one
		// that io.ReadAll grows (up to twice the file) as it reads; but
		// at most exportPrealloc at first: a sparse file's size
		// (truncate -s 1T) is no memory to ask for at once.
		buf.Grow(int(min(n, exportPrealloc)) + bytes.MinRead)
	}
	// Its start first: a large file that does not start as an export
	// does (zeros, say) is refused without reading the rest.
	if _, err := buf.ReadFrom(io.LimitReader(f, exportPeek)); err != nil {
		return nil, err
	}
	if buf.Len() == exportPeek {
		if err := exportStart(buf.Bytes()); err != nil {
			return nil, fmt.Errorf("%s is not a file 'keyward export' writes: %w", name, err)
		}
	}
	if notJSON(buf.Bytes()) {
		return buf.Bytes(), nil
	}
	_, err = buf.ReadFrom(&jsonBytes{r: f})
	return buf.Bytes(), err
}

const (
	// exportPeek is how much of its file import reads before it looks
	// whether the file starts as an export does; exportfile.Parse says
	// what is wrong with a smaller one.
	exportPeek = 1 << 20
	// exportPrealloc is the most memory import takes at once for a
	// regular file, from its size, before reading it.
	exportPrealloc = 64 << 20
)

// jsonBytes reads r up to a byte that no JSON has (notJSON), and no more
// than 32 KiB past it: then it says io.EOF. A sparse file's holes
// (truncate -s 1T) read as zero bytes, and the file of an export, whose
// size is not bounded, was read whole, until memory ran out, when they
// came after its first '{'.
type jsonBytes struct {
	r   io.Reader
	bad bool
}

func (j *jsonBytes) Read(p []byte) (int, error) {
	if j.bad {
		return 0, io.EOF
	}
	n, err := j.r.Read(p[:min(len(p), 32<<10)])
	if notJSON(p[:n]) {
		j.bad = true
		return n, io.EOF
	}
	return n, err
}

// notJSON reports whether b has a byte that no JSON has anywhere: a
// control character other than white space (tab, LF, CR), which a string
// holds only escaped. Anything else may be in a string.
func notJSON(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' && c != '\n' && c != '\r' {
			return true
		}
	}
	return false
}

// exportStart says what is wrong with b, the start of a file, if it does
// not start as an export does: with the '{' of a JSON object, after any
// byte order mark and white space, of any length, as JSON allows (it is
// read on).
func exportStart(b []byte) error {
	rest := bytes.TrimPrefix(b, []byte("\ufeff"))
	rest = bytes.TrimLeft(rest, " \t\r\n")
	switch {
	case len(rest) == 0 || rest[0] == '{':
		return nil
	case rest[0] == 0:
		return fmt.Errorf("it starts with zero bytes (at byte %d), not the JSON object of an export: a file of zeros, such as a sparse file or a copy that was never written; copy it again, or export the store again", len(b)-len(rest)+1)
	}
	return fmt.Errorf("it starts with %q (at byte %d), not the '{' of an export's JSON object", rest[:1], len(b)-len(rest)+1)
}

// fileKind names what a file mode is, for an error.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
