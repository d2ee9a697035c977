package main

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionCommand: 'keyward version' and 'keyward --version' print the
// version, revision and Go of the binary and succeed (exit 0); -o json
// parses, its revision "unknown" when the text's is; the help lists both.
// A test binary has no VCS information and its module version is
// "(devel)" or empty, which the command reports as such instead of
// failing. An argument to either is a usage error.
func TestVersionCommand(t *testing.T) {
	platform := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	text := runCLI(t, "version")
	for _, want := range []string{"Version:", "Go:", platform, "Revision:"} {
		if !strings.Contains(text, want) {
			t.Errorf("keyward version printed %q, want it to contain %q", text, want)
		}
	}
	if flag := runCLI(t, "--version"); flag != text {
		t.Errorf("keyward --version printed %q, want what keyward version prints, %q", flag, text)
	}

	var v map[string]any
	out := runCLI(t, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("keyward version -o json printed %q: %v", out, err)
	}
	for key, want := range map[string]string{"go_version": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH} {
		if v[key] != want {
			t.Errorf("JSON %s = %v, want %q", key, v[key], want)
		}
	}
	if s, _ := v["version"].(string); s == "" {
		t.Errorf("JSON version = %v, want a version", v["version"])
	}
	// A test binary has no VCS revision: the JSON says "unknown", as the
	// text and the startup log line do, rather than leaving it out.
	if v["revision"] != "unknown" {
		t.Errorf("JSON revision = %v, want \"unknown\" (the text says %q)", v["revision"], text)
	}

	help := runCLI(t, "--help")
	for _, want := range []string{"\n  version ", "--version"} {
		if !strings.Contains(help, want) {
			t.Errorf("keyward --help does not list %q:\n%s", want, help)
		}
	}

	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"version", "-o", "yaml"}, "yaml"},
		{[]string{"--version", "extra"}, `unexpected argument "extra": keyward --version takes no arguments`},
		{[]string{"extra", "--version"}, `unexpected argument "extra": keyward --version takes no arguments`},
	} {
		var ue usageError
		err := runCLIErrContext(context.Background(), tc.args...)
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("keyward %s: %v, want a usage error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestBuildInfoOf reads the module version and the vcs.* settings the go
// command records, and does without those it does not.
func TestBuildInfoOf(t *testing.T) {
	yes, no := true, false
	base := buildInfo{Version: "(devel)", GoVersion: "go1.99", OS: "linux", Arch: "amd64"}
	tests := []struct {
		name         string
		bi           debug.BuildInfo
		want         buildInfo
		wantText     []string
		wantRevLabel string
	}{
		{
			name: "go test: no version, no VCS",
			bi:   debug.BuildInfo{},
			want: base,
			wantText: []string{"Version:   (devel)\n",
				"Revision:  unknown (built without version control information)\n", "Go:        go1.99 linux/amd64\n"},
		},
		{
			name: "git checkout, clean",
			bi: debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206210148-d3ab3765a3b4"}, Settings: []debug.BuildSetting{
				{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "d3ab3765a3b4"},
				{Key: "vcs.time", Value: "2026-12-06T21:01:48Z"}, {Key: "vcs.modified", Value: "false"},
			}},
			want: buildInfo{Version: "v0.0.0-20261206210148-d3ab3765a3b4", Revision: "d3ab3765a3b4", RevisionTime: "2026-12-06T21:01:48Z",
				Modified: &no, GoVersion: "go1.99", OS: "linux", Arch: "amd64"},
			wantText:     []string{"Revision:       d3ab3765a3b4\n", "Revision time:  2026-12-06T21:01:48Z\n"},
			wantRevLabel: "d3ab3765a3b4",
		},
		{
			name: "git checkout, modified",
			bi: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "d3ab3765a3b4"}, {Key: "vcs.modified", Value: "true"},
			}},
			want:         buildInfo{Version: "(devel)", Revision: "d3ab3765a3b4", Modified: &yes, GoVersion: "go1.99", OS: "linux", Arch: "amd64"},
			wantText:     []string{"Revision:  d3ab3765a3b4 (with changes not committed)\n"},
			wantRevLabel: "d3ab3765a3b4+modified",
		},
		{
			name: "modified without a revision",
			bi:   debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-06T21:01:48Z"}}},
			want: base,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildInfoOf(&tt.bi, base)
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tt.want)
			if string(gj) != string(wj) {
				t.Errorf("buildInfoOf = %s, want %s", gj, wj)
			}
			text := got.text()
			for _, w := range tt.wantText {
				if !strings.Contains(text, w) {
					t.Errorf("text %q lacks %q", text, w)
				}
			}
			if l := got.revisionLabel(); l != tt.wantRevLabel {
				t.Errorf("revisionLabel = %q, want %q", l, tt.wantRevLabel)
			}
		})
	}
}
