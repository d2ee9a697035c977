// Command keyward is the Keyward OAuth 2.0 authorization server for machine
// identities, and the command-line tool that manages it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/internal/validate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := execute(ctx, newRootCommand()); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "keyward:", err)
			os.Exit(2)
		}
		if !errors.As(err, new(loggedError)) {
			fmt.Fprintln(os.Stderr, "keyward:", err)
		}
		os.Exit(1)
	}
}

// execute runs root and makes a usage error, wherever it was found, say
// how to get help on the command that was run.
func execute(ctx context.Context, root *cobra.Command) error {
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil && cmd != nil {
		if group, word, rest := helpTarget(cmd); word != "" {
			cmd, err = group, unknownCommand(group, word, rest)
		}
	}
	var ue usageError
	if errors.As(err, &ue) && cmd != nil {
		if cmd.Name() == "help" && cmd.Parent() == root {
			// 'keyward help sa keys': help is sa's
			if c, _, ferr := root.Find(cmd.Flags().Args()); ferr == nil {
				cmd = c
			}
		}
		return usageError{fmt.Errorf("%w\nRun '%s --help' for usage.", ue.error, cmd.CommandPath())}
	}
	return err
}

// usageError is a mistake in the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "keyward",
		Short: "OAuth 2.0 authorization server for service accounts",
		Long: `Keyward issues short-lived, scoped access tokens to service accounts:
jobs, services and pipelines trade a key (JWT-bearer grant) for a token,
and APIs verify the token against Keyward's published keys.

Run the server with 'keyward serve'. The other commands manage it through
its admin API, authenticated with an administrator key file
(--credentials, or KEYWARD_CREDENTIALS; 'keyward serve' writes one to
<data-dir>/admin-key.json on first start).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(usage)
	root.SetUsageTemplate(usageTemplate)
	root.AddCommand(
		newServeCommand(),
		newMigrateCommand(),
		newExportCommand(),
		newImportCommand(),
		newAPICommand(),
		newSACommand(),
		newKeysCommand(),
		newSecretsCommand(),
		newTokensCommand(),
		newWhoAmICommand(),
		newOrgCommand(),
		newUsersCommand(),
		newDelegationCommand(),
		newAuditCommand(),
		newBenchCommand(),
		newTokenCommand(),
		newDPoPCommand(),
		newSigningKeysCommand(),
		newRecoverAdminCommand(),
		newMasterKeyCommand(),
		newVersionCommand(),
	)
	// Missing required flags are checked here, before cobra would report
	// them as a plain error.
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if err := c.ValidateRequiredFlags(); err != nil {
			return usage(c, err)
		}
		if err := c.ValidateFlagGroups(); err != nil {
			return usage(c, err)
		}
		if err := flagAsValue(c); err != nil {
			return usage(c, err)
		}
		if err := notUTF8Flag(c); err != nil {
			return usage(c, err)
		}
		return nil
	}
	// cobra adds 'completion' as it executes, after usageErrors would have
	// seen it: added now, its mistakes are usage errors too.
	root.InitDefaultCompletionCmd()
	fitCompletionHelp(root)
	usageErrors(root)
	addVersionFlag(root)
	refuseStrayHelp(root)
	return root
}

// flagAsValue reports a flag whose value is one of the command's flags: in
// 'keyward keys create SA --out --force' or 'keyward serve --data-dir
// --help', the value was left out, and the next flag taken for it (a key
// file named --force, a server on a data directory named --help).
func flagAsValue(c *cobra.Command) error {
	var err error
	c.Flags().Visit(func(f *pflag.Flag) {
		if err != nil || f.Value.Type() == "bool" {
			return
		}
		for _, v := range flagValues(f) {
			name, _, _ := strings.Cut(v, "=")
			var named *pflag.Flag
			switch {
			case strings.HasPrefix(name, "--"):
				named = c.Flags().Lookup(name[2:])
			case len(name) == 2 && name[0] == '-':
				named = c.Flags().ShorthandLookup(name[1:])
			}
			if named != nil {
				err = fmt.Errorf("--%s was given no value: the word after it, %q, is one of the command's flags", f.Name, v)
				return
			}
		}
	})
	return err
}

// flagValues are the values given to f: one, or each of a list's.
func flagValues(f *pflag.Flag) []string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return []string{f.Value.String()}
}

// emptyArg reports the first empty (or blank) argument, or the first
// that is not UTF-8 text (Latin-1, say: sent on, it would reach the
// server with U+FFFD for its bytes), named as the command's Use line
// names it ("get SA KEY_ID": SA, then KEY_ID). A FILE may be any bytes,
// as a file's name may.
func emptyArg(use string, args []string) error {
	for i, a := range args {
		names := argNames(use)
		name := fmt.Sprintf("argument %d", i+1)
		switch {
		case i < len(names):
			name = names[i]
		case len(names) > 0 && strings.HasSuffix(use, "..."):
			name = names[len(names)-1]
		}
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("argument %d (%s) is empty: %q", i+1, name, a)
		}
		if !utf8.ValidString(a) && name != "FILE" {
			return fmt.Errorf("argument %d (%s), %s, is not UTF-8 text: give it in UTF-8", i+1, name, validate.Clip(a, shellArg))
		}
	}
	return nil
}

// pathFlags are the flags whose value names a file or a directory, which
// may be any bytes, as a file's name may: notUTF8Flag lets them be.
var pathFlags = map[string]bool{
	"ca-cert": true, "config": true, "credentials": true, "data-dir": true, "dpop-key": true, "export": true,
	"key-file": true, "master-key-file": true, "new-master-key-file": true, "out": true, "public-key": true,
	"tls-cert": true, "tls-client-ca": true, "tls-key": true, "token-file": true,
}

// notUTF8Flag reports the first flag given on c's command line whose
// value is not UTF-8 text (a name, a scope, a description in Latin-1),
// but a file's or a directory's (pathFlags): sent on, it would reach the
// server with U+FFFD for its bytes. The value is not shown: it may be a
// secret.
func notUTF8Flag(c *cobra.Command) error {
	var err error
	c.Flags().Visit(func(f *pflag.Flag) {
		if err != nil || pathFlags[f.Name] || len(f.Annotations[sourceAnnotation]) > 0 {
			return
		}
		of := ""
		if _, list := f.Value.(pflag.SliceValue); list {
			of = " of one of its values"
		}
		for _, v := range flagValues(f) {
			if at := validate.NotUTF8(v); at >= 0 {
				err = fmt.Errorf("--%s is not UTF-8 text: the byte 0x%02X at byte %d (counting from 0)%s is not part of a character; give it in UTF-8", f.Name, v[at], at, of)
				return
			}
		}
	})
	return err
}

// argCountError words err, cobra's refusal of the number of arguments a
// given to cmd ('accepts 2 arg(s), received 1'), by the arguments the
// command's Use line names: 'missing KEY_ID: keyward keys get SA KEY_ID'.
func argCountError(cmd *cobra.Command, a []string, err error) error {
	names := argNames(cmd.Use)
	if len(names) == 0 {
		return err
	}
	line := strings.Join(names, " ")
	variadic := strings.Contains(cmd.Use, "...")
	if variadic {
		line += "..."
	}
	switch {
	case len(a) < len(names):
		missing := names[len(a):]
		what := strings.Join(missing, " and ")
		if len(missing) > 2 {
			what = strings.Join(missing[:len(missing)-1], ", ") + " and " + missing[len(missing)-1]
		}
		return fmt.Errorf("missing %s: %s %s", what, cmd.CommandPath(), line)
	case len(a) > len(names) && !variadic:
		return fmt.Errorf("%d arguments, want %d: %s %s (unexpected: %q)", len(a), len(names), cmd.CommandPath(), line, a[len(names):])
	}
	return err
}

// argNames are the placeholders of the positional arguments in a
// command's Use line: "upload SA --public-key FILE [--x Y]" names SA
// (FILE is a flag's value; options in brackets are skipped).
func argNames(use string) []string {
	var names []string
	f := strings.Fields(use)
	for i := 1; i < len(f); i++ {
		switch w := f[i]; {
		case strings.ContainsAny(w, "[]"):
		case strings.HasPrefix(w, "-"):
			if i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") && !strings.ContainsAny(f[i+1], "[]") {
				i++ // the flag's value
			}
		default:
			names = append(names, strings.TrimSuffix(w, "..."))
		}
	}
	return names
}

// noArgs refuses arguments to a command that takes none, as cobra.NoArgs
// does, but saying so: cobra's "unknown command" for 'keyward users list
// example.com' reads as a mistyped subcommand of a command that has none.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q: %s takes only flags", args[0], cmd.CommandPath())
	}
	return nil
}

// usage makes err, a mistake in c's command line, a usageError; execute
// adds where help on c is.
func usage(_ *cobra.Command, err error) error {
	return usageError{flagValueError(err, true)}
}

// usageErrors makes every mistake in the command line of c and its
// subcommands a usageError (exit status 2). Cobra reports wrong arguments
// as plain errors, and shows a command group's help for an unknown
// subcommand ('keyward sa lsit') and exits 0. An empty argument
// ('keyward sa get ""') is one too: no name, ID, email or file is empty.
func usageErrors(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usage(cmd, argCountError(cmd, a, err))
			}
			if err := emptyArg(cmd.Use, a); err != nil {
				return usage(cmd, err)
			}
			return nil
		}
	}
	if !c.Runnable() && c.HasSubCommands() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, a []string) error {
			if len(a) == 0 {
				return cmd.Help()
			}
			return unknownCommand(cmd, a[0], a[1:])
		}
	}
	for _, sc := range c.Commands() {
		usageErrors(sc)
	}
}

// unknownCommand is the usage error for word, given to command group c
// where a subcommand was expected, followed by rest. It suggests the
// subcommands word may be a misspelling of, or, when word is a command of
// its own ('keyward sa keys delete'), the command that was meant.
func unknownCommand(c *cobra.Command, word string, rest []string) error {
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	err := fmt.Errorf("unknown command %q for %q", word, c.CommandPath())
	if strings.TrimSpace(word) == "" {
		// Every command would be suggested: each starts with "".
		return usage(c, fmt.Errorf("%w: the command is empty", err))
	}
	if s := c.SuggestionsFor(word); len(s) > 0 {
		return usage(c, fmt.Errorf("%w; did you mean %s?", err, strings.Join(s, " or ")))
	}
	if root := c.Root(); root != c {
		meant, _, ferr := root.Find(append([]string{word}, rest...))
		if ferr == nil && meant.Name() == "help" && meant.Parent() == root {
			// 'keyward sa help create': help is only the root's
			path := append(strings.Fields(c.CommandPath())[1:], rest...)
			return usage(c, fmt.Errorf("%w; help is a command of its own: %s help %s", err, root.Name(), strings.Join(path, " ")))
		}
		if ferr == nil && meant != root {
			return usage(c, fmt.Errorf("%w; %s is a command of its own: %s", err, word, meant.CommandPath()))
		}
	}
	return usage(c, err)
}

// helpTarget resolves the words given to command group c run with --help:
// 'keyward sa --help create' and 'keyward --help sa create' mean the help
// of 'keyward sa create', which is target. A word that names no
// subcommand of the group before it is stray, with the group and the
// words after it: cobra would show that group's help for 'keyward sa keys
// delete --help', and the user would read sa's help believing it was that
// of the command they meant. Without --help, or words, target is c.
func helpTarget(c *cobra.Command) (target *cobra.Command, stray string, rest []string) {
	h := c.Flags().Lookup("help")
	args := c.Flags().Args()
	if h == nil || !h.Changed || !c.HasSubCommands() || len(args) == 0 {
		return c, "", nil
	}
	// Find stops at the first word that names no subcommand: rest starts
	// with it (its error, if any, says the same of the root's words).
	target, rest, _ = c.Find(args)
	if target.HasSubCommands() && len(rest) > 0 {
		return target, rest[0], rest[1:]
	}
	return target, "", nil
}

// refuseStrayHelp makes --help on a command group, and 'keyward help', with
// a word that names no subcommand a usage error (see helpTarget) instead
// of showing the group's help.
func refuseStrayHelp(root *cobra.Command) {
	show := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		target, stray, _ := helpTarget(c)
		if stray != "" {
			return // execute reports it
		}
		target.InitDefaultHelpFlag() // as 'keyward help' does: its help lists -h
		show(target, args)
	})
	root.InitDefaultHelpCmd()
	for _, hc := range root.Commands() {
		if hc.Name() != "help" {
			continue
		}
		run := hc.Run
		hc.RunE = func(h *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err == nil && c.HasSubCommands() && len(rest) > 0 {
				return unknownCommand(c, rest[0], rest[1:])
			}
			run(h, args)
			return nil
		}
		hc.Run = nil
	}
}

// counted is n with noun, in the plural unless n is 1: "1 user", "2 users".
// Every noun it is given takes an s.
func counted[N int | int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
