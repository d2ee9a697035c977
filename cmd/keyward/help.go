package main

import (
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// helpColumns is the width all of --help fits, a terminal's.
const helpColumns = 80

// flagColumn is where a flag's usage starts, at most: a flag whose name
// runs past it has its usage on the lines below, so that one long name
// does not squeeze every usage into a narrow column.
const flagColumn = 32

func init() {
	cobra.AddTemplateFunc("flagUsages", flagUsages)
}

// usageTemplate is cobra's, but for its last line, shortened, and the
// flags, which flagUsages lays out to fit helpColumns (cobra's run on to
// the end of the usage, past 300 columns for some).
const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{if eq (len .Groups) 0}}

Available Commands:{{range $cmds}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{else}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if not .AllChildCommandsHaveGroup}}

Additional Commands:{{range $cmds}}{{if (and (eq .GroupID "") (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{flagUsages .LocalFlags}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{flagUsages .InheritedFlags}}{{end}}{{if .HasHelpSubCommands}}

Additional help topics:{{range .Commands}}{{if .IsAdditionalHelpTopicCommand}}
  {{rpad .CommandPath .CommandPathPadding}} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more about a command.{{end}}
`

// flagUsages is fs's flags as pflag lists them, "  -o, --output string"
// and then the usage, but with the usages wrapped to fit helpColumns and
// starting at most at flagColumn.
func flagUsages(fs *pflag.FlagSet) string {
	type entry struct{ name, usage string }
	var entries []entry
	col := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		// pflag's own text for the flag alone: its name, then three
		// spaces, then the usage with its default.
		one := pflag.NewFlagSet("", pflag.ContinueOnError)
		one.AddFlag(f)
		text := strings.TrimRight(one.FlagUsagesWrapped(0), "\n")
		indent := len(text) - len(strings.TrimLeft(text, " "))
		name, usage, _ := strings.Cut(text[indent:], "   ")
		name = text[:indent] + name
		// the usage's own lines are indented under its first
		var lines []string
		for i, l := range strings.Split(usage, "\n") {
			if i > 0 {
				l = strings.TrimLeft(l, " ")
			}
			lines = append(lines, l)
		}
		entries = append(entries, entry{name, strings.Join(lines, "\n")})
		if n := utf8.RuneCountInString(name) + 3; n <= flagColumn && n > col {
			col = n
		}
	})
	if col == 0 {
		col = flagColumn
	}
	var b strings.Builder
	pad := strings.Repeat(" ", col)
	for i, e := range entries {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.name)
		if n := utf8.RuneCountInString(e.name); n+3 <= col {
			b.WriteString(strings.Repeat(" ", col-n))
		} else {
			b.WriteString("\n" + pad)
		}
		for j, l := range wrapText(e.usage, helpColumns-col) {
			if j > 0 {
				b.WriteString("\n" + pad)
			}
			b.WriteString(l)
		}
	}
	return b.String()
}

// wrapText is s in lines of at most width columns, broken at spaces and
// at s's own line breaks; a word longer than width is broken after its
// commas, if it has any.
func wrapText(s string, width int) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			for _, w := range splitWord(word, width) {
				switch {
				case line == "":
					line = w
				case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) <= width:
					line += " " + w
				default:
					out = append(out, line)
					line = w
				}
			}
		}
		out = append(out, line)
	}
	return out
}

// splitWord is word, or if it is longer than width and has commas, its
// parts, each as many comma-separated items as fit.
func splitWord(word string, width int) []string {
	if utf8.RuneCountInString(word) <= width || !strings.Contains(word, ",") {
		return []string{word}
	}
	var parts []string
	part := ""
	for _, item := range strings.SplitAfter(word, ",") {
		if part != "" && utf8.RuneCountInString(part+item) > width {
			parts = append(parts, part)
			part = ""
		}
		part += item
	}
	return append(parts, part)
}

// fitCompletionHelp makes the --help of cobra's completion commands, in
// cobra's words, fit helpColumns as all others do: their examples are
// indented with a tab, which a terminal shows 8 columns wide (zsh's ran
// to 83), and a line of bash's ran to 81.
func fitCompletionHelp(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		for _, sc := range append([]*cobra.Command{c}, c.Commands()...) {
			var lines []string
			for _, line := range strings.Split(sc.Long, "\n") {
				line = strings.ReplaceAll(line, "\t", "  ")
				if utf8.RuneCountInString(line) > helpColumns {
					lines = append(lines, wrapText(line, helpColumns)...)
					continue
				}
				lines = append(lines, line)
			}
			sc.Long = strings.Join(lines, "\n")
		}
	}
}
