package transfer_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/transfer"
)

// full is a dump in which every field of every item is set, so a test
// that reads it back can tell a field that was lost.
func full(format string) transfer.Dump {
	t1, t2, t3 := t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	return transfer.Dump{
		Format:     format,
		ExportedAt: t3,
		APIs: []storage.API{{Name: "orders", Identifier: "https://orders", Description: "Orders", Scopes: []string{"orders.read"},
			TokenFormat: storage.TokenOpaque, Introspectors: []string{"100000000000000000001"}, CreatedAt: t0}},
		Accounts: []storage.Account{{ID: "100000000000000000001", Email: "a@p.example", Name: "a", Project: "p", DisplayName: "A",
			Description: "the a", Scopes: []string{"orders.read"}, TokenLifetime: 30 * time.Minute, AuthMethods: []string{storage.AuthTLS},
			TLS:         storage.TLSBinding{SubjectDN: "CN=a", SANDNS: "a.example", SANURI: "spiffe://a", SANIP: "10.0.0.1", SANEmail: "a@example.com"},
			TokenFormat: storage.TokenJWT, TokensRevokedBefore: t1, CertTokensRevokedBefore: t2, Disabled: true, CreatedAt: t0, UpdatedAt: t2}},
		Keys: []storage.Key{{ID: "0123456789abcdef0123456789abcdef01234567", AccountID: "100000000000000000001", Algorithm: "ES256",
			PublicKey: []byte{1, 2}, Certificate: []byte{3, 4}, Origin: storage.KeyOriginUploaded, Disabled: true, ExpiresAt: t3, CreatedAt: t0}},
		Secrets: []storage.Secret{{ID: "s1", AccountID: "100000000000000000001", Hash: []byte{5}, Hint: "kw_…x", Disabled: true,
			ExpiresAt: t3, CreatedAt: t0, LastUsedAt: t1}},
		SigningKeys:  []storage.SigningKey{{ID: "sk", Algorithm: "ES256", Sealed: []byte{9}, CreatedAt: t0, ActivatedAt: t1, RetiredAt: t2}},
		SealedValues: []storage.SealedValue{{Name: "client-secret-pepper", Sealed: []byte{7, 7}, CreatedAt: t0}},
		Orgs:         []storage.Org{{Domain: "example.com", BlockedScopes: []string{"orders.write"}, CreatedAt: t0}},
		Users:        []storage.User{{Email: "u@example.com", Org: "example.com", Suspended: true, CreatedAt: t1}},
		Projects:     []storage.ProjectOrg{{Project: "p", Org: "example.com", Internal: true}},
		Grants:       []storage.Grant{{Org: "example.com", ClientID: "100000000000000000001", Scopes: []string{"orders.read"}, CreatedAt: t2}},
	}
}

// TestJSONNames writes a dump with snake_case names everywhere, in
// Format, and reads it back unchanged.
func TestJSONNames(t *testing.T) {
	want := full(transfer.Format)
	nonZero(t, reflect.ValueOf(want), "dump")
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if !snake.MatchString(k) {
					t.Errorf("%s: field %q is not snake_case", at, k)
				}
				walk(e, at+"."+k)
			}
		case []any:
			for _, e := range v {
				walk(e, at+"[]")
			}
		}
	}
	walk(tree, "dump")
	for _, name := range []string{`"blocked_scopes"`, `"client_id"`, `"key_id"`, `"secret_id"`, `"account_id"`, `"tls_binding"`} {
		if !strings.Contains(string(b), name) {
			t.Errorf("no %s in %s", name, b)
		}
	}
	var back transfer.Dump
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("round trip changed the dump:\n got %+v\nwant %+v", back, want)
	}
}

// TestImportV1 imports an export of an earlier release, written by its
// code (testdata/export-v1.json: Go-style field names), and finds every
// field of every item in the store.
func TestImportV1(t *testing.T) {
	b, err := os.ReadFile("testdata/export-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var d transfer.Dump
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	// The file is older than accounts' CertTokensRevokedBefore: it has
	// none, and the store none after it.
	v1 := func(format string) transfer.Dump {
		d := full(format)
		for i := range d.Accounts {
			d.Accounts[i].CertTokensRevokedBefore = time.Time{}
		}
		return d
	}
	if want := v1(transfer.FormatV1); !reflect.DeepEqual(d, want) {
		t.Fatalf("read\n %+v\nwant %+v", d, want)
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v1.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := transfer.Import(ctx, s, d, t0); err != nil {
		t.Fatal(err)
	}
	got, err := transfer.Export(ctx, s, t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := v1(transfer.Format); !reflect.DeepEqual(got, want) {
		t.Fatalf("store after the import:\n got %+v\nwant %+v", got, want)
	}
}

// nonZero fails for each field of v, deep, that has its zero value: a
// field full leaves unset would go untested.
func nonZero(t *testing.T, v reflect.Value, at string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			if v.IsZero() {
				t.Errorf("%s is zero", at)
			}
			return
		}
		for i := range v.NumField() {
			nonZero(t, v.Field(i), at+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty", at)
		}
		for i := range v.Len() {
			nonZero(t, v.Index(i), at+"[]")
		}
	default:
		if v.IsZero() {
			t.Errorf("%s is zero", at)
		}
	}
}

// TestUnknownFields: a dump in Format with a field it does not have (a
// misspelt name in an edited file, or one a later release added) is
// refused, naming the field, rather than read without it; one in
// FormatV1 is read as earlier releases read it, the field ignored.
func TestUnknownFields(t *testing.T) {
	tests := []struct {
		name, json, wantErr string
	}{
		{"misspelt in an item", `{"format":"keyward-export/2","orgs":[{"domain":"example.com","blocked_scope":["orders.write"]}]}`, `"blocked_scope"`},
		{"of a later release", `{"format":"keyward-export/2","accounts":[{"client_id":"1","dpop_bound":true}]}`, `"dpop_bound"`},
		{"in a TLS binding", `{"format":"keyward-export/2","accounts":[{"client_id":"1","tls_binding":{"tls_client_auth_san_dn":"a.example"}}]}`, `"tls_client_auth_san_dn"`},
		{"at the top", `{"format":"keyward-export/2","audit":[]}`, `"audit"`},
		// Named cut to 64 bytes: a file may hold a key of any length.
		{"long", `{"format":"keyward-export/2","` + strings.Repeat("k", 1000) + `":1}`, `field "` + strings.Repeat("k", 64) + `…":`},
		{"of format 1", `{"format":"keyward-export/1","orgs":[{"Domain":"example.com","BlockedScope":["orders.write"]}]}`, ""},
		{"known of format 2", `{"format":"keyward-export/2","orgs":[{"domain":"example.com","blocked_scopes":["orders.write"]}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d transfer.Dump
			err := json.Unmarshal([]byte(tt.json), &d)
			if tt.wantErr == "" {
				if err != nil || len(d.Orgs) != 1 || d.Orgs[0].Domain != "example.com" {
					t.Fatalf("read %+v, %v; want the organization example.com", d, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), transfer.Format) {
				t.Fatalf("error %v, want one naming %s and %s", err, tt.wantErr, transfer.Format)
			}
		})
	}
}

// TestRepeatedNames: a dump in Format with a name given twice in an
// object, in any case, is refused, naming where; encoding/json kept the
// last value and dropped the other (accounts pasted under a second
// "accounts") without a word. FormatV1 is read as earlier releases read it.
func TestRepeatedNames(t *testing.T) {
	tests := []struct {
		name, json, wantErr string
	}{
		{"a list twice", `{"format":"keyward-export/2","orgs":[{"domain":"a.example"}],"orgs":[{"domain":"example.com"}]}`, `"orgs" is in the file twice`},
		{"in another case", `{"format":"keyward-export/2","orgs":[{"domain":"a.example"}],"ORGS":[{"domain":"example.com"}]}`, `"ORGS" is in the file twice`},
		{"in an item", `{"format":"keyward-export/2","orgs":[{"domain":"example.com"},{"domain":"a.example","Domain":"example.com"}]}`, `"orgs[1].Domain" is in the file twice`},
		{"folded as encoding/json folds", `{"format":"keyward-export/2","orgs":[{"domain":"a.example","blocked_scopes":[],"blocked_\u017fcopes":[]}]}`, `"orgs[0].blocked_ſcopes" is in the file twice`},
		{"three spellings", `{"format":"keyward-export/2","accounts":[{"client_id":"1","created_at":"x","CREATED_AT":"y","Created_At":"z"}]}`,
			`"accounts[0].CREATED_AT" is in the file twice`},
		{"in a TLS binding", `{"format":"keyward-export/2","accounts":[{"tls_binding":{"tls_client_auth_san_dns":"a","tls_client_auth_san_dns":"b"}}]}`, `"accounts[0].tls_binding.tls_client_auth_san_dns" is in the file twice`},
		// The empty name is named as JSON writes it, "": a path ending in
		// it read as the object's own ("accounts[0]."), and at the top as
		// no name at all, which was taken for none given twice.
		{"the empty name", `{"format":"keyward-export/2","accounts":[{"client_id":"1","":"a","":"b"}]}`,
			`the empty name "" is in "accounts[0]" twice`},
		{"the empty name at the top", `{"format":"keyward-export/2","":1,"":2}`, `the empty name "" is in the file's top-level object twice`},
		{"under the empty name", `{"format":"keyward-export/2","accounts":[{"client_id":"1","":{"a":1,"A":2}}]}`, `"accounts[0].\"\".A" is in the file twice`},
		{"the empty name under it", `{"format":"keyward-export/2","accounts":[{"client_id":"1","":{"":1,"":2}}]}`, `the empty name "" is in "accounts[0].\"\"" twice`},
		{"of format 1", `{"format":"keyward-export/1","orgs":[{"Domain":"a.example"}],"orgs":[{"Domain":"example.com"}]}`, ""},
		{"once each", `{"format":"keyward-export/2","orgs":[{"domain":"example.com","blocked_scopes":["a"]}],"users":[{"email":"a@example.com","org":"example.com"}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d transfer.Dump
			err := json.Unmarshal([]byte(tt.json), &d)
			if tt.wantErr == "" {
				if err != nil || len(d.Orgs) != 1 || d.Orgs[0].Domain != "example.com" {
					t.Fatalf("read %+v, %v; want the organization example.com", d, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one saying %s", err, tt.wantErr)
			}
		})
	}
}

// TestBadValues: a time or bytes field that does not decode, or a value
// of the wrong kind, is named by its place in the file, with the form it
// must have. Go's errors named neither of the first: 'parsing time
// "yesterday" as "2006-01-02T15:04:05Z07:00": …' and 'illegal base64 data
// at input byte 0'; and of the wrong kind they named the field without
// its item, and in Go's words: 'json: cannot unmarshal string into Go
// struct field accountJSON.accounts.scopes of type []string'.
func TestBadValues(t *testing.T) {
	const (
		rfc3339 = `, not an RFC 3339 time such as 2026-01-02T15:04:05Z`
		base64  = `, not bytes in standard base64 (RFC 4648 §4, with = padding)`
	)
	tests := []struct {
		name, json, want string
	}{
		{"a time", `{"format":"keyward-export/2","accounts":[{"client_id":"1"},{"client_id":"2","created_at":"yesterday"}]}`,
			`accounts[1].created_at is "yesterday"` + rfc3339},
		{"a time at the top", `{"format":"keyward-export/2","exported_at":"2026-13-01T00:00:00Z"}`,
			`exported_at is "2026-13-01T00:00:00Z"` + rfc3339},
		{"a number for a time", `{"format":"keyward-export/2","orgs":[{"domain":"example.com","created_at":1767323045}]}`,
			`orgs[0].created_at is a JSON number` + rfc3339},
		{"a long time, clipped", `{"format":"keyward-export/2","users":[{"email":"u@example.com","created_at":"` + strings.Repeat("9", 100) + `"}]}`,
			`users[0].created_at is "` + strings.Repeat("9", 64) + `…"` + rfc3339},
		{"bytes", `{"format":"keyward-export/2","keys":[{"key_id":"k","public_key":"!!"}]}`,
			`keys[0].public_key is "!!"` + base64},
		{"URL-safe base64", `{"format":"keyward-export/2","signing_keys":[{"key_id":"k","sealed":"AQI="},{"key_id":"l","sealed":"-_-_"}]}`,
			`signing_keys[1].sealed is "-_-_"` + base64},
		{"format 1, by its names", `{"format":"keyward-export/1","secrets":[{"ID":"s","Hash":"AQ=="},{"ID":"t","Hash":"AQ==","LastUsedAt":"now"}]}`,
			`secrets[1].LastUsedAt is "now"` + rfc3339},
		// encoding/json takes either spelling; of two that both do not
		// decode, the first in byte order is named.
		{"a string for a list", `{"format":"keyward-export/2","accounts":[{"client_id":"1"},{"client_id":"2","scopes":"orders.read"}]}`,
			`accounts[1].scopes is "orders.read", not a JSON array`},
		{"a number in a list of strings", `{"format":"keyward-export/2","accounts":[{"client_id":"1","scopes":["orders.read",1]}]}`,
			`accounts[0].scopes[1] is the number 1, not a JSON string`},
		{"a fraction for a whole number", `{"format":"keyward-export/2","accounts":[{"client_id":"1","token_lifetime_ns":1.5}]}`,
			`accounts[0].token_lifetime_ns is the number 1.5, not a whole number of 64 bits`},
		{"a number too large", `{"format":"keyward-export/2","accounts":[{"client_id":"1","token_lifetime_ns":1e30}]}`,
			`accounts[0].token_lifetime_ns is the number 1e30, not a whole number of 64 bits`},
		{"a string for a boolean", `{"format":"keyward-export/2","keys":[{"key_id":"k","disabled":"yes"}]}`,
			`keys[0].disabled is "yes", not true or false`},
		{"a string for an item", `{"format":"keyward-export/2","orgs":["example.com"]}`,
			`orgs[0] is "example.com", not a JSON object`},
		{"an array for an object", `{"format":"keyward-export/2","accounts":[{"client_id":"1","tls_binding":[]}]}`,
			`accounts[0].tls_binding is a JSON array, not a JSON object`},
		{"a string for a list at the top", `{"format":"keyward-export/2","apis":"x"}`,
			`apis is "x", not a JSON array`},
		{"the wrong kind in format 1", `{"format":"keyward-export/1","orgs":[{"Domain":"example.com","BlockedScopes":"x"}]}`,
			`orgs[0].BlockedScopes is "x", not a JSON array`},
		{"two spellings of a field, both bad", `{"format":"keyward-export/1","accounts":[{"ID":"1","CreatedAt":"x","CREATEDAT":"y","createdat":"z"}]}`,
			`accounts[0].CREATEDAT is "y"` + rfc3339},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Several times: the same answer every time.
			for range 20 {
				var d transfer.Dump
				if err := json.Unmarshal([]byte(tt.json), &d); err == nil || err.Error() != tt.want {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
			}
		})
	}
}

// TestUnmarshalItemByItem: a dump in Format, read an item at a time, is
// what encoding/json makes of it whole: null and missing lists nil, an
// empty list empty, names matched in any case, and a file with a field
// Format lacks, deep in an item, refused as the whole decoder refuses it.
func TestUnmarshalItemByItem(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     transfer.Dump
	}{
		{"null, empty and missing lists", `{"format": "keyward-export/2", "accounts": null, "keys": []}`,
			transfer.Dump{Format: transfer.Format, Keys: []storage.Key{}}},
		{"names in another case", `{"FORMAT": "keyward-export/2", "Accounts": [{"CLIENT_ID": "1", "email": "a@p.example"}], "exported_AT": "2026-03-01T12:00:00Z"}`,
			transfer.Dump{Format: transfer.Format, ExportedAt: t0, Accounts: []storage.Account{{ID: "1", Email: "a@p.example"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got transfer.Dump
			if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
	var d transfer.Dump
	err := json.Unmarshal([]byte(`{"format": "keyward-export/2", "accounts": [{"client_id": "1"}, {"client_id": "2", "colour": "red"}]}`), &d)
	if want := `keyward-export/2 has no field "colour"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("an item with a field Format lacks: %v, want %q", err, want)
	}
}
