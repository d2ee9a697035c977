package verify_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPublicPackagesStayLight: the public packages, verify and client, are
// built into users' programs, which must compile no storage or server code
// (STYLE.md's layout). A leaf internal package they share (oauth2,
// keyfile, jwspad, …) is fine.
func TestPublicPackagesStayLight(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list the packages' dependencies")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/keyward/keyward/verify", "github.com/keyward/keyward/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"database/sql", "github.com/jackc/", "modernc.org/",
		"github.com/keyward/keyward/internal/storage", "github.com/keyward/keyward/internal/server",
		"github.com/keyward/keyward/internal/admin", "github.com/keyward/keyward/internal/token",
		"github.com/keyward/keyward/internal/clientauth", "github.com/keyward/keyward/internal/signer",
		"github.com/keyward/keyward/cmd/"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("verify or client imports %s", dep)
			}
		}
	}
}
