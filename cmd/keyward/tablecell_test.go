package main

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// TestTablesQuoteUnprintable: a stored value that holds a control
// character (an escape sequence, a C1 CSI, a line break) is shown quoted
// in the tables of the admin commands, as audit list shows one, never raw
// on the operator's terminal. Such values reach the store through import
// (which warns and takes them) and from before the admin API refused them;
// the tables printed them as they were.
func TestTablesQuoteUnprintable(t *testing.T) {
	m := startServer(t)
	const (
		esc = "\x1b[2J"
		csi = "\u009b31m"
	)
	answers := map[string]string{
		"/v1/apis":                     `{"apis":[{"name":"o\u001b[2J","identifier":"https://o.internal/\u009b31m","scopes":["a\nb"],"token_format":"jwt"}]}`,
		"/v1/apis/o":                   `{"name":"o","identifier":"https://o.internal","scopes":["o.read"],"token_format":"jwt","description":"d\u001b[2J","introspectors":["x\u0007"]}`,
		"/v1/service-accounts":         `{"service_accounts":[{"client_id":"1","email":"a\u009b31m@p.iam.keyward.internal","scopes":["s\r"]}]}`,
		"/v1/service-accounts/sa":      `{"client_id":"1","email":"sa@p.iam.keyward.internal","display_name":"n\u001b[2J","description":"line\nbreak","scopes":["s"],"auth_methods":["m\u0007"]}`,
		"/v1/service-accounts/sa/keys": `{"keys":[{"key_id":"k\u001b[2J","algorithm":"RS256","origin":"uploaded"}]}`,
		"/v1/orgs":                     `{"orgs":[{"domain":"e\u009b31m.com","blocked_scopes":["b\u0007"]}]}`,
		"/v1/orgs/e.com":               `{"domain":"e.com","blocked_scopes":[],"projects":[{"project":"p\u001b[2J"}]}`,
		"/v1/orgs/e.com/users":         `{"users":[{"email":"u\u009b31m@e.com","org":"e.com"}]}`,
		"/v1/orgs/e.com/delegations":   `{"delegations":[{"client_id":"1","org":"e.com","scopes":["s\u001b[2J"]}]}`,
		"/v1/signing-keys":             `{"signing_keys":[{"key_id":"k\u009b31m","algorithm":"RS256","state":"current","created_at":"2026-01-02T03:04:05Z"}]}`,
		"/v1/whoami":                   `{"client_id":"1","email":"w@p.iam.keyward.internal","name":"w","project":"p","display_name":"x\u001b[2J","token":{"jti":"j","format":"jwt","scopes":["keyward.admin"]}}`,
	}
	proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		body, ok := answers[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
		return true
	})
	flags := []string{"--credentials", m.AdminKeyFile, "--server", proxy.URL}
	tests := []struct {
		args []string
		want string // a cell as it must be shown
	}{
		{[]string{"api", "list"}, `"o\x1b[2J"`},
		{[]string{"api", "get", "o"}, `"d\x1b[2J"`},
		{[]string{"sa", "list"}, `"a\u009b31m@p.iam.keyward.internal"`},
		{[]string{"sa", "get", "sa"}, `"line\nbreak"`},
		{[]string{"keys", "list", "sa"}, `"k\x1b[2J"`},
		{[]string{"org", "list"}, `"e\u009b31m.com"`},
		{[]string{"org", "get", "e.com"}, `"p\x1b[2J"`},
		{[]string{"users", "list", "--org", "e.com"}, `"u\u009b31m@e.com"`},
		{[]string{"delegation", "list", "--org", "e.com"}, `"s\x1b[2J"`},
		{[]string{"whoami"}, `"x\x1b[2J"`},
		{[]string{"signing-keys", "list"}, `"k\u009b31m"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := runCLI(t, append(tt.args, flags...)...)
			if strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) && r != ' ' }) ||
				strings.Contains(out, "\n\n") || strings.Contains(out, esc) || strings.Contains(out, csi) {
				t.Errorf("printed raw control characters:\n%q", out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output does not show %s:\n%s", tt.want, out)
			}
		})
	}
}

// TestItemTableETag: the ETag line under the one row of keys get and
// secrets get (and of the commands that show one key or secret) is not
// aligned into the table's columns, where its value stood under ALG or
// HINT as if it were a row.
func TestItemTableETag(t *testing.T) {
	tests := []struct {
		name  string
		table func(w *tabwriter.Writer)
	}{
		{"key", func(w *tabwriter.Writer) {
			keyTable(w, []admin.KeyView{{KeyID: "e769b1c38534d11c5305aad210f71ac8005300c8", Algorithm: "RS256", Origin: "generated"}})
		}},
		{"secret", func(w *tabwriter.Writer) {
			secretTable(w, []admin.SecretView{{SecretID: "ec6dd45007bb4702", Hint: "kw_…J0MM"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &adminClient{output: "table", out: &out, etag: `"D1eY2sSqAeg23hCwHIHk2A"`}
			if err := c.show(nil, tt.table); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != 3 || lines[2] != `ETag:  "D1eY2sSqAeg23hCwHIHk2A"` {
				t.Errorf("printed:\n%s\nwant the header, the row, and ETag:  \"D1eY2sSqAeg23hCwHIHk2A\"", out.String())
			}
			if strings.Fields(lines[0])[0] != strings.ToUpper(tt.name) {
				t.Errorf("header %q", lines[0])
			}
		})
	}
}

// TestAuditVerifyPruneActorQuoted: audit verify lists every prune for the
// operator to check that it is one they ran, from a database it trusts no
// more than it must. A prune recorded by someone who can write the
// database, with an escape sequence in its actor or through_seq, is
// listed with them quoted: printed raw, they could erase the line or
// rewrite it into one the operator expects.
func TestAuditVerifyPruneActorQuoted(t *testing.T) {
	m := startServer(t)
	ev := storage.AuditEvent{Time: time.Now(), Outcome: storage.OutcomeSuccess, Actor: "\r\x1b[2Kalice on ops (keyward audit prune)"}
	if n, err := m.store.PruneAudit(context.Background(), time.Now().Add(time.Hour), storage.PruneLimits{MaxEvents: 2}, ev); err != nil || n != 2 {
		t.Fatalf("PruneAudit: %d, %v", n, err)
	}
	out := runCLI(t, "audit", "verify", "--data-dir", m.Config.DataDir)
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("printed raw control characters:\n%q", out)
	}
	if want := `by "\r\x1b[2Kalice on ops (keyward audit prune)"`; !strings.Contains(out, want) {
		t.Errorf("output does not show the actor as %s:\n%s", want, out)
	}
}

// TestTablesShowLabelsAsTheyAre: a display name or description the admin
// API accepts is shown as it is, not quoted with Go escapes: the ZWJ of an
// emoji sequence, the ZWNJ of Persian text and the spaces above ASCII
// (U+00A0, U+3000) are not unicode.IsPrint, and cell quoted them. What
// Label refuses is still quoted.
func TestTablesShowLabelsAsTheyAre(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"team 👩\u200d💻", "team 👩\u200d💻"},
		{"می\u200cخواهم", "می\u200cخواهم"},
		{"開発\u3000チーム", "開発\u3000チーム"},
		{"a\u00a0b", "a\u00a0b"},
		{"🏳️\u200d🌈", "🏳️\u200d🌈"},
		{"n\x1b[2J", `"n\x1b[2J"`},
		{"line\nbreak", `"line\nbreak"`},
		{"a\u202eb", `"a\u202eb"`},
		{"a\u200bb", `"a\u200bb"`},
		{"a\u2028b", `"a\u2028b"`},
		{"bad \xff", `"bad \xff"`},
	} {
		var out bytes.Buffer
		c := &adminClient{output: "table", out: &out}
		if err := c.show(nil, func(w *tabwriter.Writer) {
			accountTable(w, admin.AccountView{Email: "sa@p.iam.keyward.internal", ClientID: "1", DisplayName: tt.in})
		}); err != nil {
			t.Fatal(err)
		}
		if want := "Display name:    " + tt.want + "\n"; !strings.Contains(out.String(), want) {
			t.Errorf("display name %q shown as:\n%s\nwant a line %q", tt.in, out.String(), want)
		}
	}
}

// TestTablesQuoteInvisibleInIdentifiers: an email, client ID, API
// identifier, key ID or scope holding an invisible character (a ZWJ, a
// no-break space) is shown quoted, as cell quotes it: shown, which takes
// them as they are in a display name or description, let an email such
// as "alice\u200d@…", which import takes with a warning, show as
// "alice@…", another account's.
func TestTablesQuoteInvisibleInIdentifiers(t *testing.T) {
	for _, tt := range []struct {
		name  string
		table func(w *tabwriter.Writer)
		want  string
	}{
		{"account email", func(w *tabwriter.Writer) {
			accountTable(w, admin.AccountView{Email: "alice\u200d@p.iam.keyward.internal", ClientID: "1"})
		}, `"alice\u200d@p.iam.keyward.internal"`},
		{"account client ID", func(w *tabwriter.Writer) {
			accountTable(w, admin.AccountView{Email: "a@p.iam.keyward.internal", ClientID: "1\u00a02"})
		}, `"1\u00a02"`},
		{"account scopes", func(w *tabwriter.Writer) {
			accountTable(w, admin.AccountView{Email: "a@p.iam.keyward.internal", ClientID: "1", Scopes: []string{"orders.read\u200c"}})
		}, `"orders.read\u200c"`},
		{"API identifier", func(w *tabwriter.Writer) {
			apiTable(w, admin.APIView{Name: "orders", Identifier: "https://orders\u200d.internal"})
		}, `"https://orders\u200d.internal"`},
		{"whoami email", func(w *tabwriter.Writer) {
			whoAmITable(w, admin.WhoAmIView{Email: "w\u3000@p.iam.keyward.internal"})
		}, `"w\u3000@p.iam.keyward.internal"`},
		{"key ID", func(w *tabwriter.Writer) {
			keyTable(w, []admin.KeyView{{KeyID: "k\u200d1", Algorithm: "RS256"}})
		}, `"k\u200d1"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &adminClient{output: "table", out: &out}
			if err := c.show(nil, tt.table); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("shown as:\n%s\nwant %s", out.String(), tt.want)
			}
		})
	}
}

// TestRecoverAdminQuotesEmail: recover-admin names the administrator
// account by the email the store holds, quoted as the tables quote one: a
// store whose accounts were made with an --account-domain that holds a
// control character (which a server with such a store starts with, and
// warns) printed it raw, an escape sequence on the operator's terminal.
// The commands it prints to paste quote it for the shell instead (Go's
// quotes are not the shell's), still without the raw character, and a
// shell reads them back as the arguments meant.
func TestRecoverAdminQuotesEmail(t *testing.T) {
	m := startServer(t)
	const domain = "x\u009b31m.internal"
	now := time.Now()
	err := m.store.CreateAccount(context.Background(), storage.Account{ID: "100000000000000000042", Email: "admin@keyward." + domain,
		Name: "admin", Project: "keyward", Scopes: []string{"keyward.admin"}, CreatedAt: now},
		storage.AuditEvent{Time: now, Action: "account.create", Outcome: storage.OutcomeSuccess, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	email := "admin@keyward." + domain
	want := strconv.Quote(email)
	for i, lines := range []int{2, 5} { // the second run has another key to name
		out := runCLI(t, "recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--account-domain", domain,
			"--key-file", filepath.Join(t.TempDir(), "admin.json"))
		if strings.ContainsRune(out, '\u009b') {
			t.Errorf("run %d printed a raw control character:\n%q", i+1, out)
		}
		if n := strings.Count(out, "\n"); n != lines || strings.Count(out, want) != 1 {
			t.Errorf("run %d printed:\n%s\nwant %d lines naming the account as %s", i+1, out, lines, want)
		}
		// After the account's line and the issuer's.
		cmds := strings.Split(strings.TrimSuffix(out, "\n"), "\n")[2:]
		if lines == 2 || len(cmds) != 3 {
			continue
		}
		cmds = cmds[1:]
		for j, args := range [][]string{{"keys", "list", email}, {"keys", "disable", email, "KEY_ID"}} {
			if wantCmd := "  keyward " + shellCommand(args...); cmds[j] != wantCmd {
				t.Errorf("run %d printed the command %q, want %q", i+1, cmds[j], wantCmd)
			}
			bash, err := exec.LookPath("bash")
			if err != nil {
				continue
			}
			// keyward is a function printing its arguments a line each.
			got, err := exec.Command(bash, "-c", "keyward() { printf '%s\\n' \"$@\"; }; "+cmds[j]).Output()
			if wantOut := strings.Join(args, "\n") + "\n"; err != nil || string(got) != wantOut {
				t.Errorf("bash read %q as %q (%v), want %q", cmds[j], got, err, wantOut)
			}
		}
	}
}

// TestAccountTableEmptyAndTLS: 'sa get' shows an account without scopes
// as "-", as other tables show an empty list, and its TLS binding in
// words; it showed an empty Scopes: and the binding as raw JSON.
func TestAccountTableEmptyAndTLS(t *testing.T) {
	tests := []struct {
		name string
		a    admin.AccountView
		want []string
	}{
		{"no scopes", admin.AccountView{Email: "a@p", ClientID: "1"}, []string{`\nScopes: +-\n`}},
		{"TLS binding", admin.AccountView{Email: "a@p", ClientID: "1", Scopes: []string{"x"},
			TLS: &storage.TLSBinding{SubjectDN: "CN=job,O=Example", SANDNS: "job.internal"}},
			[]string{`\nTLS binding: +subject DN CN=job,O=Example; SAN DNS job\.internal\n`}},
		// A value holding "; " (a DN's escaped ';', or what an import
		// only warned of) is quoted, so that it reads as one part.
		{"TLS binding with ;", admin.AccountView{Email: "a@p", ClientID: "1", Scopes: []string{"x"},
			TLS: &storage.TLSBinding{SubjectDN: `CN=job\; SAN DNS evil.example`}},
			[]string{`\nTLS binding: +subject DN "CN=job\\\\; SAN DNS evil\.example"\n`}},
		{"TLS binding with ; imported", admin.AccountView{Email: "a@p", ClientID: "1", Scopes: []string{"x"},
			TLS: &storage.TLSBinding{SANURI: "spiffe://a/b; SAN DNS evil.example", SANDNS: "job.internal"}},
			[]string{`\nTLS binding: +SAN DNS job\.internal; SAN URI "spiffe://a/b; SAN DNS evil\.example"\n`}},
		{"TLS binding unprintable", admin.AccountView{Email: "a@p", ClientID: "1", Scopes: []string{"x"},
			TLS: &storage.TLSBinding{SubjectDN: "CN=job\x00", SANDNS: "job.internal"}},
			[]string{`\nTLS binding: +subject DN "CN=job\\x00"; SAN DNS job\.internal\n`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
			accountTable(w, tt.a)
			w.Flush()
			for _, want := range tt.want {
				if !regexp.MustCompile(want).MatchString(buf.String()) {
					t.Errorf("table\n%s\ndoes not hold %q", buf.String(), want)
				}
			}
			if strings.Contains(buf.String(), "{") {
				t.Errorf("table\n%s\nholds JSON", buf.String())
			}
		})
	}
}

// TestAPITableNoScopes: 'api get' shows an API without scopes (an import
// only warns of one) as "-", as 'sa get' shows an account without; it
// showed an empty Scopes: line.
func TestAPITableNoScopes(t *testing.T) {
	tests := []struct {
		name string
		a    admin.APIView
		want string
	}{
		{"no scopes", admin.APIView{Name: "orders", Identifier: "https://orders.internal"}, `\nScopes: +-\n`},
		{"scopes", admin.APIView{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}}, `\nScopes: +orders\.read, orders\.write\n`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
			apiTable(w, tt.a)
			w.Flush()
			if !regexp.MustCompile(tt.want).MatchString(buf.String()) {
				t.Errorf("table\n%s\ndoes not hold %q", buf.String(), tt.want)
			}
		})
	}
}
