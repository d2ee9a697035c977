package main

import (
	"os/exec"
	"testing"
)

// TestShellArg: a command line printed for the user to paste quotes each
// argument as a POSIX shell reads it back (checked with bash when there is
// one), only when it needs it, and never with a raw control character.
func TestShellArg(t *testing.T) {
	tests := []struct{ arg, want string }{
		{"admin@keyward.iam.keyward.internal", "admin@keyward.iam.keyward.internal"},
		{"100000000000000000042", "100000000000000000042"},
		{"KEY_ID", "KEY_ID"},
		{"/tmp/dpop key.pem", `'/tmp/dpop key.pem'`},
		{"", `''`},
		{"it's", `'it'\''s'`},
		{"a;b&c|d", `'a;b&c|d'`},
		{"$(touch pwned)`x`", "'$(touch pwned)`x`'"},
		{"~/x", `'~/x'`},
		{"*.pem", `'*.pem'`},
		{"é@x", `'é@x'`},
		{"x\u009b31m.internal", `$'x\xc2\x9b31m.internal'`},
		{"a\x1b[31m'b\\c\n", `$'a\x1b[31m\'b\\c\x0a'`},
		{"bad\xffutf8", `$'bad\xffutf8'`},
	}
	bash, _ := exec.LookPath("bash")
	for _, tt := range tests {
		got := shellArg(tt.arg)
		if got != tt.want {
			t.Errorf("shellArg(%q) = %s, want %s", tt.arg, got, tt.want)
		}
		if !printable(got) {
			t.Errorf("shellArg(%q) = %q holds a character that is not printable", tt.arg, got)
		}
		if bash == "" {
			continue
		}
		// The shell reads the argument back, as printf prints it.
		out, err := exec.Command(bash, "-c", "printf %s "+got).Output()
		if err != nil || string(out) != tt.arg {
			t.Errorf("bash read %s back as %q (%v), want %q", got, out, err, tt.arg)
		}
	}
	if got, want := shellCommand("keyward", "keys", "delete", "it's@x", "KEY_ID"), `keyward keys delete 'it'\''s@x' KEY_ID`; got != want {
		t.Errorf("shellCommand = %s, want %s", got, want)
	}
}
