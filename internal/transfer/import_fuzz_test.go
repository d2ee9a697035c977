package transfer_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/transfer"
)

// FuzzImport: whatever file 'keyward import' reads as a dump, Import into
// a new SQLite store never panics; a refused import leaves the store
// empty, and an accepted one leaves every item of the file in it, with an
// audit log that verifies.
func FuzzImport(f *testing.F) {
	v1, err := os.ReadFile("testdata/export-v1.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v1)
	var d transfer.Dump
	if err := json.Unmarshal(v1, &d); err != nil {
		f.Fatal(err)
	}
	v2, err := json.Marshal(d)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v2)
	for _, seed := range []string{
		`{"format":"keyward-export/2"}`,
		`{"format":"keyward-export/2","accounts":[{"client_id":"1","email":"a@p.example"},{"client_id":"1","email":"b@p.example"}]}`,
		`{"format":"keyward-export/2","accounts":[{"client_id":"1","email":"a@p.example"}],"keys":[{"key_id":"k","account_id":"1"},{"key_id":"k","account_id":"1"}]}`,
		`{"format":"keyward-export/2","orgs":[{"domain":"example.com"}],"users":[{"email":"a@example.com","org":"example.com"},{"email":"A@example.com","org":"example.com"}]}`,
		`{"format":"keyward-export/2","apis":[{"name":"keyward","identifier":"x"}]}`,
		`{"format":"keyward-export/2","sealed_values":[{"name":"client-secret-pepper"},{"name":"client-secret-pepper"}]}`,
		`{"format":"keyward-export/2","signing_keys":[{"key_id":"s"},{"key_id":"s"}]}`,
		`{"format":"keyward-export/1","Accounts":[{"ID":"1","Email":"a\u0000@p.example","CreatedAt":"0001-01-01T00:00:00Z"}]}`,
	} {
		f.Add([]byte(seed))
	}
	ctx := context.Background()
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, b []byte) {
		var d transfer.Dump
		if json.Unmarshal(b, &d) != nil {
			return
		}
		n++
		path := filepath.Join(dir, strconv.Itoa(n)+".db")
		st, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			st.Close()
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(path + suffix)
			}
		}()
		now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
		ierr := transfer.Import(ctx, st, d, now)
		t.Logf("import: %v", ierr)
		got, err := transfer.Export(ctx, st, now)
		if err != nil {
			t.Fatalf("export after import (%v): %v", ierr, err)
		}
		if ierr != nil {
			if len(got.Accounts)+len(got.Keys)+len(got.Secrets)+len(got.Orgs)+len(got.Users)+len(got.Grants)+len(got.SigningKeys)+len(got.Projects)+len(got.SealedValues)+len(got.APIs) > 0 {
				t.Fatalf("a refused import (%v) left data: %+v", ierr, got)
			}
			return
		}
		for _, c := range []struct {
			what      string
			got, want int
		}{
			{"accounts", len(got.Accounts), len(d.Accounts)}, {"keys", len(got.Keys), len(d.Keys)}, {"secrets", len(got.Secrets), len(d.Secrets)},
			{"orgs", len(got.Orgs), len(d.Orgs)}, {"users", len(got.Users), len(d.Users)}, {"projects", len(got.Projects), len(d.Projects)},
			{"grants", len(got.Grants), len(d.Grants)}, {"signing keys", len(got.SigningKeys), len(d.SigningKeys)},
			{"APIs", len(got.APIs), len(d.APIs)}, {"sealed values", len(got.SealedValues), len(d.SealedValues)},
		} {
			if c.got != c.want {
				t.Fatalf("imported %d %s of %d", c.got, c.what, c.want)
			}
		}
		if _, err := storage.VerifyLog(ctx, st); err != nil {
			t.Fatalf("the audit log after an import: %v", err)
		}
	})
}
