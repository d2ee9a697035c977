package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
)

// TestWhoAmICLI: 'keyward whoami' names the account of the key file it is
// given, and the token it got with it, as a table and as JSON; a key file
// the server does not take as an administrator's, and a server that is
// not there, fail as every admin command does.
func TestWhoAmICLI(t *testing.T) {
	m := startServer(t)
	root := []string{"--credentials", m.AdminKeyFile}
	account := func(email string) admin.AccountView {
		t.Helper()
		var a admin.AccountView
		if err := json.Unmarshal([]byte(runCLI(t, append([]string{"sa", "get", email, "-o", "json"}, root...)...)), &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	var kf struct {
		Email string `json:"client_email"`
	}
	data, err := os.ReadFile(m.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &kf); err != nil || kf.Email == "" {
		t.Fatalf("admin key file: %v, client_email %q", err, kf.Email)
	}
	bootstrap := account(kf.Email)
	// The credential a key file's tokens are got with: its key.
	credential := func(path string) string {
		t.Helper()
		var k struct {
			ID string `json:"private_key_id"`
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &k); err != nil || k.ID == "" {
			t.Fatalf("%s: %v, private_key_id %q", path, err, k.ID)
		}
		return "key:" + k.ID
	}

	// A second administrator, with opaque tokens, and an account that is
	// no administrator, each with a key file.
	keyFor := func(name, scopes string, more ...string) (admin.AccountView, string) {
		t.Helper()
		runCLI(t, append([]string{"sa", "create", name, "--project", "ops", "--scopes", scopes, "--display-name", "Second " + name}, append(more, root...)...)...)
		a := account(name + "@ops.iam.keyward.internal")
		path := filepath.Join(t.TempDir(), name+".json")
		runCLI(t, append([]string{"keys", "create", a.Email, "--out", path}, root...)...)
		return a, path
	}
	second, secondKey := keyFor("ops-admin", "keyward.admin,keyward.introspect", "--token-lifetime", "10m")
	runCLI(t, append([]string{"sa", "update", second.Email, "--token-format", "opaque"}, root...)...)
	_, userKey := keyFor("reporter", "keyward.introspect")

	for _, tt := range []struct {
		name, keyFile string
		want          admin.AccountView
		format        string
		lifetime      time.Duration
	}{
		{"bootstrap administrator", m.AdminKeyFile, bootstrap, "jwt", time.Hour},
		{"another administrator", secondKey, second, "opaque", 10 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantAccount := func(what string, v admin.WhoAmIView) {
				t.Helper()
				name, project, _ := strings.Cut(strings.TrimSuffix(tt.want.Email, ".iam.keyward.internal"), "@")
				type who struct{ ClientID, Email, Name, Project, DisplayName string }
				if got := (who{v.ClientID, v.Email, v.Name, v.Project, v.DisplayName}); got != (who{tt.want.ClientID, tt.want.Email, name, project, tt.want.DisplayName}) {
					t.Errorf("%s: account %+v, want %s (%s)", what, got, tt.want.Email, tt.want.ClientID)
				}
				tok := v.Token
				if want := credential(tt.keyFile); tok.Credential != want {
					t.Errorf("%s: token credential %q, want %q", what, tok.Credential, want)
				}
				if tok.ID == "" || tok.Format != tt.format || !slices.Equal(tok.Scopes, []string{"keyward.admin"}) ||
					tok.ExpiresAt.Sub(tok.IssuedAt) != tt.lifetime || tok.ExpiresIn <= 0 || tok.ExpiresIn > int64(tt.lifetime/time.Second) {
					t.Errorf("%s: token %+v, want a %s token for keyward.admin, for %s", what, tok, tt.format, tt.lifetime)
				}
			}

			out := runCLI(t, "whoami", "-o", "json", "--credentials", tt.keyFile)
			var v admin.WhoAmIView
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("whoami -o json printed %q: %v", out, err)
			}
			wantAccount("-o json", v)

			// The table has a line for each of them.
			out = runCLI(t, "whoami", "--credentials", tt.keyFile, "--server", m.Issuer)
			rows := map[string]string{}
			for line := range strings.Lines(out) {
				k, val, ok := strings.Cut(line, ":")
				if !ok {
					t.Fatalf("table line %q is not 'Name: value'", line)
				}
				rows[k] = strings.TrimSpace(val)
			}
			var tv admin.WhoAmIView
			tv.Email, tv.ClientID, tv.Name, tv.Project, tv.DisplayName = rows["Email"], rows["Client ID"], rows["Name"], rows["Project"], rows["Display name"]
			tv.Token.ID, tv.Token.Format, tv.Token.Credential, tv.Token.Scopes = rows["Token ID"], rows["Token format"], rows["Token credential"], strings.Split(rows["Token scopes"], ", ")
			var err error
			if tv.Token.IssuedAt, err = time.ParseInLocation("2006-01-02 15:04:05", rows["Token issued"], time.Local); err != nil {
				t.Fatalf("Token issued: %v in %q", err, out)
			}
			exp := regexp.MustCompile(`^(.+) \(in (.+)\)$`).FindStringSubmatch(rows["Token expires"])
			if exp == nil {
				t.Fatalf("Token expires: %q, want TIME (in DURATION)", rows["Token expires"])
			}
			if tv.Token.ExpiresAt, err = time.ParseInLocation("2006-01-02 15:04:05", exp[1], time.Local); err != nil {
				t.Fatalf("Token expires: %v in %q", err, out)
			}
			left, err := time.ParseDuration(exp[2])
			if err != nil {
				t.Fatalf("Token expires: %v in %q", err, out)
			}
			tv.Token.ExpiresIn = int64(left / time.Second)
			wantAccount("table", tv)
			if tv.Token.ID == v.Token.ID {
				t.Errorf("two runs showed the same token %s: each gets its own", v.Token.ID)
			}
		})
	}

	closed := "http://" + reservePort(t) // held, so nothing listens on it
	runCLI(t, append([]string{"sa", "disable", second.Email}, root...)...)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		// Its key file gets no keyward.admin token: the server never asks.
		{"not an administrator", []string{"--credentials", userKey}, "the administrator credentials were refused: " + m.Issuer + "/token refused the request: invalid_scope"},
		{"disabled administrator", []string{"--credentials", secondKey}, "the administrator credentials were refused: " + m.Issuer + "/token refused the request"},
		{"nothing listens", []string{"--credentials", m.AdminKeyFile, "--server", closed}, "cannot reach Keyward at " + closed + ": dial tcp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := runCLIErrWithin(t, 20*time.Second, append([]string{"whoami"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
