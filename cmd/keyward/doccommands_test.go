package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// The sh examples of the README and docs/ are what a new operator types
// first; TestDocCommands keeps every keyward command line in them a
// command this binary has, with flags it takes.

// docShellBlocks returns the lines of the ```sh blocks of the Markdown
// file, continuation lines joined.
func docShellBlocks(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in, cont := false, ""
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in = true
		case in && strings.TrimSpace(line) == "```":
			in = false
		case in:
			line = cont + line
			if l, ok := strings.CutSuffix(strings.TrimRight(line, " "), `\`); ok {
				cont = l + " "
				continue
			}
			cont = ""
			lines = append(lines, line)
		}
	}
	return lines
}

// docKeywardCommands returns the arguments of each keyward command in a
// shell line: one that starts the line or follows $(, a pipe, ; or &&.
// Shell words are split simply (the docs quote no spaces in keyward's
// arguments); a word that is a shell expansion becomes "X".
func docKeywardCommands(line string) [][]string {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	var cmds [][]string
	for _, seg := range regexp.MustCompile(`\$\(|\||;|&&|\)`).Split(line, -1) {
		words := strings.Fields(seg)
		for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
			words = words[1:] // VAR=value before the command
		}
		switch {
		case len(words) > 0 && (words[0] == "keyward" || words[0] == "./keyward"):
			words = words[1:]
		case len(words) > 2 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/keyward":
			words = words[3:]
		default:
			continue
		}
		var args []string
		for _, w := range words {
			if w == "&" || strings.HasPrefix(w, ">") || strings.HasPrefix(w, "<") {
				break
			}
			if strings.Contains(w, "$") {
				if name, _, ok := strings.Cut(w, "="); ok && strings.HasPrefix(name, "--") {
					w = name + "=X"
				} else {
					w = "X"
				}
			}
			args = append(args, strings.Trim(w, `'"`))
		}
		cmds = append(cmds, args)
	}
	return cmds
}

func TestDocCommands(t *testing.T) {
	docs := []string{"README.md", "docs/DEPLOYMENT.md", "docs/ADMIN-API.md", "docs/CONSOLE.md", "docs/PERFORMANCE.md"}
	found := 0
	for _, doc := range docs {
		for _, line := range docShellBlocks(t, filepath.Join("..", "..", doc)) {
			for _, args := range docKeywardCommands(line) {
				found++
				root := newRootCommand()
				cmd, rest, err := root.Find(args)
				if err != nil {
					t.Errorf("%s: keyward %s: %v", doc, strings.Join(args, " "), err)
					continue
				}
				if cmd == root && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
					t.Errorf("%s: keyward %s: no command %q", doc, strings.Join(args, " "), rest[0])
					continue
				}
				// A value the shell expands is checked for its flag's name only.
				if err := cmd.ParseFlags(rest); err != nil && !strings.Contains(err.Error(), `invalid argument "X"`) {
					t.Errorf("%s: keyward %s: %v (see keyward %s --help)", doc, strings.Join(args, " "), err, cmd.CommandPath()[len("keyward "):])
				}
			}
		}
	}
	t.Logf("%d keyward commands checked", found)
	if found < 50 {
		t.Errorf("found %d keyward commands in the docs' sh blocks; the parser has lost them", found)
	}
}

func TestDocKeywardCommands(t *testing.T) {
	tests := []struct {
		line string
		want [][]string
	}{
		{"./keyward serve &", [][]string{{"serve"}}},
		{"go run ./cmd/keyward serve     # the server", [][]string{{"serve"}}},
		{`TOKEN=$(./keyward token --key-file k.json --scopes a)`, [][]string{{"token", "--key-file", "k.json", "--scopes", "a"}}},
		{`ETAG=$(./keyward sa get x -o json | jq -r .etag)`, [][]string{{"sa", "get", "x", "-o", "json"}}},
		{`./keyward keys disable sa $KEY_ID  # note`, [][]string{{"keys", "disable", "sa", "X"}}},
		{`./keyward sa update sa --if-match "$ETAG"`, [][]string{{"sa", "update", "sa", "--if-match", "X"}}},
		{`KEYWARD_DB=postgres://x keyward migrate --db=$DB`, [][]string{{"migrate", "--db=X"}}},
		{`curl -s http://127.0.0.1:8080/token`, nil},
		{`keyward export --out a.json > log`, [][]string{{"export", "--out", "a.json"}}},
	}
	for _, tt := range tests {
		got := docKeywardCommands(tt.line)
		if len(got) != len(tt.want) {
			t.Errorf("%q: got %q, want %q", tt.line, got, tt.want)
			continue
		}
		for i := range got {
			if strings.Join(got[i], " ") != strings.Join(tt.want[i], " ") {
				t.Errorf("%q: got %q, want %q", tt.line, got[i], tt.want[i])
			}
		}
	}
}

// TestMasterKeyCommandsUmask: every command the docs and the commands'
// examples give to write a master key (openssl rand … > FILE) makes it
// mode 0600, under umask 077: master-key rotate's, written as the others
// without it, made the new key readable by every local user (0644 under
// the usual umask), and nothing warns of that.
func TestMasterKeyCommandsUmask(t *testing.T) {
	var lines []string
	for _, doc := range []string{"README.md", "docs/DEPLOYMENT.md", "docs/ADMIN-API.md", "docs/CONSOLE.md", "docs/PERFORMANCE.md"} {
		lines = append(lines, docShellBlocks(t, filepath.Join("..", "..", doc))...)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		lines = append(lines, strings.Split(c.Example, "\n")...)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
	found := 0
	for _, line := range lines {
		if !regexp.MustCompile(`openssl rand [^|]*>`).MatchString(line) {
			continue
		}
		found++
		if !strings.Contains(line, "umask 077") {
			t.Errorf("%q writes a key file readable by others: write it under (umask 077; …)", strings.TrimSpace(line))
		}
	}
	if found < 2 {
		t.Errorf("found %d commands writing a master key, want the docs' and master-key rotate's", found)
	}
}
