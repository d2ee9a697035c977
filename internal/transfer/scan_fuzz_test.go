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
			if at == "" {
				at = `""` // as repeated writes the empty name
			}
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

// FuzzReadFormat: readFormat, which reads the format of a valid export
// a byte at a time, gives the format and the error json.Unmarshal gives
// (type, text and, of a syntax error, offset) of any input.
func FuzzReadFormat(f *testing.F) {
	for _, name := range []string{"export-v1.json", "export-v2.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, ` `, `{}`, ` { } `, `[]`, `null`, ` null `, `1`, `"a"`, `true`, `{"format":"x"}`, `{"FORMAT":"x"}`, `{"Format":"x","format":"y"}`,
		`{"format":"x","format":null}`, `{"format":null}`, `{"format":1}`, `{"format":1,"format":"x"}`, `{"format":"x","format":[]}`,
		`{"format":{"a":"b"}}`, `{"\u0066ormat":"x"}`, `{"form\u0061t":"x\ty"}`, `{"ﬀormat":"x"}`, "{\"format\":\"\xff\"}", "{\"format\xff\":\"x\"}",
		`{"a":[1,{"format":"x"}],"b":"}","c":-1.5e3,"format":"y","d":true}`, `{"a":{"b":[[]]},"format" : "x" , "e":null}`,
		`{"format":"x"`, `{"format":"x"} {}`, `{"format":"x",}`, `{"format" "x"}`, `{"format":"x"}]`, `{"a":1e}`, `{"format":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var head struct {
			Format string `json:"format"`
		}
		wantErr := json.Unmarshal(b, &head)
		got, gotErr := readFormat(b)
		g, w := fmt.Sprintf("%T %v", gotErr, gotErr), fmt.Sprintf("%T %v", wantErr, wantErr)
		if got != head.Format || g != w {
			t.Fatalf("readFormat(%q) = %q, %s; json.Unmarshal: %q, %s", b, got, g, head.Format, w)
		}
		if gs, ok := gotErr.(*json.SyntaxError); ok && gs.Offset != wantErr.(*json.SyntaxError).Offset {
			t.Fatalf("readFormat(%q): %v at %d; json.Unmarshal at %d", b, gs, gs.Offset, wantErr.(*json.SyntaxError).Offset)
		}
	})
}
