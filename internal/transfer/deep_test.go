package transfer

import (
	"strings"
	"testing"
)

// TestDeeplyNested: a file of arrays or objects nested far deeper than
// encoding/json reads (10000 levels) is refused with its error before
// repeated, which reads nested values by recursion, reads it, as
// UnmarshalJSON is called directly, not by json.Unmarshal's own check;
// and repeated itself, given one (it reads only valid JSON), returns
// without running out of stack.
func TestDeeplyNested(t *testing.T) {
	const depth = 100_000
	deep := func(open, close string) []byte {
		return []byte(`{"format":"keyward-export/2","accounts":` + strings.Repeat(open, depth) + strings.Repeat(close, depth) + `}`)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"arrays", deep("[", "]")},
		{"objects", deep(`{"a":`, "}")},
		{"arrays unclosed", []byte(`{"format":"keyward-export/2","accounts":` + strings.Repeat("[", depth))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Dump
			err := d.UnmarshalJSON(tc.b)
			if err == nil || !strings.Contains(err.Error(), "exceeded max depth") {
				t.Fatalf("UnmarshalJSON: %v, want encoding/json's refusal", err)
			}
			if at := repeated(tc.b); at != "" {
				t.Fatalf("repeated = %q, want none", at)
			}
		})
	}
}
