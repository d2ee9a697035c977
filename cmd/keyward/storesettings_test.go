package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/spf13/pflag"
)

// newTemplateStore makes an SQLite data directory as a first 'keyward
// serve' leaves it: schema, administrator, generated master key.
func newTemplateStore(t *testing.T) string {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Open(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg.DataDir
}

// copyStore copies the files of data directory src into a new one.
func copyStore(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestStoreCommandsTakeServerSettings: every command that opens the store
// itself finds it where 'keyward serve' would, with the same settings:
// the data directory named only by KEYWARD_DATA_DIR, or only by the
// server's --config file (or the one KEYWARD_CONFIG names), is the one it
// works on, and a flag wins over the environment, which wins over the file.
func TestStoreCommandsTakeServerSettings(t *testing.T) {
	t.Setenv("KEYWARD_MASTER_KEY", "")
	t.Setenv("KEYWARD_DB", "")
	template := newTemplateStore(t)
	exported := filepath.Join(t.TempDir(), "export.json")
	runCLI(t, "export", "--data-dir", template, "--out", exported)

	tests := []struct {
		name  string
		empty bool // the command starts from no database
		args  func(t *testing.T) []string
		// check says whether the command worked on dir.
		check func(t *testing.T, dir, out string)
	}{
		{"migrate", true, func(*testing.T) []string { return []string{"migrate"} },
			func(t *testing.T, dir, out string) {
				if want := "created the database " + filepath.Join(dir, "keyward.db"); !strings.Contains(out, want) {
					t.Errorf("output %q, want %q", out, want)
				}
			}},
		{"import", true, func(*testing.T) []string { return []string{"import", exported} },
			func(t *testing.T, dir, out string) {
				if !strings.Contains(out, "imported") || !strings.Contains(out, filepath.Join(dir, "keyward.db")) {
					t.Errorf("output %q does not name %s", out, dir)
				}
			}},
		{"export", false, func(*testing.T) []string { return []string{"export"} },
			func(t *testing.T, dir, out string) {
				if !strings.Contains(out, "admin@keyward.") {
					t.Errorf("export has no administrator: %.200s", out)
				}
			}},
		{"audit verify", false, func(*testing.T) []string { return []string{"audit", "verify"} },
			func(t *testing.T, dir, out string) {
				if !strings.Contains(out, "the audit log is intact (sqlite "+filepath.Join(dir, "keyward.db")+")") {
					t.Errorf("output %q", out)
				}
			}},
		{"audit prune", false, func(*testing.T) []string { return []string{"audit", "prune", "--before", "90d"} },
			func(t *testing.T, dir, out string) {
				if !strings.Contains(out, "no audit event older than") || !strings.Contains(out, "(sqlite "+filepath.Join(dir, "keyward.db")+")") {
					t.Errorf("output %q", out)
				}
			}},
		{"recover-admin", false, func(t *testing.T) []string {
			return []string{"recover-admin", "--key-file", filepath.Join(t.TempDir(), "admin.json")}
		},
			func(t *testing.T, dir, out string) {
				if !strings.Contains(out, "wrote a new key for admin@keyward.") {
					t.Errorf("output %q", out)
				}
			}},
		{"master-key rotate", false, func(t *testing.T) []string {
			f := filepath.Join(t.TempDir(), "new.key")
			if err := os.WriteFile(f, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"master-key", "rotate", "--new-master-key-file", f}
		},
			func(t *testing.T, dir, out string) {
				if want := "replaced " + filepath.Join(dir, "master.key"); !strings.Contains(out, want) {
					t.Errorf("output %q, want %q", out, want)
				}
			}},
	}
	newDir := func(t *testing.T, empty bool) string {
		// In a directory of its own, whose ./keyward-data a command that
		// ignored its settings would use.
		t.Chdir(t.TempDir())
		if empty {
			return t.TempDir()
		}
		return copyStore(t, template)
	}
	writeConfig := func(t *testing.T, body string) string {
		f := filepath.Join(t.TempDir(), "keyward.yaml")
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tt := range tests {
		t.Run(tt.name+"/env", func(t *testing.T) {
			dir := newDir(t, tt.empty)
			t.Setenv("KEYWARD_DATA_DIR", dir)
			tt.check(t, dir, runCLI(t, tt.args(t)...))
		})
		t.Run(tt.name+"/config file", func(t *testing.T) {
			dir := newDir(t, tt.empty)
			// A server's file: settings this command has no use for are
			// accepted.
			conf := writeConfig(t, "data-dir: "+dir+"\nlisten: 127.0.0.1:8443\nsigning-alg: ES256\nlog-level: warn\n")
			tt.check(t, dir, runCLI(t, append(tt.args(t), "--config", conf)...))
		})
		t.Run(tt.name+"/KEYWARD_CONFIG", func(t *testing.T) {
			dir := newDir(t, tt.empty)
			t.Setenv("KEYWARD_CONFIG", writeConfig(t, "data-dir: "+dir+"\nlisten: 127.0.0.1:8443\n"))
			tt.check(t, dir, runCLI(t, tt.args(t)...))
		})
		t.Run(tt.name+"/--config over KEYWARD_CONFIG", func(t *testing.T) {
			dir := newDir(t, tt.empty)
			t.Setenv("KEYWARD_CONFIG", filepath.Join(t.TempDir(), "missing.yaml"))
			tt.check(t, dir, runCLI(t, append(tt.args(t), "--config", writeConfig(t, "data-dir: "+dir+"\n"))...))
		})
		t.Run(tt.name+"/env over config file", func(t *testing.T) {
			dir := newDir(t, tt.empty)
			t.Setenv("KEYWARD_DATA_DIR", dir)
			conf := writeConfig(t, "data-dir: "+filepath.Join(t.TempDir(), "not-this-one")+"\n")
			tt.check(t, dir, runCLI(t, append(tt.args(t), "--config", conf)...))
		})
		t.Run(tt.name+"/flag over env", func(t *testing.T) {
			dir := newDir(t, tt.empty)
			t.Setenv("KEYWARD_DATA_DIR", filepath.Join(t.TempDir(), "not-this-one"))
			tt.check(t, dir, runCLI(t, append(tt.args(t), "--data-dir", dir)...))
		})
	}
}

// TestMigrateIgnoresServersNoMigrate: servers that run with no-migrate
// leave migrating to 'keyward migrate', which is given their settings; on
// migrate's own command line --no-migrate is a contradiction.
func TestMigrateIgnoresServersNoMigrate(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		env  string // KEYWARD_NO_MIGRATE
		file string // the config file's line
	}{
		{"env", "true", ""},
		{"config file", "", "no-migrate: true\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("KEYWARD_NO_MIGRATE", tt.env)
			conf := filepath.Join(t.TempDir(), "keyward.yaml")
			if err := os.WriteFile(conf, []byte("data-dir: "+dir+"\n"+tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			out := runCLI(t, "migrate", "--config", conf)
			if !strings.Contains(out, "created the database "+filepath.Join(dir, "keyward.db")) {
				t.Errorf("output %q", out)
			}
		})
	}
	err := runCLIErr(t, "migrate", "--no-migrate", "--data-dir", t.TempDir())
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("migrate --no-migrate: %v, want a usage error", err)
	}
}

// TestCommandFlagsNotFromSettings: a command's own flags are taken from
// its command line alone, never from the environment or the server's
// config file: KEYWARD_YES must not confirm a prune.
func TestCommandFlagsNotFromSettings(t *testing.T) {
	t.Chdir(t.TempDir())
	dir := copyStore(t, newTemplateStore(t))
	t.Setenv("KEYWARD_DATA_DIR", dir)
	t.Setenv("KEYWARD_BEFORE", "0s")
	t.Setenv("KEYWARD_YES", "true")
	if err := runCLIErr(t, "audit", "prune"); err == nil || !strings.Contains(err.Error(), "--before is required") {
		t.Errorf("audit prune with KEYWARD_BEFORE: %v, want --before is required", err)
	}
	if err := runCLIErr(t, "audit", "prune", "--before", "1h"); err == nil || !strings.Contains(err.Error(), "give --yes") {
		t.Errorf("audit prune with KEYWARD_YES: %v, want a refusal without --yes", err)
	}
	// prune checks --before and --yes before it reads the settings; these
	// read theirs after, and would take KEYWARD_KEY_FILE and the like if
	// their own flags were settings.
	keyFile := filepath.Join(t.TempDir(), "admin.json")
	newKey := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(newKey, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KEYWARD_KEY_FILE", keyFile)
	t.Setenv("KEYWARD_NEW_MASTER_KEY_FILE", newKey)
	if err := runCLIErr(t, "recover-admin"); err == nil || !strings.Contains(err.Error(), "--key-file is required") {
		t.Errorf("recover-admin with KEYWARD_KEY_FILE: %v, want --key-file is required", err)
	}
	if fileExists(keyFile) {
		t.Errorf("recover-admin wrote KEYWARD_KEY_FILE %s", keyFile)
	}
	if err := runCLIErr(t, "master-key", "rotate"); err == nil || !strings.Contains(err.Error(), "--new-master-key-file is required") {
		t.Errorf("master-key rotate with KEYWARD_NEW_MASTER_KEY_FILE: %v, want --new-master-key-file is required", err)
	}
	conf := filepath.Join(t.TempDir(), "keyward.yaml")
	if err := os.WriteFile(conf, []byte("yes: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runCLIErr(t, "audit", "prune", "--before", "90d", "--config", conf); err == nil || !strings.Contains(err.Error(), `unknown setting "yes"`) {
		t.Errorf("audit prune with yes in the config file: %v, want an unknown setting", err)
	}
}

// TestMigratePostgresFromSettings: the PostgreSQL database named only by
// KEYWARD_DB, or only by the servers' --config file, is the one migrate
// migrates (an init container with the servers' settings).
func TestMigratePostgresFromSettings(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, dsn string) string
	}{
		{"env", func(t *testing.T, dsn string) string {
			t.Setenv("KEYWARD_DB", dsn)
			return runCLI(t, "migrate")
		}},
		{"config file", func(t *testing.T, dsn string) string {
			conf := filepath.Join(t.TempDir(), "keyward.yaml")
			if err := os.WriteFile(conf, []byte("db: "+strconv.Quote(dsn)+"\nno-migrate: true\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return runCLI(t, "migrate", "--config", conf)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pgtest.SchemaDSN(t)
			t.Chdir(t.TempDir())
			t.Setenv("KEYWARD_DB", "")
			t.Setenv("KEYWARD_DATA_DIR", "")
			if out := tt.run(t, dsn); out != "the database schema is up to date\n" {
				t.Errorf("migrate said %q", out)
			}
			if fileExists("keyward-data") {
				t.Error("migrate made ./keyward-data instead")
			}
			// A server with no-migrate now starts on it.
			st, err := postgres.Open(context.Background(), dsn, postgres.Options{NoMigrate: true})
			if err != nil {
				t.Fatalf("the schema is not up to date: %v", err)
			}
			st.Close()
		})
	}
}

// TestStoreNamedTwiceRefused: a --data-dir on the command line while
// KEYWARD_DB (or the --config file) names PostgreSQL, or a KEYWARD_DATA_DIR
// while the file does, is refused before any database is opened: the
// command would work on the PostgreSQL database, not the SQLite one named.
// Given at the same rank, as serve takes them, --db is used.
func TestStoreNamedTwiceRefused(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("KEYWARD_DATA_DIR", "")
	t.Setenv("KEYWARD_DB", "")
	// Nothing listens there: a command that got past the check fails to
	// connect, which is no usage error.
	const dsn = "postgres://keyward@127.0.0.1:1/keyward?connect_timeout=2"
	exported := filepath.Join(t.TempDir(), "export.json")
	if err := os.WriteFile(exported, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	newKey := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(newKey, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	commands := [][]string{
		{"migrate"},
		{"import", exported},
		{"export"},
		{"audit", "verify"},
		{"audit", "prune", "--before", "1h", "--yes"},
		{"recover-admin", "--key-file", filepath.Join(t.TempDir(), "admin.json")},
		{"master-key", "rotate", "--new-master-key-file", newKey},
	}
	conf := func(t *testing.T, body string) string {
		f := filepath.Join(t.TempDir(), "keyward.yaml")
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    func(t *testing.T, dir string) []string
		refused bool
	}{
		{"--data-dir with KEYWARD_DB", map[string]string{"KEYWARD_DB": dsn},
			func(t *testing.T, dir string) []string { return []string{"--data-dir", dir} }, true},
		{"--data-dir with db in the file", nil,
			func(t *testing.T, dir string) []string {
				return []string{"--data-dir", dir, "--config", conf(t, "db: "+dsn+"\n")}
			}, true},
		{"KEYWARD_DATA_DIR with db in the file", map[string]string{"KEYWARD_DATA_DIR": "DIR"},
			func(t *testing.T, dir string) []string { return []string{"--config", conf(t, "db: "+dsn+"\n")} }, true},
		{"both on the command line", nil,
			func(t *testing.T, dir string) []string { return []string{"--data-dir", dir, "--db", dsn} }, false},
		{"both in the environment", map[string]string{"KEYWARD_DATA_DIR": "DIR", "KEYWARD_DB": dsn},
			func(t *testing.T, dir string) []string { return nil }, false},
	}
	for _, tt := range tests {
		for _, c := range commands {
			name := c[0]
			if c[0] == "audit" || c[0] == "master-key" {
				name += " " + c[1]
			}
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				dir := t.TempDir()
				for k, v := range tt.env {
					t.Setenv(k, strings.ReplaceAll(v, "DIR", dir))
				}
				err := runCLIErrWithin(t, time.Minute, append(slices.Clone(c), tt.args(t, dir)...)...)
				_, usage := errors.AsType[usageError](err)
				named := err != nil && strings.Contains(err.Error(), "two stores are named")
				if named != tt.refused || (tt.refused && !usage) {
					t.Errorf("error %v (usage error: %v), want refused as naming two stores: %v", err, usage, tt.refused)
				}
				if err == nil {
					t.Error("the command worked, on no database")
				}
				if fileExists(filepath.Join(dir, "keyward.db")) {
					t.Errorf("the command made %s", filepath.Join(dir, "keyward.db"))
				}
			})
		}
	}
}

// TestExportNamesStore: export says which store it read, now that the
// store may come from the environment or a --config file.
func TestExportNamesStore(t *testing.T) {
	t.Setenv("KEYWARD_DB", "")
	dir := t.TempDir()
	runCLI(t, "migrate", "--data-dir", dir)
	out := filepath.Join(t.TempDir(), "export.json")
	var stderr bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs([]string{"export", "--out", out})
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	t.Setenv("KEYWARD_DATA_DIR", dir)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "from sqlite " + filepath.Join(dir, "keyward.db") + " to " + out; !strings.Contains(stderr.String(), want) {
		t.Errorf("export said %q, want %q in it", stderr.String(), want)
	}
}

// TestStoreNamedTwiceMessage: the refusal of a --data-dir from a higher
// source than a PostgreSQL db gives, besides the way to the SQLite
// database, the two ways to keep both (PostgreSQL with that data
// directory): --db at the rank of --data-dir, or --data-dir at the rank
// of db.
func TestStoreNamedTwiceMessage(t *testing.T) {
	const dsn = "postgres://keyward:secret@db.example/keyward"
	const head = "two stores are named: --data-dir /srv/kw (from %s) and --db postgres://keyward:xxxxx@db.example/keyward (from %s), which would be opened instead; "
	tests := []struct {
		name      string
		dirOnLine bool
		env       map[string]string
		dbInFile  bool
		want      string
	}{
		{"--data-dir with KEYWARD_DB", true, map[string]string{"KEYWARD_DB": dsn}, false,
			fmt.Sprintf(head, "the command line", "KEYWARD_DB") + "to use PostgreSQL with that data directory, give --db on the command line too (or set KEYWARD_DATA_DIR beside KEYWARD_DB instead of --data-dir on the command line); to use the SQLite database, unset KEYWARD_DB"},
		{"--data-dir with db in the file", true, nil, true,
			fmt.Sprintf(head, "the command line", "the --config file") + "to use PostgreSQL with that data directory, give --db on the command line too (or put data-dir in the --config file beside db instead of --data-dir on the command line); to use the SQLite database, remove db from the --config file"},
		{"KEYWARD_DATA_DIR with db in the file", false, map[string]string{"KEYWARD_DATA_DIR": "/srv/kw"}, true,
			fmt.Sprintf(head, "KEYWARD_DATA_DIR", "the --config file") + "to use PostgreSQL with that data directory, set KEYWARD_DB too (or put data-dir in the --config file beside db instead of KEYWARD_DATA_DIR); to use the SQLite database, remove db from the --config file"},
		// The file named by KEYWARD_CONFIG, not --config, is named so.
		{"--data-dir with db in the file KEYWARD_CONFIG names", true, map[string]string{"KEYWARD_CONFIG": "keyward.yaml"}, true,
			fmt.Sprintf(head, "the command line", "the file KEYWARD_CONFIG names") + "to use PostgreSQL with that data directory, give --db on the command line too (or put data-dir in the file KEYWARD_CONFIG names beside db instead of --data-dir on the command line); to use the SQLite database, remove db from the file KEYWARD_CONFIG names"},
		{"KEYWARD_DATA_DIR with db in the file KEYWARD_CONFIG names", false, map[string]string{"KEYWARD_CONFIG": "keyward.yaml", "KEYWARD_DATA_DIR": "/srv/kw"}, true,
			fmt.Sprintf(head, "KEYWARD_DATA_DIR", "the file KEYWARD_CONFIG names") + "to use PostgreSQL with that data directory, set KEYWARD_DB too (or put data-dir in the file KEYWARD_CONFIG names beside db instead of KEYWARD_DATA_DIR); to use the SQLite database, remove db from the file KEYWARD_CONFIG names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			c.addServeFlags(fs)
			addConfigFileFlag(fs)
			if tt.dbInFile { // as applySources sets it from the file
				if tt.env["KEYWARD_CONFIG"] == "" {
					if err := fs.Set("config", "keyward.yaml"); err != nil {
						t.Fatal(err)
					}
				}
				if err := fs.Set("db", dsn); err != nil {
					t.Fatal(err)
				}
			}
			c.DataDir, c.DB = "/srv/kw", dsn
			err := c.checkStoreSources(fs, map[string]bool{"data-dir": tt.dirOnLine}, func(k string) string { return tt.env[k] })
			if _, usage := errors.AsType[usageError](err); !usage || err.Error() != tt.want {
				t.Errorf("error %v (usage error: %v),\nwant %s", err, usage, tt.want)
			}
		})
	}
}
