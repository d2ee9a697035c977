package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/testkeyward"
)

// TestMain lets a test run the keyward binary itself: the test binary,
// re-executed with KEYWARD_TEST_RUN_MAIN=1, is keyward.
func TestMain(m *testing.M) {
	if os.Getenv("KEYWARD_TEST_RUN_MAIN") == "1" {
		endWithTest()
		killAt(os.Getenv(killAtEnv))
		main()
		os.Exit(0)
	}
	removeStaleBrowserDirs(os.TempDir(), time.Now())
	code := m.Run()
	stopBrowser()
	os.Exit(code)
}

type auditPage struct {
	Events []struct {
		Seq       int64             `json:"seq"`
		Action    string            `json:"action"`
		Outcome   string            `json:"outcome"`
		AccountID string            `json:"account_id"`
		Data      map[string]string `json:"data"`
		Hash      string            `json:"hash"`
	} `json:"events"`
	Next string `json:"next_page_token"`
}

func TestAuditList(t *testing.T) {
	m := startServer(t)
	clientID, email := setupAccount(t, m, "audited")
	admin := []string{"--credentials", m.AdminKeyFile}
	var sec struct {
		Secret string `json:"client_secret"`
	}
	json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "create", email, "-o", "json"}, admin...)...)), &sec)
	tokenReq := func(secret string) {
		req, _ := http.NewRequest("POST", m.Issuer+"/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	tokenReq(sec.Secret)
	tokenReq("kw_wrong")

	list := func(args ...string) []map[string]any {
		t.Helper()
		return jsonLines[map[string]any](t, runCLI(t, append(append([]string{"audit", "list", "-o", "json", "--limit", "1000"}, admin...), args...)...))
	}
	t.Run("filters", func(t *testing.T) {
		refused := list("--action", "token.refused")
		if len(refused) != 1 || refused[0]["outcome"] != "failure" {
			t.Fatalf("refusals = %v", refused)
		}
		mine := list("--account", email)
		actions := map[string]bool{}
		for _, e := range mine {
			if e["account_id"] != clientID {
				t.Fatalf("--account returned %v", e)
			}
			actions[e["action"].(string)] = true
		}
		if !actions["account.create"] || !actions["secret.create"] || !actions["token.issued"] {
			t.Fatalf("actions about the account: %v", actions)
		}
		if got := list("--outcome", "failure", "--since", "1h"); len(got) != 1 {
			t.Fatalf("failures in the last hour: %d, want 1", len(got))
		}
		if got := list("--until", "1h"); len(got) != 0 {
			t.Fatalf("events before an hour ago: %d, want 0", len(got))
		}
	})
	t.Run("paging", func(t *testing.T) {
		all := list()
		paged := runCLI(t, append([]string{"audit", "list", "-o", "json", "--limit", "2"}, admin...)...)
		lines := strings.Split(strings.TrimSpace(paged), "\n")
		// Each CLI run adds the token.issued event of its own admin token.
		if len(lines) < len(all) {
			t.Fatalf("paging by 2 gave %d events, want at least %d", len(lines), len(all))
		}
		for i, line := range lines {
			var e struct{ Seq int }
			json.Unmarshal([]byte(line), &e)
			if e.Seq != i+1 {
				t.Fatalf("event %d of the paged listing has seq %d: pages skip or repeat", i+1, e.Seq)
			}
		}
	})
	t.Run("newest", func(t *testing.T) {
		// Each CLI run adds the token.issued event of its own admin token,
		// so every listing ends (or starts) at its own head; all of them
		// start from 1 without gaps.
		seqs := func(args ...string) []int64 {
			return seqsOf(t, runCLI(t, append(append([]string{"audit", "list", "-o", "json", "--newest"}, admin...), args...)...))
		}
		for _, args := range [][]string{{"--limit", "1000"}, {"--limit", "2"}, {"--limit", "1"}} {
			all := list()
			got := seqs(args...)
			for i, seq := range got {
				if want := int64(len(got) - i); seq != want {
					t.Fatalf("%v: event %d of %v has seq %d, want %d: newest first, without gaps or repeats", args, i, got, seq, want)
				}
			}
			if len(got) <= len(all) {
				t.Fatalf("%v: %d events newest first, want more than the %d listed before", args, len(got), len(all))
			}
		}
		if got := seqs("--before", "4", "--limit", "2"); !slices.Equal(got, []int64{3, 2, 1}) {
			t.Fatalf("--before 4: seqs %v, want [3 2 1]", got)
		}
		refused := seqs("--action", "token.refused", "--limit", "1")
		if len(refused) != 1 {
			t.Fatalf("--action token.refused newest first: %v, want the one refusal", refused)
		}
	})
	t.Run("max", func(t *testing.T) {
		// A proxy notes the limit of every page the CLI asks for.
		var (
			mu     sync.Mutex
			limits []string
		)
		proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/v1/audit" {
				mu.Lock()
				limits = append(limits, r.URL.Query().Get("limit"))
				mu.Unlock()
			}
			return false
		})
		tests := []struct {
			name string
			args []string
			// want is the events listed; with newest, that many newest
			// first, from the head; with all, every event, oldest first.
			want   []int64
			newest int
			all    bool
			// limits are the limits of the pages asked for, in turn.
			limits []string
		}{
			{name: "oldest first, over pages", args: []string{"--max", "3", "--limit", "2"}, want: []int64{1, 2, 3}, limits: []string{"2", "1"}},
			{name: "oldest first, one page", args: []string{"--max", "3"}, want: []int64{1, 2, 3}, limits: []string{"3"}},
			{name: "newest first, over pages", args: []string{"--max", "2", "--newest", "--limit", "1"}, newest: 2, limits: []string{"1", "1"}},
			{name: "newest first, before", args: []string{"--max", "3", "--newest", "--before", "5"}, want: []int64{4, 3, 2}, limits: []string{"3"}},
			{name: "more than there are", args: []string{"--max", "1000000", "--limit", "1000"}, all: true, limits: []string{"1000"}},
			{name: "no limit", args: []string{"--max", "0", "--limit", "1000"}, all: true, limits: []string{"1000"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := list()
				if len(before) < 5 {
					t.Fatalf("%d events, want at least 5 to list some of", len(before))
				}
				mu.Lock()
				limits = nil
				mu.Unlock()
				got := seqsOf(t, runCLI(t, append(append([]string{"audit", "list", "-o", "json", "--server", proxy.URL}, admin...), tt.args...)...))
				switch {
				case tt.all:
					if len(got) <= len(before) || got[0] != 1 || got[len(got)-1] != int64(len(got)) {
						t.Fatalf("seqs %v, want 1 to past %d: all of them", got, len(before))
					}
				case tt.newest > 0:
					head := int64(before[len(before)-1]["seq"].(float64)) + 1 // this run's own token
					if want := []int64{head, head - 1}[:tt.newest]; !slices.Equal(got, want) {
						t.Fatalf("seqs %v, want %v: the newest %d", got, want, tt.newest)
					}
				default:
					if !slices.Equal(got, tt.want) {
						t.Fatalf("seqs %v, want %v", got, tt.want)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if !slices.Equal(limits, tt.limits) {
					t.Fatalf("pages asked for with limits %v, want %v: no more pages, nor events, than --max needs", limits, tt.limits)
				}
			})
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, q := range []string{"limit=0", "limit=x", "since=yesterday", "after=-1", "before=0", "order=up", "order=desc&wait=1s", "outcome=maybe", "wait=1h", "account=ghost@x"} {
			c, err := (&clientFlags{credentials: m.AdminKeyFile, output: "json"}).client(cliContext())
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			err = c.do(context.Background(), "GET", "/v1/audit?"+q, nil, &out)
			if err == nil || !(strings.Contains(err.Error(), "invalid_request") || strings.Contains(err.Error(), "not_found")) {
				t.Fatalf("%s: %v, want a 400 or 404", q, err)
			}
		}
	})
	t.Run("follow", func(t *testing.T) {
		all := list()
		last := fmt.Sprint(int64(all[len(all)-1]["seq"].(float64)))
		c, err := (&clientFlags{credentials: m.AdminKeyFile, output: "json"}).client(cliContext())
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan auditPage, 1)
		go func() {
			var p auditPage
			c.do(context.Background(), "GET", "/v1/audit?wait=10s&action=token.refused&after="+last, nil, &p)
			got <- p
		}()
		time.Sleep(300 * time.Millisecond) // let the poll start waiting
		tokenReq("kw_wrong_again")
		select {
		case p := <-got:
			if len(p.Events) != 1 || p.Events[0].Action != "token.refused" {
				t.Fatalf("follow got %+v", p.Events)
			}
		case <-time.After(8 * time.Second):
			t.Fatal("the waiting request did not return the new event")
		}
	})
}

// TestAuditRow checks that the audit list table shows what callers put in
// an event escaped: a client_id sent to /token is anyone's to choose, and
// must not reach the operator's terminal as escape sequences or line
// breaks.
func TestAuditRow(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string]string
		want string
	}{
		{"plain", map[string]string{"client_id": "123", "error": "invalid_client"}, "client_id=123 error=invalid_client"},
		{"space", map[string]string{"description": "Client authentication failed."}, `description="Client authentication failed."`},
		{"empty", map[string]string{"client_id": ""}, "client_id="},
		{"escape", map[string]string{"client_id": "\x1b[31mred"}, `client_id="\x1b[31mred"`},
		{"line break", map[string]string{"client_id": "x\n1  2026-01-01 00:00:00  token.issued"}, `client_id="x\n1  2026-01-01 00:00:00  token.issued"`},
		{"tab", map[string]string{"client_id": "a\tb"}, `client_id="a\tb"`},
		{"carriage return", map[string]string{"client_id": "a\rb"}, `client_id="a\rb"`},
		{"bidi override", map[string]string{"client_id": "a\u202eb"}, `client_id="a\u202eb"`},
		{"not UTF-8", map[string]string{"client_id": "a\xffb"}, `client_id="a\xffb"`},
		{"unicode", map[string]string{"user": "jürgen@example.com"}, "user=jürgen@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cells := auditCells(admin.AuditEventView{Seq: 7, Action: "token.refused", Outcome: "failure", Source: "10.0.0.1", Data: tc.data})
			if got := cells[7]; got != tc.want {
				t.Errorf("details = %s, want %s", got, tc.want)
			}
			var out strings.Builder
			(&auditTable{w: &out}).page([]admin.AuditEventView{{Seq: 7, Data: tc.data}})
			if strings.Count(out.String(), "\n") != 2 || strings.ContainsFunc(out.String(), func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }) {
				t.Errorf("table %q is not a header and one line of printable characters", out.String())
			}
		})
	}
	// Data a changed database holds that is not a JSON object: the admin
	// API lists it as unreadable, and the table says so.
	t.Run("unreadable data", func(t *testing.T) {
		cells := auditCells(admin.AuditEventView{Seq: 7, DataUnreadable: true, DataRaw: "{\"x\":\n"})
		if want := `data unreadable: "{\"x\":\n"`; cells[7] != want {
			t.Errorf("details = %s, want %s", cells[7], want)
		}
	})
	// A time a changed SQLite database holds that is not an integer.
	t.Run("unreadable time", func(t *testing.T) {
		cells := auditCells(admin.AuditEventView{Seq: 7, TimeUnreadable: true, TimeRaw: "yester\nday"})
		if want := `time unreadable: "yester\nday"`; cells[1] != want {
			t.Errorf("time = %s, want %s", cells[1], want)
		}
	})
	t.Run("other cells", func(t *testing.T) {
		cells := auditCells(admin.AuditEventView{Seq: 1, Action: "a\x1bb", Outcome: "x\ny", Actor: "alice on host (keyward audit prune)"})
		want := []string{"1", "-", `"a\x1bb"`, `"x\ny"`, "-", "alice on host (keyward audit prune)", "-", ""}
		if !slices.Equal(cells, want) {
			t.Errorf("cells = %q, want %q", cells, want)
		}
	})
}

// TestAuditTable checks that the pages of the audit list table line up
// with the header and with each other, though each is written as it
// comes.
func TestAuditTable(t *testing.T) {
	var out strings.Builder
	table := auditTable{w: &out}
	table.page([]admin.AuditEventView{
		{Seq: 1, Action: "api.create", Outcome: "success", Actor: "system", Data: map[string]string{"api": "keyward"}},
		{Seq: 2, Action: "signing_key.create", Outcome: "success", Actor: "system"},
	})
	table.page(nil)
	table.page([]admin.AuditEventView{
		{Seq: 9, Action: "token.refused", Outcome: "failure", Source: "127.0.0.1", Data: map[string]string{"error": "invalid_client"}},
		{Seq: 10, Action: "token.issued", Outcome: "success", AccountID: "577436518023140401823", Actor: "577436518023140401823", Source: "10.1.2.3", Data: map[string]string{"scope": "orders.read"}},
	})
	table.page([]admin.AuditEventView{
		{Seq: 11, Action: "token.introspect", Outcome: "success", Source: "10.1.2.4", Data: map[string]string{"count": "3"}},
	})
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("table:\n%s\nwant a header and 5 lines", out.String())
	}
	header := lines[0]
	for _, col := range []string{"TIME", "ACTION", "OUTCOME", "ACCOUNT", "ACTOR", "SOURCE", "DETAILS"} {
		at := strings.Index(header, col)
		for _, line := range lines[1:] {
			if len(line) <= at && col == "DETAILS" {
				continue // no data
			}
			if len(line) <= at || line[at-1] != ' ' || line[at] == ' ' {
				t.Errorf("the %s column starts at %d in the header but not in %q:\n%s", col, at, line, out.String())
			}
		}
	}
	if strings.HasSuffix(lines[2], " ") {
		t.Errorf("line %q ends in spaces", lines[2])
	}
}

// TestPrunedCount: an audit.prune event's count reads as "1 event" or
// "N events"; a count that is not a number is shown as it is, quoted.
func TestPrunedCount(t *testing.T) {
	for _, tt := range []struct{ count, want string }{
		{"1", "1 event"},
		{"0", "0 events"},
		{"20000", "20000 events"},
		{"", `count ""`},
		{"two", `count "two"`},
	} {
		if got := prunedCount(tt.count); got != tt.want {
			t.Errorf("prunedCount(%q) = %q, want %q", tt.count, got, tt.want)
		}
	}
}

func TestAuditVerify(t *testing.T) {
	m := startServer(t)
	setupAccount(t, m, "checked")
	dir := m.Config.DataDir
	out := runCLI(t, "audit", "verify", "--data-dir", dir)
	if !strings.Contains(out, "intact") {
		t.Fatalf("verify said %q", out)
	}

	// An attacker with access to the database rewrites an event.
	tamper(t, dir,
		"DROP TRIGGER audit_events_no_update",
		`UPDATE audit_events SET data = '{"api":"something-else"}' WHERE seq = 3`,
	)
	err := runCLIErr(t, "audit", "verify", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "audit event 3 was altered") {
		t.Fatalf("verify after tampering: %v", err)
	}
}

// TestAuditVerifyEmpty: an empty log verifies, saying it is empty; it
// said "intact: 0 events, head 0 with hash " and so looked like a log
// checked. With a recorded head, it fails.
func TestAuditVerifyEmpty(t *testing.T) {
	dir := t.TempDir()
	runCLI(t, "migrate", "--data-dir", dir)
	out := runCLI(t, "audit", "verify", "--data-dir", dir)
	if !strings.HasPrefix(out, "the audit log is empty (") || !strings.Contains(out, "0 events, nothing to check") {
		t.Errorf("verify of an empty log said %q", out)
	}
	err := runCLIErr(t, "audit", "verify", "--data-dir", dir, "--head", "3:"+strings.Repeat("0", 64))
	if err == nil || !strings.Contains(err.Error(), "NOT intact") || !strings.Contains(err.Error(), "the log is empty, and the recorded head is event 3") {
		t.Errorf("verify --head of an empty log: %v", err)
	}
}

// TestAuditPruneHelp: the help of audit prune says that without --export
// the events it deletes are kept nowhere, and recommends --export; it only
// said they were deleted unread, which is about checking them.
func TestAuditPruneHelp(t *testing.T) {
	out := runCLI(t, "audit", "prune", "--help")
	for _, want := range []string{"Without --export no copy is kept: the events are gone for good", "Give --export unless", "without it no copy is kept"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("audit prune --help does not say %q:\n%s", want, out)
		}
	}
}

// runCLIErr runs a command that is expected to fail and returns its error.
func runCLIErr(t *testing.T, args ...string) error {
	t.Helper()
	return runCLIErrContext(context.Background(), args...)
}

// runCLIErrContext is runCLIErr under ctx.
func runCLIErrContext(ctx context.Context, args ...string) error {
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	return execute(ctx, cmd)
}

// TestCrashSafety kills a real keyward process with SIGKILL in the middle
// of a load and checks that the audit chain verifies and that every token a
// client received has its token.issued event, on SQLite and, when
// KEYWARD_TEST_POSTGRES_DSN is set, on PostgreSQL.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	for _, b := range crashBackends {
		t.Run(b.name, func(t *testing.T) { testCrashSafety(t, b.db(t)) })
	}
}

func testCrashSafety(t *testing.T, db string) {
	dir := t.TempDir()
	addr := reservePort(t) // the child binds it; no other process can meanwhile
	srv := startCrashServer(t, dir, db, addr)
	base := srv.base()
	adminKey := filepath.Join(dir, "admin-key.json")
	admin := []string{"--credentials", adminKey}
	runCLI(t, append([]string{"api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read"}, admin...)...)
	var acct struct {
		ClientID string `json:"client_id"`
		Email    string `json:"email"`
	}
	json.Unmarshal([]byte(runCLI(t, append([]string{"sa", "create", "load", "--project", "crash", "--scopes", "orders.read", "-o", "json"}, admin...)...)), &acct)
	var sec struct {
		Secret string `json:"client_secret"`
	}
	json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "create", acct.Email, "-o", "json"}, admin...)...)), &sec)

	var (
		mu     sync.Mutex
		issued []string // jti of every token a client received
		wg     sync.WaitGroup
	)
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", base+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(acct.ClientID, sec.Secret)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var body struct {
					AccessToken string `json:"access_token"`
				}
				json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					continue
				}
				tok, err := jwt.ParseSigned(body.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
				if err != nil {
					t.Error(err)
					return
				}
				var c struct {
					ID string `json:"jti"`
				}
				tok.UnsafeClaimsWithoutVerification(&c)
				mu.Lock()
				issued = append(issued, c.ID)
				mu.Unlock()
			}
		}()
	}
	// Kill it under load: once the clients have received tokens enough to
	// be going at full tilt, or after 1.5 s on a machine too busy for it.
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(issued)
		mu.Unlock()
		if n >= 200 {
			break
		}
	}
	srv.kill()
	close(stop)
	wg.Wait()
	if len(issued) == 0 {
		t.Fatal("no token was issued before the kill")
	}

	st := srv.store()
	check, err := storage.VerifyLog(context.Background(), st)
	if err != nil {
		t.Fatalf("after SIGKILL the audit chain does not verify: %v", err)
	}
	recorded := map[string]bool{}
	for after := int64(0); ; {
		evs, err := st.ListAuditEvents(context.Background(), storage.AuditFilter{AfterSeq: after, Action: "token.issued", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			recorded[e.Data["token_id"]] = true
		}
		after = evs[len(evs)-1].Seq
	}
	for _, jti := range issued {
		if !recorded[jti] {
			t.Fatalf("a client received token %s, but its audit event was lost in the crash", jti)
		}
	}
	t.Logf("%d tokens received before SIGKILL, all audited; %d events verified", len(issued), check.Events)
}

// cliContext is a command carrying a context, for calling the admin API
// client directly.
func cliContext() *cobra.Command {
	cmd := newRootCommand()
	cmd.SetContext(context.Background())
	return cmd
}

// TestAuditPrune prunes the log of a running server, exporting what goes:
// the rest verifies, the server keeps auditing, and bad flags are refused.
func TestAuditPrune(t *testing.T) {
	m := startServer(t)
	dir := m.Config.DataDir
	admin := []string{"--credentials", m.AdminKeyFile}
	setupAccount(t, m, "pruned") // a few admin events
	before := runCLI(t, "audit", "verify", "--data-dir", dir, "-o", "json")

	export := filepath.Join(t.TempDir(), "old.jsonl")
	defer func(n int64) { pruneBatch = n }(pruneBatch)
	pruneBatch = 1 // several transactions, each recording "1 event"
	out := runCLI(t, "audit", "prune", "--data-dir", dir, "--before", "0s", "--export", export, "--yes")
	if !strings.Contains(out, "pruned ") || !strings.Contains(out, "exported ") {
		t.Fatalf("prune said %q", out)
	}
	lines := mustReadFile(t, export)
	var first struct {
		Seq  int64  `json:"seq"`
		Hash string `json:"hash"`
	}
	exported := strings.Count(string(lines), "\n")
	if exported < 3 || json.Unmarshal([]byte(strings.SplitN(string(lines), "\n", 2)[0]), &first) != nil || first.Seq != 1 {
		t.Fatalf("export holds %d lines, first %+v", exported, first)
	}
	// What was exported was pruned, in several transactions, and nothing
	// else: the newest event as the prune began is kept (each transaction
	// keeps the newest it finds, from the second on the record of the one
	// before, and the last would take the newest of the log), and is not
	// exported, which the next export would repeat.
	if !strings.Contains(out, fmt.Sprintf("pruned %d audit events", exported)) {
		t.Fatalf("exported %d events, but prune said %q", exported, out)
	}

	// The server keeps working and auditing after the prune.
	runCLI(t, append([]string{"sa", "create", "after-prune", "--project", "billing"}, admin...)...)
	var c struct {
		FirstSeq int64            `json:"first_seq"`
		OK       bool             `json:"ok"`
		Prunes   []map[string]any `json:"prunes"`
	}
	verify := runCLI(t, "audit", "verify", "--data-dir", dir, "-o", "json")
	if err := json.Unmarshal([]byte(verify), &c); err != nil || !c.OK || c.FirstSeq != int64(exported)+1 || len(c.Prunes) < 2 {
		t.Fatalf("verify after prune: %s (before: %s)", verify, before)
	}
	// The table names each prune's count of events, one of them "1 event".
	verify = runCLI(t, "audit", "verify", "--data-dir", dir)
	if n := strings.Count(verify, " (1 event) at "); n != len(c.Prunes) || strings.Contains(verify, "events)") {
		t.Errorf("verify: %d prunes of 1 event of %d shown, in %q", n, len(c.Prunes), verify)
	}
	events := runCLI(t, append([]string{"audit", "list", "--action", "audit.prune", "-o", "json"}, admin...)...)
	if !strings.Contains(events, "keyward audit prune") || !strings.Contains(events, "through_seq") {
		t.Fatalf("no audit.prune event: %s", events)
	}

	// A second export starts where the first ended: the files, one after
	// the other, are one chain without a repeated event, and the last
	// event of each is the one its prune's audit.prune event names.
	pruneBatch = 20_000
	export2 := filepath.Join(t.TempDir(), "old2.jsonl")
	runCLI(t, "audit", "prune", "--data-dir", dir, "--before", "0s", "--export", export2, "--yes")
	lines2 := mustReadFile(t, export2)
	type view struct {
		Seq       int64             `json:"seq"`
		Time      time.Time         `json:"time"`
		Action    string            `json:"action"`
		Outcome   string            `json:"outcome"`
		AccountID string            `json:"account_id"`
		Actor     string            `json:"actor"`
		Source    string            `json:"source"`
		Data      map[string]string `json:"data"`
		PrevHash  string            `json:"prev_hash"`
		Hash      string            `json:"hash"`
	}
	both := jsonLines[view](t, string(lines)+string(lines2))
	evs := make([]storage.AuditEvent, 0, len(both))
	for _, v := range both {
		e := storage.AuditEvent{Seq: v.Seq, Time: v.Time, Action: v.Action, Outcome: v.Outcome, AccountID: v.AccountID,
			Actor: v.Actor, Source: v.Source, Data: v.Data}
		e.PrevHash, _ = hex.DecodeString(v.PrevHash)
		e.Hash, _ = hex.DecodeString(v.Hash)
		evs = append(evs, e)
	}
	if _, _, err := storage.VerifyChain(0, []byte{}, evs); err != nil || len(evs) <= exported {
		t.Fatalf("the two exports, %d and %d events, are not one chain: %v", exported, len(evs)-exported, err)
	}
	prunes := jsonLines[view](t, runCLI(t, append([]string{"audit", "list", "--action", "audit.prune", "--newest", "--max", "1", "-o", "json"}, admin...)...))
	if last := both[len(both)-1]; len(prunes) != 1 || prunes[0].Data["through_seq"] != strconv.FormatInt(last.Seq, 10) || prunes[0].Data["through_hash"] != last.Hash {
		t.Fatalf("the second export ends with event %d (%s), the prune records %v", last.Seq, last.Hash, prunes)
	}

	for _, args := range [][]string{
		{"audit", "prune", "--data-dir", dir},
		{"audit", "prune", "--data-dir", dir, "--before", "soon"},
		{"audit", "prune", "--data-dir", dir, "--before", "2999-01-01T00:00:00Z"},
		{"audit", "prune", "--data-dir", dir, "--before", "1h", "--export", export, "--yes"},
	} {
		if err := runCLIErr(t, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}

	// Maintenance commands do not create or migrate a schema: a server of
	// an older release may be running on it.
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "keyward.db"), nil, 0o600); err != nil { // an SQLite database without tables
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"audit", "prune", "--data-dir", empty, "--before", "90d"},
		{"master-key", "rotate", "--data-dir", empty, "--master-key-file", writeMasterKey(t, "11"), "--new-master-key-file", writeMasterKey(t, "c2")},
	} {
		err := runCLIErr(t, args...)
		if err == nil || !strings.Contains(err.Error(), "keyward migrate") {
			t.Errorf("%v on a database without the schema: %v, want a request to run keyward migrate", args, err)
		}
	}
}

// TestAuditPruneExportSyncsDirectory: prune --export syncs the directory
// of the file it wrote before it deletes the events, so that a crash after
// the prune cannot take the file's name, and the only copy of the events,
// with it; a directory that cannot be synced prunes nothing.
func TestAuditPruneExportSyncsDirectory(t *testing.T) {
	tests := []struct {
		name    string
		syncErr error
		pruned  bool
	}{
		{"synced", nil, true},
		{"sync fails", errors.New("input/output error"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := startServer(t)
			dir := m.Config.DataDir
			setupAccount(t, m, "pruned")
			export := filepath.Join(t.TempDir(), "old.jsonl")
			var synced []string
			defer func(f func(string) error) { syncDir = f }(syncDir)
			syncDir = func(d string) error {
				synced = append(synced, d)
				return tt.syncErr
			}
			err := runCLIErr(t, "audit", "prune", "--data-dir", dir, "--before", "0s", "--export", export, "--yes")
			if !slices.Contains(synced, filepath.Dir(export)) {
				t.Errorf("synced directories %q, want %s", synced, filepath.Dir(export))
			}
			var c struct {
				FirstSeq int64 `json:"first_seq"`
			}
			if err := json.Unmarshal([]byte(runCLI(t, "audit", "verify", "--data-dir", dir, "-o", "json")), &c); err != nil {
				t.Fatal(err)
			}
			if pruned := c.FirstSeq > 1; pruned != tt.pruned || (err == nil) != tt.pruned {
				t.Fatalf("prune: %v, log starts at event %d; want pruned %v", err, c.FirstSeq, tt.pruned)
			}
			if _, serr := os.Stat(export); !tt.pruned && !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("the export file of a failed prune is left: %v", serr)
			}
			if !tt.pruned && !strings.Contains(err.Error(), "nothing was pruned") {
				t.Errorf("prune: %v, want it to say nothing was pruned", err)
			}
		})
	}
}

// TestWriteFileAtomicSyncsDirectory: a file written by writeFileAtomic (a
// generated master key, the administrator's key file, an export, a
// created key's file) is reported written only once its directory is
// synced too; a directory that cannot be synced is an error naming the
// file. It was ignored, so a first start went on to seal the store under
// a master key whose file a crash could take.
func TestWriteFileAtomicSyncsDirectory(t *testing.T) {
	syncErr := errors.New("input/output error")
	tests := []struct {
		name string
		run  func(t *testing.T) (path string, err error)
	}{
		{"first start's master key", func(t *testing.T) (string, error) {
			cfg := DefaultConfig()
			cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			defer m.Close()
			syncDir = func(string) error { return syncErr }
			return generatedMasterKeyPath(cfg), m.Open(context.Background())
		}},
		{"export --out", func(t *testing.T) (string, error) {
			m := startServer(t)
			out := filepath.Join(t.TempDir(), "keyward.json")
			syncDir = func(string) error { return syncErr }
			return out, runCLIErr(t, "export", "--data-dir", m.Config.DataDir, "--out", out)
		}},
		{"keys create --out", func(t *testing.T) (string, error) {
			m := startServer(t)
			_, email := setupAccount(t, m, "job")
			out := filepath.Join(t.TempDir(), "key.json")
			syncDir = func(string) error { return syncErr }
			return out, runCLIErr(t, "keys", "create", email, "--out", out, "--credentials", m.AdminKeyFile)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(f func(string) error) { syncDir = f }(syncDir)
			path, err := tt.run(t) // makes syncDir fail once what it needs is set up
			want := "sync the directory of " + path + ": input/output error"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%v, want an error saying %q", err, want)
			}
		})
	}
}

// TestAuditPruneRecent: a cut-off less than 24 hours ago, which deletes
// nearly the whole log, is a usage error naming --yes and deletes nothing;
// --yes goes ahead.
func TestAuditPruneRecent(t *testing.T) {
	m := startServer(t)
	dir := m.Config.DataDir
	setupAccount(t, m, "kept")
	for _, before := range []string{"0", "0s", "1h", "23h59m", "0d", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)} {
		t.Run(before, func(t *testing.T) {
			err := runCLIErr(t, "audit", "prune", "--data-dir", dir, "--before", before)
			if _, ok := errors.AsType[usageError](err); !ok || !strings.Contains(err.Error(), "--yes") || !strings.Contains(err.Error(), "less than 24 hours ago") {
				t.Fatalf("prune --before %s: %v; want a usage error asking for --yes", before, err)
			}
		})
	}
	var c struct {
		FirstSeq int64 `json:"first_seq"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, "audit", "verify", "--data-dir", dir, "-o", "json")), &c); err != nil || c.FirstSeq != 1 {
		t.Fatalf("after refused prunes the log starts at %d (%v), want 1", c.FirstSeq, err)
	}
	if out := runCLI(t, "audit", "prune", "--data-dir", dir, "--before", "25h"); !strings.Contains(out, "no audit event older than") {
		t.Fatalf("prune --before 25h said %q", out)
	}
	if out := runCLI(t, "audit", "prune", "--data-dir", dir, "--before", "0", "--yes"); !strings.Contains(out, "pruned ") {
		t.Fatalf("prune --before 0 --yes said %q", out)
	}
}

// TestAuditPruneExactCut: audit prune records its cut in the audit.prune
// event, and prints it, as exactly as it compares it, to the nanosecond:
// to whole seconds, an event in the cut's second could be pruned while
// the record said it was before it. audit verify reads the record.
func TestAuditPruneExactCut(t *testing.T) {
	m := startServer(t)
	dir := m.Config.DataDir
	setupAccount(t, m, "kept")
	for _, tt := range []struct {
		name   string
		layout string
	}{
		{"fractional", time.RFC3339Nano},
		{"whole seconds", time.RFC3339}, // as before, and still as they were
	} {
		t.Run(tt.name, func(t *testing.T) {
			runCLI(t, "sa", "create", "more-"+strings.ReplaceAll(tt.name, " ", "-"), "--project", "billing", "--credentials", m.AdminKeyFile)
			written := time.Now()
			// After the events just written: with whole seconds, once the
			// next second has begun.
			for time.Now().Truncate(time.Second).Before(written) && tt.layout == time.RFC3339 {
				time.Sleep(10 * time.Millisecond)
			}
			cut := time.Now().UTC().Format(tt.layout)
			out := runCLI(t, "audit", "prune", "--data-dir", dir, "--before", cut, "--yes")
			if !strings.Contains(out, "older than "+cut+" ") {
				t.Errorf("prune said %q, want the cut %s", out, cut)
			}
			var prunes []admin.AuditEventView
			for _, line := range strings.Split(strings.TrimSpace(runCLI(t, "audit", "list", "--action", "audit.prune", "--newest", "--max", "1", "-o", "json", "--credentials", m.AdminKeyFile)), "\n") {
				var e admin.AuditEventView
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatal(err)
				}
				prunes = append(prunes, e)
			}
			if len(prunes) != 1 || prunes[0].Data["before"] != cut {
				t.Fatalf("the audit.prune events: %+v, want one with before %s", prunes, cut)
			}
			var c struct {
				OK     bool             `json:"ok"`
				Prunes []map[string]any `json:"prunes"`
			}
			if v := runCLI(t, "audit", "verify", "--data-dir", dir, "-o", "json"); json.Unmarshal([]byte(v), &c) != nil || !c.OK || len(c.Prunes) == 0 {
				t.Fatalf("verify after the prune: %s", v)
			}
		})
	}
}

// TestMaintenanceMissingDatabase: a maintenance command given a data
// directory without a database (a typo) says so and creates nothing.
func TestMaintenanceMissingDatabase(t *testing.T) {
	parent := t.TempDir()
	typo := filepath.Join(parent, "keyward-dta")
	emptyDir := t.TempDir()
	oldKey, newKey := writeMasterKey(t, "11"), writeMasterKey(t, "c2")
	out := filepath.Join(t.TempDir(), "export.json")
	for _, dir := range []string{typo, emptyDir} {
		tests := []struct {
			name string
			args []string
		}{
			{"audit verify", []string{"audit", "verify"}},
			{"audit prune", []string{"audit", "prune", "--before", "90d"}},
			{"export", []string{"export", "--out", out}},
			{"master-key rotate", []string{"master-key", "rotate", "--new-master-key-file", newKey}},
			{"master-key rotate with its key", []string{"master-key", "rotate", "--master-key-file", oldKey, "--new-master-key-file", newKey}},
			{"recover-admin", []string{"recover-admin", "--key-file", filepath.Join(t.TempDir(), "admin.json")}},
		}
		for _, tt := range tests {
			t.Run(filepath.Base(dir)+"/"+tt.name, func(t *testing.T) {
				err := runCLIErr(t, append(tt.args, "--data-dir", dir)...)
				want := "no Keyward database at " + filepath.Join(dir, "keyward.db")
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want %q", err, want)
				}
				if dir == typo {
					if _, err := os.Stat(typo); !os.IsNotExist(err) {
						t.Fatalf("the mistyped data directory was created")
					}
				} else if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Fatalf("files were created in the empty data directory: %v", ents)
				}
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Fatalf("export wrote %s", out)
				}
			})
		}
	}
}

// jsonLines reads the JSON values of out, one a line, as -o json lists
// events (see parseJSONLines).
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	vs, err := parseJSONLines[T](out)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// parseJSONLines reads the JSON values of out, one a line. Output with
// no line at all is no value; a blank line among values is an error, as
// any other line that is not a JSON value: -o json writes none.
func parseJSONLines[T any](out string) ([]T, error) {
	if strings.TrimSpace(out) == "" {
		return nil, nil
	}
	var vs []T
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return nil, fmt.Errorf("line %q: %v", line, err)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// TestParseJSONLines: the reader of -o json output fails on a blank line
// among the values, which the callers that parsed line by line before
// jsonLines (audit list's seqs and --max, the introspection audit) were
// failed by, and takes output with no line as no value.
func TestParseJSONLines(t *testing.T) {
	for _, tt := range []struct {
		out     string
		want    []int
		wantErr bool
	}{
		{"", nil, false},
		{"\n", nil, false},
		{"1\n2\n", []int{1, 2}, false},
		{"1\n\n2\n", nil, true},
		{"1\n \n2\n", nil, true},
		{"1\nx\n", nil, true},
	} {
		got, err := parseJSONLines[int](tt.out)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseJSONLines(%q) = %v, %v; want %v, error %v", tt.out, got, err, tt.want, tt.wantErr)
		}
	}
}

// seqsOf is the seqs of the events audit list printed as out with -o json.
func seqsOf(t *testing.T, out string) []int64 {
	t.Helper()
	var seqs []int64
	for _, e := range jsonLines[struct{ Seq int64 }](t, out) {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

// writeMasterKey writes a master key of 32 bytes, each b in hex.
func writeMasterKey(t *testing.T, b string) string {
	p := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(p, []byte(strings.Repeat(b, 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startCLI runs a long-running command in-process until the test ends or
// stop is called; it returns its output so far and where its error goes.
func startCLI(t *testing.T, args ...string) (stdout, stderr *testkeyward.SyncBuffer, done <-chan error, stop func()) {
	t.Helper()
	stdout, stderr = new(testkeyward.SyncBuffer), new(testkeyward.SyncBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	errc := make(chan error, 1)
	go func() { errc <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(cancel)
	return stdout, stderr, errc, cancel
}

// TestAuditFollowEnds: a follower stops once no event to come can match:
// --until is past, the listing reached --before, or --since and --until
// have no stored time between them. The server answers
// such a poll at once, and the follower asked again without end (before,
// it waited and asked again without end).
func TestAuditFollowEnds(t *testing.T) {
	m := startServer(t)
	admin := []string{"--credentials", m.AdminKeyFile, "-o", "json"}
	for _, args := range [][]string{
		{"--until", "1h"},
		{"--until", "0001-01-01T00:00:00Z"},
		{"--since", "1h", "--until", "2m"},
		{"--since", "2999-01-01T00:00:00Z", "--until", "2999-01-01T00:00:00Z"},
		{"--since", "2999-01-01T00:00:00.0000001Z", "--until", "2999-01-01T00:00:00.0000009Z"},
		{"--before", "3"},
		{"--before", "3", "--limit", "1"},
		{"--after", "5", "--before", "3"},
		{"--after", "9223372036854775807"},
		{"--before", "3", "--action", "org.delete"},
		{"--before", "3", "--action", "account.create", "--limit", "1"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			args = append(append([]string{"audit", "list", "--follow"}, args...), admin...)
			if err := runCLIErrWithin(t, 30*time.Second, args...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAuditListUnknownAction: audit list --action with an action no event
// has (a typo) fails with the server's message, which names it and lists
// the actions there are; it listed nothing, and --follow waited for an
// event that could never come.
func TestAuditListUnknownAction(t *testing.T) {
	m := startServer(t)
	for _, args := range [][]string{{}, {"--newest"}, {"--follow"}} {
		t.Run(strings.Join(append([]string{"--action", "token.isued"}, args...), " "), func(t *testing.T) {
			args = append(append([]string{"audit", "list", "--action", "token.isued"}, args...), "--credentials", m.AdminKeyFile)
			err := runCLIErrWithin(t, 30*time.Second, args...)
			if err == nil || !strings.Contains(err.Error(), `action "token.isued" is no audit action; the actions are account.bulk_create,`) ||
				!strings.Contains(err.Error(), " token.issued,") {
				t.Fatalf("got %v, want the server's message naming token.isued and listing the actions", err)
			}
		})
	}
}

// TestFollowOver: a follower stops once the listing reached --before or
// the largest sequence number, or a minute after --until: an event before
// --until may be written that much later (it has the time its request
// began, or another replica's clock is behind), and the follower that
// stopped at --until left it out. It stops at once with --since and
// --until that no stored time (a whole microsecond) lies between, which
// the server answers at once.
func TestFollowOver(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { return new(now.Add(d)) }
	tests := []struct {
		name          string
		after, before string
		since, until  *time.Time
		want          bool
	}{
		{"no bound", "5", "", nil, nil, false},
		{"until to come", "5", "", nil, at(time.Hour), false},
		{"until now", "5", "", nil, at(0), false},
		{"until 30s ago", "5", "", nil, at(-30 * time.Second), false},
		{"until a minute ago", "5", "", nil, at(-time.Minute), true},
		{"until an hour ago", "5", "", nil, at(-time.Hour), true},
		{"before reached", "2", "3", nil, nil, true},
		{"before to come", "1", "3", nil, nil, false},
		{"largest sequence number", "9223372036854775807", "", nil, nil, true},
		{"since before until to come", "5", "", at(time.Hour), at(time.Hour + time.Microsecond), false},
		{"since to come", "5", "", at(time.Hour), nil, false},
		{"since at until to come", "5", "", at(time.Hour), at(time.Hour), true},
		{"since and until to come inside a microsecond", "5", "", at(time.Hour + time.Nanosecond), at(time.Hour + time.Microsecond), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := followOver(tt.after, tt.before, tt.since, tt.until, now); got != tt.want {
				t.Fatalf("followOver(%q, %q, %v, %v, %v) = %v, want %v", tt.after, tt.before, tt.since, tt.until, now, got, tt.want)
			}
		})
	}
}

// TestAuditFollowEndsByServerClock: a follower tells whether --until is
// past by the server's clock (its answers' now, or from a server that
// does not say it, their Date), as the server does when it answers a poll
// at once: by this machine's clock, behind the server's, --until was still
// to come, and the follower asked again, answered at once each time,
// without a wait and without end; and the Date, to the second, is taken
// for the latest time the server's clock may be. An answer with neither
// is refused with a message, not taken by this machine's clock. The proxy
// answers the long polls as a server an hour ahead does, and refuses them
// after 20.
func TestAuditFollowEndsByServerClock(t *testing.T) {
	m := startServer(t)
	var polls atomic.Int64
	date := time.Now().Add(time.Hour).UTC().Truncate(time.Second) // the server's clock
	now := date.Add(900 * time.Millisecond)
	var sayNow, sayDate atomic.Bool
	proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		q := r.URL.Query()
		if r.URL.Path != "/v1/audit" || q.Get("wait") == "" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		if polls.Add(1) > 20 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_request","error_description":"asked again without end"}`)
			return true
		}
		w.Header()["Date"] = nil // the server adds none
		if sayDate.Load() {
			w.Header().Set("Date", date.Format(http.TimeFormat))
		}
		said := ""
		if sayNow.Load() {
			said = fmt.Sprintf(`,"now":%q`, now.Format(time.RFC3339Nano))
		}
		fmt.Fprintf(w, `{"events":[],"next_page_token":%q%s}`, q.Get("after"), said)
		return true
	})
	for _, tt := range []struct {
		now, date bool
		until     string
		err       string
	}{
		{false, true, time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339), ""},
		// Past by AuditLateness within the second the Date rounds off.
		{false, true, date.Add(-admin.AuditLateness + 500*time.Millisecond).UTC().Format(time.RFC3339Nano), ""},
		{true, false, time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339), ""},
		{true, false, now.Add(-admin.AuditLateness).UTC().Format(time.RFC3339Nano), ""},
		{true, true, now.Add(-admin.AuditLateness).UTC().Format(time.RFC3339Nano), ""},
		{false, false, time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339), "cannot tell when --until is past for the server"},
	} {
		t.Run(fmt.Sprintf("now=%v date=%v %s", tt.now, tt.date, tt.until), func(t *testing.T) {
			polls.Store(0)
			sayNow.Store(tt.now)
			sayDate.Store(tt.date)
			err := runCLIErrWithin(t, 30*time.Second, "audit", "list", "--follow", "--until", tt.until, "-o", "json",
				"--server", proxy.URL, "--credentials", m.AdminKeyFile)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v after %d polls, want an error with %q", err, polls.Load(), tt.err)
				}
				// --until is a time already: the hint is not to give one.
				if strings.Contains(err.Error(), "instead of a duration ago") {
					t.Fatalf("the error %q asks for an RFC 3339 time, which --until %s is", err, tt.until)
				}
				return
			}
			if err != nil {
				t.Fatalf("audit list --follow --until %s, past for the server: %v after %d polls", tt.until, err, polls.Load())
			}
			if n := polls.Load(); n != 1 {
				t.Fatalf("--until %s: %d polls, want 1: the server's answer says --until is past", tt.until, n)
			}
		})
	}
}

// TestAuditListBoundsOnce: audit list sends a duration ago as given for
// the first page, which the server reads by its clock, and every later
// page exactly the time the server read, which its answer says (since,
// until): sent as given, the server read it again for each page, and the
// bound moved on between pages (on a busy log, --since left out the
// events in between); pinned by the answer's Date, to the second, the
// bound was up to a second off the first page's. A server that does not
// say (from before 2026-12-07) has its Date taken (a second wider, an
// hour more for days), not this machine's clock, an hour behind the
// server's here; without a Date either, a later page is refused with a
// message. A time, and one RFC 3339 cannot write, is sent as given.
func TestAuditListBoundsOnce(t *testing.T) {
	m := startServer(t)
	setupAccount(t, m, "listed")
	date := time.Now().Add(time.Hour).UTC().Truncate(time.Second) // the server's clock, by its Date
	target, _ := url.Parse(m.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var sent []url.Values
	var read []map[string]any   // the bounds each answer said
	var old, noDate atomic.Bool // answer as a server from before 2026-12-07; without a Date
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Header.Set("Date", date.Format(http.TimeFormat))
		if noDate.Load() {
			resp.Header.Del("Date")
		}
		var page map[string]any
		b, err := io.ReadAll(resp.Body)
		if err != nil || json.Unmarshal(b, &page) != nil {
			return fmt.Errorf("the answer: %v %s", err, b)
		}
		mu.Lock()
		read = append(read, map[string]any{"since": page["since"], "until": page["until"]})
		mu.Unlock()
		if old.Load() {
			delete(page, "now")
			delete(page, "since")
			delete(page, "until")
		}
		b, _ = json.Marshal(page)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/audit" {
			return false
		}
		mu.Lock()
		sent = append(sent, r.URL.Query())
		mu.Unlock()
		if noDate.Load() {
			w.Header()["Date"] = nil // the server adds none
		}
		rp.ServeHTTP(w, r)
		return true
	})
	at := func(d time.Duration) string { return date.Add(d).Format(time.RFC3339Nano) }
	const asRead = "as read" // the bound the first answer said
	for _, tt := range []struct {
		old, noDate  bool
		since, until string
		later        map[string]string // sent on the pages after the first
		err          string
	}{
		{false, false, "1h", "0s", map[string]string{"since": asRead, "until": asRead}, ""},
		{false, false, "2d", "2999-01-01T00:00:00+01:00", map[string]string{"since": asRead, "until": "2999-01-01T00:00:00+01:00"}, ""},
		{false, false, "3652425d", "", map[string]string{"since": "3652425d", "until": ""}, ""},
		{false, true, "1h", "0s", map[string]string{"since": asRead, "until": asRead}, ""},
		{true, false, "1h", "0s", map[string]string{"since": at(-time.Hour), "until": at(time.Second)}, ""},
		{true, false, "2d", "2999-01-01T00:00:00+01:00", map[string]string{"since": at(-49 * time.Hour), "until": "2999-01-01T00:00:00+01:00"}, ""},
		{true, false, "3652425d", "", map[string]string{"since": "3652425d", "until": ""}, ""},
		{true, true, "1h", "", nil, "cannot tell which time --since 1h was for the server"},
		// Both durations unpinned: the error is --since's, every time
		// (not whichever a map's order of the two gave last).
		{true, true, "1h", "0s", nil, "cannot tell which time --since 1h was for the server"},
	} {
		t.Run(fmt.Sprintf("old=%v noDate=%v %s %s", tt.old, tt.noDate, tt.since, tt.until), func(t *testing.T) {
			old.Store(tt.old)
			noDate.Store(tt.noDate)
			args := []string{"audit", "list", "--limit", "2", "-o", "json", "--server", proxy.URL, "--credentials", m.AdminKeyFile, "--since", tt.since}
			if tt.until != "" {
				args = append(args, "--until", tt.until)
			}
			err := runCLIErr(t, args...)
			mu.Lock()
			pages, bounds := sent, read
			sent, read = nil, nil
			mu.Unlock()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || len(pages) != 1 {
					t.Fatalf("got %v after %d pages, want an error with %q after the first", err, len(pages), tt.err)
				}
				// The error is --since's, and no --follow is given: no
				// hint of --until or --follow.
				if strings.Contains(err.Error(), "--until") || strings.Contains(err.Error(), "follow") {
					t.Fatalf("the error %q gives a hint of --until or --follow, given neither", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(pages) < 2 {
				t.Fatalf("%d pages asked for, want several", len(pages))
			}
			for i, q := range pages {
				for name, given := range map[string]string{"since": tt.since, "until": tt.until} {
					want := given
					if i > 0 {
						want = tt.later[name]
					}
					if want == asRead {
						want, _ = bounds[0][name].(string)
					}
					if q.Get(name) != want {
						t.Fatalf("page %d: %s=%q sent, want %q (given %q, the server's Date %s)", i+1, name, q.Get(name), want, given, date.Format(time.RFC3339))
					}
				}
			}
		})
	}
}

// TestAuditFollow: a follower asks for less than the server's write
// timeout, and rides out a broken connection; a server with a follower
// shuts down at once.
func TestAuditFollow(t *testing.T) {
	if followWait > writeTimeout-5*time.Second {
		t.Fatalf("a follower waits %s for a server that must answer within %s", followWait, writeTimeout)
	}
	m, stopServer := launchServer(t)
	t.Cleanup(stopServer)
	setupAccount(t, m, "followed")

	// A proxy that breaks the first long polls, as a restart or a network
	// fault would: it drops the connection, then answers 502.
	var polls atomic.Int32
	proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v1/audit" && r.URL.Query().Get("wait") != "" {
			switch polls.Add(1) {
			case 1:
				panic(http.ErrAbortHandler)
			case 2:
				http.Error(w, "the upstream is restarting", http.StatusBadGateway)
				return true
			}
		}
		return false
	})
	admin := []string{"--credentials", m.AdminKeyFile}
	out, errOut, done, stopCLI := startCLI(t, append([]string{"audit", "list", "--follow", "--action", "account.create", "-o", "json", "--server", proxy.URL}, admin...)...)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			select {
			case err := <-done:
				t.Fatalf("the follower ended (%v) before %s; stderr: %s", err, what, errOut)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 10s; stdout: %s; stderr: %s", what, out, errOut)
			}
		}
	}
	waitFor("broken polls", func() bool { return polls.Load() > 2 })
	var acct struct {
		ClientID string `json:"client_id"`
	}
	json.Unmarshal([]byte(runCLI(t, append([]string{"sa", "create", "late", "--project", "billing", "-o", "json"}, admin...)...)), &acct)
	waitFor("event after the reconnect", func() bool { return strings.Contains(out.String(), acct.ClientID) })
	if e := errOut.String(); !strings.Contains(e, "reconnecting") || !strings.Contains(e, "reconnected") {
		t.Errorf("the follower did not say it lost and regained the server: %q", e)
	}

	// SIGTERM with a follower waiting: the server stops at once, cleanly.
	time.Sleep(300 * time.Millisecond) // let the next poll start waiting
	start := time.Now()
	stopped := make(chan struct{})
	go func() { stopServer(); close(stopped) }()
	select {
	case <-stopped: // stopServer reports an error from Run
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown waited for the follower's long poll")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown with a follower took %s", took)
	}
	stopCLI()
	if err := <-done; err != nil {
		t.Errorf("the interrupted follower: %v", err)
	}
}

// TestAuditPruneExportAltered: prune --export refuses to export, and so to
// prune, an event altered in the database: the export would have been its
// only copy, and the log after the prune would verify.
func TestAuditPruneExportAltered(t *testing.T) {
	m := startServer(t)
	dir := m.Config.DataDir
	setupAccount(t, m, "pruned")
	tamper(t, dir,
		"DROP TRIGGER audit_events_no_update",
		`UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2`,
	)
	export := filepath.Join(t.TempDir(), "old.jsonl")
	err := runCLIErr(t, "audit", "prune", "--data-dir", dir, "--before", "0s", "--export", export, "--yes")
	if err == nil || !strings.Contains(err.Error(), "audit event 2 was altered") || !strings.Contains(err.Error(), "nothing was pruned") {
		t.Fatalf("prune --export of an altered log: %v", err)
	}
	if _, err := os.Stat(export); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the export of an altered log was left: %v", err)
	}
	err = runCLIErr(t, "audit", "verify", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "audit event 2 was altered") {
		t.Errorf("verify after the refused prune: %v", err)
	}
}

// TestAuditVerifyHead: verify --head requires the chain to pass through a
// head recorded before, as the event or as the audit.prune event naming
// it: a cut tail or a rewritten chain, which verify alone takes, fails.
func TestAuditVerifyHead(t *testing.T) {
	m := startServer(t)
	dir := m.Config.DataDir
	admin := []string{"--credentials", m.AdminKeyFile}
	setupAccount(t, m, "headed")
	head := func() string {
		var c struct {
			Seq  int64  `json:"head_seq"`
			Hash string `json:"head_hash"`
		}
		if err := json.Unmarshal([]byte(runCLI(t, "audit", "verify", "--data-dir", dir, "-o", "json")), &c); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d:%s", c.Seq, c.Hash)
	}
	verify := func(head string) error { return runCLIErr(t, "audit", "verify", "--data-dir", dir, "--head", head) }
	recorded := head()
	runCLI(t, append([]string{"sa", "create", "later", "--project", "billing"}, admin...)...)
	if err := verify(recorded); err != nil {
		t.Fatalf("the recorded head, with events after it: %v", err)
	}
	seq, hash, _ := strings.Cut(recorded, ":")
	for _, bad := range []string{"", "x", seq, seq + ":zz", "0:" + hash, seq + ":" + hash[:62]} {
		var u usageError
		if err := verify(bad); !errors.As(err, &u) {
			t.Errorf("--head %q: %v, want a usage error", bad, err)
		}
	}
	other := seq + ":" + strings.Repeat("0", 64)
	if err := verify(other); err == nil || !strings.Contains(err.Error(), "not the recorded") {
		t.Errorf("--head with another hash: %v", err)
	}

	// Pruned through the recorded head, the prune event names it.
	recorded = head()
	seq, _, _ = strings.Cut(recorded, ":")
	runCLI(t, append([]string{"sa", "create", "after-head", "--project", "billing"}, admin...)...)
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "keyward.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	through, _ := strconv.ParseInt(seq, 10, 64)
	_, err = st.PruneAudit(context.Background(), time.Now(), storage.PruneLimits{ThroughSeq: through},
		storage.AuditEvent{Time: time.Now(), Outcome: storage.OutcomeSuccess, Actor: "test"})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		FirstSeq int64 `json:"first_seq"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, "audit", "verify", "--data-dir", dir, "-o", "json")), &c); err != nil || c.FirstSeq-1 != through {
		t.Fatalf("pruned through %d, want %s: %v", c.FirstSeq-1, seq, err)
	}
	if err := verify(recorded); err != nil {
		t.Errorf("the recorded head, pruned: %v", err)
	}
	if err := verify(seq + ":" + strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "records event") {
		t.Errorf("a pruned head with another hash: %v", err)
	}
	// A routine prune that ended after the head: not a sign of tampering.
	if err := verify("1:" + strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "no audit.prune event names it") ||
		!strings.HasPrefix(err.Error(), "could not finish checking the audit log") {
		t.Errorf("a pruned head no prune names: %v", err)
	}
	if out := runCLI(t, "audit", "verify", "--data-dir", dir, "--head", recorded); !strings.Contains(out, "passes through the recorded head "+seq) {
		t.Errorf("verify --head said %q", out)
	}

	// The newest events deleted: verify alone takes the log, not the head.
	kept := head()
	runCLI(t, append([]string{"sa", "create", "cut", "--project", "billing"}, admin...)...)
	recorded = head()
	seq, _, _ = strings.Cut(kept, ":")
	tamper(t, dir, "DROP TRIGGER audit_events_no_delete", "DELETE FROM audit_events WHERE seq > "+seq)
	runCLI(t, "audit", "verify", "--data-dir", dir)
	if err := verify(recorded); err == nil || !strings.Contains(err.Error(), "newest events were deleted") {
		t.Errorf("a cut tail: %v", err)
	}
}

// memLog is an audit log in memory whose store answers answers listings,
// then fails as a database that went away does; answers < 0 never fails.
type memLog struct {
	evs     []storage.AuditEvent
	answers int
}

func (l *memLog) ListAuditEvents(_ context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	if l.answers == 0 {
		return nil, errors.New("list audit events: dial tcp 10.0.0.5:5432: connect: connection refused")
	}
	l.answers--
	var out []storage.AuditEvent
	for _, e := range l.evs {
		if e.Seq > f.AfterSeq && len(out) < f.Limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// TestAuditVerifyUnchecked: when the database does not answer, audit
// verify says it could not finish the check, not that the log is NOT
// intact, a sign of tampering an operator must be able to tell from an
// outage; an altered log or head is still NOT intact.
func TestAuditVerifyUnchecked(t *testing.T) {
	log := func() []storage.AuditEvent {
		evs := make([]storage.AuditEvent, 5)
		for i := range evs {
			evs[i] = storage.AuditEvent{Time: time.Unix(int64(i), 0), Action: "token.issued", Outcome: storage.OutcomeSuccess}
		}
		storage.ChainEvents(0, nil, evs)
		return evs
	}
	good := log()
	altered := log()
	altered[2].Hash = make([]byte, 32)
	tests := []struct {
		name     string
		log      *memLog
		headSeq  int64
		headHash []byte
		want     string
	}{
		{"the database down", &memLog{evs: good}, 0, nil, "could not finish checking the audit log, which is no finding that it was altered (0 events checked fit): reading the audit log: list audit events: dial tcp"},
		// VerifyLog reads a page and finds the next empty: two listings.
		{"the database down before the head was read", &memLog{evs: good, answers: 2}, 3, good[2].Hash, "could not finish checking the audit log, which is no finding that it was altered (5 events checked fit): reading the recorded head, event 3: list audit events: dial tcp"},
		{"an event altered", &memLog{evs: altered, answers: -1}, 0, nil, "the audit log is NOT intact after 2 good events: audit event 3 was altered"},
		{"another head", &memLog{evs: good, answers: -1}, 3, good[1].Hash, "the audit log is NOT intact after 5 good events: event 3 has hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := verifyAudit(context.Background(), tt.log, tt.headSeq, tt.headHash)
			if err == nil {
				t.Fatal("verified")
			}
			if got := verifyFailure(c, err).Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("audit verify failed with\n%s\nwant\n%s…", got, tt.want)
			}
		})
	}
}

// prunedLog is an audit log that an audit prune run at the same time
// prunes through event through once its first listings have answered.
type prunedLog struct {
	evs      []storage.AuditEvent
	listings int
	through  int64
}

func (l *prunedLog) ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	if l.listings--; l.listings == -1 {
		last := l.evs[len(l.evs)-1]
		ev := []storage.AuditEvent{storage.CompletePrune(storage.AuditEvent{Time: time.Now(), Outcome: storage.OutcomeSuccess, Actor: "op"},
			l.through, l.evs[l.through-1].Hash, l.through)}
		storage.ChainEvents(last.Seq, last.Hash, ev)
		l.evs = append(l.evs[l.through:], ev...)
	}
	return (&memLog{evs: l.evs, answers: -1}).ListAuditEvents(ctx, f)
}

// TestAuditVerifyHeadPrunedMeanwhile: a prune that deletes the recorded
// head's event after verify checked the log and before it read the head
// does not make verify --head report a rewritten chain: the log is
// checked again, and the head against the audit.prune event. A head
// pruned by a prune that ended after it cannot be checked, which is no
// sign of tampering either.
func TestAuditVerifyHeadPrunedMeanwhile(t *testing.T) {
	evs := make([]storage.AuditEvent, 5)
	for i := range evs {
		evs[i] = storage.AuditEvent{Time: time.Unix(int64(i), 0), Action: "token.issued", Outcome: storage.OutcomeSuccess}
	}
	storage.ChainEvents(0, nil, evs)
	tests := []struct {
		name      string
		through   int64
		unchecked bool
		want      string
	}{
		{"pruned through the head", 3, false, ""},
		{"pruned past the head", 4, true, "the recorded head, event 3, was pruned (the log starts at event 5) and no audit.prune event names it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// VerifyLog reads a page and finds the next empty: two listings.
			log := &prunedLog{evs: slices.Clone(evs), listings: 2, through: tt.through}
			c, err := verifyAudit(context.Background(), log, 3, evs[2].Hash)
			if tt.want == "" {
				if err != nil || c.FirstSeq != tt.through+1 {
					t.Fatalf("verify --head: %+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("verify --head: %v, want an error with %q", err, tt.want)
			}
			if got := errors.Is(err, storage.ErrUnchecked); got != tt.unchecked {
				t.Errorf("verify --head: %v, unchecked %v, want %v", err, got, tt.unchecked)
			}
		})
	}
}

// tamper runs queries on the SQLite store in dir, as an attacker with
// access to the database would.
func tamper(t *testing.T, dir string, queries ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "keyward.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A prune never deletes the event that was newest as it began, and
// nothing at all from a log of one event: a bound of 0 is none, and an
// event appended during the prune would have let that one go.
func TestPruneBound(t *testing.T) {
	newest := func(seq int64) []storage.AuditEvent { return []storage.AuditEvent{{Seq: seq}} }
	for _, tt := range []struct {
		name string
		head []storage.AuditEvent
		want int64
		ok   bool
	}{
		{"empty log", nil, 0, false},
		{"one event", newest(1), 0, false},
		{"two events", newest(2), 1, true},
		{"ten events", newest(10), 9, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pruneBound(tt.head)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("pruneBound = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// A user or host name that is not UTF-8 is recorded with U+FFFD in its
// place, as the audit chain hashes it: its bytes would be hashed as an
// escape any other bad byte shares. The event's Prepare, which every
// store's append runs, replaces them.
func TestOperatorNameUTF8(t *testing.T) {
	ev := storage.AuditEvent{Actor: operatorName("ops\xff", "host\xc3", "keyward audit prune")}
	ev.Prepare()
	got := ev.Actor
	if want := "local operator ops\uFFFD@host\uFFFD (keyward audit prune)"; got != want {
		t.Fatalf("operatorName = %q, want %q", got, want)
	}
}

// TestAuditPruneExportCutMicroseconds: a --before with a fraction of a
// microsecond (a duration ago always has one) exports and prunes the same
// events, every one before the cut: the one at the cut's microsecond too,
// a fraction of a microsecond before it. The export once wrote that event
// and the prune kept it, which the next export wrote again; then the cut
// was truncated to its microsecond, and both kept it.
func TestAuditPruneExportCutMicroseconds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "keyward.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]storage.AuditEvent, 4)
	for i := range evs {
		evs[i] = storage.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Action: "token.issued", Outcome: storage.OutcomeSuccess}
	}
	if _, err := st.Commit(ctx, []storage.Write{{Events: evs}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	export := filepath.Join(t.TempDir(), "old.jsonl")
	cut := t0.Add(time.Second + 500*time.Nanosecond).Format(time.RFC3339Nano)
	out := runCLI(t, "audit", "prune", "--data-dir", dir, "--before", cut, "--export", export)
	lines := mustReadFile(t, export)
	if n := strings.Count(string(lines), "\n"); n != 2 || !strings.Contains(out, "exported 2 events ") || !strings.Contains(out, "pruned 2 audit events ") {
		t.Fatalf("prune --before %s: exported %d events, said %q; want the two events before it, at %s and %s, exported and pruned", cut, n, out, t0, t0.Add(time.Second))
	}
}

// TestAuditPruneExportNothing: prune --export with nothing to prune (a
// new log, or no event older than --before) writes no file, and says what
// the prune without --export says, and that the file was not written.
func TestAuditPruneExportNothing(t *testing.T) {
	fresh := t.TempDir()
	runCLI(t, "migrate", "--data-dir", fresh)
	m := startServer(t)
	setupAccount(t, m, "kept")
	const before = "2020-01-01T00:00:00Z" // not a duration: the same cut-off in both runs
	for name, args := range map[string][]string{
		"new log":     {"audit", "prune", "--data-dir", fresh, "--before", before},
		"none before": {"audit", "prune", "--data-dir", m.Config.DataDir, "--before", before},
	} {
		t.Run(name, func(t *testing.T) {
			want := runCLI(t, args...)
			if !strings.Contains(want, "no audit event older than") {
				t.Fatalf("%v said %q", args, want)
			}
			export := filepath.Join(t.TempDir(), "old.jsonl")
			got := runCLI(t, append(args, "--export", export)...)
			if !strings.HasPrefix(got, want) || !strings.Contains(got, export+" not written") {
				t.Errorf("with --export %v said %q, want %q and that the file was not written", args, got, want)
			}
			if _, err := os.Lstat(export); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("with nothing to export, --export made the file: %v", err)
			}
		})
	}
}
