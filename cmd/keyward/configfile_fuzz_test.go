package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// FuzzConfigFile: whatever the --config file holds, applySources never
// panics, names the file in what it refuses, and the settings it takes
// are then validated without a panic either.
func FuzzConfigFile(f *testing.F) {
	deploy, err := os.ReadFile("../../deploy/keyward.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(deploy)
	for _, seed := range []string{
		"", "::not yaml", "listn: x\nclock-skew: soon\nsigning-alg: {a: 1}\nbogus: 1\n",
		"trusted-proxies: [10.0.0.0/8, 192.168.1.1]\nsigning_alg: EdDSA\n",
		"signing_alg: RS256\nsigning-alg: ES256\n", "console: maybe\n", "max-token-lifetime: 12\n",
		"1: x\n", "[a]: b\n", "? {a: 1}\n: b\n", "- a\n- b\n", "a: &x [*x]\n", "listen: !!binary aGVsbG8=\n",
		"data-dir: ~\n", "trusted-proxies: [[a, b], {c: d}]\n", "help: true\nconfig: x\n", "log-level: 1e400\n",
	} {
		f.Add([]byte(seed))
	}
	file := filepath.Join(f.TempDir(), "keyward.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		cfg.addServeFlags(fs)
		if err := applySources(fs, nil, file, func(string) string { return "" }); err != nil {
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		cfg.Validate() // must not panic
	})
}
