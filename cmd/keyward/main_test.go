package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestExitStatus: every mistake in a command line is a usage error (exit
// status 2); a failure at run time is not (1).
func TestExitStatus(t *testing.T) {
	t.Setenv("KEYWARD_CREDENTIALS", "")
	t.Chdir(t.TempDir()) // no ./keyward-data/admin-key.json
	missing := filepath.Join(t.TempDir(), "none")
	existing := filepath.Join(t.TempDir(), "existing")
	if err := os.WriteFile(existing, []byte("kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args      []string
		wantUsage bool
		want      string
	}{
		{[]string{"nosuch"}, true, `unknown command "nosuch"`},
		{[]string{"serv"}, true, "did you mean serve"},
		// An empty word starts every command's name: none is suggested.
		{[]string{""}, true, `unknown command "" for "keyward": the command is empty` + "\nRun 'keyward --help'"},
		{[]string{"sa", " "}, true, `unknown command " " for "keyward sa": the command is empty` + "\nRun 'keyward sa --help'"},
		{[]string{"sa", "lst"}, true, `unknown command "lst" for "keyward sa"`},
		{[]string{"signing-keys", "rotat"}, true, "did you mean rotate"},
		{[]string{"sa", "keys", "delete", "a", "b"}, true, `unknown command "keys" for "keyward sa"; keys is a command of its own: keyward keys delete`},
		// --help and 'help' with a word no subcommand has: not the group's help
		{[]string{"sa", "keys", "delete", "--help"}, true, `unknown command "keys" for "keyward sa"; keys is a command of its own: keyward keys delete` + "\nRun 'keyward sa --help'"},
		{[]string{"help", "sa", "keys", "delete"}, true, `keys is a command of its own: keyward keys delete` + "\nRun 'keyward sa --help'"},
		{[]string{"sa", "lst", "-h"}, true, `unknown command "lst" for "keyward sa"; did you mean`},
		{[]string{"sa", "help", "create"}, true, `unknown command "help" for "keyward sa"; help is a command of its own: keyward help sa create`},
		{[]string{"sa", "help"}, true, `help is a command of its own: keyward help sa` + "\nRun"},
		{[]string{"completion", "bash", "extra"}, true, `unknown command "extra" for "keyward completion bash"` + "\nRun 'keyward completion bash --help'"},
		{[]string{"completion", "powershel"}, true, `unknown command "powershel" for "keyward completion"; did you mean powershell?`},
		{[]string{"nosuch", "--help"}, true, `unknown command "nosuch" for "keyward"`},
		{[]string{"--help", "sa", "lst"}, true, `unknown command "lst" for "keyward sa"; did you mean get or list?` + "\nRun 'keyward sa --help'"},
		{[]string{"help", "nosuch"}, true, `unknown command "nosuch" for "keyward"` + "\nRun 'keyward --help'"},
		{[]string{"sa", "get"}, true, "missing SA: keyward sa get SA"},
		{[]string{"sa", "get", "a", "b"}, true, `2 arguments, want 1: keyward sa get SA (unexpected: ["b"])`},
		{[]string{"keys", "get", "a@b.c"}, true, "missing KEY_ID: keyward keys get SA KEY_ID"},
		{[]string{"keys", "delete"}, true, "missing SA and KEY_ID: keyward keys delete SA KEY_ID"},
		{[]string{"users", "add"}, true, "missing EMAIL: keyward users add EMAIL..."},
		{[]string{"serve", "extra"}, true, `unexpected argument "extra": keyward serve takes only flags`},
		{[]string{"audit", "verify", "extra"}, true, `unexpected argument "extra": keyward audit verify takes only flags`},
		{[]string{"users", "list", "example.com"}, true, `unexpected argument "example.com": keyward users list takes only flags`},
		{[]string{"token", "key.json"}, true, `unexpected argument "key.json": keyward token takes only flags`},
		{[]string{"whoami", "admin"}, true, `unexpected argument "admin": keyward whoami takes only flags`},
		{[]string{"whoami", "-o", "yaml"}, true, "must be table or json"},
		{[]string{"sa", "create", "x"}, true, `required flag(s) "project" not set`},
		{[]string{"api", "create", "x"}, true, `required flag(s) "identifier", "scopes" not set`},
		{[]string{"sa", "--bogus"}, true, "unknown flag"},
		// A flag left without its value takes the next flag for it.
		{[]string{"keys", "create", "a@b.c", "--out", "--force"}, true, `--out was given no value: the word after it, "--force", is one of the command's flags`},
		{[]string{"export", "--data-dir", "--help"}, true, `--data-dir was given no value: the word after it, "--help", is one of the command's flags`},
		{[]string{"sa", "list", "-o", "-h"}, true, `--output was given no value: the word after it, "-h", is one of the command's flags`},
		{[]string{"sa", "update", "a@b.c", "--scopes", "a,--description=x"}, true, `--scopes was given no value: the word after it, "--description=x", is one of the command's flags`},
		{[]string{"sa", "update", "a@b.c", "--display-name", "--not-a-flag"}, false, "no credentials"},
		// A value that is not UTF-8 (Latin-1, say) is refused, naming its
		// flag or argument, not sent on with U+FFFD for its bytes; a
		// file's name is bytes, and may be any.
		{[]string{"sa", "get", "caf\xe9"}, true, `argument 1 (SA), $'caf\xe9', is not UTF-8 text: give it in UTF-8`},
		{[]string{"keys", "get", "a@b.c", "k\xff"}, true, `argument 2 (KEY_ID), $'k\xff', is not UTF-8 text`},
		{[]string{"users", "add", "a@b.c", "b\xe9@b.c"}, true, `argument 2 (EMAIL), $'b\xe9@b.c', is not UTF-8 text`},
		{[]string{"sa", "update", "a@b.c", "--display-name", "Caf\xe9"}, true, "--display-name is not UTF-8 text: the byte 0xE9 at byte 3 (counting from 0) is not part of a character; give it in UTF-8"},
		{[]string{"sa", "update", "a@b.c", "--scopes", "a,b\xff"}, true, "--scopes is not UTF-8 text: the byte 0xFF at byte 1 (counting from 0) of one of its values"},
		{[]string{"sa", "update", "a@b.c", "--display-name", "Caf\xc3\xa9"}, false, "no credentials"},
		{[]string{"users", "import", missing + "\xff"}, false, "no such file"},
		{[]string{"audit", "verify", "--data-dir", missing + "\xff"}, false, "no Keyward database"},
		{[]string{"sa", "list", "-o", "yaml"}, true, "must be table or json"},
		{[]string{"keys", "create", "x@p.iam.example"}, true, "--out is required"},
		{[]string{"audit", "list", "--newest", "--follow"}, true, "--newest and --follow go opposite ways"},
		{[]string{"audit", "list", "--max", "-1"}, true, "--max must be 0 (no limit) or more"},
		{[]string{"audit", "list", "--since", "yesterday"}, true, `--since "yesterday" is neither a duration ago (24h, 7d) nor an RFC 3339 time`},
		{[]string{"audit", "list", "--until", "-1h"}, true, `--until "-1h" is neither a duration ago`},
		{[]string{"audit", "list", "--since", "9999999d"}, true, "--since 9999999d is more than 10000 years ago"},
		{[]string{"audit", "list", "--outcome", "failed"}, true, `--outcome "failed" must be success or failure`},
		{[]string{"audit", "list", "--after", "x"}, true, `--after "x" must be an event's sequence number (SEQ in the list), from 0`},
		{[]string{"audit", "list", "--newest", "--before", "0"}, true, `--before "0" must be an event's sequence number (SEQ in the list), from 1`},
		{[]string{"audit", "list", "--since", "1h", "--until", "2h"}, true, "--since 1h is after --until 2h: no event is at or after the one and before the other"},
		{[]string{"audit", "list", "--since", "2026-12-01T00:00:00.5Z", "--until", "2026-12-01T00:00:00Z"}, true, "--since 2026-12-01T00:00:00.5Z is after --until"},
		{[]string{"audit", "list", "--since", "24h", "--until", "2999-12-01T00:00:00Z", "--outcome", "failure", "--after", "0"}, false, "no credentials"},
		{[]string{"audit", "list", "--since", "1h", "--until", "1h"}, false, "no credentials"},
		{[]string{"sa", "update", "x", "--description", "d", "--credentials", missing}, false, "credentials"},
		// The flags are checked before the credentials are loaded.
		{[]string{"sa", "update", "x", "--credentials", missing}, true, "nothing to update"},
		{[]string{"sa", "list"}, false, "no credentials"},
		{[]string{"whoami"}, false, "no credentials: keyward-data/admin-key.json (the default) does not exist; pass --credentials FILE"},
		{[]string{"audit", "verify", "--data-dir", missing}, false, "no Keyward database"},
		// As serve refuses it; it was the working directory, or mkdir "".
		{[]string{"migrate", "--data-dir", ""}, true, "--data-dir must not be empty"},
		{[]string{"export", "--data-dir", ""}, true, "--data-dir must not be empty"},
		{[]string{"audit", "verify", "--data-dir", ""}, true, "--data-dir must not be empty"},
		// An output file that already exists is in the way of a command
		// line that may be right: a failure (1), as when it appears
		// between the check and the write, not a usage error.
		{[]string{"keys", "create", "x@p.iam.example", "--out", existing}, false, existing + " exists; pass --force to overwrite it"},
		{[]string{"dpop", "keygen", "--out", existing}, false, existing + " exists: keygen never overwrites a key"},
		{[]string{"recover-admin", "--data-dir", missing, "--key-file", existing}, false, "--key-file " + existing + " already exists; name a new file"},
		{[]string{"audit", "prune", "--data-dir", missing, "--before", "90d", "--export", existing}, false, "--export " + existing + " already exists; name a new file"},
		{[]string{"export", "--data-dir", missing, "--out", existing}, false, "--out " + existing + " already exists; name a new file, or pass --force to replace it"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := runCLIErr(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			var ue usageError
			if errors.As(err, &ue) != tt.wantUsage {
				t.Fatalf("usage error (exit 2): %v, want %v: %v", !tt.wantUsage, tt.wantUsage, err)
			}
			// Every usage error, wherever it is found, says once where
			// help is.
			if hints := strings.Count(err.Error(), "--help' for usage."); tt.wantUsage && hints != 1 {
				t.Fatalf("%q: %d hints to run --help, want 1", err, hints)
			}
		})
	}
}

// TestArgsMatchUse: every command that takes arguments takes as many as
// its Use line names, which its errors quote: one fewer is "missing" the
// last, one more is refused (but after a variadic NAME...).
func TestArgsMatchUse(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sc := range c.Commands() {
			walk(sc)
		}
		names := argNames(c.Use)
		if c.Args == nil || c.HasSubCommands() || len(names) == 0 {
			return
		}
		t.Run(c.CommandPath(), func(t *testing.T) {
			args := make([]string, len(names))
			for i := range args {
				args[i] = "x"
			}
			if err := c.Args(c, args); err != nil {
				t.Errorf("%d arguments, as %q names: %v", len(args), c.Use, err)
			}
			if err := c.Args(c, args[1:]); err == nil || !strings.Contains(err.Error(), "missing "+names[len(names)-1]+": ") {
				t.Errorf("%d arguments: %v, want missing %s", len(args)-1, err, names[len(names)-1])
			}
			err := c.Args(c, append(args, "y"))
			if variadic := strings.Contains(c.Use, "..."); variadic != (err == nil) {
				t.Errorf("%d arguments: %v (variadic: %v)", len(args)+1, err, variadic)
			}
		})
	}
	walk(newRootCommand())
}

// TestHelpNamesCommand: --help and 'keyward help' show the help of the
// command named, and only of that one.
func TestHelpNamesCommand(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "keyward [flags]\n  keyward [command]"},
		{[]string{"help"}, "keyward [flags]\n  keyward [command]"},
		{[]string{"sa", "--help"}, "keyward sa [flags]\n  keyward sa [command]"},
		{[]string{"help", "sa"}, "keyward sa [flags]\n  keyward sa [command]"},
		{[]string{"keys", "delete", "--help"}, "keyward keys delete SA KEY_ID"},
		{[]string{"help", "keys", "delete"}, "keyward keys delete SA KEY_ID"},
		{[]string{"sa", "get", "-h"}, "keyward sa get SA"},
		{[]string{"whoami", "--help"}, "keyward whoami [flags]\n\nExamples:\n  keyward whoami --credentials"},
		// --help before the subcommand's name: that subcommand's help
		{[]string{"sa", "--help", "create"}, "keyward sa create NAME"},
		{[]string{"keys", "-h", "delete"}, "keyward keys delete SA KEY_ID"},
		{[]string{"--help", "sa"}, "keyward sa [flags]\n  keyward sa [command]"},
		{[]string{"-h", "keys", "delete", "a@b.c"}, "keyward keys delete SA KEY_ID"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out strings.Builder
			cmd := newRootCommand()
			cmd.SetArgs(tt.args)
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			if err := execute(t.Context(), cmd); err != nil {
				t.Fatalf("error %v", err)
			}
			if !strings.Contains(out.String(), "Usage:\n  "+tt.want) {
				t.Fatalf("help %q does not show usage %q", out.String(), tt.want)
			}
		})
	}
}

// TestRevokeHelp: the help of the two revoking commands says where a
// token's ID is found and that APIs verifying JWTs locally do not see a
// revocation, as 'keyward tokens --help' does; the help an operator
// reaches first is the subcommand's.
func TestRevokeHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"tokens", "revoke", "--help"}, []string{"the jti claim of a JWT", "APIs that verify JWTs locally do not see"}},
		{[]string{"sa", "revoke-tokens", "--help"}, []string{"Introspection reports", "APIs that verify JWTs locally do not see"}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out strings.Builder
			cmd := newRootCommand()
			cmd.SetArgs(tt.args)
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			if err := execute(t.Context(), cmd); err != nil {
				t.Fatalf("error %v", err)
			}
			help := strings.Join(strings.Fields(out.String()), " ")
			for _, w := range tt.want {
				if !strings.Contains(help, w) {
					t.Errorf("help %q does not say %q", out.String(), w)
				}
			}
		})
	}
}

// TestSAUpdateNothing: sa update without a change names every flag that
// makes one.
func TestSAUpdateNothing(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "unchanged")
	err := runCLIErr(t, "sa", "update", email, "--credentials", m.AdminKeyFile)
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want a usage error", err)
	}
	for _, flag := range []string{"--scopes", "--auth-methods", "--tls-", "--tls-clear", "--display-name", "--description", "--token-lifetime", "--token-format"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("%q does not name %s", err, flag)
		}
	}
}

// TestSAUpdateEmptyTLS: an empty --tls-* value is refused, naming
// --tls-clear, even beside another change: it was dropped unsaid, and
// the binding kept.
func TestSAUpdateEmptyTLS(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "emptytls")
	for _, args := range [][]string{
		{"--tls-subject-dn", ""},
		{"--tls-san-dns", "", "--display-name", "x"},
		{"--tls-san-uri=", "--scopes", "orders.read"},
		{"--tls-san-ip", ""},
		{"--tls-san-email", ""},
	} {
		// With credentials that do not load too: the flags are checked
		// first, so the mistake is said as one (exit 2).
		for _, creds := range []string{m.AdminKeyFile, filepath.Join(t.TempDir(), "none.json")} {
			err := runCLIErr(t, append([]string{"sa", "update", email, "--credentials", creds}, args...)...)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--tls-clear") || !strings.Contains(err.Error(), " is empty") {
				t.Errorf("sa update %q --credentials %s: %v, want a usage error that says the flag is empty and names --tls-clear", args, creds, err)
			}
		}
	}
}

// TestCounted: one of a thing is in the singular, any other count in the
// plural.
func TestCounted(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		noun string
		want string
	}{
		{0, "user", "0 users"},
		{1, "user", "1 user"},
		{2, "signing key", "2 signing keys"},
		{1, "API", "1 API"},
		{5000, "API", "5000 APIs"},
	} {
		if got := counted(tt.n, tt.noun); got != tt.want {
			t.Errorf("counted(%d, %q) = %q, want %q", tt.n, tt.noun, got, tt.want)
		}
	}
}

// TestSALifetimeHelp: the --token-lifetime of sa create and sa update
// says what 0 does (the server's --default-token-lifetime; for update, a
// reset to it) and the bound: sa update's said only "new access-token
// lifetime", and 0 silently reset the account's lifetime.
func TestSALifetimeHelp(t *testing.T) {
	for _, sub := range []string{"create", "update"} {
		out := runCLI(t, "sa", sub, "--help")
		for _, want := range []string{"0", "--default-token-lifetime", "--max-token-lifetime"} {
			line := flagHelp(out, "--token-lifetime duration")
			if !strings.Contains(line, want) {
				t.Errorf("sa %s --token-lifetime: %q does not name %s", sub, line, want)
			}
		}
	}
}

// flagHelp is the usage of the flag named so in the --help text help, its
// lines wrapped to fit 80 columns joined into one.
func flagHelp(help, name string) string {
	_, text, _ := strings.Cut(help, name)
	var words []string
	for i, line := range strings.Split(text, "\n") {
		// a flag's name is indented 2 or 6 columns, its usage further
		if i > 0 && (strings.TrimSpace(line) == "" || !strings.HasPrefix(line, "        ")) {
			break // the next flag, or the end of the list
		}
		words = append(words, strings.Fields(line)...)
	}
	return strings.Join(words, " ")
}

// TestExpiresInHelp: the --expires-in of keys create, keys upload and
// secrets create names both bounds, the upper one the server's (100
// years), which the help left out; the server takes a secret that lives
// that long and refuses one a second longer.
func TestExpiresInHelp(t *testing.T) {
	for _, cmd := range [][]string{{"keys", "create"}, {"keys", "upload"}, {"secrets", "create"}} {
		out := runCLI(t, append(cmd, "--help")...)
		line := flagHelp(out, "--expires-in duration")
		for _, want := range []string{"from 1s", "to 100 years, 876000h"} {
			if !strings.Contains(line, want) {
				t.Errorf("%s --expires-in: %q does not say %q", strings.Join(cmd, " "), line, want)
			}
		}
	}
	m := startServer(t)
	_, email := setupAccount(t, m, "longlived")
	runCLI(t, "secrets", "create", email, "--expires-in", "876000h", "--credentials", m.AdminKeyFile)
	if err := runCLIErr(t, "secrets", "create", email, "--expires-in", "876000h1s", "--credentials", m.AdminKeyFile); err == nil || !strings.Contains(err.Error(), "at most 100 years") {
		t.Errorf("secrets create --expires-in 876000h1s: %v, want the server's refusal", err)
	}
}

// TestHelpLineWidth: all of every command's --help, its flags and
// examples as well as its text, fits 80 columns, as a terminal shows it
// (a tab up to the next multiple of 8): lines of a paragraph edited over
// time ran to 130, flag usages to 200 and serve's example to 103, and
// cobra's completion commands, in cobra's words, to 83.
func TestHelpLineWidth(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sc := range c.Commands() {
			walk(sc)
		}
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		for i, line := range strings.Split(runCLI(t, args...), "\n") {
			if n := terminalColumns(line); n > 80 {
				t.Errorf("%s --help, line %d, is %d columns: %q", c.CommandPath(), i+1, n, line)
			}
		}
	}
	walk(newRootCommand())
}

// terminalColumns is how many columns line takes on a terminal, whose
// tab stops are 8 columns apart.
func terminalColumns(line string) int {
	n := 0
	for _, r := range line {
		if r == '\t' {
			n += 8 - n%8
		} else {
			n++
		}
	}
	return n
}

// TestRequiredFlagsHelp: a flag a command cannot do without says
// "(required)" in --help, as api create's and sa create's did, and the
// command refuses to run without it, naming it, before asking anything of
// a server: delegation grant sent a grant without --scopes, which the
// server refused.
func TestRequiredFlagsHelp(t *testing.T) {
	t.Setenv("KEYWARD_CREDENTIALS", "")
	t.Chdir(t.TempDir()) // no ./keyward-data/admin-key.json
	tests := []struct {
		args []string // the command, without the flag
		flag string
	}{
		{[]string{"api", "create", "orders", "--scopes", "orders.read"}, "identifier"},
		{[]string{"sa", "create", "job"}, "project"},
		{[]string{"keys", "create", "job@p.iam.keyward.internal"}, "out"},
		{[]string{"keys", "upload", "job@p.iam.keyward.internal"}, "public-key"},
		{[]string{"dpop", "keygen"}, "out"},
		{[]string{"dpop", "proof", "--url", "https://x.internal/"}, "dpop-key"},
		{[]string{"dpop", "proof", "--dpop-key", "dpop.pem"}, "url"},
		{[]string{"token", "--key-file", "key.json"}, "scopes"},
		{[]string{"master-key", "rotate"}, "new-master-key-file"},
		{[]string{"recover-admin"}, "key-file"},
		{[]string{"audit", "prune"}, "before"},
		{[]string{"org", "policy", "example.com"}, "block-scopes"},
		{[]string{"users", "list"}, "org"},
		{[]string{"delegation", "list"}, "org"},
		{[]string{"delegation", "grant", "--client-id", "1", "--scopes", "a.b"}, "org"},
		{[]string{"delegation", "grant", "--org", "example.com", "--scopes", "a.b"}, "client-id"},
		{[]string{"delegation", "grant", "--org", "example.com", "--client-id", "1"}, "scopes"},
		{[]string{"delegation", "revoke", "--org", "example.com"}, "client-id"},
	}
	root := newRootCommand()
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+" without --"+tt.flag, func(t *testing.T) {
			c, _, err := root.Find(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if f := c.Flags().Lookup(tt.flag); f == nil || !strings.HasSuffix(f.Usage, "(required)") {
				t.Errorf("%s --%s does not say it is required: %+v", c.CommandPath(), tt.flag, f)
			}
			err = runCLIErr(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.flag) || !strings.Contains(err.Error(), "required") || !strings.Contains(err.Error(), "--help' for usage") {
				t.Errorf("without --%s: %v, want a usage error that it is required", tt.flag, err)
			}
		})
	}
}

// TestUseNamesRequiredFlags: the Use line of a command names, outside
// brackets, the flags it requires, and only those (or one whose help
// names the default it falls back on): sa create's named --scopes as if
// required, and an account is created without scopes.
func TestUseNamesRequiredFlags(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sc := range c.Commands() {
			walk(sc)
		}
		if c.Name() == "completion" && c.Parent() == c.Root() {
			return
		}
		// The flags the Use line names outside [...].
		named := map[string]bool{}
		depth := 0
		for _, w := range strings.Fields(strings.NewReplacer("[", " [ ", "]", " ] ").Replace(c.Use)) {
			switch {
			case w == "[":
				depth++
			case w == "]":
				depth--
			case depth == 0 && strings.HasPrefix(w, "--"):
				named[strings.TrimPrefix(w, "--")] = true
			}
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			required := strings.HasSuffix(f.Usage, "(required)")
			if named[f.Name] && !required && !strings.Contains(f.Usage, "(default: $") {
				t.Errorf("%s: its usage %q names --%s, which is not required", c.CommandPath(), c.Use, f.Name)
			}
			if required && !named[f.Name] {
				t.Errorf("%s: its usage %q does not name --%s, which is required", c.CommandPath(), c.Use, f.Name)
			}
		})
	}
	walk(newRootCommand())
}

// TestPathFlags: pathFlags, the flags whose values notUTF8Flag lets be
// any bytes, are the flags whose value names a file or a directory, by
// the help of some command that has them: a file flag added without it
// would refuse a file name that is not UTF-8, and a text flag in it would
// send such text on.
func TestPathFlags(t *testing.T) {
	// Flags whose help names a file, a directory or PEM for another
	// reason: --server's default is the credentials file's server,
	// --issuer (of recover-admin) is written to the key file, and
	// --client-cert-header carries PEM.
	notPaths := map[string]bool{"server": true, "issuer": true, "client-cert-header": true}
	names := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.InheritedFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if f.Value.Type() == "bool" {
					return
				}
				names[f.Name] = names[f.Name] || regexp.MustCompile(`\b(file|directory|PEM)\b`).MatchString(f.Usage) && !notPaths[f.Name]
			})
		}
		for _, sc := range c.Commands() {
			walk(sc)
		}
	}
	walk(newRootCommand())
	for name, path := range names {
		if path != pathFlags[name] {
			t.Errorf("--%s: its help names a file or directory: %v; in pathFlags: %v", name, path, pathFlags[name])
		}
	}
	for name := range pathFlags {
		if _, ok := names[name]; !ok {
			t.Errorf("pathFlags has --%s, which no command has", name)
		}
	}
}
