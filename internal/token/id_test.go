package token

import (
	"strings"
	"testing"
)

// TestTokenIDNotAFlag: a token ID never starts with '-', which a command
// line ('keyward tokens revoke ID') would take for a flag. One ID in 64
// would without the check.
func TestTokenIDNotAFlag(t *testing.T) {
	seen := map[string]bool{}
	for range 5000 {
		id := newTokenID()
		if strings.HasPrefix(id, "-") || len(id) != 22 || seen[id] {
			t.Fatalf("token ID %q: starts with '-', is not 22 characters, or repeats", id)
		}
		seen[id] = true
	}
}
