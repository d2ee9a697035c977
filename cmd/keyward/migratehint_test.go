package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
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
