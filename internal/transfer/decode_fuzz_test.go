package transfer

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeItems: decodeItems, which reads a dump in Format an item at a
// time, makes of every file it reads the Dump that decodeWhole, the
// decoder of whole files it stands in for, makes of it; a file it does
// not read is left to decodeWhole, for its error. The files are those
// UnmarshalJSON gives them: one JSON value, of Format, no name twice.
func FuzzDecodeItems(f *testing.F) {
	for _, s := range []string{
		`{"format": "keyward-export/2", "exported_at": "2026-03-01T12:00:00Z", "apis": [{"name": "orders", "identifier": "https://orders", "scopes": ["orders.read"], "created_at": "2026-03-01T12:00:00Z"}],
		  "accounts": [{"client_id": "1", "email": "a@p.example", "token_lifetime_ns": 3600000000000, "tls_binding": {}, "disabled": true}],
		  "keys": [{"key_id": "k", "account_id": "1", "public_key": "AQID"}], "secrets": [{"secret_id": "s", "account_id": "1", "hash": "AQ=="}],
		  "signing_keys": [{"key_id": "sk", "sealed": "Ag=="}], "sealed_values": [{"name": "client-secret-pepper", "sealed": "Aw=="}],
		  "orgs": [{"domain": "p.example", "blocked_scopes": null}], "users": [{"email": "u@p.example", "org": "p.example"}],
		  "projects": [{"project": "p", "org": "p.example", "internal": true}], "grants": [{"org": "p.example", "client_id": "1", "scopes": ["orders.read"]}]}`,
		`{"format": "keyward-export/2", "accounts": null, "keys": [], "secrets": [null]}`,
		`{"FORMAT": "keyward-export/2", "Accounts": [{"CLIENT_ID": "1"}], "exported_AT": "2026-03-01T12:00:00Z"}`,
		`{"format": "keyward-export/2", "accounts": [{"client_id": "1"}, {"client_id": "2", "colour": "red"}]}`,
		`{"format": "keyward-export/2", "accounts": {}}`,
		`{"format": "keyward-export/2", "accounts": [1], "keys": "x"}`,
		`{"format": "keyward-export/2", "exported_at": 5, "format": null}`,
		`{"format": "keyward-export/2", "accounts": [{"token_lifetime_ns": 1e30}]}`,
		`{"format": "keyward-export/2", "ſecrets": [], "\u0061pis": []}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var head struct {
			Format string `json:"format"`
		}
		if json.Unmarshal(b, &head) != nil || head.Format != Format || repeated(b) != "" {
			return // UnmarshalJSON gives neither decoder such a file
		}
		got, err := decodeItems(b)
		if err != nil {
			return // decodeWhole's, for its error
		}
		want, werr := decodeWhole(b)
		if werr != nil {
			t.Fatalf("decodeItems read %q, which decodeWhole refuses: %v", b, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("of %q, decodeItems made\n%#v\nand decodeWhole\n%#v", b, got, want)
		}
	})
}
