package admin

import (
	"bytes"
	"runtime"
	"testing"
)

// TestNulField names the member whose string holds a \u0000, and nothing
// for a body not JSON, as its doc says; nor for one nested deeper than
// JSON decoding takes (10000 levels), which it read with a frame a
// level, some 170 MB for a 1 MiB body of '['.
func TestNulField(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"name":"a\u0000b"}`, "name"},
		{`{"a":{"b":1},"scopes":["x","\u0000"]}`, "scopes"},
		{`{"a\u0000":"x"}`, ""},
		{`["\u0000"]`, ""},
		{`{"name":"\u0000"`, ""}, // no JSON
		{"{\"name\":\"\x00\"}", ""},
	} {
		if got := nulField([]byte(tt.body)); got != tt.want {
			t.Errorf("nulField(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
	deep := append(bytes.Repeat([]byte(`{"a":[`), 1<<20/6-2), `"\u0000"`...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := nulField(deep)
	runtime.ReadMemStats(&after)
	if got != "" {
		t.Errorf("nulField of a body nested %d deep = %q, want \"\"", 1<<20/6-2, got)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Errorf("nulField of a 1 MiB body allocated %d MiB, want at most 8", n>>20)
	}
}
