package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// usersProxy stands in front of a server, noting the path of every POST;
// on POST /v1/users it first calls intercept, if set, which answers the
// request itself when it returns true.
type usersProxy struct {
	*httptest.Server
	mu        sync.Mutex
	posts     []string
	intercept func(http.ResponseWriter, *http.Request) bool
}

func newUsersProxy(t *testing.T, m *Main) *usersProxy {
	p := &usersProxy{}
	p.Server = frontOf(t, m, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || r.URL.Path == "/token" {
			return false
		}
		p.mu.Lock()
		p.posts = append(p.posts, r.URL.Path)
		intercept := p.intercept
		p.mu.Unlock()
		return r.URL.Path == "/v1/users" && intercept != nil && intercept(w, r)
	})
	return p
}

// reset forgets the requests noted and sets intercept.
func (p *usersProxy) reset(intercept func(http.ResponseWriter, *http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.posts, p.intercept = nil, intercept
}

func (p *usersProxy) sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.posts)
}

// answer is an intercept that answers status as an older server without
// POST /v1/users does.
func answer(status int) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"invalid_request","error_description":"The endpoint %s takes GET, not %s."}`, r.URL.Path, r.Method)
			return true
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":"not_found","error_description":"There is no admin endpoint %s %s."}`, r.Method, r.URL.Path)
		return true
	}
}

// proxyAnswer is an intercept that answers status as a proxy in front of
// the server might, one that passes only the routes it knows: not with
// the admin API's JSON error.
func proxyAnswer(status int) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", status, http.StatusText(status))
		return true
	}
}

// users add sends users of several organizations in one request, one
// transaction: an organization deleted after the CLI checked it adds no
// user at all, not those of the other organizations. Against a server
// without POST /v1/users (404 or 405) it sends each organization's users
// on their own, as before. users add and users import send users of any
// organizations to POST /v1/users in batches of at most 5,000, each well
// under the 1 MiB the admin API reads, however many the command line
// names.
func TestUsersPutInOneTransaction(t *testing.T) {
	m := startServer(t)
	admin := []string{"--credentials", m.AdminKeyFile}
	cli := func(args ...string) string { return runCLI(t, append(args, admin...)...) }
	p := newUsersProxy(t, m)
	viaProxy := append([]string{"--server", p.URL}, admin...)
	// listed lists the users of example.com and other.org, if it exists.
	listed := func(t *testing.T) []string {
		var all []string
		for _, org := range []string{"example.com", "other.org"} {
			if runCLIErr(t, append([]string{"org", "get", org}, admin...)...) != nil {
				continue
			}
			for _, line := range strings.Split(runCLI(t, append([]string{"users", "list", "--org", org}, admin...)...), "\n")[1:] {
				if f := strings.Fields(line); len(f) > 0 {
					all = append(all, f[0])
				}
			}
		}
		return all
	}
	// deleteOther deletes other.org, and so its users, before the users
	// of POST /v1/users are put: after the CLI has checked it exists.
	deleteOther := func(http.ResponseWriter, *http.Request) bool {
		if err := runCLIErr(t, append([]string{"org", "delete", "other.org"}, admin...)...); err != nil {
			t.Errorf("deleting other.org: %v", err)
		}
		return false
	}
	many := filepath.Join(t.TempDir(), "many.csv")
	var csv strings.Builder
	for i := range 6000 {
		fmt.Fprintf(&csv, "u%04d@%s\n", i, []string{"example.com", "other.org"}[i%2])
	}
	mustWriteFile(t, many, []byte(csv.String()))
	// A command line of users whose request would be over the 1 MiB the
	// admin API reads (a 413), were it sent at once: about 4,700 of them
	// fit in the 512 KiB a request is kept under.
	long := []string{"add"}
	for i := range 12000 {
		long = append(long, fmt.Sprintf("u%05d-%s@%s", i, strings.Repeat("x", 54), []string{"example.com", "other.org"}[i%2]))
	}
	// A command line of users whose emails are nearly six times as long in
	// the JSON of a request as they are ('&' is sent as \u0026): counted
	// by their bytes, a batch of them was over 1 MiB, a 413.
	amp := []string{"add"}
	for i := range 2000 {
		amp = append(amp, fmt.Sprintf("%s%04d@example.com", strings.Repeat("&", 230), i))
	}
	// onSecond is an intercept that lets every POST /v1/users through but
	// the second, which f intercepts.
	onSecond := func(f func(http.ResponseWriter, *http.Request) bool) func(http.ResponseWriter, *http.Request) bool {
		var posted atomic.Int32
		return func(w http.ResponseWriter, r *http.Request) bool {
			return posted.Add(1) == 2 && f(w, r)
		}
	}
	// The users of long's first request, of which example.com's are
	// left when other.org is deleted before the second request.
	first := batchLen(usersOf(long[1:]), importBatch)
	tests := []struct {
		name      string
		args      []string
		intercept func(http.ResponseWriter, *http.Request) bool
		posts     []string
		wantOut   string // in the output
		wantErr   []string
		users     int // listed after
	}{
		{name: "two organizations, one request", args: []string{"add", "alice@example.com", "carol@other.org", "bob@example.com"},
			posts: []string{"/v1/users"}, wantOut: "3 users added or updated, in one transaction", users: 3},
		{name: "one user", args: []string{"add", "alice@example.com"},
			posts: []string{"/v1/users"}, wantOut: "1 user added or updated, in one transaction", users: 1},
		{name: "one user to an older server", args: []string{"add", "alice@example.com"}, intercept: answer(404),
			posts: []string{"/v1/users", "/v1/orgs/example.com/users"}, wantOut: "1 user added or updated (the server is older", users: 1},
		{name: "an organization deleted meanwhile", args: []string{"add", "alice@example.com", "carol@other.org"}, intercept: deleteOther,
			posts: []string{"/v1/users"}, wantErr: []string{"nothing was added", "user 2: there is no organization other.org"}},
		{name: "an older server: 404", args: []string{"add", "alice@example.com", "carol@other.org", "bob@example.com"}, intercept: answer(404),
			posts: []string{"/v1/users", "/v1/orgs/example.com/users", "/v1/orgs/other.org/users"}, wantOut: "3 users added or updated (the server is older", users: 3},
		{name: "an older server: 405", args: []string{"add", "alice@example.com", "carol@other.org"}, intercept: answer(405),
			posts: []string{"/v1/users", "/v1/orgs/example.com/users", "/v1/orgs/other.org/users"}, wantOut: "2 users added or updated (the server is older", users: 2},
		{name: "one user unanswered", args: []string{"add", "alice@example.com"}, intercept: proxyAnswer(http.StatusBadGateway),
			posts: []string{"/v1/users"}, wantErr: []string{"no user is known to be added: a request failed, and whether it added its user is not known", "Bad Gateway"}},
		{name: "two users unanswered", args: []string{"add", "alice@example.com", "carol@other.org"}, intercept: proxyAnswer(http.StatusBadGateway),
			posts: []string{"/v1/users"}, wantErr: []string{"no user is known to be added: a request failed, and whether it added its users is not known", "Bad Gateway"}},
		{name: "a proxy's 404", args: []string{"add", "alice@example.com", "carol@other.org"}, intercept: proxyAnswer(404),
			posts: []string{"/v1/users"}, wantErr: []string{"nothing was added", "Not Found"}},
		{name: "a proxy's 405", args: []string{"add", "alice@example.com", "carol@other.org"}, intercept: proxyAnswer(405),
			posts: []string{"/v1/users"}, wantErr: []string{"nothing was added", "Method Not Allowed"}},
		{name: "add in batches under 1 MiB across organizations", args: long,
			posts: []string{"/v1/users", "/v1/users", "/v1/users"}, wantOut: "12000 users added or updated, in 3 transactions of at most 5000", users: 12000},
		{name: "add in batches to an older server", args: long, intercept: answer(404),
			posts:   []string{"/v1/users", "/v1/orgs/example.com/users", "/v1/orgs/example.com/users", "/v1/orgs/other.org/users", "/v1/orgs/other.org/users"},
			wantOut: "12000 users added or updated (the server is older", users: 12000},
		{name: "add of emails longer in JSON than in bytes", args: amp,
			posts: slices.Repeat([]string{"/v1/users"}, 6), wantOut: "2000 users added or updated, in 6 transactions of at most 5000", users: 2000},
		{name: "a later batch refused", args: long, intercept: onSecond(deleteOther), posts: []string{"/v1/users", "/v1/users"},
			wantErr: []string{fmt.Sprintf("%d of the 12000 users were added before a request failed (it sent users %d to %d, which the error numbers from 1); the rest were not",
				first, first+1, 2*first), "user 2: there is no organization other.org"},
			users: (first + 1) / 2},
		{name: "a later batch unanswered", args: long, intercept: onSecond(proxyAnswer(http.StatusBadGateway)), posts: []string{"/v1/users", "/v1/users"},
			wantErr: []string{fmt.Sprintf("%d of the 12000 users were added before a request failed (it sent users %d to %d, which the error numbers from 1); whether it added its users is not known",
				first, first+1, 2*first), "Bad Gateway"},
			users: first},
		{name: "import in batches of 5,000 across organizations", args: []string{"import", many},
			posts: []string{"/v1/users", "/v1/users"}, wantOut: "6000 users added or updated, in 2 transactions of at most 5000", users: 6000},
		{name: "import from an older server", args: []string{"import", many}, intercept: answer(404),
			posts: []string{"/v1/users", "/v1/orgs/example.com/users", "/v1/orgs/other.org/users"}, wantOut: "6000 users added or updated (the server is older", users: 6000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runCLIErr(t, append([]string{"org", "delete", "other.org"}, admin...)...)
			runCLIErr(t, append([]string{"org", "delete", "example.com"}, admin...)...)
			cli("org", "create", "example.com")
			cli("org", "create", "other.org")
			p.reset(tt.intercept)
			args := append(append([]string{"users"}, tt.args...), viaProxy...)
			var out string
			var err error
			if tt.wantErr == nil {
				out = runCLI(t, args...)
			} else {
				err = runCLIErr(t, args...)
			}
			posts := p.sent()
			p.reset(nil)
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want one with %q", err, w)
				}
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("output %q lacks %q", out, tt.wantOut)
			}
			if !slices.Equal(posts, tt.posts) {
				t.Errorf("sent POST %v, want %v", posts, tt.posts)
			}
			if got := listed(t); len(got) != tt.users {
				t.Errorf("%d users listed after, want %d: %.200v", len(got), tt.users, got)
			}
		})
	}
}

// usersOf is the users of emails, as the CLI sends them.
func usersOf(emails []string) []admin.UserInput {
	users := make([]admin.UserInput, len(emails))
	for i, e := range emails {
		users[i] = admin.UserInput{Email: e}
	}
	return users
}
