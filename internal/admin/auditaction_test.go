package admin_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// TestAuditUnknownAction: GET /v1/audit with an action no event can have
// (a typo) is 400 invalid_request naming it and listing the actions
// there are; it was answered 200 with no events, as if nothing had
// happened. Every known action is still a filter.
func TestAuditUnknownAction(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for _, action := range []string{"token.isued", "TOKEN.ISSUED", "token", "token.issued ", "x\"y"} {
		t.Run(action, func(t *testing.T) {
			code, out, _ := f.call(t, "GET", "/v1/audit?action="+strings.ReplaceAll(action, " ", "%20"), auth, nil)
			desc, _ := out["error_description"].(string)
			if code != 400 || out["error"] != "invalid_request" {
				t.Fatalf("got %d %v, want 400 invalid_request", code, out)
			}
			for _, want := range []string{strconv.Quote(action), "token.issued", "admin.refused", "account.create"} {
				if !strings.Contains(desc, want) {
					t.Errorf("error_description %q does not say %q", desc, want)
				}
			}
		})
	}
	for _, action := range admin.AuditActions() {
		t.Run(action, func(t *testing.T) {
			if code, out, _ := f.call(t, "GET", "/v1/audit?action="+action, auth, nil); code != 200 {
				t.Fatalf("got %d %v, want 200", code, out)
			}
		})
	}
}

// TestAuditActionsAreWritten: admin.AuditActions is every action the
// server's code writes, found as the string literals that look like one
// in its non-test source, and no other: an action added without it would
// be refused as a filter.
func TestAuditActionsAreWritten(t *testing.T) {
	re := regexp.MustCompile(`"((?:account|admin|api|audit|delegation|grant|key|keys|master_key|org|project|sealed_value|secret|signing_key|token|tokens|user|users)\.[a-z_]+)"`)
	// Literals of that shape that are no action.
	notActions := []string{"key.json"}
	found := map[string]bool{}
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Test helpers (storagetest, testkeys, clientauthtest…) write
			// made-up actions.
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || strings.Contains(n, "test") || n == "docs") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(notActions, m[1]) {
				found[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	known := admin.AuditActions()
	for a := range found {
		if !slices.Contains(known, a) {
			t.Errorf("the code writes %s, which admin.AuditActions does not list", a)
		}
	}
	for _, a := range known {
		if !found[a] {
			t.Errorf("admin.AuditActions lists %s, which no code writes", a)
		}
	}
	if !slices.IsSorted(known) {
		t.Errorf("admin.AuditActions is not sorted: %v", known)
	}
}
