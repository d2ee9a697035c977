package ascii

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLower(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"lower", "keyward.example", "keyward.example"},
		{"mixed", "KeyWard.EXAMPLE", "keyward.example"},
		{"digits and punctuation", "A-1_Z@[]^`{}", "a-1_z@[]^`{}"},
		{"letters beyond ASCII", "ÄPI.Example", "Äpi.example"},
		{"sharp s", "STRAẞE", "straẞe"},
		{"dotted capital I", "İNVENTORY", "İnventory"},
		{"Kelvin sign", "\u212aEY", "\u212aey"},
		{"invalid UTF-8", "\xffAB\xc3", "\xffab\xc3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Lower(tc.in); got != tc.want {
				t.Errorf("Lower(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

var sink string

// Lower copies nothing when there is nothing to lower: dpop's
// NormalizeURL runs it on every proof.
func TestLowerNoAllocation(t *testing.T) {
	host := strings.Repeat("keyward.example", 4) // longer than a stack buffer
	if n := testing.AllocsPerRun(100, func() { sink = Lower(host) }); n != 0 {
		t.Errorf("Lower of a lower-case name allocates %v times, want 0", n)
	}
}

// FuzzLower holds Lower to strings.ToLower on ASCII input, and to
// leaving every byte but A to Z as it is on any input.
func FuzzLower(f *testing.F) {
	for _, s := range []string{"", "keyward.example", "KeyWard.EXAMPLE", "ÄPI", "İ\u212a", "\xffA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Lower(s)
		if len(got) != len(s) {
			t.Fatalf("Lower(%q) = %q, of another length", s, got)
		}
		ascii := true
		for i := range len(s) {
			c, g := s[i], got[i]
			if c >= utf8.RuneSelf {
				ascii = false
			}
			want := c
			if 'A' <= c && c <= 'Z' {
				want = c + 'a' - 'A'
			}
			if g != want {
				t.Fatalf("Lower(%q) = %q: byte %d is %#x, want %#x", s, got, i, g, want)
			}
		}
		if ascii && got != strings.ToLower(s) {
			t.Fatalf("Lower(%q) = %q, strings.ToLower = %q", s, got, strings.ToLower(s))
		}
		if Lower(got) != got {
			t.Fatalf("Lower(%q) = %q, which Lower changes again", s, got)
		}
	})
}
