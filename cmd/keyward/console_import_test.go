package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/admin"
	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
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

	// A file's name is quoted as strconv.Quote quotes it: a bidirectional
	// control in it shows, and does not turn the message around.
	huge := file("users\u202ecsv.json", "")
	if err := os.Truncate(huge, maxUsersFile+1); err != nil { // sparse: nothing is written
		t.Fatal(err)
	}
	importFile("too large", huge)
	wantAlert("too large", `"users\u202ecsv.json" is larger than 64 MiB`)
	onlyCarol("the too large file")

	// Not UTF-8 (Latin-1, as a spreadsheet may write it): refused, as
	// keyward users import refuses it, not read with U+FFFD for the byte.
	importFile("Latin-1", file("latin1.csv", "alice@example.com\nren\xe9@example.com\n"))
	wantAlert("Latin-1", "1 bad row, nothing was imported; fix and retry:", "line 2: bytes that are not UTF-8 (Latin-1, say): save the file as UTF-8")
	onlyCarol("the Latin-1 file")

	var many strings.Builder
	for i := range 21 {
		fmt.Fprintf(&many, "u%d@other.example\n", i)
	}
	importFile("21 bad rows", file("many.csv", many.String()))
	wantAlert("21 bad rows", "21 bad rows, nothing was imported", "line 20: u19@other.example is not in example.com: a user belongs to the organization of its email's domain\n  and 1 more bad row")
	if a := p.alert(); strings.Contains(a, "more bad rows") {
		t.Errorf("the alert reads %q, want the one bad row not shown as 1 more bad row", a)
	}
	onlyCarol("the 21 bad rows")

	importFile("refused by the API", file("refused.csv", "alice@example.com\nnot an email@example.com\n"))
	wantAlert("refused", "Nothing was imported; fix these and retry: user 2:", `user 2 is on line 2 of "refused.csv"`)
	onlyCarol("the refused file")

	importFile("good JSON", file("good.json", `{"users": [
  {"email": "Alice@Example.com"},
  {"email": "bob@example.com", "status": "suspended"},
  {"email": "carol@example.com", "suspended": false}
]}`))
	p.waitAlert("imported", "notice", `Imported 3 users from "good.json" into the directory of example.com, 1 of them suspended.`)
	if got := users(); len(got) != 3 || got["alice@example.com"] || !got["bob@example.com"] || got["carol@example.com"] {
		t.Errorf("after the import the directory holds %v (email → suspended), want alice and carol active and bob suspended", got)
	}
	p.step("the users are listed", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//td[text()="bob@example.com"]`)))
	evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "user.import"})
	if err != nil || len(evs) != 1 || evs[0].Actor != adminKey.ClientID || evs[0].Data["count"] != "3" {
		t.Errorf("user.import events: %+v (%v), want one by the administrator of 3 users", evs, err)
	}

	// A file of one user: the messages speak of one.
	one := file("one.csv", "dave@example.com,suspended\n")
	eval[bool](p, importProbe)
	eval[string](p, `window.importProbe.failAt = 1, window.importProbe.fail = "502"`)
	importFile("one user, unanswered", one)
	wantAlert("one user, unanswered", `Whether the user of "one.csv" was imported is not known (no answer, or a server error): The server answered HTTP 502 Bad Gateway`)
	eval[string](p, `window.importProbe.fail = ""`)
	importFile("one user", one)
	p.waitAlert("one user imported", "notice", `Imported 1 user from "one.csv" into the directory of example.com, suspended.`)
	if got := users(); len(got) != 4 || !got["dave@example.com"] {
		t.Errorf("after the import of one.csv the directory holds %v (email → suspended), want dave too, suspended", got)
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
		"a@x.com\n  # staff\nb@x.com\n",
		"a@x.com\n\t# note, with comma\n",
		" # users\nemail\na@x.com\n",
		" #a@x.com\n  \"#b@x.com\"\n",
		"\t#\n",
		// White space as Go's unicode.IsSpace has it: U+0085 and U+00A0
		// are, U+FEFF is not (a byte order mark, below).
		"a@x.com\u0085\n\u00a0\"b@x.com\"\nc@x.com,\v\"suspended\"\n\u3000d@x.com ,\u2003Suspended\u0085\n",
		"email\u00a0,\u0085status\u2028\na@x.com\n",
		// Lower case as Go's strings.ToLower has it: İ is i, Σ is σ at a
		// word's end too.
		"EMAİL,STATUS\nİx@x.com,ACTİVE\nΑΣ@x.com\n",
		"ΑΣ@x.com\nασ@x.com\n",
		// A carriage return ending the file, after a quoted field too:
		// encoding/csv drops it, as it drops one before a line feed.
		"\"a@x.com\"\r",
		"email,status\na@x.com,\"suspended\"\r",
		// A line of a carriage return alone ending the file: encoding/csv
		// drops the CR, leaving an empty line, which it skips.
		"a@x.com\n\r",
		"a@x.com\r\n\r",
		// Names matched as encoding/json matches them: case aside.
		"[{\"Email\":\"a@x.com\"},{\"EMAIL\":\"b@x.com\",\"Suspended\":true},{\"email\":\"c@x.com\",\"SUSPENDED\":true,\"Status\":\"suspended\"}]",
		"[{\"email\":\"a@x.com\",\"Email\":\"b@x.com\"},{\"email\":\"c@x.com\",\"Email\":null},{\"\u017ftatu\u017f\":\"suspended\",\"email\":\"d@x.com\"}]",
		// A name given twice, another spelling of it between: the last
		// one is the user's, in the file's order.
		"[{\"email\":\"a@x.com\",\"EMAIL\":\"b@x.com\",\"email\":\"c@x.com\"},{\"suspended\":false,\"email\":\"d@x.com\",\"Suspended\":true,\"suspended\":false}," +
			"\n{\"email\":\"e@x.com\",\"note\":{\"email\":\"f@x.com\",\"x\":[1,\"},\\\"]\"]},\"Email\":\"g@x.com\",\"email\":\"e@x.com\"}]",
		"{\"users\": [{\"email\":\"a@x.com\",\"Email\":\"b@x.com\",\"email\":\"c@x.com\"},\n {\"email\": \"d@x.com\" , \"EMAIL\" : \"e@x.com\" , \"email\" : \"d@x.com\" }]}",
		// "users" given twice: refused after the first, as encoding/json
		// reads the object one token after another.
		"{\"users\": [{\"email\": \"a@x.com\"}], \"users\": [{\"email\": \"b@x.com\"}]}",
		"{\"users\": [{\"email\": \"a@x.com\"}],\n\"users\": []}",
		"{\"users\": [{\"email\": \"a@x.com\", \"x\": {\"users\": 1}}]}",
		// A value of the wrong kind is a bad row, reported with the others.
		"[{\"email\":\"a@x.com\",\"suspended\":\"true\"},\n{\"email\":\"b@y.com\"},\n{\"Status\":1,\"email\":true},\n5,\n null,\n[\"c@x.com\"],\n\"d@x.com\"," +
			"\n{\"email\":{\"a\":1},\"suspended\":[]},\n{\"email\":\"e@x.com\",\"status\":false}]",
		"{\"users\": [{\"email\": 5}, {\"email\": \"a@x.com\"}]}",
		"[{\"email\":\"a@x.com\",\"status\":null},{\"email\":\"b@x.com\",\"suspended\":true,\"suspended\":null,\"status\":\"active\"},{\"email\":null}]",
		// A byte order mark begins the file (as Excel writes CSV) or is
		// refused, wherever else it is, on its line.
		"\ufeffa@x.com\n",
		"\ufeff[{\"email\": \"a@x.com\"}]",
		"\ufeff",
		"\ufeff\ufeffa@x.com\n",
		" \ufeffa@x.com\n",
		"a@x.com\ufeff\n",
		"a@x.com\n\ufeffb@x.com\n",
		"email\n\ufeffemail\na@x.com\n",
		"a@x.com,suspended\ufeff\n",
		"a@x.com\n\ufeff\nb@x.com\n",
		"email\ufeff,status\na@x.com\n",
		"\"a@x.com\ufeff\",active\n",
		"# \ufeff comment\na@x.com\n",
		"[{\"email\": \"a@x.com\ufeff\"},\n{\"email\": \"b@x.com\", \"status\": \"\ufeffactive\"}]",
		"\n\ufeff[{\"email\": \"a@x.com\"}]",
		// Trimmed as strings.TrimSpace trims: U+0085 (NEL) and U+00A0 are
		// white space, U+200B is not.
		"a@x.com\u0085\nb@x.com, suspended\u0085\n",
		"email\u0085\n\u00a0a@x.com\u00a0\n",
		"a@x.com\u200b\n",
		// JSON only after JSON's white space (admin.usersJSON): a
		// Unicode space before { or [ starts a CSV field.
		"\u00a0{ops}@x.com\n",
		"\u0085{ops}@x.com\n\u3000{ops2}@x.com\n",
		" \t\r\n[{\"email\": \"a@x.com\"}]",
		// A comment after a value is a bad row.
		"email\na@x.com # Alice\nb@x.com,suspended\t# left\nc@x.com # C, D, E\nd@x.com#x\n",
	}
	// One user too many: refused whole, as keyward users import refuses it.
	var tooMany strings.Builder
	for i := range admin.MaxImportUsers + 1 {
		fmt.Fprintf(&tooMany, "u%d@x.com\n", i)
	}
	files = append(files, tooMany.String())
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	limits, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`import("./userimport.js").then((m) => [m.MAX_IMPORT_USERS, m.MAX_IMPORT_BYTES])`, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil || !slices.Equal(limits, []int{admin.MaxImportUsers, maxUsersFile}) {
		t.Errorf("the console reads at most %v users and bytes (%v), keyward users import %d and %d", limits, err, admin.MaxImportUsers, maxUsersFile)
	}
	type result struct {
		Users []admin.UserRow
		Bad   []string // "line N" of each bad row; "refused" for a file refused whole
	}
	// A bad row is its line, and what is wrong with it when that is a
	// value that must be something else ("suspended" must be true or
	// false, not a string), which both say alike.
	badLines := func(msg string) []string {
		var out []string
		for _, l := range strings.Split(msg, "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "line ") {
				if !strings.Contains(l, " must be ") {
					l = l[:strings.Index(l, ":")]
				}
				out = append(out, l)
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
			try { return JSON.stringify({users: m.parseUsers(%s, "x.com")}); } catch (e) { return JSON.stringify({error: e.message}); }
		})`, jsString(f))
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
			clip := func(v any) string { return kwoauth2.Truncate(fmt.Sprintf("%+v", v), 2000) } // the file of too many users
			t.Errorf("file %d %s:\nthe console reads %s (%s)\nkeyward users import %s", i, clip(strconv.Quote(f)), clip(got), clip(res.Error), clip(want))
		}
	}
}

// TestConsoleUserImportBytesParity: the console reads a file's bytes as
// keyward users import does: invalid UTF-8 is refused, not read with
// U+FFFD in its place, and a byte order mark begins the file or is a bad
// row (two at the start are not one the browser drops and one the file
// may have). A file of invalid UTF-8 or with a NUL character (in JSON, a
// \u0000 escape too) is refused in keyward users import's words: each
// such line, and a NUL's column.
func TestConsoleUserImportBytesParity(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	files := []string{
		"a@x.com\nb@x.com\n",
		"a@x.com\nren\xe9@x.com\n",       // Latin-1
		"[{\"email\": \"a@x.com\xff\"}]", // a byte no UTF-8 has
		"a@x.com\n\xc0\xaf@x.com\n",      // an overlong encoding
		"a@x.com\n\xed\xa0\x80@x.com\n",  // a surrogate
		"a@x.com\n\xe2\x82\n",            // cut short
		"\xef\xbb\xbfa@x.com\n",
		"\xef\xbb\xbf\xef\xbb\xbfa@x.com\n",
		"ren\xc3\xa9@x.com\n",
		"a@x.com\nb\x00b@x.com\n",                                   // a NUL in an email
		"email,status\na@x.com,active\x00\nb@x.com,active,x\x00\n",  // in a status, in a third column
		"\"a\n\x00@x.com\"\n",                                       // on the second line of a quoted email
		"# \x00\na@x.com\n",                                         // in a comment
		"a\"b@x.com\nc\x00@x.com\n",                                 // after a row that is not CSV
		"a@x.com\nren\xe9\x00@x.com\nb\xff@x.com\n",                 // a NUL and Latin-1 on a line, Latin-1 on the next
		"\xef\xbb\xbfa@x.com,\x00\n",                                // after a byte order mark
		"[{\"email\": \"a@x.com\"},\n{\"email\": \"b\x00@x.com\"}]", // in JSON

		// A \u0000 escape in JSON is a NUL; the text \u0000 in CSV, which
		// has no escapes, is that text.
		"[{\"email\": \"a@x.com\"},\n{\"email\": \"b\\u0000@x.com\"}]",
		"{\"users\": [\n{\"email\": \"a@x.com\", \"status\": \"active\\u0000\"}\n]}",
		"[{\"email\": \"a\xe9@x.com\"},\n{\"email\": \"b\\u0000@x.com\"}]", // Latin-1 on a line, the escape on the next
		"[{\"email\": \"a@x.com\", \"status\": \"\\\\u0000\"}]",            // an escaped backslash, then u0000: no NUL
		"a@x.com\n# \\u0000 is a NUL in JSON\n",
		"# \\u0000\nb\x00@x.com\n",
	}
	for i, f := range files {
		_, parseErr := admin.ParseUserRows([]byte(f), nil)
		want := parseErr == nil
		js := fmt.Sprintf(`import("./userimport.js").then((m) => {
			try { m.parseUsers(m.decodeUsers(Uint8Array.from(atob(%q), (c) => c.charCodeAt(0))), "x.com"); return ""; } catch (e) { return e.message; }
		})`, base64.StdEncoding.EncodeToString([]byte(f)))
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		if got := msg == ""; got != want {
			t.Errorf("file %d %q: the console takes it: %v (%s); keyward users import: %v", i, f, got, msg, want)
		}
		if (!utf8.ValidString(f) || strings.Contains(f, "\x00") || strings.Contains(f, `\u0000`)) && parseErr != nil && msg != parseErr.Error() {
			t.Errorf("file %d %q: the console says %q, want keyward users import's %q", i, f, msg, parseErr)
		}
	}
}

// jsString is s as a JavaScript string literal: JSON's, not Go's %q,
// whose \a and \U escapes JavaScript reads as the letters a and U.
func jsString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// TestConsoleGoQuote: the console quotes each character as strconv.Quote
// does (goquote.js quote, which the users import and the audit log use),
// escaping what unicode.IsPrint does not take as printable: every
// character Go's Unicode tables assign (those assigned since may differ,
// the browser's Unicode being newer), but the private use planes 15 and
// 16, and a string of several.
func TestConsoleGoQuote(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	var runes []rune
	for r := rune(0); r < 0xf0000; r++ {
		// Assigned: unicode.C holds the unassigned too.
		if unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co) {
			runes = append(runes, r)
		}
	}
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	js := fmt.Sprintf(`import("./goquote.js").then((m) => JSON.stringify({each: Array.from(%s, (c) => m.quote(c)), some: m.quote(%s)}))`,
		jsString(string(runes)), jsString("a\"b\\c\u200b\U000e0001 d\x00\n"))
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Each []string `json:"each"`
		Some string   `json:"some"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("quote answered %.200s: %v", out, err)
	}
	if len(got.Each) != len(runes) {
		t.Fatalf("quote quoted %d characters, want %d", len(got.Each), len(runes))
	}
	bad := 0
	for i, r := range runes {
		if want := strconv.Quote(string(r)); got.Each[i] != want && bad < 20 {
			t.Errorf("U+%04X: the console quotes it %s, strconv.Quote %s", r, got.Each[i], want)
			bad++
		}
	}
	if want := `"a\"b\\c\u200b\U000e0001 d\x00\n"`; got.Some != want {
		t.Errorf("the console quotes %s, want %s", got.Some, want)
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
		jsOnly           bool // Go refuses such an email first (admin.normalizeEmail: too long, or with an invisible or control character)
	}{
		{"first row", long + "\n", `line 1: "` + strings.Repeat("a", 48) + `"… (1048576 bytes) is neither an email address nor the header email,status`, false},
		{"status", "a@x.com," + strings.Repeat("é", 40) + "\n", `line 1: status "` + strings.Repeat("é", 24) + `"… (80 bytes) must be active or suspended`, false},
		{"status at 64 bytes", "a@x.com," + strings.Repeat("s", 64) + "\n", `line 1: status "` + strings.Repeat("s", 64) + `" must be active or suspended`, false},
		{"email of another domain", long + "@y.com\n", `line 1: "` + strings.Repeat("a", 48) + `"… (1048582 bytes) is not in x.com`, true},
		{"email listed twice", long + "@x.com\n" + long + "@x.com\n", `line 2: "` + strings.Repeat("a", 48) + `"… (1048582 bytes) is also on line 1`, true},
		{"comment after an email", "a@x.com # Alice\n", `line 1: "a@x.com # Alice" has a comment after a value: # starts one only as the first character of a line`, false},
		{"comment after a status", "a@x.com, active # " + long + "\n", `line 1: "a@x.com,active # ` + strings.Repeat("a", 31) + `"… (1048593 bytes) has a comment after a value`, false},
		{"byte order mark not at the start", "a@x.com\n\ufeffb@x.com\n", "line 2: a byte order mark (U+FEFF, invisible), which only the start of the file may have (files joined together each bring theirs): remove it", false},
		{"email of 100 bytes listed twice", strings.Repeat("é", 47) + "@x.com\n" + strings.Repeat("é", 47) + "@x.com\n",
			`line 2: "` + strings.Repeat("é", 24) + `"… (100 bytes) is also on line 1`, false},
		// Characters strconv.Quote escapes, not printable by
		// unicode.IsPrint (invisible, bidi controls, controls, line
		// separators, white space but the ASCII space), are escaped as it
		// escapes them; printable ones are left as they are.
		{"zero width space in a status", "a@x.com,act\u200bive\n", `line 1: status "act\u200bive" must be active or suspended`, false},
		{"bidi override in a status", "a@x.com,\u202eevitca\u202c\n", `line 1: status "\u202eevitca\u202c" must be active or suspended`, false},
		{"line separator, no-break space and word joiner in a status", "a@x.com,ac\u2028ti\u00a0ve\u2060x\n", `line 1: status "ac\u2028ti\u00a0ve\u2060x" must be active or suspended`, false},
		{"controls in a status", "a@x.com,\x1b[31m\x7f\x07\x08\f\v\tx\u0085\u009b\n", `line 1: status "\x1b[31m\x7f\a\b\f\v\tx\u0085\u009b" must be active or suspended`, false},
		{"beyond the BMP in a status", "a@x.com,\U000e0001tag\U0001f600\n", `line 1: status "\U000e0001tag` + "\U0001f600" + `" must be active or suspended`, false},
		{"quote and backslash in a status", "a@x.com,\"a\"\"\\b\"\n", `line 1: status "a\"\\b" must be active or suspended`, false},
		{"printable letters, marks and symbols in a status", "a@x.com,é\u0301ß€ 漢\n", "line 1: status \"é\u0301ß€ 漢\" must be active or suspended", false},
		{"invisible character in a first row", "x\u200by\u2066\n", `line 1: "x\u200by\u2066" is neither an email address nor the header email,status`, false},
		{"invisible character in an email listed twice", "a\u200b@x.com\na\u200b@x.com\n", `line 2: "a\u200b@x.com" is also on line 1`, true},
		{"C1 control in an email listed twice", "a\u009b@x.com\na\u009b@x.com\n", `line 2: "a\u009b@x.com" is also on line 1`, true},
		{"invisible character in an email of another domain", "a\u2066@y.com\n", `line 1: "a\u2066@y.com" is not in x.com`, true},
		{"invisible characters clipped", "a@x.com," + strings.Repeat("\u200b", 30) + "\n", `line 1: status "` + strings.Repeat(`\u200b`, 16) + `"… (90 bytes) must be active or suspended`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Go's own reading of the file says the same where it checks
			// the same.
			if _, err := admin.ParseUserRows([]byte(tt.file), nil); !tt.jsOnly && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("keyward users import: %v, want %q", err, tt.want)
			}
			js := fmt.Sprintf(`import("./userimport.js").then((m) => {
				try { m.parseUsers(%s, "x.com"); return ""; } catch (e) { return e.message; }
			})`, jsString(tt.file))
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

// TestConsoleUserImportBatches checks that the console splits an import
// into the batches keyward users import sends (batchLen with importBatch
// and importBatchBytes): as many users in each, whether the count of
// users or the bytes of their emails' JSON (in UTF-8) ends a batch.
func TestConsoleUserImportBatches(t *testing.T) {
	p, m, _ := consoleTest(t)
	p.step("open the console", chromedp.Navigate(m.Issuer+"/console/"), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	emails := func(n int, format string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf(format, i)
		}
		return out
	}
	long := "u%05d-" + strings.Repeat("x", 54) + "@x.com"
	tests := []struct {
		name   string
		emails []string
	}{
		{"one user", emails(1, "u%d@x.com")},
		{"exactly a batch", emails(importBatch, "u%05d@x.com")},
		{"short emails: 5,000 a batch", emails(12000, "u%05d@x.com")},
		{"long emails: fewer a batch", emails(12000, long)},
		{"short, long and not ASCII", slices.Concat(emails(3000, "s%05d@x.com"), emails(6000, long), emails(3000, strings.Repeat("é", 60)+"%05d@x.com"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want [][2]int
			users := usersOf(tt.emails)
			for sent := 0; sent < len(users); {
				n := batchLen(users[sent:], importBatch)
				want = append(want, [2]int{sent, sent + n})
				sent += n
			}
			list, _ := json.Marshal(tt.emails)
			js := fmt.Sprintf(`import("./userimport.js").then((m) => JSON.stringify({
				limits: [m.IMPORT_BATCH, m.IMPORT_BATCH_BYTES],
				batches: m.importBatches(JSON.parse(%q).map((email) => ({email, suspended: false}))),
			}))`, list)
			ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
			defer cancel()
			out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Limits  [2]int   `json:"limits"`
				Batches [][2]int `json:"batches"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if got.Limits != [2]int{importBatch, importBatchBytes} {
				t.Errorf("the console batches at most %d users or %d bytes, keyward users import %d or %d", got.Limits[0], got.Limits[1], importBatch, importBatchBytes)
			}
			if !reflect.DeepEqual(got.Batches, want) {
				t.Errorf("the console sends batches %v, keyward users import %v", got.Batches, want)
			}
		})
	}
}

// importProbe wraps the page's fetch: it counts the POSTs of users,
// notes what the import's progress display shows as each is sent, and
// answers the one numbered window.importProbe.failAt (the second unless
// set) itself if window.importProbe.fail says so: "502" as a proxy whose
// server did not answer, "network" as a connection lost.
const importProbe = `(() => {
	const fetch = window.fetch.bind(window);
	window.importProbe = { posts: 0, progress: [], fail: "", failAt: 2 };
	window.fetch = async (url, init) => {
		const probe = window.importProbe;
		if (init?.method === "POST" && String(url).endsWith("/users")) {
			probe.posts++;
			const shown = document.getElementById("import-progress");
			probe.progress.push(shown && !shown.closest("[hidden]") ? shown.textContent : "(hidden)");
			if (probe.posts === probe.failAt && probe.fail === "502") {
				return new Response("<html><body><h1>502 Bad Gateway</h1></body></html>", { status: 502, statusText: "Bad Gateway", headers: { "Content-Type": "text/html" } });
			}
			if (probe.posts === probe.failAt && probe.fail === "network") throw new TypeError("Failed to fetch");
		}
		return fetch(url, init);
	};
	return true;
})()`

// thousands writes n as the console does: 23,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// allUsers is the directory of org: email → suspended.
func allUsers(t *testing.T, m *Main, org string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for after := ""; ; {
		us, err := m.store.ListUsers(context.Background(), org, storage.ListOptions{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(us) == 0 {
			return got
		}
		for _, u := range us {
			got[u.Email] = u.Suspended
		}
		after = us[len(us)-1].Email
	}
}

// openImport shows the page of the organization org with its import form.
func (p *consolePage) openImport(org string) {
	p.t.Helper()
	eval[string](p, `location.hash = "#/orgs/`+org+`"`)
	p.step("open "+org, chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//h1[text()="`+org+`"]`)),
		chromedp.Click(chromedp.CSS("#import summary")), chromedp.WaitVisible(chromedp.ID("f-import-file")))
}

// importFile imports the file f with the page's import form.
func (p *consolePage) importFile(name, f string) {
	p.t.Helper()
	p.step(name, chromedp.SetUploadFiles(chromedp.ID("f-import-file"), []string{f}), chromedp.Click(chromedp.CSS("#import-users button[type=submit]")))
}

// TestConsoleImportUsersInBatches imports a file larger than the 1 MiB
// one request to the admin API holds: the console sends it in the
// batches keyward users import would, one transaction each, shows how
// many users are imported as each batch goes, and every user arrives,
// suspended as the file says.
func TestConsoleImportUsersInBatches(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	if _, err := m.Server.Admin.CreateOrg(bg, sys, "example.com"); err != nil {
		t.Fatal(err)
	}
	// Short emails, 5,000 a batch, then long ones, fewer a batch.
	var csv strings.Builder
	csv.WriteString("email,status\n")
	var emails []string
	want := map[string]bool{}
	suspended := 0
	for i := range 18000 {
		e := fmt.Sprintf("u%05d@example.com", i)
		if i >= 10000 {
			e = fmt.Sprintf("l%05d-%s@example.com", i, strings.Repeat("x", 100))
		}
		emails = append(emails, e)
		want[e] = i%7 == 0
		if i%7 == 0 {
			suspended++
			fmt.Fprintf(&csv, "%s,suspended\n", e)
		} else {
			fmt.Fprintf(&csv, "%s\n", e)
		}
	}
	if csv.Len() <= admin.MaxBodyBytes {
		t.Fatalf("the file is %d bytes, want more than the %d of a request", csv.Len(), admin.MaxBodyBytes)
	}
	f := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(f, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var sizes []string
	var progress []string
	users := usersOf(emails)
	for sent := 0; sent < len(users); {
		n := batchLen(users[sent:], importBatch)
		sizes = append(sizes, fmt.Sprint(n))
		progress = append(progress, fmt.Sprintf("Imported %s of 18,000 users…", thousands(sent)))
		sent += n
	}
	if len(sizes) < 4 || sizes[0] != "5000" || sizes[len(sizes)-2] == "5000" {
		t.Fatalf("batches of %v users: want some of 5,000 and some fewer", sizes)
	}

	p.signIn(m)
	eval[bool](p, importProbe)
	p.openImport("example.com")
	p.importFile("import big.csv", f)
	p.waitAlert("imported", "notice", fmt.Sprintf("Imported 18,000 users from \"big.csv\" into the directory of example.com, %s of them suspended, in %d batches of at most 5,000, each in one transaction.",
		thousands(suspended), len(sizes)))
	if got := eval[[]string](p, "window.importProbe.progress"); !reflect.DeepEqual(got, progress) {
		t.Errorf("as each batch was sent the page showed %q, want %q", got, progress)
	}
	if got := allUsers(t, m, "example.com"); !maps.Equal(got, want) {
		t.Errorf("the directory holds %d users, want the file's %d, suspended as it says", len(got), len(want))
	}
	evs, err := m.store.ListAuditEvents(bg, storage.AuditFilter{Action: "user.import", Limit: 100})
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Data["count"])
	}
	if err != nil || !slices.Equal(got, sizes) {
		t.Errorf("user.import events of %v users (%v), want one a batch, of %v", got, err, sizes)
	}
	if hidden := eval[bool](p, `document.getElementById("import-progress").closest("[hidden]") !== null`); !hidden {
		t.Error("the progress display is still shown after the import")
	}
	p.checkLogs()
}

// TestConsoleImportLaterBatchFails: when a batch after the first fails,
// the import stops there; the error says how many users the batches
// before it imported, which batch failed and why, with the line of each
// user the admin API names, and that the users after it were not sent:
// the failed batch itself imported none if the admin API refused it, and
// whether it did is not known if the server did not answer, or with a
// 5xx. The directory holds the earlier batches' users, and the page
// lists them.
func TestConsoleImportLaterBatchFails(t *testing.T) {
	p, m, _ := consoleTest(t)
	bg, sys := context.Background(), admin.Actor{ID: "test"}
	dir := t.TempDir()
	lead := "Imported 5,000 of the 12,000 users of \"%s.csv\"; batch 2 of 3 (users 5,001 to 10,000) failed and the 2,000 users after it were not sent.\n"
	tests := []struct {
		name  string
		users int    // 12,000 unless set
		bad   int    // the user (from 1) that is not an email address, if any
		fail  string // importProbe's fail
		lead  string // lead unless set
		want  []string
	}{
		{name: "refused", bad: 5003, want: []string{
			"Batch 2 was refused, and none of its users were imported: Nothing was imported; fix these and retry: user 3: ",
			"\nuser 3 of batch 2 is on line 5,003 of \"refused.csv\""}},
		{name: "unanswered", fail: "502", want: []string{
			"Whether batch 2 was imported is not known (no answer, or a server error): The server answered HTTP 502 Bad Gateway"}},
		{name: "unreachable", fail: "network", want: []string{
			"Whether batch 2 was imported is not known (no answer, or a server error): Could not reach the server (Failed to fetch)."}},
		// The last batch holds one user.
		{name: "one-refused", users: 5001, bad: 5001,
			lead: "Imported 5,000 of the 5,001 users of \"%s.csv\"; batch 2 of 2 (user 5,001) failed.\n", want: []string{
				"Batch 2 was refused, and its user was not imported: Nothing was imported; fix these and retry: user 1: ",
				"\nuser 1 of batch 2 is on line 5,001 of \"one-refused.csv\""}},
		{name: "one-after", users: 10001, fail: "502",
			lead: "Imported 5,000 of the 10,001 users of \"%s.csv\"; batch 2 of 3 (users 5,001 to 10,000) failed and the user after it was not sent.\n", want: []string{
				"Whether batch 2 was imported is not known (no answer, or a server error): The server answered HTTP 502 Bad Gateway"}},
	}
	p.signIn(m)
	eval[bool](p, importProbe)
	// One page for every case, so no subtests: the page's helpers fail
	// the test they were made for.
	for _, tt := range tests {
		org := tt.name + ".example"
		if _, err := m.Server.Admin.CreateOrg(bg, sys, org); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var csv strings.Builder
		want := map[string]bool{}
		for i := range cmp.Or(tt.users, 12000) {
			e := fmt.Sprintf("u%05d@%s", i, org)
			if i+1 == tt.bad {
				e = "not an email@" + org
			}
			if i < 5000 {
				want[e] = false
			}
			fmt.Fprintln(&csv, e)
		}
		f := filepath.Join(dir, tt.name+".csv")
		if err := os.WriteFile(f, []byte(csv.String()), 0o600); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		eval[string](p, `window.importProbe.posts = 0, window.importProbe.fail = `+strconv.Quote(tt.fail))
		p.openImport(org)
		p.importFile("import "+tt.name, f)
		p.waitAlert(tt.name, "error", fmt.Sprintf(cmp.Or(tt.lead, lead), tt.name)+tt.want[0])
		for _, w := range tt.want[1:] {
			if a := p.alert(); !strings.Contains(a, w) {
				t.Errorf("%s: the alert reads %q, want it to hold %q", tt.name, a, w)
			}
		}
		if n := eval[int](p, "window.importProbe.posts"); n != 2 {
			t.Errorf("%s: %d batches sent, want 2", tt.name, n)
		}
		if got := allUsers(t, m, org); !maps.Equal(got, want) {
			t.Errorf("%s: the directory holds %d users, want the first batch's 5,000", tt.name, len(got))
		}
		p.step(tt.name+": the users imported are listed", chromedp.WaitVisible(chromedp.Search(`//main[@id="view"]//td[text()="u00000@`+org+`"]`)))
	}
	p.checkLogs("400")
}

// TestConsoleImportStopsWithItsSession: an import of more than one batch
// sends its batches in the session it began in only. The browser holds
// the answer to the first batch while the user signs out and in again;
// once it is let through, the second batch is not sent (with the new
// session's token, audited as its administrator, who did not ask for
// it), the directory holds the first batch's users alone, and the error
// says the rest was not sent.
func TestConsoleImportStopsWithItsSession(t *testing.T) {
	p, m, _ := consoleTest(t)
	const org = "session.example"
	if _, err := m.Server.Admin.CreateOrg(context.Background(), admin.Actor{ID: "test"}, org); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	for i := range 5001 {
		fmt.Fprintf(&csv, "u%05d@%s\n", i, org)
	}
	f := filepath.Join(t.TempDir(), "session.csv")
	if err := os.WriteFile(f, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signIn(m)
	held := p.holdAnswers("*/v1/orgs/"+org+"/users", "POST")
	p.openImport(org)
	p.importFile("import session.csv", f)
	id := p.awaitHeld(held, "the first batch's answer was not held")

	p.step("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("keyfile-form")))
	eval[string](p, `location.hash = "#/accounts"`)
	p.step("sign in again", chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{m.AdminKeyFile}),
		chromedp.Click(chromedp.CSS("#keyfile-form button")), chromedp.WaitVisible(chromedp.CSS("#view table")))
	p.release(id)

	// The import has ended once it says so: a second batch sent would be
	// held, and the import would not have ended.
	p.waitAlert("import", "error", `Imported 5,000 of the 5,001 users of "session.csv"; batch 2 of 2 (user 5,001) failed.
Batch 2 was not sent: The console signed out after the import began, so it sent no more of it.`)
	select {
	case next := <-held:
		p.release(next)
		t.Fatal("the import sent its second batch in the session signed in after it began")
	default:
	}
	if got := allUsers(t, m, org); len(got) != 5000 {
		t.Errorf("the directory holds %d users, want the first batch's 5,000", len(got))
	}
}
