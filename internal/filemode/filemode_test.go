package filemode_test

import (
	"io/fs"
	"testing"

	"github.com/keyward/keyward/internal/filemode"
)

// OthersMay words what a mode's group and other bits let them do: read,
// change, both, or execute alone for the bit that grants only that.
func TestOthersMay(t *testing.T) {
	for _, tt := range []struct {
		mode fs.FileMode
		want string
	}{
		{0o640, "read"},
		{0o604, "read"},
		{0o644, "read"},
		{0o620, "change"},
		{0o602, "change"},
		{0o660, "read or change"},
		{0o646, "read or change"},
		{0o624, "read or change"},
		{0o610, "execute"},
		{0o701, "execute"},
		{0o654, "read"},
	} {
		if got := filemode.OthersMay(tt.mode); got != tt.want {
			t.Errorf("OthersMay(%#o) = %q, want %q", tt.mode, got, tt.want)
		}
	}
}
