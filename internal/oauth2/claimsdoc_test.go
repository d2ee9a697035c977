package oauth2_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/oauth2"
)

// claimName is a claim named in the first column of README's claims table.
var claimName = regexp.MustCompile("`([a-z_]+)`")

// The claims table under README's "## Access tokens" names every claim an
// access token can carry, and only those, so an API's author reading it
// is told of each claim Keyward issues (cred and act were missing).
func TestAccessClaimsDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Access tokens\n")
	if !ok {
		t.Fatal(`README.md has no "## Access tokens" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || cells[1] == " claim " || strings.Trim(cells[1], " -") == "" {
			continue
		}
		for _, m := range claimName.FindAllStringSubmatch(cells[1], -1) {
			documented[m[1]] = true
		}
	}
	if len(documented) == 0 {
		t.Fatal(`README.md's "## Access tokens" section has no claims table`)
	}

	// nbf is part of the type for tokens Keyward reads back, but the
	// token endpoint never sets it.
	notIssued := map[string]bool{"nbf": true}
	issued := map[string]bool{}
	typ := reflect.TypeFor[oauth2.AccessClaims]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" || notIssued[name] {
			continue
		}
		issued[name] = true
		if !documented[name] {
			t.Errorf("the access-token claim %q (AccessClaims.%s) is not in README.md's claims table", name, typ.Field(i).Name)
		}
	}
	for name := range documented {
		if !issued[name] {
			t.Errorf("README.md's claims table names %q, which AccessClaims does not issue", name)
		}
	}
}
