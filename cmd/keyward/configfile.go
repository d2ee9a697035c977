package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/keyward/keyward/internal/redact"
)

// envName is the environment variable that sets a flag: KEYWARD_ and the
// flag's name in upper case with underscores (--signing-alg:
// KEYWARD_SIGNING_ALG).
func envName(flag string) string {
	return "KEYWARD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// addConfigFileFlag adds --config to fs, for commands that take the
// server's configuration, and returns the function that applies the file
// and the KEYWARD_<FLAG> environment to the flags the command line left
// unset, reporting every problem at once as a usage error. The settings
// are the flags fs has now: flags added later are the command's own, set
// on its command line alone (KEYWARD_YES must not confirm a prune).
func addConfigFileFlag(fs *pflag.FlagSet) (apply func() error) {
	settings := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) { settings[f.Name] = true })
	file := fs.String("config", "", "YAML file of settings named like the flags (signing-alg: ES256), else the one KEYWARD_CONFIG names (an empty --config= reads none); KEYWARD_<FLAG> environment variables override it, flags override both")
	return func() error {
		if err := applySources(fs, settings, *file, os.Getenv); err != nil {
			return usageError{fmt.Errorf("invalid configuration:\n%w", indent(err))}
		}
		return nil
	}
}

// hideFlagsExcept hides from --help the flags of fs not named in keep: a
// command that reads the server's configuration accepts all of its
// settings, but only some of them matter to it.
func hideFlagsExcept(fs *pflag.FlagSet, keep ...string) {
	fs.VisitAll(func(f *pflag.Flag) {
		if !slices.Contains(keep, f.Name) {
			f.Hidden = true
		}
	})
}

// addServerSettings binds to c every setting of 'keyward serve', for a
// command that works on the server's store, and returns the function that
// applies --config and the environment, to call first thing in RunE. The
// command then takes its settings from the same sources as serve, in the
// same order — flags, then KEYWARD_<FLAG>, then the --config file, then the
// defaults — and so opens the database serve opens. --help shows --config,
// --data-dir (with dataDir as its help), --db and the settings in show;
// the others are accepted, for configuration shared with serve, but
// hidden. Flags added afterwards are the command's own. A PostgreSQL --db
// from a source below the one that named --data-dir is refused (see
// checkStoreSources).
func (c *Config) addServerSettings(fs *pflag.FlagSet, dataDir string, show ...string) (apply func() error) {
	c.addServeFlags(fs)
	fs.Lookup("data-dir").Usage = dataDir
	applySettings := addConfigFileFlag(fs)
	fs.Lookup("config").Usage = "the server's YAML file of settings, named like the flags of 'keyward serve' (db: postgres://…), else the one KEYWARD_CONFIG names (an empty --config= reads none); KEYWARD_<FLAG> environment variables override it, flags override both"
	hideFlagsExcept(fs, append([]string{"config", "data-dir", "db"}, show...)...)
	return func() error {
		onCommandLine := map[string]bool{"data-dir": fs.Changed("data-dir"), "db": fs.Changed("db")}
		if err := applySettings(); err != nil {
			return err
		}
		c.from = settingSources(fs)
		// As serve refuses it: an empty one (--data-dir "", or data-dir:
		// without a value in the file) would be the working directory, or
		// fail as "mkdir : no such file or directory".
		if c.DataDir == "" {
			return usageError{fmt.Errorf("%s must not be empty", c.flag("data-dir"))}
		}
		return c.checkStoreSources(fs, onCommandLine, os.Getenv)
	}
}

// checkStoreSources refuses a store named twice, by sources of different
// rank: a --data-dir given on the command line (or in the environment)
// while a lower source sets --db. serve would open that PostgreSQL
// database, but one who names an SQLite database to export, import,
// migrate or prune means that one, not the server's: the command would
// otherwise work on a database other than the one named. onCommandLine
// says which of data-dir and db the command line set, as fs can no longer
// tell once the sources are applied.
func (c *Config) checkStoreSources(fs *pflag.FlagSet, onCommandLine map[string]bool, getenv func(string) string) error {
	source := func(name string) (rank int, where string) {
		switch {
		case onCommandLine[name]:
			return 3, "the command line"
		case getenv(envName(name)) != "":
			return 2, envName(name)
		case fs.Changed(name):
			return 1, configFileName(fs, getenv)
		}
		return 0, "the default"
	}
	dirRank, dirFrom := source("data-dir")
	dbRank, dbFrom := source("db")
	if c.DB == "" || dirRank <= dbRank {
		return nil
	}
	// Both kept: PostgreSQL with that data directory (for the generated
	// master key and the admin key file), named at one rank.
	dbBeside, dirBeside := "give --db on the command line too", "set KEYWARD_DATA_DIR beside KEYWARD_DB instead of --data-dir on the command line"
	unset := "unset " + dbFrom
	if dbRank == 1 {
		file := configFileName(fs, getenv)
		dirBeside = "put data-dir in " + file + " beside db instead of --data-dir on the command line"
		if dirRank == 2 {
			dbBeside, dirBeside = "set KEYWARD_DB too", "put data-dir in "+file+" beside db instead of KEYWARD_DATA_DIR"
		}
		unset = "remove db from " + file
	}
	return usageError{fmt.Errorf("two stores are named: --data-dir %s (from %s) and --db %s (from %s), which would be opened instead; to use PostgreSQL with that data directory, %s (or %s); to use the SQLite database, %s",
		c.DataDir, dirFrom, redact.DSN(c.DB), dbFrom, dbBeside, dirBeside, unset)}
}

// storeSettingsHelp is the paragraph of --help of the commands that work
// on the server's store, saying where their settings come from.
const storeSettingsHelp = `The store is chosen as 'keyward serve' chooses it, from the same sources:
--data-dir or --db on the command line, else KEYWARD_DATA_DIR or KEYWARD_DB,
else the server's --config file (or the one KEYWARD_CONFIG names), else
keyward-data. Give it the server's --config and environment to work on the
server's database; the other settings of serve are accepted there and
ignored unless this command says it uses them. A --data-dir from a higher
source than a PostgreSQL --db (on the command line with KEYWARD_DB set,
say) is refused rather than overridden. To use PostgreSQL with that data
directory, give both from the same source: --db with --data-dir, KEYWARD_DB
with KEYWARD_DATA_DIR, or data-dir beside db in the file.`

// configEnv is the environment variable that names the YAML file of
// settings when --config is not given.
const configEnv = "KEYWARD_CONFIG"

// configFile is the YAML file of settings: --config's value if the command
// line gave it (an empty one: none), else KEYWARD_CONFIG's; and the name
// of the one of them that gave it, for errors.
func configFile(fs *pflag.FlagSet, flag string, getenv func(string) string) (path, from string) {
	if fs.Changed("config") || flag != "" {
		return flag, "--config"
	}
	return getenv(configEnv), configEnv
}

// configFileName names, for errors, the YAML file of settings by where
// it came from: "the --config file" or "the file KEYWARD_CONFIG names".
func configFileName(fs *pflag.FlagSet, getenv func(string) string) string {
	flag := ""
	if f := fs.Lookup("config"); f != nil {
		flag = f.Value.String()
	}
	if _, from := configFile(fs, flag, getenv); from == configEnv {
		return "the file " + configEnv + " names"
	}
	return "the --config file"
}

// masterKeyEnv is the environment variable that gives the master key
// itself, not the file --master-key-file names.
const masterKeyEnv = "KEYWARD_MASTER_KEY"

// applySources fills every flag named in settings (every flag of fs if
// nil) that the command line left alone from the environment and then
// from the YAML config file, whose keys are the flag names: file, else
// the one KEYWARD_CONFIG names unless --config is on the command line.
// Command-line flags win over the environment, which wins over the
// file. The master key too: --master-key-file, else KEYWARD_MASTER_KEY or
// KEYWARD_MASTER_KEY_FILE (both set is an error), else the file's
// master-key-file; with KEYWARD_MASTER_KEY in force, --master-key-file is
// left empty for findMasterKey to read the environment. It reports every
// problem at once.
func applySources(fs *pflag.FlagSet, settings map[string]bool, file string, getenv func(string) string) error {
	isSetting := func(name string) bool { return settings == nil || settings[name] }
	var errs []error
	values := map[string]any{}
	file, from := configFile(fs, file, getenv)
	if file != "" {
		data, err := readSmallFile(file, "a settings file")
		if err != nil {
			return fmt.Errorf("%s: %w", from, err)
		}
		if values, err = parseSettings(data); err != nil {
			return fmt.Errorf("%s %s: %w", from, file, err)
		}
		// A key may be spelt with _ for -; into a map of its own, as a key
		// added to the map ranged over may be visited again.
		keys := slices.Sorted(maps.Keys(values))
		named := make(map[string]any, len(values))
		spelt := map[string]string{}
		for _, k := range keys {
			name := strings.ReplaceAll(k, "_", "-")
			if f := fs.Lookup(name); f == nil || !isSetting(name) || name == "config" || name == "help" {
				errs = append(errs, fmt.Errorf("%s %s: unknown setting %q (the settings are the flags of 'keyward serve --help')", from, file, k))
				continue
			}
			if other, dup := spelt[name]; dup {
				errs = append(errs, fmt.Errorf("%s %s: %s is set twice, as %q and %q; keep one", from, file, name, other, k))
				continue
			}
			named[name], spelt[name] = values[k], k
		}
		values = named
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || !isSetting(f.Name) || f.Name == "config" || f.Name == "help" {
			return
		}
		if f.Name == "master-key-file" && getenv(masterKeyEnv) != "" {
			// KEYWARD_MASTER_KEY gives the master key itself, at the
			// environment's rank: over the --config file's key file, and
			// not together with KEYWARD_MASTER_KEY_FILE, which would
			// leave which key is meant to a rule of precedence.
			if getenv(envName(f.Name)) != "" {
				errs = append(errs, fmt.Errorf("%s and %s are both set: unset one, to say which master key is meant", masterKeyEnv, envName(f.Name)))
			}
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), flagValueError(err, false)))
			} else {
				fs.SetAnnotation(f.Name, sourceAnnotation, []string{envName(f.Name)})
			}
			return
		}
		v, ok := values[f.Name]
		if !ok {
			return
		}
		if _, list := v.([]any); list {
			if _, ok := f.Value.(pflag.SliceValue); !ok {
				// Joined with commas, it would be one value: a data
				// directory named "a,b".
				errs = append(errs, fmt.Errorf("%s %s: %s: expected a single value, got a list", from, file, f.Name))
				return
			}
		}
		s, err := settingString(v)
		if err == nil {
			err = flagValueError(fs.Set(f.Name, s), false)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %s: %w", from, file, f.Name, err))
			return
		}
		fs.SetAnnotation(f.Name, sourceAnnotation, []string{f.Name + " in " + file})
	})
	return errors.Join(errs...)
}

// parseSettings reads a --config file: one YAML mapping of settings, or
// nothing. yaml words a file of another shape by Go's types ("cannot
// unmarshal !!str `...` into map[string]interface {}"), and quotes the
// start of a value, which may be a key (a master key file given as
// --config): this says what the file holds instead, and where, without
// its content.
func parseSettings(data []byte) (map[string]any, error) {
	values := map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	// Only the first document would be read: settings after a ---
	// were left out in silence.
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		if len(more.Content) > 0 && !isYAMLNull(more.Content[0]) {
			return nil, fmt.Errorf("line %d: a second YAML document (after ---): put every setting in one, as only the first would be read", more.Content[0].Line)
		}
	}
	if len(doc.Content) == 0 || isYAMLNull(doc.Content[0]) {
		return values, nil // an empty file, or null or ~
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the file holds %s, not settings: write one setting a line as name: value, such as signing-alg: ES256", root.Line, yamlKind(root))
	}
	// A name given twice is refused here, as yaml would refuse it, but
	// also when once through an alias (&x a: 1, then *x : 2), which yaml
	// let through: the last won in silence. A merge key (<<) is refused
	// rather than looked into: it brings in names from another mapping,
	// which settings never need.
	seen := map[string]int{} // name → line
	for i := 0; i < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: a setting's name is %s; write one setting a line as name: value, such as signing-alg: ES256", root.Content[i].Line, yamlKind(k))
		}
		line := root.Content[i].Line
		if k.Tag == "!!merge" {
			// <<: *x or <<: {a: 1} sets the names of another mapping,
			// which may set a name again or be overridden by one, in
			// silence; settings have no use for it.
			return nil, fmt.Errorf("line %d: a YAML merge key (<<) is not accepted: write each setting by its name, once", line)
		}
		if first, ok := seen[k.Value]; ok {
			return nil, fmt.Errorf("line %d: %q is set twice, first on line %d; keep one", line, k.Value, first)
		}
		seen[k.Value] = line
	}
	if err := root.Decode(&values); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	return values, nil
}

// isYAMLNull reports whether n is null: an empty document, null or ~.
func isYAMLNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// yamlKind names the kind of a YAML node for an operator.
func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "a single value"
}

// sourceAnnotation is the annotation applySources puts on a flag it sets
// from the environment or the config file, saying which, for errors about
// the value: KEYWARD_<NAME>, or "name in FILE".
const sourceAnnotation = "keyward-source"

// settingSources maps the name of each flag of fs that applySources set
// to where its value came from, for Config.from; a flag not in it was
// given on the command line or kept its default.
func settingSources(fs *pflag.FlagSet) map[string]string {
	from := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		if s := f.Annotations[sourceAnnotation]; len(s) == 1 {
			from[f.Name] = s[0]
		}
	})
	return from
}

// flagValueError words a value that a flag of a basic type refused by the
// values the flag takes, for the command line (withName: "--console:
// \"maybe\" is not true or false") and the environment and config file,
// whose errors name the setting already; the parsers' own words
// (strconv.ParseBool, time: invalid duration) mean nothing to an operator.
// Other errors are returned as they are.
func flagValueError(err error, withName bool) error {
	ive, ok := errors.AsType[*pflag.InvalidValueError](err)
	if !ok {
		return err
	}
	var (
		want   string
		tooBig error // a value well formed but out of range
		v      = ive.GetValue()
	)
	switch ive.GetFlag().Value.Type() {
	case "bool":
		want = "true or false"
	case "duration":
		want = "a duration such as 30s, 10m or 2h"
		// Days, as audit prune --before and audit list --since take
		// them (7d), or weeks, written as people write them.
		if m := daysOrWeeks.FindStringSubmatch(strings.TrimSpace(v)); m != nil {
			unit, hours := "days", 24
			if strings.HasPrefix(strings.ToLower(m[2]), "w") {
				unit, hours = "weeks", 7*24
			}
			if n, err := strconv.Atoi(m[1]); err == nil && n > 0 && n*hours <= 100000*24 {
				want += fmt.Sprintf(" (%s are written in hours: %s is %dh)", unit, strings.TrimSpace(v), n*hours)
			}
		}
		if durationShape.MatchString(strings.TrimSpace(v)) {
			// Well formed, so refused for its size (time.ParseDuration
			// says "invalid duration" for both).
			tooBig = fmt.Errorf("%q is too long a duration: at most about 2562047h (292 years)", v)
		}
	case "int", "int64", "uint", "uint64":
		want = "a whole number"
		if errors.Is(ive, strconv.ErrRange) {
			tooBig = fmt.Errorf("%q is too large a number", v)
		}
	case "float64":
		want = "a number"
	default:
		return err
	}
	err = tooBig
	if err == nil {
		err = fmt.Errorf("%q is not %s", v, want)
	}
	if withName {
		err = fmt.Errorf("--%s: %w", ive.GetFlag().Name, err)
	}
	return err
}

// settingString turns a YAML value into a flag value; lists become
// comma-separated.
func settingString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case []any:
		var parts []string
		for _, e := range x {
			s, err := settingString(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range x {
				if !yield(k) {
					return
				}
			}
		})
		return "", fmt.Errorf("expected a value, got a mapping with keys %v", keys)
	default:
		return fmt.Sprint(x), nil
	}
}

// daysOrWeeks matches a count of days or weeks, which a duration flag
// does not take: 7d, +7d, 7 days, 1w, 2 weeks.
var daysOrWeeks = regexp.MustCompile(`^\+?([0-9]{1,7}) ?(?i)(d|days?|w|weeks?)$`)

// durationShape matches what time.ParseDuration reads, whatever its size:
// a number and a unit, repeated.
var durationShape = regexp.MustCompile(`^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)
