package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// buildInfo says which keyward this is: what 'keyward version' prints,
// 'keyward serve' logs as it starts and its metrics export as
// keyward_build_info.
type buildInfo struct {
	// Version is the module's version: a tag or pseudo-version for a
	// binary built from a module or a git checkout, "(devel)" for one
	// built without (go test's, or a checkout the go command could not
	// read).
	Version string `json:"version"`
	// Revision, RevisionTime and Modified come from the version control
	// system the binary was built in, when the go command recorded it:
	// the commit, its time (RFC 3339), and whether the work tree had
	// changes not committed. 'keyward version -o json' says "unknown"
	// for a Revision the go command did not record.
	Revision     string `json:"revision,omitempty"`
	RevisionTime string `json:"revision_time,omitempty"`
	Modified     *bool  `json:"modified,omitempty"`
	GoVersion    string `json:"go_version"`
	OS           string `json:"os"`
	Arch         string `json:"arch"`
}

// readBuildInfo is the build information of the running binary.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(devel)", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	return buildInfoOf(bi, b)
}

// buildInfoOf fills b from bi.
func buildInfoOf(bi *debug.BuildInfo, b buildInfo) buildInfo {
	if v := bi.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.RevisionTime = s.Value
		case "vcs.modified":
			m := s.Value == "true"
			b.Modified = &m
		}
	}
	if b.Revision == "" {
		b.RevisionTime, b.Modified = "", nil
	}
	return b
}

// write prints b as 'keyward version' does without -o json.
func (b buildInfo) write(w *tabwriter.Writer) {
	fmt.Fprintf(w, "Version:\t%s\n", b.Version)
	switch {
	case b.Revision == "":
		fmt.Fprintf(w, "Revision:\tunknown (built without version control information)\n")
	case b.Modified != nil && *b.Modified:
		fmt.Fprintf(w, "Revision:\t%s (with changes not committed)\n", b.Revision)
	default:
		fmt.Fprintf(w, "Revision:\t%s\n", b.Revision)
	}
	if b.RevisionTime != "" {
		fmt.Fprintf(w, "Revision time:\t%s\n", b.RevisionTime)
	}
	fmt.Fprintf(w, "Go:\t%s %s/%s\n", b.GoVersion, b.OS, b.Arch)
}

// text is b as write prints it.
func (b buildInfo) text() string {
	var s strings.Builder
	w := tabwriter.NewWriter(&s, 0, 0, 2, ' ', 0)
	b.write(w)
	w.Flush()
	return s.String()
}

// revisionLabel is b's revision, "+modified" after it when the work tree
// had changes: what the startup log and keyward_build_info carry.
func (b buildInfo) revisionLabel() string {
	if b.Revision != "" && b.Modified != nil && *b.Modified {
		return b.Revision + "+modified"
	}
	return b.Revision
}

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of keyward and of the Go that built it",
		Long: `Print which keyward this binary is: its module version, the commit it was
built from (its revision and time, and whether the work tree had changes
not committed), and the Go version, operating system and architecture it
was built with and for. 'keyward --version' prints the same.

A binary built with 'go build' or 'go install' in a git checkout knows its
commit, and its version is the commit's tag or a pseudo-version naming
the commit (such as v0.0.0-DATE-COMMIT, "+dirty" after it when the work
tree had changes); one installed from a module version ('go install
...@v1.2.3') has that version and no revision; one built in a checkout
without version control information (no .git directory, or
-buildvcs=false) says the revision is unknown and its version "(devel)".

'keyward serve' logs the version and revision as it starts, and its
metrics carry them as the labels of keyward_build_info.`,
		Example: `  keyward version
  keyward version -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			b := readBuildInfo()
			if output == "json" {
				// "unknown", as the text and serve's startup line say,
				// rather than no revision at all.
				b.Revision = cmp.Or(b.Revision, "unknown")
				return printJSON(cmd.OutOrStdout(), b)
			}
			_, err := fmt.Fprint(cmd.OutOrStdout(), b.text())
			return err
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// addVersionFlag gives root --version, printing what 'keyward version'
// prints. It is declared here, not through cobra's Version, so that cobra
// adds no shorthand -v, and so that an argument after it ('keyward
// --version extra') is refused as 'keyward version extra' is: cobra prints
// its Version before it looks at the arguments. It wraps the RunE that
// usageErrors gives root, so it is called after usageErrors.
func addVersionFlag(root *cobra.Command) {
	root.Flags().Bool("version", false, "print the version of this keyward binary, as 'keyward version' does")
	run := root.RunE
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if v, _ := cmd.Flags().GetBool("version"); !v {
			return run(cmd, args)
		}
		if len(args) > 0 {
			return usage(cmd, fmt.Errorf("unexpected argument %q: %s --version takes no arguments", args[0], cmd.CommandPath()))
		}
		_, err := fmt.Fprint(cmd.OutOrStdout(), readBuildInfo().text())
		return err
	}
}
