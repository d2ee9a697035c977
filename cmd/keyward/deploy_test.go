package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/tally"
	"github.com/spf13/pflag"
)

// The files under deploy/ and the Dockerfile are what operators copy; these
// tests keep them in step with the flags and the configuration checks.

// checkServeArgs parses args (after "keyward") as 'keyward serve' would,
// with the settings file --config names and the environment env, and
// validates the result.
func checkServeArgs(t *testing.T, args []string, env map[string]string) Config {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("command %q: want keyward serve", args)
	}
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.addServeFlags(fs)
	addConfigFileFlag(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatalf("keyward %s: %v", strings.Join(args, " "), err)
	}
	file := fs.Lookup("config").Value.String()
	if err := applySources(fs, nil, file, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("keyward %s with %s: %v", strings.Join(args, " "), file, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("keyward %s with %s: %v", strings.Join(args, " "), file, err)
	}
	return cfg
}

// unitEntries returns the values of key in the systemd unit, in order.
func unitEntries(t *testing.T, unit, key string) []string {
	t.Helper()
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vals []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), key+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

func TestDeployFiles(t *testing.T) {
	settings := filepath.Join("..", "..", "deploy", "keyward.yaml")
	unit := filepath.Join("..", "..", "deploy", "keyward.service")

	t.Run("systemd unit gives shutdown its time", func(t *testing.T) {
		stop := unitEntries(t, unit, "TimeoutStopSec")
		if len(stop) != 1 {
			t.Fatalf("TimeoutStopSec lines %q, want one", stop)
		}
		d, err := time.ParseDuration(stop[0] + "s")
		if err != nil {
			t.Fatalf("TimeoutStopSec=%s: %v", stop[0], err)
		}
		if need := shutdownGrace + shutdownCutoff + tally.CloseTimeout + storeCloseTimeout; d < need {
			t.Errorf("TimeoutStopSec=%s: a shutdown may take %s (requests in flight, those cut off and the last usage flush, then introspection summaries, the last audit writes and closing the store)", stop[0], need)
		}
	})
	t.Run("docker run gives shutdown its time", func(t *testing.T) {
		// Docker kills a container 10 s after SIGTERM unless told
		// otherwise: the command docs/DEPLOYMENT.md gives must say so.
		data, err := os.ReadFile(filepath.Join("..", "..", "docs", "DEPLOYMENT.md"))
		if err != nil {
			t.Fatal(err)
		}
		need := shutdownGrace + shutdownCutoff + tally.CloseTimeout + storeCloseTimeout
		runs := 0
		for line := range strings.Lines(string(data)) {
			args := strings.Fields(line)
			if len(args) < 2 || args[0] != "docker" || args[1] != "run" {
				continue
			}
			runs++
			stop := ""
			for i, a := range args {
				if a == "--stop-timeout" && i+1 < len(args) {
					stop = args[i+1]
				} else if v, ok := strings.CutPrefix(a, "--stop-timeout="); ok {
					stop = v
				}
			}
			if d, err := time.ParseDuration(stop + "s"); err != nil || d < need {
				t.Errorf("%s: --stop-timeout %q, but a shutdown may take %s", strings.TrimSpace(line), stop, need)
			}
		}
		if runs == 0 {
			t.Error("no docker run command in docs/DEPLOYMENT.md")
		}
	})
	t.Run("container probes", func(t *testing.T) {
		// The image has no HEALTHCHECK (nothing in it could run one), by
		// the owner's decision: docs/DEPLOYMENT.md gives the
		// orchestrator's probes instead. They reach the image's port over
		// TLS (deploy/keyward.yaml's), and liveness holds while the store
		// is down, which a restart would not mend; readiness does not.
		data, err := os.ReadFile(filepath.Join("..", "..", "docs", "DEPLOYMENT.md"))
		if err != nil {
			t.Fatal(err)
		}
		dockerfile, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		var port string
		for line := range strings.Lines(string(dockerfile)) {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "EXPOSE" {
				port = f[1]
			}
			// Instructions are case-insensitive; HEALTHCHECK NONE only
			// turns off a base image's.
			if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "HEALTHCHECK") && !(len(f) == 2 && strings.EqualFold(f[1], "NONE")) {
				t.Errorf("the Dockerfile has %q: the image has none, by decision (the distroless base has nothing to run one with), and docs/DEPLOYMENT.md (\"Container image\") gives the orchestrator's probes instead; remove it, or change that section and this test with it", strings.TrimSpace(line))
			}
		}
		probe := regexp.MustCompile(`^\s*(\w+Probe):\s*$`)
		get := regexp.MustCompile(`^\s*httpGet: \{path: (\S+), port: (\d+), scheme: (\w+)\}\s*$`)
		paths := map[string]string{}
		kind := ""
		for line := range strings.Lines(string(data)) {
			if m := probe.FindStringSubmatch(line); m != nil {
				kind = m[1]
			} else if m := get.FindStringSubmatch(line); m != nil && kind != "" {
				if m[2] != port || m[3] != "HTTPS" {
					t.Errorf("%s: port %s, scheme %s; the image serves HTTPS on %s", kind, m[2], m[3], port)
				}
				paths[kind] = m[1]
				kind = ""
			}
		}
		if paths["livenessProbe"] == "" || paths["readinessProbe"] == "" {
			t.Fatalf("docs/DEPLOYMENT.md gives probes %v, want a livenessProbe and a readinessProbe", paths)
		}
		m := startServer(t)
		status := func(path string) int {
			resp, err := http.Get(m.Issuer + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		probes := []struct {
			kind          string
			up, storeDown int
		}{{"livenessProbe", 200, 200}, {"readinessProbe", 200, 503}}
		for _, p := range probes {
			if got := status(paths[p.kind]); got != p.up {
				t.Errorf("%s %s: %d, want %d", p.kind, paths[p.kind], got, p.up)
			}
		}
		m.store.Close() // the store goes away
		for _, p := range probes {
			if got := status(paths[p.kind]); got != p.storeDown {
				t.Errorf("%s %s with the store down: %d, want %d", p.kind, paths[p.kind], got, p.storeDown)
			}
		}
	})
	t.Run("systemd unit says what to install", func(t *testing.T) {
		// systemd refuses to start the unit without its user (217/USER)
		// or its credential (243/CREDENTIALS): its comment makes both.
		data, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		var comment []string
		for l := range strings.Lines(string(data)) {
			if c, ok := strings.CutPrefix(l, "#"); ok {
				comment = append(comment, strings.TrimSpace(c))
			}
		}
		user := unitEntries(t, unit, "User")
		creds := unitEntries(t, unit, "LoadCredential")
		if len(user) != 1 || len(creds) != 1 {
			t.Fatalf("User lines %q, LoadCredential lines %q: want one each", user, creds)
		}
		_, keyFile, _ := strings.Cut(creds[0], ":")
		made := map[string]bool{}
		for _, c := range comment {
			f := strings.Fields(strings.Trim(c, "()"))
			if len(f) > 1 && f[0] == "useradd" && f[len(f)-1] == user[0] {
				made["user "+user[0]] = true
			}
			if len(f) > 1 && f[len(f)-1] == keyFile && slices.Contains(f, ">") {
				made[keyFile] = true
			}
		}
		for _, want := range []string{"user " + user[0], keyFile} {
			if !made[want] {
				t.Errorf("the unit's opening comment does not make %s", want)
			}
		}
	})
	t.Run("systemd unit sandbox", func(t *testing.T) {
		// The system calls @system-service allows cover the server's: run
		// it under strace -f (SQLite, and PostgreSQL over TCP and a Unix
		// socket; TLS, SIGHUP, /debug/pprof, shutdown) and compare with
		// systemd-analyze syscall-filter @system-service.
		for _, c := range []struct{ key, want string }{
			{"NoNewPrivileges", "yes"},
			{"ProtectSystem", "strict"},
			{"ProtectHome", "yes"},
			{"PrivateTmp", "yes"},
			{"PrivateDevices", "yes"},
			{"CapabilityBoundingSet", ""},
			{"AmbientCapabilities", ""},
			{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"}, // AF_UNIX: PostgreSQL's socket
			{"MemoryDenyWriteExecute", "yes"},
			{"UMask", "0077"},
			{"SystemCallFilter", "@system-service"},
			{"SystemCallErrorNumber", "EPERM"},
			{"SystemCallArchitectures", "native"},
			{"RestrictNamespaces", "yes"},
			{"RestrictRealtime", "yes"},
			{"RestrictSUIDSGID", "yes"},
		} {
			if got := unitEntries(t, unit, c.key); len(got) != 1 || got[0] != c.want {
				t.Errorf("%s lines %q, want one, %s=%s", c.key, got, c.key, c.want)
			}
		}
	})
	t.Run("systemd unit and settings file", func(t *testing.T) {
		execStart := unitEntries(t, unit, "ExecStart")
		if len(execStart) != 1 {
			t.Fatalf("ExecStart lines %q, want one", execStart)
		}
		args := strings.Fields(execStart[0])
		if args[0] != "/usr/local/bin/keyward" {
			t.Fatalf("ExecStart runs %s, not the path the unit's comment says", args[0])
		}
		// The unit's --config names /etc/keyward/keyward.yaml; it is
		// deploy/keyward.yaml installed there.
		for i, a := range args {
			if a == "/etc/keyward/keyward.yaml" {
				args[i] = settings
			}
		}
		env := map[string]string{}
		for _, e := range unitEntries(t, unit, "Environment") {
			k, v, _ := strings.Cut(e, "=")
			if !isSetting(k) {
				t.Errorf("the unit sets %s, which no flag of keyward serve reads", k)
			}
			env[k] = strings.ReplaceAll(v, "%d", "/run/credentials/keyward.service")
		}
		cfg := checkServeArgs(t, args[1:], env)
		if cfg.MasterKeyFile != "/run/credentials/keyward.service/master.key" {
			t.Errorf("master key file %q: the unit's LoadCredential does not reach the server", cfg.MasterKeyFile)
		}
		if cfg.DataDir != "/var/lib/keyward" || cfg.TLSCert == "" {
			t.Errorf("settings file not applied: data dir %q, TLS certificate %q", cfg.DataDir, cfg.TLSCert)
		}
		// The TLS key: the unit's opening comment installs it, its user's
		// alone (it is read in place, not a credential: see the comment).
		data, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		user := unitEntries(t, unit, "User")
		installed := false
		for l := range strings.Lines(string(data)) {
			c, ok := strings.CutPrefix(l, "#")
			f := strings.Fields(c)
			if !ok || len(f) < 2 || f[0] != "install" || f[len(f)-1] != cfg.TLSKey {
				continue
			}
			opt := func(name string) string { // install's option name's value
				if i := slices.Index(f, name); i >= 0 && i+1 < len(f) {
					return f[i+1]
				}
				return ""
			}
			mode := opt("-m")
			installed = len(user) == 1 && opt("-o") == user[0] && (mode == "0600" || mode == "0400")
		}
		if !installed {
			t.Errorf("the unit's opening comment does not install the TLS key %s, mode 0600 or 0400, owned by %q", cfg.TLSKey, user)
		}
		// StateDirectory=keyward is /var/lib/keyward: the data directory.
		if sd := unitEntries(t, unit, "StateDirectory"); len(sd) != 1 || "/var/lib/"+sd[0] != cfg.DataDir {
			t.Errorf("StateDirectory %q, data directory %q", sd, cfg.DataDir)
		}
	})

	t.Run("Dockerfile", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		var cmd []string
		owned := false   // the data directory is the server's user's
		private := false // and only theirs, 0700
		var user []string
		for line := range strings.Lines(string(data)) {
			if f := strings.Fields(line); len(f) > 0 && f[0] == "USER" {
				user = append(user, strings.Join(f[1:], " "))
			}
			if strings.TrimSpace(line) == "RUN mkdir -m 0700 /data" {
				private = true
			}
			if v, ok := strings.CutPrefix(line, "CMD "); ok {
				cmd = jsonArgs(t, v)
			}
			if f := strings.Fields(line); len(f) == 5 && f[0] == "COPY" && f[2] == "--chown=65532:65532" && f[4] == "/var/lib/keyward" {
				owned = true
			}
		}
		// The base image's user is not the Dockerfile's to rely on.
		if len(user) != 1 || user[0] != "65532:65532" {
			t.Errorf("USER lines %q: want one, USER 65532:65532, the owner of /var/lib/keyward", user)
		}
		if !owned {
			t.Error("the Dockerfile does not make /var/lib/keyward nonroot's (65532), the user the server runs as")
		}
		if !private {
			t.Error("the Dockerfile does not make the data directory 0700 (RUN mkdir -m 0700 /data), as keyward serve makes it")
		}
		for i, a := range cmd {
			if a == "/etc/keyward/keyward.yaml" {
				cmd[i] = settings
			}
		}
		// The image's default command, with the shipped settings file
		// mounted where it expects it.
		cfg := checkServeArgs(t, cmd, nil)
		if cfg.DataDir != "/var/lib/keyward" {
			t.Errorf("data directory %q, not the image's volume", cfg.DataDir)
		}
		// Without one, serve generates the master key in the volume,
		// beside the database it opens.
		if cfg.MasterKeyFile == "" || !filepath.IsAbs(cfg.MasterKeyFile) || strings.HasPrefix(cfg.MasterKeyFile, cfg.DataDir+"/") {
			t.Errorf("master key file %q: the image keeps the master key in its data volume", cfg.MasterKeyFile)
		}
	})

	t.Run("Docker build context", func(t *testing.T) {
		// COPY . . takes the whole context into the build stage: what git
		// ignores (a development server's data directory, with its master
		// key) must stay out of it, and .git in it, for the revision.
		lines := func(name string) []string {
			data, err := os.ReadFile(filepath.Join("..", "..", name))
			if err != nil {
				t.Fatal(err)
			}
			var ls []string
			for l := range strings.Lines(string(data)) {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					ls = append(ls, strings.TrimSuffix(l, "/"))
				}
			}
			return ls
		}
		docker := lines(".dockerignore")
		for _, p := range docker {
			if ok, _ := filepath.Match(p, ".git"); ok || strings.HasPrefix(p, "!") {
				t.Errorf(".dockerignore: %s: .git must be in the context, and nothing put back", p)
			}
		}
		for _, p := range lines(".gitignore") {
			// .gitignore's pattern without a slash but at its end matches
			// at any depth; .dockerignore's only at the top.
			want := strings.TrimPrefix(p, "/")
			if !strings.Contains(p, "/") {
				want = "**/" + p
			}
			if !slices.Contains(docker, want) {
				t.Errorf(".gitignore has %s, .dockerignore has no %s: docker build would send it to the build stage", p, want)
			}
		}
	})

	t.Run("Docker build context holds what the build reads", func(t *testing.T) {
		// What .dockerignore keeps out of the context, COPY cannot copy:
		// the files named in the Dockerfile's COPY lines, and every Go
		// and embedded file of the module that go build compiles into
		// the binary, must stay in.
		data, err := os.ReadFile(filepath.Join("..", "..", ".dockerignore"))
		if err != nil {
			t.Fatal(err)
		}
		var ignored []*regexp.Regexp
		for l := range strings.Lines(string(data)) {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				ignored = append(ignored, dockerignorePattern(t, l))
			}
		}
		dockerfile, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		var needed []string
		for line := range strings.Lines(string(dockerfile)) {
			if f := strings.Fields(line); len(f) > 2 && f[0] == "COPY" && !strings.HasPrefix(f[1], "--from=") {
				for _, src := range f[1 : len(f)-1] {
					if !strings.HasPrefix(src, "--") && src != "." {
						needed = append(needed, src)
					}
				}
			}
		}
		// The files of the module's own packages the binary is built
		// from, relative to the module's root.
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		list := exec.Command("go", "list", "-deps", "-f",
			`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
			"./cmd/keyward")
		list.Dir = root
		list.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := list.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		for _, f := range strings.Fields(string(out)) {
			rel, err := filepath.Rel(root, f)
			if err != nil {
				t.Fatal(err)
			}
			needed = append(needed, filepath.ToSlash(rel))
		}
		if !slices.Contains(needed, "cmd/keyward/main.go") {
			t.Fatalf("the build's files %q do not include cmd/keyward/main.go", needed)
		}
		for _, f := range needed {
			for _, re := range ignored {
				if dockerignored(re, f) {
					t.Errorf(".dockerignore keeps %s out of the build context (%s), but the build needs it", f, re)
				}
			}
		}
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze is not installed")
		}
		// ExecStart must name an executable that exists; any will do.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(t.TempDir(), "keyward.service")
		if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/keyward", self)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", copyPath).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			// It warns, and exits 0, on unknown or misspelt directives.
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

// isSetting reports whether the environment variable k sets a flag of
// keyward serve.
func isSetting(k string) bool {
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.addServeFlags(fs)
	found := false
	fs.VisitAll(func(f *pflag.Flag) { found = found || envName(f.Name) == k })
	return found
}

// jsonArgs parses a Dockerfile's exec-form argument list.
func jsonArgs(t *testing.T, s string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil {
		t.Fatalf("not the exec form: %s: %v", s, err)
	}
	return args
}

// dockerignorePattern compiles a line of .dockerignore as Docker reads
// it: from the context's root, ** for any number of directories, * and ?
// within one.
func dockerignorePattern(t *testing.T, p string) *regexp.Regexp {
	t.Helper()
	if strings.ContainsAny(p, "[\\!") {
		t.Fatalf(".dockerignore: %s: this test reads no character classes, escapes or exceptions", p)
	}
	p = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(p)), "/")
	var re strings.Builder
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			re.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			re.WriteString(".*")
			i++
		case p[i] == '*':
			re.WriteString("[^/]*")
		case p[i] == '?':
			re.WriteString("[^/]")
		default:
			re.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	return regexp.MustCompile("^" + re.String() + "$")
}

// dockerignored reports whether re, a .dockerignore pattern, keeps the
// file path out of the build context: it matches the path or one of its
// directories.
func dockerignored(re *regexp.Regexp, path string) bool {
	for {
		if re.MatchString(path) {
			return true
		}
		i := strings.LastIndex(path, "/")
		if i < 0 {
			return false
		}
		path = path[:i]
	}
}
