package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// TestDelegation follows the seed's worked example — an account that adds
// events to the calendars of every user of example.com — and checks every
// row of its error table.
func TestDelegation(t *testing.T) {
	m := startServer(t)
	admin := []string{"--credentials", m.AdminKeyFile}
	cli := func(args ...string) string { return runCLI(t, append(args, admin...)...) }
	cli("api", "create", "calendar", "--identifier", "https://calendar.internal", "--scopes", "calendar.events,calendar.read,calendar.admin")
	var acct struct {
		ID    string `json:"client_id"`
		Email string `json:"email"`
	}
	json.Unmarshal([]byte(cli("sa", "create", "calendar-sync", "--project", "ops", "--scopes", "calendar.read", "-o", "json")), &acct)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	cli("keys", "create", acct.Email, "--out", keyFile)
	cli("org", "create", "example.com")
	cli("org", "create", "other.org")
	users := filepath.Join(t.TempDir(), "users.csv")
	mustWriteFile(t, users, []byte("email,status\nalice@example.com,active\nbob@example.com,suspended\ncarol@other.org\n"))
	cli("users", "import", users)
	cli("delegation", "grant", "--org", "example.com", "--client-id", acct.ID, "--scopes", "calendar.events,calendar.admin")
	cli("org", "policy", "example.com", "--block-scopes", "calendar.admin")

	data := mustReadFile(t, keyFile)
	tokenFor := func(subject string, scopes ...string) (*oauth2.Token, error) {
		conf, err := google.JWTConfigFromJSON(data, scopes...)
		if err != nil {
			t.Fatal(err)
		}
		conf.Subject = subject
		return conf.TokenSource(context.Background()).Token()
	}
	wantError := func(t *testing.T, err error, code, desc string) {
		t.Helper()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			t.Fatalf("err = %v, want %s", err, code)
		}
		var body struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		json.Unmarshal(re.Body, &body)
		if body.Error != code || !strings.Contains(body.ErrorDescription, desc) {
			t.Fatalf("got %s %q (%v), want %s %q", body.Error, body.ErrorDescription, err, code, desc)
		}
		// RFC 6749 §5.2: 400 for every code of the seed's table but invalid_client.
		if re.Response.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", re.Response.StatusCode)
		}
	}

	t.Run("happy path", func(t *testing.T) {
		tok, err := tokenFor("alice@example.com", "calendar.events")
		if err != nil {
			t.Fatal(err)
		}
		c := tokenClaims(t, tok.AccessToken)
		act, _ := c["act"].(map[string]any)
		if c["sub"] != "alice@example.com" || c["client_id"] != acct.ID || c["client_email"] != acct.Email ||
			act["sub"] != acct.ID || act["client_email"] != acct.Email || c["scope"] != "calendar.events" {
			t.Fatalf("claims = %v", c)
		}
		// The audit event records the delegation chain.
		out := cli("audit", "list", "--action", "token.issued", "--account", acct.ID, "-o", "json")
		if !strings.Contains(out, acct.Email+" acting for alice@example.com") {
			t.Fatalf("no delegation chain in the audit log: %s", out)
		}
	})
	tests := []struct {
		name, subject string
		scopes        []string
		code, desc    string
	}{
		{"no grant in the user's organization", "carol@other.org", []string{"calendar.events"}, "unauthorized_client", "Unauthorized client or scope in request."},
		{"unknown organization", "dave@nowhere.example", []string{"calendar.events"}, "unauthorized_client", "Unauthorized client or scope in request."},
		{"none of the requested scopes granted", "alice@example.com", []string{"calendar.read"}, "unauthorized_client", "not authorized for any of the scopes requested"},
		{"a requested scope not granted", "alice@example.com", []string{"calendar.events", "calendar.read"}, "access_denied", "calendar.read"},
		{"blocked by the organization's policy", "alice@example.com", []string{"calendar.admin"}, "admin_policy_enforced", "calendar.admin"},
		{"unknown user", "zoe@example.com", []string{"calendar.events"}, "invalid_grant", "Not a valid email."},
		{"suspended user", "bob@example.com", []string{"calendar.events"}, "invalid_grant", "Not a valid email."},
		{"not an email", "alice", []string{"calendar.events"}, "invalid_grant", "Not a valid email."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tokenFor(tt.subject, tt.scopes...)
			wantError(t, err, tt.code, tt.desc)
		})
	}
	t.Run("org_internal", func(t *testing.T) {
		cli("delegation", "grant", "--org", "other.org", "--client-id", acct.ID, "--scopes", "calendar.events")
		cli("org", "add-project", "example.com", "ops", "--internal")
		defer cli("org", "remove-project", "example.com", "ops")
		_, err := tokenFor("carol@other.org", "calendar.events")
		wantError(t, err, "org_internal", "This client is restricted to users within its organization. Its project is internal to example.com.")
		if _, err := tokenFor("alice@example.com", "calendar.events"); err != nil {
			t.Fatalf("a user of the project's own organization: %v", err)
		}
	})
	t.Run("granting to the client email is refused", func(t *testing.T) {
		err := runCLIErr(t, append([]string{"delegation", "grant", "--org", "example.com", "--client-id", acct.Email, "--scopes", "calendar.events"}, admin...)...)
		if err == nil || !strings.Contains(err.Error(), "numeric client ID") {
			t.Fatalf("grant to the email: %v", err)
		}
	})
	t.Run("client credentials cannot impersonate", func(t *testing.T) {
		var sec struct {
			Secret string `json:"client_secret"`
		}
		json.Unmarshal([]byte(cli("secrets", "create", acct.Email, "-o", "json")), &sec)
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"calendar.read"}, "sub": {"alice@example.com"}, "subject": {"alice@example.com"}}
		req, _ := http.NewRequest("POST", m.Issuer+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(acct.ID, sec.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode == 200 {
			if c := tokenClaims(t, body.AccessToken); c["sub"] != acct.ID || c["act"] != nil {
				t.Fatalf("a client-credentials token acts for someone: %v", c)
			}
		}
	})
	t.Run("revoking or suspending stops new tokens and existing ones at once", func(t *testing.T) {
		tok, err := tokenFor("alice@example.com", "calendar.events")
		if err != nil {
			t.Fatal(err)
		}
		// An introspector of the calendar API.
		var api struct{ ID, Email string }
		var v struct {
			ID    string `json:"client_id"`
			Email string `json:"email"`
		}
		json.Unmarshal([]byte(cli("sa", "create", "calendar-api", "--project", "ops", "-o", "json")), &v)
		api.ID, api.Email = v.ID, v.Email
		cli("api", "update", "calendar", "--introspectors", api.Email)
		var sec struct {
			Secret string `json:"client_secret"`
		}
		json.Unmarshal([]byte(cli("secrets", "create", api.Email, "-o", "json")), &sec)
		active := func() bool {
			req, _ := http.NewRequest("POST", m.Issuer+"/introspect", strings.NewReader("token="+tok.AccessToken))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(api.ID, sec.Secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			return body["active"] == true
		}
		if !active() {
			t.Fatal("fresh delegated token inactive")
		}
		cli("users", "suspend", "alice@example.com")
		if active() {
			t.Fatal("token of a suspended user still active")
		}
		if _, err := tokenFor("alice@example.com", "calendar.events"); err == nil {
			t.Fatal("a suspended user got a new token")
		}
		cli("users", "unsuspend", "alice@example.com")
		if !active() {
			t.Fatal("token not active again after unsuspending")
		}
		cli("delegation", "revoke", "--org", "example.com", "--client-id", acct.ID)
		if active() {
			t.Fatal("token still active after the delegation was revoked")
		}
		_, err = tokenFor("alice@example.com", "calendar.events")
		wantError(t, err, "unauthorized_client", "Unauthorized client or scope in request.")
	})
}

// users import reports every bad row by its line, organizations that do
// not exist included, and imports nothing — not even the users of the
// organizations that do exist — until the file is fixed.
func TestUsersImportReportsEveryBadRow(t *testing.T) {
	m := startServer(t)
	admin := []string{"--credentials", m.AdminKeyFile}
	cli := func(args ...string) string { return runCLI(t, append(args, admin...)...) }
	cli("org", "create", "example.com")
	users := filepath.Join(t.TempDir(), "users.csv")
	mustWriteFile(t, users, []byte("email,status\nalice@example.com\nbob@nowhere.org\nnot-an-email\ncarol@example.com,gone\ndave@example.com\n"))
	err := runCLIErr(t, append([]string{"users", "import", users}, admin...)...)
	if err == nil {
		t.Fatal("an import with bad rows succeeded")
	}
	for _, want := range []string{"line 3: bob@nowhere.org: there is no organization nowhere.org", "line 4: \"not-an-email\"", "line 5: status \"gone\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if out := cli("users", "list", "--org", "example.com", "-o", "json"); strings.Contains(out, "alice@example.com") {
		t.Fatalf("a failed import imported users: %s", out)
	}
}

// users add checks every email and that each organization exists before
// it sends anything: a malformed email is named as such (not taken for an
// organization "b@c"), every bad one is named, and no user is added.
func TestUsersAddAllOrNone(t *testing.T) {
	m := startServer(t)
	admin := []string{"--credentials", m.AdminKeyFile}
	cli := func(args ...string) string { return runCLI(t, append(args, admin...)...) }
	cli("org", "create", "example.com")
	cli("org", "create", "other.org")
	for _, tc := range []struct {
		name   string
		emails []string
		want   []string
	}{
		{"malformed", []string{"alice@example.com", "a@b@c"}, []string{`"a@b@c" is not an email address`, "nothing was added"}},
		{"every bad one", []string{"alice@example.com", "a@b@c", "not-an-email"}, []string{`"a@b@c"`, `"not-an-email"`}},
		{"no organization", []string{"alice@example.com", "carol@other.org", "bob@nowhere.org", "dan@missing.org"},
			[]string{"bob@nowhere.org: there is no organization nowhere.org", "dan@missing.org: there is no organization missing.org", "nothing was added"}},
		// users import and POST /v1/users refuse an email given twice;
		// users add used to merge them silently.
		{"repeated", []string{"g1@example.com", "alice@example.com", "G1@example.com", "alice@example.com"},
			[]string{"G1@example.com (argument 3) is g1@example.com (argument 1) again", "alice@example.com (argument 4) is alice@example.com (argument 2) again", "nothing was added"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runCLIErr(t, append(append([]string{"users", "add"}, tc.emails...), admin...)...)
			if err == nil {
				t.Fatal("users add with bad emails succeeded")
			}
			if _, ok := errors.AsType[usageError](err); tc.name != "no organization" && !ok {
				t.Errorf("error %q is not a usage error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "after") {
				t.Errorf("error %q misleads", err)
			}
			for _, org := range []string{"example.com", "other.org"} {
				if out := cli("users", "list", "--org", org, "-o", "json"); strings.Contains(out, "@") {
					t.Fatalf("a failed add added users: %s", out)
				}
			}
		})
	}
	out := cli("users", "add", "Alice@Example.com", "carol@other.org", "-o", "json")
	if !strings.Contains(out, `"users": 2`) && !strings.Contains(out, `"users":2`) {
		t.Fatalf("users add = %s, want 2 users", out)
	}
}

// users import reads standard input for "-", and refuses a file far
// larger than any users file (/dev/zero was read until memory ran out).
func TestUsersImportStdinAndSize(t *testing.T) {
	m := startServer(t)
	admin := []string{"--credentials", m.AdminKeyFile}
	runCLI(t, append([]string{"org", "create", "example.com"}, admin...)...)
	cmd := newRootCommand()
	cmd.SetArgs(append([]string{"users", "import", "-"}, admin...))
	cmd.SetIn(strings.NewReader("email,status\nalice@example.com,active\n"))
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	if err := execute(context.Background(), cmd); err != nil {
		t.Fatalf("users import -: %v", err)
	}
	if _, err := m.store.GetUser(context.Background(), "alice@example.com"); err != nil {
		t.Fatalf("alice after users import -: %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		err := runCLIErrWithin(t, 30*time.Second, append([]string{"users", "import", "/dev/zero"}, admin...)...)
		if err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
			t.Fatalf("users import /dev/zero: %v, want it refused as too large", err)
		}
	}
}

// TestDelegationHelpExample: the example of 'keyward delegation --help'
// works as it reads, run against a server, CLIENT_ID being the client ID
// its sa create printed: it imported a users.csv it had not written, and
// granted a made-up client ID, which the server refused (not_found).
func TestDelegationHelpExample(t *testing.T) {
	m := startServer(t)
	c, _, err := newRootCommand().Find([]string{"delegation"})
	if err != nil {
		t.Fatal(err)
	}
	clientID := ""
	for _, args := range exampleCommands(c.Example) {
		if args[0] != "keyward" {
			t.Fatalf("%q is not a keyward command", strings.Join(args, " "))
		}
		for i, a := range args {
			if a == "CLIENT_ID" {
				args[i] = clientID
			}
		}
		out := runCLI(t, append(args[1:], "--credentials", m.AdminKeyFile)...)
		if _, id, ok := strings.Cut(out, "Client ID:"); ok && args[1] == "sa" {
			clientID, _, _ = strings.Cut(strings.TrimSpace(id), "\n")
		}
	}
	if clientID == "" {
		t.Fatal("no sa create in the example printed a client ID")
	}
}

// exampleCommands is the commands of a --help example, each as its words:
// a line ending in a backslash goes on in the next, as in a shell; blank
// lines and comments are skipped.
func exampleCommands(example string) [][]string {
	var cmds [][]string
	var words []string
	for line := range strings.Lines(example) {
		line = strings.TrimSpace(line)
		if len(words) == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		more := strings.HasSuffix(line, `\`)
		words = append(words, strings.Fields(strings.TrimSuffix(line, `\`))...)
		if !more && len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	if len(words) > 0 {
		cmds = append(cmds, words)
	}
	return cmds
}

// TestExampleCommands: the runner of TestDelegationHelpExample took a
// blank line for a command (and failed on its first word, which it has
// not) and a line continued with a backslash for two commands.
func TestExampleCommands(t *testing.T) {
	got := exampleCommands(`  # a comment

  keyward org create example.com
  keyward delegation grant --org example.com \
    --client-id 1 \
    --scopes a.b

  keyward users add a@example.com
`)
	want := [][]string{
		{"keyward", "org", "create", "example.com"},
		{"keyward", "delegation", "grant", "--org", "example.com", "--client-id", "1", "--scopes", "a.b"},
		{"keyward", "users", "add", "a@example.com"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("exampleCommands: %q, want %q", got, want)
	}
}
