package exportfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/transfer"
)

// FuzzParse: whatever file is given to 'keyward import', Parse never
// panics; it accepts only an export of a known format, which
// 'keyward export' writes back as a file it accepts again and writes
// alike (the round trip is stable); and it refuses in words about the
// file, never the JSON package's Go ones.
func FuzzParse(f *testing.F) {
	v1, err := os.ReadFile("../transfer/testdata/export-v1.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v1)
	d, err := Parse(v1)
	if err != nil {
		f.Fatal(err)
	}
	v2, err := json.Marshal(d)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v2)
	for _, seed := range []string{
		``, `null`, `[]`, `"keyward-export/2"`, `{}`, `{"format":null}`, `{"format":"keyward-export/3"}`,
		`{"type":"service_account","client_email":"job@shop.iam.test"}`,
		`{"format":"keyward-export/2","apis":{}}`,
		`{"format":"keyward-export/2","accounts":[{"token_lifetime_ns":1.5}]}`,
		`{"format":"keyward-export/2","keys":[{"public_key":"!"}]}`,
		`{"format":"keyward-export/2","exported_at":"yesterday"}`,
		`{"format":"keyward-export/2","orgs":[{"domain":"example.com","blocked_scope":[]}]}`,
		`{"format":"keyward-export/1","Orgs":[{"Domain":"example.com"}],"extra":1}`,
		`{"format":"keyward-export/2"} trailing`,
		"{\"format\":\"keyward-export/2\",\"users\":[{\"email\":\"\xff\"}]}",
		`{"seq":1,"time":"2026-01-02T03:04:05Z","action":"a","outcome":"success","prev_hash":"","hash":"01"}` + "\n{}",
		`{} {}`, `{"Format":"keyward-export/2"}`,
		" \n{\"format\":\"keyward-export/2\",\"accounts\":[{\"scopes\":\"x\"}]}\t", " [1] ", "\r\nnull ", ` {"format":"keyward-export/2","apis":[1]`,
		`{"format":"keyward-export/2","orgs":[{"domain":"a","domain":"b"}]}`, `{"format":1,"format":"keyward-export/2"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// decode reads it as json.Unmarshal does.
		var got, want transfer.Dump
		gotErr, wantErr := decode(b, &got), json.Unmarshal(b, &want)
		if g, w := fmt.Sprintf("%T %v", gotErr, gotErr), fmt.Sprintf("%T %v", wantErr, wantErr); g != w || !reflect.DeepEqual(got, want) {
			t.Fatalf("decode: %s, %+v; json.Unmarshal: %s, %+v", g, got, w, want)
		}
		if gs, ok := errors.AsType[*json.SyntaxError](gotErr); ok && gs.Offset != wantErr.(*json.SyntaxError).Offset {
			t.Fatalf("decode: %v at %d; json.Unmarshal at %d", gs, gs.Offset, wantErr.(*json.SyntaxError).Offset)
		}
		d, err := Parse(b)
		if err != nil {
			for _, goSpeak := range []string{"json: ", "Go struct", "Go value", "transfer.", "storage."} {
				if strings.Contains(err.Error(), goSpeak) {
					t.Fatalf("refused in Go's words (%q): %v", goSpeak, err)
				}
			}
			return
		}
		if d.Format != transfer.Format && d.Format != transfer.FormatV1 {
			t.Fatalf("accepted a file of format %q", d.Format)
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("an accepted file cannot be written back: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("the export of an accepted file is refused: %v\n%s", err, out)
		}
		if out2, err := json.Marshal(again); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("the round trip is not stable (%v):\n%s\n%s", err, out, out2)
		}
	})
}
