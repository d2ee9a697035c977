package main

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testkeyward"
)

// TestListJSONEmpty: the list commands that gather every page of an
// answer print an empty list as [] with -o json, as the others do, and
// only the list: sa list printed null for no account, and a
// "next_page_token" that was always empty, as every page had been read;
// users list printed null for no user.
func TestListJSONEmpty(t *testing.T) {
	m := startServer(t)
	flags := []string{"--credentials", m.AdminKeyFile, "-o", "json"}
	runCLI(t, append([]string{"org", "create", "example.com"}, flags...)...)
	tests := []struct {
		args []string
		want map[string]any
	}{
		{[]string{"sa", "list", "--project", "none"}, map[string]any{"service_accounts": []any{}}},
		{[]string{"users", "list", "--org", "example.com"}, map[string]any{"users": []any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			out := runCLI(t, append(tt.args, flags...)...)
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("printed %s, want %v", out, tt.want)
			}
		})
	}
	// Not empty: every account, and no next_page_token.
	var all map[string]any
	if err := json.Unmarshal([]byte(runCLI(t, append([]string{"sa", "list"}, flags...)...)), &all); err != nil {
		t.Fatal(err)
	}
	if accts, _ := all["service_accounts"].([]any); len(accts) != 1 || len(all) != 1 {
		t.Errorf("sa list -o json printed %v, want the administrator account alone, under service_accounts alone", all)
	}
}

// auditListHeader is the header of audit list's table.
const auditListHeader = "SEQ  TIME                 ACTION            OUTCOME  ACCOUNT                ACTOR                  SOURCE           DETAILS"

// TestListTableEmpty: a list command with nothing to list prints, in
// table mode, its header alone, an empty table: audit list printed
// nothing at all, which reads as a command that did not run.
func TestListTableEmpty(t *testing.T) {
	m := startServer(t)
	flags := []string{"--credentials", m.AdminKeyFile}
	tests := []struct {
		args []string
		want string // the header
	}{
		{[]string{"sa", "list", "--project", "none"}, "EMAIL  CLIENT ID  DISABLED  SCOPES"},
		{[]string{"org", "list"}, "DOMAIN  BLOCKED SCOPES"},
		{[]string{"audit", "list", "--action", "org.delete"}, auditListHeader},
		{[]string{"audit", "list", "--newest", "--action", "org.delete"}, auditListHeader},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if out := runCLI(t, append(tt.args, flags...)...); out != tt.want+"\n" {
				t.Errorf("printed %q, want the header alone, %q", out, tt.want+"\n")
			}
		})
	}

	// --follow: the header at once, before the first long poll (which
	// would keep an empty table blank for followWait's 20s), and once,
	// however many empty pages its long polls bring back. The polls wait
	// 10ms here; the follower is stopped once the server has answered two
	// of them (the third is asked for), which a proxy in front of it
	// counts, noting what the follower had printed when the first came.
	t.Run("audit list --follow --action org.delete", func(t *testing.T) {
		defer func(d time.Duration) { followWait = d }(followWait)
		followWait = 10 * time.Millisecond
		var (
			polls     atomic.Int32
			out       *testkeyward.SyncBuffer // set once started is closed
			started   = make(chan struct{})
			firstPoll = make(chan string, 1) // what it had printed then
			third     = make(chan struct{})
		)
		proxy := frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/v1/audit" && r.URL.Query().Get("wait") != "" {
				switch polls.Add(1) {
				case 1:
					<-started // out is set: startCLI has returned
					firstPoll <- out.String()
				case 3:
					close(third)
				}
			}
			return false
		})
		out, errOut, done, stop := startCLI(t, append([]string{"audit", "list", "--follow", "--action", "org.delete", "--server", proxy.URL}, flags...)...)
		close(started)
		select {
		case <-third:
		case err := <-done:
			t.Fatalf("the follower ended (%v) before its third poll; stdout %q, stderr %q", err, out, errOut)
		case <-time.After(time.Minute): // a hang, not a measure
			t.Fatalf("no third poll after a minute; stdout %q, stderr %q", out, errOut)
		}
		stop()
		if err := <-done; err != nil {
			t.Errorf("the stopped follower: %v", err)
		}
		if got := out.String(); got != auditListHeader+"\n" {
			t.Errorf("printed %q, want the header alone, once, %q", got, auditListHeader+"\n")
		}
		if got := <-firstPoll; got != auditListHeader+"\n" {
			t.Errorf("printed %q before the first long poll, want the header, %q", got, auditListHeader+"\n")
		}
	})
}
