package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestApplySources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyward.yaml")
	os.WriteFile(file, []byte(`
listen: 0.0.0.0:8443
issuer: https://keyward.internal
signing_alg: EdDSA
clock-skew: 30s
trusted-proxies: [10.0.0.0/8, 192.168.1.1]
log-level: debug
`), 0o600)
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.addServeFlags(fs)
	if err := fs.Parse([]string{"--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEYWARD_CLOCK_SKEW": "45s", "KEYWARD_ISSUER": ""}
	if err := applySources(fs, file, func(k string) string { return env[k] }); err != nil {
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
	os.WriteFile(file, []byte("listn: x\nclock-skew: soon\nsigning-alg: {a: 1}\nbogus: 1\n"), 0o600)
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.addServeFlags(fs)
	err := applySources(fs, file, func(k string) string {
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
		os.WriteFile(file, []byte(bad), 0o600)
		if bad == "" {
			if err := applySources(fs, file, func(string) string { return "" }); err != nil {
				t.Errorf("an empty config file is refused: %v", err)
			}
			continue
		}
		if err := applySources(fs, file, func(string) string { return "" }); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := applySources(fs, filepath.Join(t.TempDir(), "missing.yaml"), func(string) string { return "" }); err == nil {
		t.Error("a missing config file is accepted")
	}
}
