package main

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/redact"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// A command refused for an older schema names the migrate command for
// the store it was given: a bare 'keyward migrate' would migrate, or
// create, ./keyward-data instead.
func TestOlderSchemaNamesTheMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data dir")
	runCLI(t, "migrate", "--data-dir", data)
	dump := filepath.Join(dir, "export.json")
	runCLI(t, "export", "--data-dir", data, "--out", dump)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)`); err != nil {
		t.Fatal(err)
	}

	want := "run keyward migrate --data-dir '" + data + "' first"
	tests := []struct {
		name string
		args []string
	}{
		{"export", []string{"export", "--data-dir", data, "--out", filepath.Join(dir, "again.json")}},
		{"audit verify", []string{"audit", "verify", "--data-dir", data}},
		{"import", []string{"import", dump, "--data-dir", data}},
		{"recover-admin", []string{"recover-admin", "--data-dir", data, "--key-file", filepath.Join(dir, "admin.json")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runCLIErr(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), "not up to date") {
				t.Fatalf("keyward %s on an older schema: %v, want a refusal", strings.Join(tt.args, " "), err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("keyward %s: %v\nwant it to say: %s", strings.Join(tt.args, " "), err, want)
			}
		})
	}
}

// A --db refused for an older schema is named where it came from: on the
// command line, as a --db with its password shown as xxxxx; from
// KEYWARD_DB or the --config file by that source, which migrate reads
// too. The hint spelt those out with xxxxx, for the operator to type the
// password on a command line, where ps shows it.
func TestOlderSchemaMigrateHintPostgres(t *testing.T) {
	u, err := url.Parse(pgtest.SchemaDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("password", "s3cr@t pw") // the server trusts the test's connections
	u.RawQuery = q.Encode()
	dsn := u.String()
	t.Chdir(t.TempDir())
	t.Setenv("KEYWARD_DB", "")
	t.Setenv("KEYWARD_DATA_DIR", "")
	t.Setenv("KEYWARD_CONFIG", "")
	runCLI(t, "migrate", "--db", dsn)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)`); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "keyward.yaml")
	mustWriteFile(t, conf, []byte("db: "+strconv.Quote(dsn)+"\n"))

	for _, tt := range []struct {
		name string
		env  string // KEYWARD_DB
		args []string
		want string
	}{
		{"--db", "", []string{"--db", dsn}, "run keyward migrate --db '" + redact.DSN(dsn) + "' first (with the password where the URL shows xxxxx)"},
		{"KEYWARD_DB", dsn, nil, "run keyward migrate first (it reads KEYWARD_DB too)"},
		{"--config", "", []string{"--config", conf}, "run " + shellCommand("keyward", "migrate", "--config", conf) + " first"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KEYWARD_DB", tt.env)
			err := runCLIErr(t, append([]string{"audit", "verify"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), "not up to date") {
				t.Fatalf("audit verify on an older schema: %v, want a refusal", err)
			}
			if !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("%v\nwant it to end: %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr") {
				t.Errorf("%v holds the password", err)
			}
		})
	}
}
