package masterkey

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	raw := []byte(strings.Repeat("k", 32))
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"raw", string(raw), true},
		{"hex", strings.Repeat("ab", 32) + "\n", true},
		{"base64", "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=", true},
		{"base64url raw", "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s", true},
		{"short", "abc", false},
		{"hex too long", strings.Repeat("ab", 33), false},
	}
	for _, tt := range tests {
		k, err := Parse([]byte(tt.in))
		if (err == nil) != tt.ok || (tt.ok && len(k) != 32) {
			t.Errorf("%s: key %d bytes, err %v; want ok=%v", tt.name, len(k), err, tt.ok)
		}
	}
}
