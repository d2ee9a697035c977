package main

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestApplySources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyward.yaml")
	mustWriteFile(t, file, []byte(`
listen: 0.0.0.0:8443
issuer: https://keyward.internal
signing_alg: EdDSA
clock-skew: 30s
trusted-proxies: [10.0.0.0/8, 192.168.1.1]
log-level: debug
`))
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.addServeFlags(fs)
	if err := fs.Parse([]string{"--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEYWARD_CLOCK_SKEW": "45s", "KEYWARD_ISSUER": ""}
	if err := applySources(fs, nil, file, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, got, want string }{
		{"file", cfg.Listen, "0.0.0.0:8443"},
		{"file, underscores", cfg.SigningAlg, "EdDSA"},
		{"env beats file", cfg.ClockSkew.String(), (45 * time.Second).String()},
		{"flag beats file", cfg.LogLevel, "warn"},
		{"list", strings.Join(cfg.TrustedProxies, " "), "10.0.0.0/8 192.168.1.1"},
		{"empty env is unset", cfg.Issuer, "https://keyward.internal"},
		{"default kept", cfg.DataDir, "keyward-data"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestApplySourcesReportsEveryProblem(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyward.yaml")
	mustWriteFile(t, file, []byte("listn: x\nclock-skew: soon\nsigning-alg: {a: 1}\nbogus: 1\n"))
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.addServeFlags(fs)
	err := applySources(fs, nil, file, func(k string) string {
		if k == "KEYWARD_MAX_TOKEN_LIFETIME" {
			return "forever"
		}
		return ""
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"listn"`, `"bogus"`, "clock-skew", "signing-alg", "KEYWARD_MAX_TOKEN_LIFETIME"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	for _, bad := range []string{"::not yaml", ""} {
		mustWriteFile(t, file, []byte(bad))
		if bad == "" {
			if err := applySources(fs, nil, file, func(string) string { return "" }); err != nil {
				t.Errorf("an empty config file is refused: %v", err)
			}
			continue
		}
		if err := applySources(fs, nil, file, func(string) string { return "" }); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := applySources(fs, nil, filepath.Join(t.TempDir(), "missing.yaml"), func(string) string { return "" }); err == nil {
		t.Error("a missing config file is accepted")
	}
}

// TestConfigFileNotSettings: a --config file that is YAML but not a
// mapping of settings is refused saying what it holds and on which line,
// not by yaml's words for Go's types ("cannot unmarshal !!str `...` into
// map[string]interface {}"), which also echoed the content's start: a
// master key file given as --config put part of the key on the terminal.
func TestConfigFileNotSettings(t *testing.T) {
	const secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	for _, tt := range []struct{ name, yaml, want string }{
		{"single value", secret + "\n", "line 1: the file holds a single value, not settings: write one setting a line as name: value, such as signing-alg: ES256"},
		{"list", "# settings\n- listen: :8443\n- log-level: debug\n", "line 2: the file holds a list, not settings"},
		{"list as a name", "[listen]: :8443\n", "line 1: a setting's name is a list; write one setting a line as name: value"},
		{"mapping as a name", "log-level: info\n? {a: 1}\n: x\n", "line 2: a setting's name is a mapping"},
		// A name given twice is refused, also when through an alias
		// (the last won).
		{"name twice", "log-level: info\nlog-level: debug\n", `line 2: "log-level" is set twice, first on line 1; keep one`},
		{"name twice through an alias", "&x log-level: info\n*x : debug\n", `line 2: "log-level" is set twice, first on line 1; keep one`},
		// A merge key brought in names that overrode or were overridden
		// by the file's own, in silence.
		{"merge key", "log-level: info\n<<: {log-level: debug}\n", "line 2: a YAML merge key (<<) is not accepted: write each setting by its name, once"},
		{"merge key of an alias", "log-level: info\nx: &m {signing-alg: EdDSA}\n<<: *m\n", "line 3: a YAML merge key (<<) is not accepted"},
		{"merge key through an alias", "&k <<: {log-level: debug}\n", "line 1: a YAML merge key (<<) is not accepted"},
		// Only the first document was read: the second's settings were
		// left out in silence.
		{"second document", "---\nlog-level: info\n---\nsigning-alg: EdDSA\n", "line 4: a second YAML document (after ---): put every setting in one, as only the first would be read"},
		{"second document after a null one", "~\n---\nsigning-alg: EdDSA\n", "line 3: a second YAML document"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "keyward.yaml")
			mustWriteFile(t, file, []byte(tt.yaml))
			cfg := DefaultConfig()
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			cfg.addServeFlags(fs)
			err := applySources(fs, nil, file, func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), "--config "+file+": "+tt.want) {
				t.Fatalf("error %v\nwant %q", err, tt.want)
			}
			for _, leak := range []string{"interface", "unmarshal", "!!", secret[:7]} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %v\nsays %q", err, leak)
				}
			}
		})
	}
	for _, empty := range []string{"", "# nothing yet\n", "~\n", "null\n", "---\n", "log-level: debug\n---\n", "log-level: debug\n...\n", "log-level: debug\n--- ~\n"} {
		file := filepath.Join(t.TempDir(), "keyward.yaml")
		mustWriteFile(t, file, []byte(empty))
		cfg := DefaultConfig()
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		cfg.addServeFlags(fs)
		if err := applySources(fs, nil, file, func(string) string { return "" }); err != nil {
			t.Errorf("%q: %v; want no settings", empty, err)
		}
	}
}

// TestConfigKeySpellings: a key spelt with _ is the flag spelt with -; an
// unknown one is reported once, as written (it was reported a second time,
// in its - spelling, when the map being ranged over visited the key added
// to it); one setting given in both spellings is refused.
func TestConfigKeySpellings(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // the problems, one a line, in order
	}{
		{"underscore spelling", "signing_alg: RS256\n", nil},
		{"unknown, underscores", "unknown_key: 1\nanother_one_here: 2\n", []string{
			`--config F: unknown setting "another_one_here" (the settings are the flags of 'keyward serve --help')`,
			`--config F: unknown setting "unknown_key" (the settings are the flags of 'keyward serve --help')`}},
		{"both spellings", "signing-alg: ES256\nsigning_alg: RS256\n", []string{
			`--config F: signing-alg is set twice, as "signing-alg" and "signing_alg"; keep one`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // the duplicate came and went with map order
				file := filepath.Join(t.TempDir(), "keyward.yaml")
				mustWriteFile(t, file, []byte(tt.yaml))
				cfg := DefaultConfig()
				fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
				cfg.addServeFlags(fs)
				err := applySources(fs, nil, file, func(string) string { return "" })
				var got []string
				if err != nil {
					got = strings.Split(strings.ReplaceAll(err.Error(), file, "F"), "\n")
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("problems %q, want %q", got, tt.want)
				}
				if tt.want == nil && cfg.SigningAlg != "RS256" {
					t.Fatalf("signing_alg: %q, want RS256", cfg.SigningAlg)
				}
			}
		})
	}
}

// TestValueErrorsNameAllowedValues: a setting's value that does not parse,
// from the command line, the environment or the config file, is a usage
// error naming the values allowed, not the parser's words.
func TestValueErrorsNameAllowedValues(t *testing.T) {
	file := func(content string) string {
		f := filepath.Join(t.TempDir(), "keyward.yaml")
		mustWriteFile(t, f, []byte(content))
		return f
	}
	tests := []struct {
		name string
		args []string
		env  [2]string
		want string
	}{
		{"log level flag", []string{"serve", "--log-level", "loud"}, [2]string{}, `--log-level: "loud" is not a log level: debug, info, warn or error`},
		{"log level env", []string{"serve"}, [2]string{"KEYWARD_LOG_LEVEL", "loud"}, `KEYWARD_LOG_LEVEL: "loud" is not a log level: debug, info, warn or error`},
		{"log level file", []string{"serve", "--config", file("log-level: loud\n")}, [2]string{}, `"loud" is not a log level: debug, info, warn or error`},
		{"console file", []string{"serve", "--config", file("console: maybe\n")}, [2]string{}, `console: "maybe" is not true or false`},
		{"console env", []string{"serve"}, [2]string{"KEYWARD_CONSOLE", "maybe"}, `KEYWARD_CONSOLE: "maybe" is not true or false`},
		{"console flag", []string{"serve", "--console=maybe"}, [2]string{}, `--console: "maybe" is not true or false`},
		{"bool flag of another command", []string{"audit", "list", "--newest=maybe"}, [2]string{}, `--newest: "maybe" is not true or false`},
		{"duration file", []string{"serve", "--config", file("clock-skew: 30\n")}, [2]string{}, `clock-skew: "30" is not a duration such as 30s`},
		{"duration flag", []string{"serve", "--clock-skew", "soon"}, [2]string{}, `--clock-skew: "soon" is not a duration such as 30s`},
		// Days, as audit prune --before takes them: said how to write them.
		{"duration in days", []string{"secrets", "create", "x", "--expires-in", "90d"}, [2]string{}, `--expires-in: "90d" is not a duration such as 30s, 10m or 2h (days are written in hours: 90d is 2160h)`},
		{"duration in days, env", []string{"serve"}, [2]string{"KEYWARD_MAX_TOKEN_LIFETIME", "1d"}, `"1d" is not a duration such as 30s, 10m or 2h (days are written in hours: 1d is 24h)`},
		{"duration in days with a sign", []string{"keys", "create", "x", "--expires-in", "+7d"}, [2]string{}, `--expires-in: "+7d" is not a duration such as 30s, 10m or 2h (days are written in hours: +7d is 168h)`},
		{"duration in days as a word", []string{"keys", "create", "x", "--expires-in", "7 days"}, [2]string{}, `--expires-in: "7 days" is not a duration such as 30s, 10m or 2h (days are written in hours: 7 days is 168h)`},
		{"duration in a day as a word", []string{"keys", "create", "x", "--expires-in", "1day"}, [2]string{}, `--expires-in: "1day" is not a duration such as 30s, 10m or 2h (days are written in hours: 1day is 24h)`},
		{"duration in weeks", []string{"secrets", "create", "x", "--expires-in", "1w"}, [2]string{}, `--expires-in: "1w" is not a duration such as 30s, 10m or 2h (weeks are written in hours: 1w is 168h)`},
		{"duration in weeks as a word", []string{"secrets", "create", "x", "--expires-in", "2 weeks"}, [2]string{}, `--expires-in: "2 weeks" is not a duration such as 30s, 10m or 2h (weeks are written in hours: 2 weeks is 336h)`},
		{"duration in weeks, env", []string{"serve"}, [2]string{"KEYWARD_SIGNING_KEY_ROTATION", "4W"}, `"4W" is not a duration such as 30s, 10m or 2h (weeks are written in hours: 4W is 672h)`},
		// Well formed, but past what a duration holds: not "not a duration".
		{"duration too long", []string{"keys", "create", "x", "--expires-in", "9999999h"}, [2]string{}, `--expires-in: "9999999h" is too long a duration`},
		{"duration too long, env", []string{"serve"}, [2]string{"KEYWARD_CLOCK_SKEW", "1h1000000000000000m"}, `"1h1000000000000000m" is too long a duration`},
		{"number too large", []string{"audit", "list", "--limit", "99999999999999999999999"}, [2]string{}, `--limit: "99999999999999999999999" is too large a number`},
		{"not a number", []string{"audit", "list", "--limit", "many"}, [2]string{}, `--limit: "many" is not a whole number`},
		// Joined with commas, a list was one value ("127.0.0.1:0,[::1]:0";
		// of data-dir, a directory of that name).
		{"list for one value", []string{"serve", "--config", file("listen: [127.0.0.1:0, '[::1]:0']\n")}, [2]string{}, `listen: expected a single value, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env[0] != "" {
				t.Setenv(tt.env[0], tt.env[1])
			}
			err := runCLIErr(t, append(tt.args, "--data-dir", t.TempDir())...)
			if _, ok := errors.AsType[usageError](err); !ok || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("keyward %s: %v; want a usage error with %q", strings.Join(tt.args, " "), err, tt.want)
			}
			for _, jargon := range []string{"strconv", "slog:", "time:", "invalid argument"} {
				if strings.Contains(err.Error(), jargon) {
					t.Errorf("the error speaks Go (%q): %v", jargon, err)
				}
			}
		})
	}
}

// TestMasterKeySources: the master key comes from the command line, else
// the environment, else the --config file, as every setting does;
// KEYWARD_MASTER_KEY is the environment's master key as much as
// KEYWARD_MASTER_KEY_FILE is. A master-key-file in the --config file used
// to beat KEYWARD_MASTER_KEY, and KEYWARD_MASTER_KEY_FILE silently beat
// KEYWARD_MASTER_KEY.
func TestMasterKeySources(t *testing.T) {
	dir := t.TempDir()
	keyFile := func(name, hexByte string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat(hexByte, 32)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flagKey, envFileKey, fileKey := keyFile("flag.key", "01"), keyFile("env.key", "02"), keyFile("config.key", "03")
	envKey := strings.Repeat("04", 32)
	config := filepath.Join(dir, "keyward.yaml")
	if err := os.WriteFile(config, []byte("master-key-file: "+fileKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		flag    bool   // --master-key-file flag.key
		envFile bool   // KEYWARD_MASTER_KEY_FILE=env.key
		env     bool   // KEYWARD_MASTER_KEY
		file    bool   // master-key-file: config.key in --config
		want    string // hex byte the key repeats, or "" for none given
		wantErr string
	}{
		{name: "none", want: ""},
		{name: "config file", file: true, want: "03"},
		{name: "environment key", env: true, want: "04"},
		{name: "environment key beats the config file", env: true, file: true, want: "04"},
		{name: "environment file beats the config file", envFile: true, file: true, want: "02"},
		{name: "flag beats the environment key", flag: true, env: true, file: true, want: "01"},
		{name: "flag beats the environment file", flag: true, envFile: true, want: "01"},
		{name: "flag beats both of the environment", flag: true, envFile: true, env: true, want: "01"},
		{name: "environment key and file", envFile: true, env: true, file: true,
			wantErr: "KEYWARD_MASTER_KEY and KEYWARD_MASTER_KEY_FILE are both set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KEYWARD_MASTER_KEY", "")
			t.Setenv("KEYWARD_MASTER_KEY_FILE", "")
			if tt.env {
				t.Setenv("KEYWARD_MASTER_KEY", envKey)
			}
			if tt.envFile {
				t.Setenv("KEYWARD_MASTER_KEY_FILE", envFileKey)
			}
			cfg := DefaultConfig()
			cfg.DataDir = t.TempDir()
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			cfg.addServeFlags(fs)
			var args []string
			if tt.flag {
				args = []string{"--master-key-file", flagKey}
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			file := ""
			if tt.file {
				file = config
			}
			err := applySources(fs, nil, file, os.Getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			key, _, err := findMasterKey(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(key); got != strings.Repeat(tt.want, len(key)) {
				t.Errorf("master key %s, want %s repeated", got, tt.want)
			}
		})
	}
}

// TestConfigFileFromEnvironment: KEYWARD_CONFIG names the YAML file of
// settings when --config is not on the command line; --config (even
// empty, for none) beats it, as a flag beats the environment; a file that
// is missing or bad is refused, naming where it was named.
func TestConfigFileFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envFile := write("env.yaml", "log-level: debug\n")
	flagFile := write("flag.yaml", "log-level: warn\n")
	bad := write("bad.yaml", "log-level: [\n")
	unknown := write("unknown.yaml", "bogus: 1\n")
	missing := filepath.Join(dir, "missing.yaml")
	for _, tt := range []struct {
		name    string
		args    []string
		env     string
		want    string   // log level after
		wantErr []string // in the error
	}{
		{name: "KEYWARD_CONFIG", env: envFile, want: "debug"},
		{name: "--config beats KEYWARD_CONFIG", args: []string{"--config", flagFile}, env: envFile, want: "warn"},
		{name: "an empty --config beats KEYWARD_CONFIG", args: []string{"--config="}, env: envFile, want: "info"},
		{name: "neither", want: "info"},
		{name: "KEYWARD_CONFIG missing", env: missing, wantErr: []string{"KEYWARD_CONFIG: open " + missing}},
		{name: "--config missing", args: []string{"--config", missing}, env: envFile, wantErr: []string{"--config: open " + missing}},
		{name: "KEYWARD_CONFIG not YAML", env: bad, wantErr: []string{"KEYWARD_CONFIG " + bad + ": not valid YAML"}},
		{name: "KEYWARD_CONFIG unknown setting", env: unknown, wantErr: []string{"KEYWARD_CONFIG " + unknown + `: unknown setting "bogus"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			cfg.addServeFlags(fs)
			file := fs.String("config", "", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"KEYWARD_CONFIG": tt.env}
			err := applySources(fs, nil, *file, func(k string) string { return env[k] })
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want one with %q", err, w)
				}
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.LogLevel != tt.want {
					t.Errorf("log level %q, want %q", cfg.LogLevel, tt.want)
				}
			}
		})
	}

	// serve and the commands that open the store refuse it before they
	// start, as a usage error.
	// (Were it not read, serve would serve until the bound.)
	t.Setenv("KEYWARD_CONFIG", missing)
	t.Chdir(t.TempDir())
	for _, args := range [][]string{{"serve", "--listen", "127.0.0.1:0"}, {"audit", "verify"}} {
		err := runCLIErrWithin(t, 20*time.Second, append(args, "--data-dir", t.TempDir())...)
		if _, usage := errors.AsType[usageError](err); !usage || !strings.Contains(err.Error(), "KEYWARD_CONFIG: open "+missing) {
			t.Errorf("keyward %s with KEYWARD_CONFIG=%s: %v, want a usage error naming it", strings.Join(args, " "), missing, err)
		}
	}
}
