package transfer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRepeated: repeated, which reads its JSON a byte at a time, finds
// the name given twice that a json.Decoder's tokens find (repeatedTokens,
// what it replaced), at the same place, in every valid JSON; and of
// anything else returns without a panic.
func FuzzRepeated(f *testing.F) {
	for _, name := range []string{"export-v1.json", "export-v2.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `1`, `"a"`, `{"a":1,"A":2}`, `{"a":{"b":[1,{"c":1,"C":2}]}}`, `[[{"x":1}],{"x":1,"x":2}]`,
		`{"blocked_scopes":[],"blocked_\u017fcopes":[]}`, `{"k":1,"\u212a":2}`, `{"\u0061":1,"a":2}`, `{"\ud800":1,"\udc00":2}`,
		"{\"\xff\":1,\"\xfe\":2}", `{"":1,"":2,"a":1,"a":2}`, `{"a":[{"":1,"":2}]}`, `{"a\"b":1,"A\"B":2}`, `{"a\\":1,"A\\":2}`,
		` { "a" : [ 1 , -2.5e3 , true , false , null , "x\"]}" ] , "b" : { } , "A" : 0 } `,
		`{"a":1,"a":2` + strings.Repeat(`,"x":1`, 3) + `}`,
		`{"format":"keyward-export/2","accounts":[{"client_id":"1"},{"client_id":"2","CLIENT_ID":"3"}]}`,
		`{"`, `{"a":`, `{"a" 1}`, `[1 2]`, `{"a":1,}`, `{"a`, `"\`, `[{]`, `{:}`,
	} {
		f.Add([]byte(s))
	}
	many := []byte(`{`)
	for i := range 40 {
		many = fmt.Appendf(many, `"n%d":%d,`, i, i)
	}
	f.Add(append(many, `"N39":0}`...))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := repeated(b)
		if !json.Valid(b) {
			return
		}
		if want := repeatedTokens(b); got != want {
			t.Fatalf("repeated(%q) = %q, want %q", b, got, want)
		}
	})
}

// repeatedTokens is repeated as it was, reading a json.Decoder's tokens.
func repeatedTokens(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	at, _ := repeatedTokensIn(dec, "")
	return at
}

func repeatedTokensIn(dec *json.Decoder, path string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			name, err := dec.Token()
			if err != nil {
				return "", err
			}
			at := name.(string)
			if path != "" {
				at = path + "." + at
			}
			if f := foldName(name.(string)); seen[f] {
				return at, nil
			} else {
				seen[f] = true
			}
			if p, err := repeatedTokensIn(dec, at); p != "" || err != nil {
				return p, err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if p, err := repeatedTokensIn(dec, fmt.Sprintf("%s[%d]", path, i)); p != "" || err != nil {
				return p, err
			}
		}
	default:
		return "", nil
	}
	_, err = dec.Token()
	return "", err
}
