package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/token"
)

// refusalsSince returns the admin.refused events after the first n.
func (f *fixture) refusalsSince(t *testing.T, n int) []storage.AuditEvent {
	t.Helper()
	evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var out []storage.AuditEvent
	for _, e := range evs[n:] {
		if e.Action == admin.ActionRefused {
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) auditCount(t *testing.T) int {
	t.Helper()
	evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// Two Authorization headers are refused whatever they hold, as at the
// token endpoint: the admin API used the first, where a proxy before it
// may have checked the other.
func TestRefusesTwoAuthorizationHeaders(t *testing.T) {
	f := newFixture(t)
	valid := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	tests := []struct {
		name    string
		headers []string
	}{
		{"valid, then garbage", []string{valid, "Bearer garbage"}},
		{"garbage, then valid", []string{"Bearer garbage", valid}},
		{"the same twice", []string{valid, valid}},
		{"basic and bearer", []string{"Basic YTpi", valid}},
	}
	const want = "The request has more than one Authorization header; send one."
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := f.auditCount(t)
			r := httptest.NewRequest("GET", "/v1/whoami", nil)
			r.Header["Authorization"] = tt.headers
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, r)
			var out map[string]any
			json.Unmarshal(w.Body.Bytes(), &out)
			if w.Code != 400 || out["error"] != "invalid_request" || out["error_description"] != want {
				t.Fatalf("%d %v, want 400 invalid_request %q", w.Code, out, want)
			}
			if !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_request"`) {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
			if evs := f.refusalsSince(t, n); len(evs) != 1 || evs[0].Data["reason"] != "malformed_header" {
				t.Errorf("events %+v, want one admin.refused with reason malformed_header", evs)
			}
		})
	}
}

// Every admin request answered with a 4xx error writes an admin.refused
// event before the answer, but an administrator's GET answered 404.
func TestAdminRefusalsAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	op := admin.Actor{ID: "test"}
	plain, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "plain", Project: "proj-one"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "taken", Project: "proj-one"}); err != nil {
		t.Fatal(err)
	}
	notAdmin := "Bearer " + f.token(t, plain, admin.AdminScope, nil)
	noScope := "Bearer " + f.token(t, f.admin, "other", nil)
	tests := []struct {
		name, method, path, auth, ifMatch string
		body                              any
		status                            int
		// the event's data; an empty reason or clientID must be absent
		reason, code, clientID string
		actor                  bool // the event names the administrator
		recorded               bool
	}{
		{name: "no token", method: "GET", path: "/v1/apis", status: 401, code: "invalid_token", reason: "no_token", recorded: true},
		{name: "basic credentials", method: "GET", path: "/v1/apis", auth: "Basic YTpi", status: 401, code: "invalid_token", reason: "no_token", recorded: true},
		{name: "malformed header", method: "POST", path: "/v1/apis", auth: "Bearer a b", status: 400, code: "invalid_request", reason: "malformed_header", recorded: true},
		{name: "unknown token", method: "DELETE", path: "/v1/apis/keyward", auth: "Bearer nonsense", status: 401, code: "invalid_token", reason: "unknown_token", recorded: true},
		{name: "without the scope", method: "GET", path: "/v1/whoami", auth: noScope, status: 403, code: "insufficient_scope", reason: "insufficient_scope", clientID: f.admin.ID, recorded: true},
		{name: "not an administrator", method: "GET", path: "/v1/service-accounts", auth: notAdmin, status: 401, code: "invalid_token", reason: "not_admin", clientID: plain.ID, recorded: true},
		{name: "unknown route", method: "POST", path: "/v1/nothing-here", status: 401, code: "invalid_token", reason: "no_token", recorded: true},
		{name: "bad body", method: "POST", path: "/v1/service-accounts", auth: auth, body: "{", status: 400, code: "invalid_request", actor: true, recorded: true},
		{name: "conflict", method: "POST", path: "/v1/service-accounts", auth: auth, body: map[string]string{"name": "taken", "project": "proj-one"}, status: 409, code: "conflict", actor: true, recorded: true},
		{name: "change of nothing", method: "DELETE", path: "/v1/apis/nosuch", auth: auth, status: 404, code: "not_found", actor: true, recorded: true},
		{name: "stale If-Match", method: "PATCH", path: "/v1/apis/keyward", auth: auth, ifMatch: `"stale"`, body: map[string]string{"description": "x"}, status: 412, code: "precondition_failed", actor: true, recorded: true},
		{name: "body too large", method: "POST", path: "/v1/apis", auth: auth, body: strings.Repeat(" ", admin.MaxBodyBytes+1), status: 413, code: "invalid_request", actor: true, recorded: true},
		{name: "method not allowed", method: "PUT", path: "/v1/apis", auth: auth, status: 405, code: "invalid_request", actor: true, recorded: true},
		{name: "bad limit", method: "GET", path: "/v1/service-accounts?limit=0", auth: auth, status: 400, code: "invalid_request", actor: true, recorded: true},
		{name: "read of nothing", method: "GET", path: "/v1/apis/nosuch", auth: auth, status: 404},
		{name: "unknown route, read", method: "GET", path: "/v1/nothing-here", auth: auth, status: 404},
		{name: "answered", method: "GET", path: "/v1/apis", auth: auth, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := f.auditCount(t)
			var status int
			var out map[string]any
			if tt.ifMatch != "" {
				status, out, _ = f.callIf(t, tt.method, tt.path, tt.auth, tt.ifMatch, tt.body)
			} else {
				status, out, _ = f.call(t, tt.method, tt.path, tt.auth, tt.body)
			}
			if status != tt.status {
				t.Fatalf("%s %s: %d %v, want %d", tt.method, tt.path, status, out, tt.status)
			}
			evs := f.refusalsSince(t, n)
			if !tt.recorded {
				if len(evs) != 0 {
					t.Fatalf("%d admin.refused events %+v, want none", len(evs), evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("%d admin.refused events %+v, want 1", len(evs), evs)
			}
			e := evs[0]
			path, _, _ := strings.Cut(tt.path, "?")
			want := map[string]string{
				"method": tt.method, "path": path, "status": strconv.Itoa(tt.status), "error": tt.code,
				"description": out["error_description"].(string), "reason": tt.reason, "token_client_id": tt.clientID,
			}
			for k, v := range want {
				if e.Data[k] != v {
					t.Errorf("data[%s] = %q, want %q", k, e.Data[k], v)
				}
			}
			if e.Outcome != storage.OutcomeFailure || e.Source != "192.0.2.1" {
				t.Errorf("outcome %q, source %q; want failure from 192.0.2.1", e.Outcome, e.Source)
			}
			if wantActor := map[bool]string{true: f.admin.ID}[tt.actor]; e.Actor != wantActor {
				t.Errorf("actor %q, want %q", e.Actor, wantActor)
			}
		})
	}
}

// The path an admin.refused event records is the caller's: it is kept
// short and printable.
func TestAdminRefusalPathBounded(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct{ name, path, want string }{
		{"escape sequence", "/v1/%1b%5B31mred", "/v1/%1b%5B31mred"},
		{"not UTF-8", "/v1/\xff", "/v1/%FF"},
		{"NUL and line break", "/v1/a%00b%0Ac", "/v1/a%00b%0Ac"},
		{"long", "/v1/" + strings.Repeat("a", 5000), "/v1/" + strings.Repeat("a", 196) + "…"},
		// The event keeps the path as sent, escaped: a client secret
		// with its _ escaped is still one.
		{"escaped secret", "/v1/service-accounts/x/secrets/kw%5F" + strings.Repeat("Zs9", 14) + "x", "/v1/service-accounts/x/secrets/(credential)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := f.auditCount(t)
			if status, out, _ := f.call(t, "GET", tt.path, "", nil); status != 401 {
				t.Fatalf("GET: %d %v, want 401", status, out)
			}
			evs := f.refusalsSince(t, n)
			if len(evs) != 1 || evs[0].Data["path"] != tt.want {
				t.Fatalf("events %+v, want one with path %q", evs, tt.want)
			}
		})
	}
}

// clockFixture serves the admin API with a clock the test sets, and a
// journal that fails while failing is set.
type clockFixture struct {
	*fixture
	mu      sync.Mutex
	at      time.Time
	failing bool
}

func (c *clockFixture) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *clockFixture) advance(d time.Duration) {
	c.mu.Lock()
	c.at = c.at.Add(d)
	c.mu.Unlock()
}

type failingJournal struct {
	c    *clockFixture
	next token.Journal
}

func (j failingJournal) Write(ctx context.Context, w storage.Write) error {
	j.c.mu.Lock()
	failing := j.c.failing
	j.c.mu.Unlock()
	if failing {
		return errors.New("disk full")
	}
	return j.next.Write(ctx, w)
}

func newClockFixture(t *testing.T) *clockFixture {
	t.Helper()
	st := openSQLite(t)
	c := &clockFixture{at: time.Now()}
	c.fixture = serveFixture(t, st, func(d *server.Deps) { d.Journal, d.Now = failingJournal{c, d.Journal}, c.now })
	return c
}

// An address whose requests without a valid admin token are refused over
// and over is answered 429 past its budget, recorded once a minute, so a
// flood does not write one event per request; an administrator at the
// same address is not held back, and its refusals are not throttled.
func TestAdminRefusalFloodBounded(t *testing.T) {
	c := newClockFixture(t)
	auth := "Bearer " + c.token(t, c.admin, admin.AdminScope, nil)
	n := c.auditCount(t)
	statuses := map[int]int{}
	for range 100 {
		status, out, hdr := c.call(t, "GET", "/v1/apis", "Bearer nonsense", nil)
		statuses[status]++
		if status == 429 && (out["error"] != oauth2.ErrTemporarilyUnavailable || hdr.Get("Retry-After") == "") {
			t.Fatalf("429: %v, Retry-After %q; want temporarily_unavailable with Retry-After", out, hdr.Get("Retry-After"))
		}
	}
	if statuses[401] != 20 || statuses[429] != 80 {
		t.Fatalf("statuses %v, want 20 × 401 and then 80 × 429", statuses)
	}
	evs := c.refusalsSince(t, n)
	if len(evs) != 21 {
		t.Fatalf("%d admin.refused events, want 21: the 20 401s and the first 429", len(evs))
	}
	if last := evs[20].Data; last["status"] != "429" || last["throttled"] == "" || last["reason"] != "unknown_token" {
		t.Errorf("the 429's event: %v, want status 429, the reason, and that further 429s are not recorded", last)
	}
	// An administrator at the throttled address is answered, and refused
	// as any request is.
	if status, out, _ := c.call(t, "GET", "/v1/apis", auth, nil); status != 200 {
		t.Errorf("the administrator's GET: %d %v, want 200", status, out)
	}
	for range 30 {
		if status, out, _ := c.call(t, "DELETE", "/v1/apis/nosuch", auth, nil); status != 404 {
			t.Fatalf("the administrator's DELETE of nothing: %d %v, want 404", status, out)
		}
	}
	// A second on, one more refusal is answered 401 and recorded; a
	// minute on, the next 429 is recorded again.
	n = c.auditCount(t)
	c.advance(time.Second)
	for _, want := range []int{401, 429} {
		if status, _, _ := c.call(t, "GET", "/v1/apis", "", nil); status != want {
			t.Fatalf("a second later: %d, want %d", status, want)
		}
	}
	if evs := c.refusalsSince(t, n); len(evs) != 1 || evs[0].Data["status"] != "401" {
		t.Fatalf("a second later: events %+v, want the one 401", evs)
	}
	n = c.auditCount(t)
	c.advance(time.Minute)
	for range 30 {
		c.call(t, "GET", "/v1/apis", "", nil)
	}
	if evs := c.refusalsSince(t, n); len(evs) != 21 {
		t.Fatalf("a minute later: %d events, want the refilled budget's 20 and one 429", len(evs))
	}
}

// The admin API's 429s count in keyward_auth_throttled_total, as the
// client authentications' do, under endpoint="admin": an operator
// watching it sees a flood of requests without a valid admin token too.
func TestAdminThrottleCounted(t *testing.T) {
	c := &clockFixture{at: time.Now()}
	m := metrics.New(func() float64 { return 0 })
	c.fixture = serveFixture(t, openSQLite(t), func(d *server.Deps) { d.Now, d.Metrics = c.now, m })
	statuses := map[int]int{}
	for range 30 {
		status, _, _ := c.call(t, "GET", "/v1/apis", "Bearer nonsense", nil)
		statuses[status]++
	}
	if statuses[401] != 20 || statuses[429] != 10 {
		t.Fatalf("statuses %v, want 20 × 401 and then 10 × 429", statuses)
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(w.Body.String(), "\n"+`keyward_auth_throttled_total{endpoint="admin"} 10`+"\n") {
		t.Errorf(`metrics have %q, want keyward_auth_throttled_total{endpoint="admin"} 10`, grepLines(w.Body.String(), "keyward_auth_throttled_total"))
	}
}

// grepLines returns the lines of s that hold sub.
func grepLines(s, sub string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// Unauthenticated requests refused at once from one address get the
// same budget as one after another: each refusal is counted as it is
// judged, so that callers at once cannot all pass the check before any is
// counted and each write its event.
func TestAdminRefusalFloodAtOnce(t *testing.T) {
	c := newClockFixture(t)
	n := c.auditCount(t)
	const callers = 100
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			status, _, _ := c.call(t, "GET", "/v1/apis", "Bearer nonsense", nil)
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if statuses[401] != 20 || statuses[429] != callers-20 {
		t.Fatalf("statuses %v, want 20 × 401 and %d × 429", statuses, callers-20)
	}
	if evs := c.refusalsSince(t, n); len(evs) != 21 {
		t.Fatalf("%d admin.refused events, want 21: the 20 401s and one 429", len(evs))
	}
}

// A refusal whose event cannot be written is answered 503
// temporarily_unavailable, as at the token endpoint, never with the
// refusal unrecorded nor a 500 with internals.
func TestAdminRefusalUnrecorded(t *testing.T) {
	c := newClockFixture(t)
	auth := "Bearer " + c.token(t, c.admin, admin.AdminScope, nil)
	c.failing = true
	for _, tt := range []struct{ name, method, path, auth string }{
		{"unauthenticated", "GET", "/v1/apis", ""},
		{"authenticated", "DELETE", "/v1/apis/nosuch", auth},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, out, hdr := c.call(t, tt.method, tt.path, tt.auth, nil)
			desc, _ := out["error_description"].(string)
			if status != 503 || out["error"] != oauth2.ErrTemporarilyUnavailable || hdr.Get("Retry-After") == "" || strings.Contains(desc, "disk") {
				t.Errorf("%d %v, Retry-After %q; want 503 temporarily_unavailable without internals", status, out, hdr.Get("Retry-After"))
			}
		})
	}
	if !strings.Contains(c.logs.String(), "disk full") {
		t.Errorf("the log does not tell why: %s", c.logs.String())
	}
	// The line logged about it holds the method cut, as the event does:
	// the caller picks it, up to the 64 KiB of headers.
	long := strings.Repeat("X", 20000)
	if status, out, _ := c.call(t, long, "/v1/apis", "", nil); status != 503 {
		t.Fatalf("%d %v, want 503", status, out)
	}
	if strings.Contains(c.logs.String(), long[:1000]) {
		t.Errorf("the log holds the method whole")
	}
}

// Behind a trusted proxy the refusals are bounded per client, as the
// proxy reports it in X-Forwarded-For, not per proxy: one client's flood
// does not get every other client behind the same proxy answered 429,
// and the events name the client's address.
func TestAdminRefusalFloodBehindProxy(t *testing.T) {
	f := newFixture(t, func(c *server.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} // httptest's peer, 192.0.2.1
	})
	call := func(xff string) int {
		req := httptest.NewRequest("GET", "/v1/apis", nil)
		req.Header.Set("X-Forwarded-For", xff)
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, req)
		return w.Code
	}
	n := f.auditCount(t)
	for range 30 {
		// What the client sent, then what the proxy appended.
		call("198.51.100.9, 203.0.113.5")
	}
	if status := call("203.0.113.5"); status != 429 {
		t.Errorf("the flooding client: %d, want 429", status)
	}
	if status := call("203.0.113.6"); status != 401 {
		t.Errorf("another client behind the same proxy: %d, want 401", status)
	}
	evs := f.refusalsSince(t, n)
	if len(evs) != 22 {
		t.Fatalf("%d admin.refused events, want 22: the flooding client's 20 401s and first 429, the other's 401", len(evs))
	}
	for i, e := range evs {
		want := "203.0.113.5"
		if i == len(evs)-1 {
			want = "203.0.113.6"
		}
		if e.Source != want {
			t.Errorf("event %d: source %q, want %q", i, e.Source, want)
		}
	}
}

// hangingJournal does not answer a write until its context ends: a store
// that does not answer. A write without a deadline, which would wait for
// ever, is refused at once and noted.
type hangingJournal struct {
	mu         sync.Mutex
	noDeadline bool
}

func (j *hangingJournal) Write(ctx context.Context, _ storage.Write) error {
	if _, ok := ctx.Deadline(); !ok {
		j.mu.Lock()
		j.noDeadline = true
		j.mu.Unlock()
		return errors.New("a write without a deadline")
	}
	<-ctx.Done()
	return ctx.Err()
}

// The audit event of a refusal is given up at the request's bound when
// the store does not answer, and the refusal answered 503, as at the
// token endpoint: it does not wait for the store without end.
func TestAdminRefusalWriteBounded(t *testing.T) {
	admin.SetRequestTimeout(t, 100*time.Millisecond)
	j := &hangingJournal{}
	f := serveFixture(t, openSQLite(t), func(d *server.Deps) { d.Journal = j })
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for _, tt := range []struct{ name, method, path, auth string }{
		{"unauthenticated", "GET", "/v1/apis", ""},
		{"authenticated", "DELETE", "/v1/apis/nosuch", auth},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, out, _ := f.call(t, tt.method, tt.path, tt.auth, nil)
			if status != 503 || out["error"] != oauth2.ErrTemporarilyUnavailable {
				t.Errorf("%d %v, want 503 temporarily_unavailable", status, out)
			}
		})
	}
	if j.noDeadline {
		t.Error("a refusal's audit event was written without the request's deadline")
	}
	if !strings.Contains(f.logs.String(), "deadline exceeded") {
		t.Errorf("the log does not tell why: %s", f.logs.String())
	}
}

// A request refused for its token logs why at INFO, under the request's
// ID, as the token endpoint logs its refusals: the server's log had only
// the request line's 401 or 403, the reason only in the audit log. The
// token itself is never logged.
func TestAdminAuthRefusalsLogged(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	plain, err := f.srv.Admin.CreateAccount(ctx, admin.Actor{ID: "test"}, admin.AccountInput{Name: "plain", Project: "proj-one"})
	if err != nil {
		t.Fatal(err)
	}
	expired := f.token(t, f.admin, admin.AdminScope, func(c *oauth2.AccessClaims) { c.Expiry = time.Now().Add(-time.Minute).Unix() })
	notAdmin := f.token(t, plain, admin.AdminScope, nil)
	noScope := f.token(t, f.admin, "other", nil)
	for _, tt := range []struct {
		name, token string
		status      int
		want        string
	}{
		{"no token", "", 401, `error=invalid_token description="The admin API needs an access token with the keyward.admin scope: Authorization: Bearer <token>." reason=no_token source=192.0.2.1`},
		{"unknown token", "nonsense-token", 401, `error=invalid_token description="The access token is not valid." reason=unknown_token source=192.0.2.1`},
		{"expired", expired, 401, `error=invalid_token description="The access token is no longer active (expired)." reason=inactive_token token_client_id=` + f.admin.ID + ` source=192.0.2.1`},
		{"not an administrator", notAdmin, 401, `error=invalid_token description="The account of the access token is disabled, deleted or no longer an administrator." reason=not_admin token_client_id=` + plain.ID + ` source=192.0.2.1`},
		{"without the scope", noScope, 403, `error=insufficient_scope description="The access token lacks the keyward.admin scope." reason=insufficient_scope token_client_id=` + f.admin.ID + ` source=192.0.2.1`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			auth := ""
			if tt.token != "" {
				auth = "Bearer " + tt.token
			}
			before := len(f.logs.String())
			status, out, h := f.call(t, "GET", "/v1/service-accounts", auth, nil)
			if status != tt.status {
				t.Fatalf("%d %v, want %d", status, out, tt.status)
			}
			var lines []string
			for _, l := range strings.Split(f.logs.String()[before:], "\n") {
				if strings.Contains(l, `msg="admin request refused"`) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("logged %q, want one admin request refused line", lines)
			}
			l := lines[0]
			want := `level=INFO msg="admin request refused" method=GET path=/v1/service-accounts ` + tt.want + ` id=` + h.Get("X-Request-Id")
			if !strings.HasSuffix(l, want) {
				t.Errorf("logged %q, want it to end %q", l, want)
			}
			if tt.token != "" && strings.Contains(f.logs.String(), tt.token) {
				t.Errorf("the log holds the token")
			}
		})
	}
	// Requests that authenticated are not logged so: their refusals are
	// not the token's.
	before := len(f.logs.String())
	if status, _, _ := f.call(t, "GET", "/v1/service-accounts?limit=0", "Bearer "+f.token(t, f.admin, admin.AdminScope, nil), nil); status != 400 {
		t.Fatalf("bad limit: %d, want 400", status)
	}
	if strings.Contains(f.logs.String()[before:], "admin request refused") {
		t.Errorf("an administrator's 400 logged an admin request refused line")
	}
}

// Every 429 of the throttle logs a line, recorded or not, as the token
// endpoint's do: with the reason of the request's token and the limit it
// met (the throttle's key) as cause. The admin API's logged only the
// request line.
func TestAdminThrottledLogged(t *testing.T) {
	f := newFixture(t)
	throttled := 0
	var ids []string
	for range 25 {
		status, _, h := f.call(t, "GET", "/v1/apis", "Bearer nonsense", nil)
		if status == 429 {
			throttled++
			ids = append(ids, h.Get("X-Request-Id"))
		}
	}
	if throttled < 2 {
		t.Fatalf("%d requests answered 429, want at least 2 (the recorded one and one not)", throttled)
	}
	for _, id := range ids {
		want := `level=INFO msg="admin request refused" method=GET path=/v1/apis error=temporarily_unavailable description="Too many admin requests without a valid admin token from this address; retry later." reason=unknown_token cause="throttled: too many failures of 192.0.2.1" source=192.0.2.1 id=` + id
		found := false
		for _, l := range strings.Split(f.logs.String(), "\n") {
			found = found || strings.HasSuffix(l, want)
		}
		if !found {
			t.Errorf("no line ending %q in the log:\n%s", want, f.logs.String())
		}
	}
}
