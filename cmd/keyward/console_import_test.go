package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// TestConsoleImportUsers imports users from files on an organization's
// page, as keyward users import does: a CSV with bad rows is refused in
// the page, every one named with its line, and a JSON file's too; an
// email the admin API refuses shows its description with the line of the
// user it names; nothing is imported from any of them. A good JSON file is
// imported whole, lower-casing emails, suspending and reinstating users as
// it says, and the page reports how many.
func TestConsoleImportUsers(t *testing.T) {
	p, m, adminKey := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateOrg(bg, sys, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Server.Admin.PutUsers(bg, sys, "example.com", []admin.UserInput{{Email: "carol@example.com", Suspended: true}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := func(name, text string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	users := func() map[string]bool { // email → suspended
		t.Helper()
		us, err := m.store.ListUsers(bg, "example.com", storage.ListOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, u := range us {
			got[u.Email] = u.Suspended
		}
		return got
	}
	onlyCarol := func(after string) {
		t.Helper()
		if got := users(); len(got) != 1 || !got["carol@example.com"] {
			t.Fatalf("after %s the directory holds %v, want carol alone, suspended", after, got)
		}
	}
	importFile := func(name, f string) {
		t.Helper()
		p.step(name, chromedp.SetUploadFiles(chromedp.ID("f-import-file"), []string{f}), chromedp.Click(chromedp.CSS("#import-users button[type=submit]")))
	}
	wantAlert := func(name string, lines ...string) {
		t.Helper()
		p.waitAlert(name, "error", lines[0])
		for _, l := range lines[1:] {
			if a := p.alert(); !strings.Contains(a, l) {
				t.Errorf("%s: the alert reads %q, want it to hold %q", name, a, l)
			}
		}
	}

	p.signIn(m)
	eval[string](p, `location.hash = "#/orgs/example.com"`)
	p.step("open example.com", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="example.com"]`)),
		chromedp.Click(chromedp.CSS("#import summary")), chromedp.WaitVisible(chromedp.ID("f-import-file")))

	importFile("bad CSV", file("bad.csv", "email,status\nalice@example.com,active\nbob@other.example\n# a comment\nALICE@example.com\n"+
		"dave@example.com,gone\n\"eve@example.com\",suspended,extra\n,active\n"))
	wantAlert("bad CSV", "5 bad rows, nothing was imported; fix and retry:",
		"line 3: bob@other.example is not in example.com",
		"line 5: alice@example.com is also on line 2",
		`line 6: status "gone" must be active or suspended`,
		"line 7: 3 columns, want email[,status]",
		"line 8: no email")
	onlyCarol("the bad CSV")

	importFile("bad JSON", file("bad.json", "[\n  {\"email\": \"alice@example.com\"},\n  {\"email\": \"bob@example.com\",\n   \"status\": \"gone\"},\n  {\"email\": \"x@example.com\", \"suspended\": true, \"status\": \"active\"}\n]\n"))
	wantAlert("bad JSON", "2 bad rows, nothing was imported",
		`line 3: status "gone" must be active or suspended`,
		"line 5: suspended and status disagree")
	onlyCarol("the bad JSON")

	importFile("refused by the API", file("refused.csv", "alice@example.com\nnot an email@example.com\n"))
	wantAlert("refused", "Nothing was imported; fix these and retry: user 2:", "user 2 is on line 2 of refused.csv")
	onlyCarol("the refused file")

	importFile("good JSON", file("good.json", `{"users": [
  {"email": "Alice@Example.com"},
  {"email": "bob@example.com", "status": "suspended"},
  {"email": "carol@example.com", "suspended": false}
]}`))
	p.waitAlert("imported", "notice", "Imported 3 users from good.json into the directory of example.com, 1 of them suspended.")
	if got := users(); len(got) != 3 || got["alice@example.com"] || !got["bob@example.com"] || got["carol@example.com"] {
		t.Errorf("after the import the directory holds %v (email → suspended), want alice and carol active and bob suspended", got)
	}
	p.step("the users are listed", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//td[text()="bob@example.com"]`)))
	evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "user.import"})
	if err != nil || len(evs) != 1 || evs[0].Actor != adminKey.ClientID || evs[0].Data["count"] != "3" {
		t.Errorf("user.import events: %+v (%v), want one by the administrator of 3 users", evs, err)
	}
	p.checkLogs("400")
}

// TestConsoleUserImportParity checks that the console reads import files
// as keyward users import does (admin.ParseUserRows, with a check that each
// user is of the organization): for each file both take the same users
// with the same lines, or both refuse it, naming the same bad lines. (An
// email that is not well formed is the admin API's to refuse; the files
// here have none.)
func TestConsoleUserImportParity(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	files := []string{
		"a@x.com\nb@x.com,suspended\n",
		"email,status\n# staff\na@x.com, active\r\nb@x.com ,Suspended\r\n",
		"Email\n\n\na@x.com\n   \nb@x.com\n",
		"a@x.com\nemail\n",
		"\"a@x.com\",\"suspended\"\n\"b@x.com\"\n",
		"\"a@\nx.com\"\nb@x.com,gone\n",
		"a@x.com,active,extra\nb@y.com\nA@X.COM\n,\n",
		"a@x.com\nb\"@x.com\n",
		"\"a@x.com\"x\n",
		"\"a@x.com\n",
		"# only a comment\n",
		"email,status\n",
		" \n\t\n",
		"[{\"email\":\"a@x.com\"},{\"email\":\"b@x.com\",\"suspended\":true}]",
		"  \n\n[\n  {\"email\": \"a@x.com\"},\n\n  {\"email\": \"b@y.com\"},\n  {\"status\": \"active\"},\n  {\"email\": \"c@x.com\", \"status\": \"x\"},\n" +
			"  {\"email\": \"d@x.com\", \"status\": \"active\", \"suspended\": true},\n  {\"email\": \"A@x.com\", \"note\": \"[,{\\\"\"}\n]",
		"{\"users\": [{\"email\": \"a@x.com\",\n\"status\": \"suspended\"},\n{\"email\": \"\"}]}",
		"{\"users\": [{\"email\": \"a@x.com\"}], \"x\": 1}",
		"[{\"email\": \"a@x.com\"}] x",
		"[{\"email\":",
		"[]",
		"Email\na@x.com\n",
		"EMAIL , Status\na@x.com,suspended\n",
		"\ufeffemail,status\na@x.com\n",
		"user,state\na@x.com\nb@y.com\n",
		"email,state\na@x.com,suspended\n",
		"email,status,note\na@x.com\n",
		"# users\n\nmail\na@x.com\n",
		"alice\na@x.com\n",
		",\na@x.com\n",
	}
	type result struct {
		Users []admin.UserRow
		Bad   []string // "line N" of each bad row; "refused" for a file refused whole
	}
	badLines := func(msg string) []string {
		var out []string
		for _, l := range strings.Split(msg, "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "line ") {
				out = append(out, l[:strings.Index(l, ":")])
			}
		}
		if out == nil {
			out = []string{"refused"}
		}
		return out
	}
	for i, f := range files {
		var want result
		rows, err := admin.ParseUserRows([]byte(f), func(r admin.UserRow) error {
			if r.Org() != "x.com" {
				return errors.New("not in x.com")
			}
			return nil
		})
		if err != nil {
			want.Bad = badLines(err.Error())
		} else {
			want.Users = rows
		}
		js := fmt.Sprintf(`import("./userimport.js").then((m) => {
			try { return JSON.stringify({users: m.parseUsers(%q, "x.com")}); } catch (e) { return JSON.stringify({error: e.message}); }
		})`, f)
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		var res struct {
			Users []struct {
				Email     string `json:"email"`
				Suspended bool   `json:"suspended"`
				Line      int    `json:"line"`
			} `json:"users"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		var got result
		if res.Error != "" {
			got.Bad = badLines(res.Error)
		}
		for _, u := range res.Users {
			got.Users = append(got.Users, admin.UserRow{UserInput: admin.UserInput{Email: u.Email, Suspended: u.Suspended}, Line: u.Line})
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("file %d %q:\nthe console reads %+v (%s)\nkeyward users import %+v", i, f, got, res.Error, want)
		}
	}
}

// TestConsoleUserImportClipsLongValues: the console quotes at most the
// first 48 bytes of a bad value over 64, with its length, as keyward users
// import does (admin.quoteClip): a file of one long line is not shown back
// whole.
func TestConsoleUserImportClipsLongValues(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	long := strings.Repeat("a", 1<<20)
	tests := []struct {
		name, file, want string
	}{
		{"first row", long + "\n", `line 1: "` + strings.Repeat("a", 48) + `"… (1048576 bytes) is neither an email address nor the header email,status`},
		{"status", "a@x.com," + strings.Repeat("é", 40) + "\n", `line 1: status "` + strings.Repeat("é", 24) + `"… (80 bytes) must be active or suspended`},
		{"status at 64 bytes", "a@x.com," + strings.Repeat("s", 64) + "\n", `line 1: status "` + strings.Repeat("s", 64) + `" must be active or suspended`},
		{"email of another domain", long + "@y.com\n", `line 1: "` + strings.Repeat("a", 48) + `"… (1048582 bytes) is not in x.com`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Go's own reading of the file says the same where it checks
			// the same.
			if _, err := admin.ParseUserRows([]byte(tt.file), nil); tt.name != "email of another domain" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("keyward users import: %v, want %q", err, tt.want)
			}
			js := fmt.Sprintf(`import("./userimport.js").then((m) => {
				try { m.parseUsers(%q, "x.com"); return ""; } catch (e) { return e.message; }
			})`, tt.file)
			ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
			defer cancel()
			msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(msg, tt.want) || len(msg) > 500 {
				t.Fatalf("the console says %q (%d bytes), want %q", msg[:min(len(msg), 300)], len(msg), tt.want)
			}
		})
	}
}
