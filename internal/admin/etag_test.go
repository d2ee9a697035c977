package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// callIf is call with an If-Match header field ("" sends none).
func (f *fixture) callIf(t testing.TB, method, path, auth, ifMatch string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("Authorization", auth)
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	var out map[string]any
	json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out, w.Header()
}

// strongTag matches a strong entity tag (RFC 9110 §8.8.3).
var strongTag = regexp.MustCompile(`^"[\x21\x23-\x7e]+"$`)

// etagOf GETs path and returns its ETag and body.
func (f *fixture) etagOf(t *testing.T, path, auth string) (string, map[string]any) {
	t.Helper()
	code, out, hdr := f.call(t, "GET", path, auth, nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %v", path, code, out)
	}
	tag := hdr.Get("ETag")
	if !strongTag.MatchString(tag) {
		t.Fatalf("GET %s: ETag %q, want a strong entity tag", path, tag)
	}
	return tag, out
}

// PATCH of an account or an API honours If-Match (RFC 9110 §13.1.1): with
// the ETag of the state stored it is made, and its answer has the new
// state's ETag, the one GET gives next; with an older one it is 412 and
// nothing changes; without If-Match, or with *, it is made as before.
// Every change, even one that sets what was there (updated_at moves),
// makes a new ETag for an account. On SQLite and, when
// KEYWARD_TEST_POSTGRES_DSN is set, on PostgreSQL: the tags hash what the
// store reads back.
func TestIfMatch(t *testing.T) {
	onBackends(t, testIfMatch)
}

// onBackends runs test on a fixture on SQLite and, when
// KEYWARD_TEST_POSTGRES_DSN is set, on one on PostgreSQL.
func onBackends(t *testing.T, test func(*testing.T, *fixture)) {
	t.Run("sqlite", func(t *testing.T) { test(t, newFixture(t)) })
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), pgtest.SchemaDSN(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		test(t, newFixtureOn(t, st))
	})
}

func testIfMatch(t *testing.T, f *fixture) {
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	code, out, hdr := f.call(t, "POST", "/v1/apis", auth, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}})
	if code != 201 {
		t.Fatalf("create API: %d %v", code, out)
	}
	apiCreated := hdr.Get("ETag")
	code, out, hdr = f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read"}})
	if code != 201 {
		t.Fatalf("create account: %d %v", code, out)
	}
	accountCreated := hdr.Get("ETag")
	job, err := f.store.GetAccountByEmail(context.Background(), "job@shop.iam.test")
	if err != nil {
		t.Fatal(err)
	}
	desc := func(s string) *string { return &s }
	scopes := func(s ...string) *[]string { return &s }
	tests := []struct {
		name    string
		path    string // of the resource; GET and PATCH
		created string // the ETag of the POST that created it
		// change is a PATCH body, different each time; field is the JSON
		// field it changes.
		change func(i int) any
		field  string
		// sideways changes the resource another way than PATCH, or ""
		sideways string
	}{
		{"account", "/v1/service-accounts/job@shop.iam.test", accountCreated,
			func(i int) any {
				return admin.AccountUpdate{Scopes: scopes([]string{"orders.read", "orders.write"}[:1+i%2]...)}
			}, "scopes",
			"/v1/service-accounts/job@shop.iam.test/revoke-tokens"},
		{"account by client ID", "/v1/service-accounts/" + job.ID, "",
			func(i int) any { return admin.AccountUpdate{Description: desc(strings.Repeat("d", i+1))} }, "description",
			"/v1/service-accounts/" + job.ID + "/disable"},
		{"API", "/v1/apis/orders", apiCreated,
			func(i int) any { return admin.APIUpdate{Description: desc(strings.Repeat("d", i+1))} }, "description", ""},
		{"API's scopes", "/v1/apis/orders", "",
			func(i int) any {
				return admin.APIUpdate{Scopes: scopes("orders.read", fmt.Sprintf("orders.x%d", i), "orders.write")}
			}, "scopes", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag, _ := f.etagOf(t, tt.path, auth)
			if tt.created != "" && tt.created != tag {
				t.Errorf("the POST that created it gave ETag %s, GET gives %s", tt.created, tag)
			}
			if again, _ := f.etagOf(t, tt.path, auth); again != tag {
				t.Fatalf("two GETs of one state: ETags %s and %s", tag, again)
			}
			i := 0
			// patch sends change i with If-Match ifMatch; want is 200 or 412.
			patch := func(t *testing.T, ifMatch string, want int) (map[string]any, string) {
				t.Helper()
				i++
				before, was := f.etagOf(t, tt.path, auth)
				code, out, hdr := f.callIf(t, "PATCH", tt.path, auth, ifMatch, tt.change(i))
				if code != want {
					t.Fatalf("PATCH with If-Match %q: %d %v, want %d", ifMatch, code, out, want)
				}
				now, is := f.etagOf(t, tt.path, auth)
				if want == 200 {
					if got := hdr.Get("ETag"); got != now || now == before {
						t.Fatalf("PATCH with If-Match %q: ETag %s before, %s in the answer, %s in the next GET: want a new one, the same in both", ifMatch, before, got, now)
					}
					if ch, _ := json.Marshal(tt.change(i)); !strings.Contains(string(ch), mustJSON(t, is[tt.field])) {
						t.Fatalf("PATCH %s with If-Match %q was not made: %s is %v", ch, ifMatch, tt.field, is[tt.field])
					}
					return out, now
				}
				if hdr.Get("ETag") != "" || now != before || mustJSON(t, is) != mustJSON(t, was) {
					t.Fatalf("a refused PATCH changed %s: ETag %s → %s, %v → %v (answer ETag %q)", tt.path, before, now, was, is, hdr.Get("ETag"))
				}
				return out, now
			}
			_, tag1 := patch(t, tag, 200)
			out, _ := patch(t, tag, 412) // tag is the state before tag1
			if out["error"] != admin.ErrPreconditionFailed || !strings.Contains(out["error_description"].(string), "someone else changed it meanwhile, so nothing was saved") {
				t.Errorf("the 412's body: %v, want precondition_failed saying someone else changed it", out)
			}
			_, tag2 := patch(t, "", 200) // no If-Match: as before
			_, tag3 := patch(t, "*", 200)
			_, tag4 := patch(t, `"elsewhere", `+tag3, 200)
			patch(t, tag2, 412)
			out, _ = patch(t, "W/"+tag4, 412)
			if !strings.Contains(out["error_description"].(string), "weak tag") {
				t.Errorf("a weak If-Match of the current ETag: %v, want the description to say why it cannot match", out)
			}
			if tt.sideways != "" {
				// Disabling, enabling and revoking tokens change the
				// account too, so the ETag read before no longer matches.
				if code, out, _ := f.call(t, "POST", tt.sideways, auth, nil); code != 200 {
					t.Fatalf("POST %s: %d %v", tt.sideways, code, out)
				}
				patch(t, tag4, 412)
			}
			if tag1 == tag || tag2 == tag1 || tag3 == tag2 || tag4 == tag3 {
				t.Errorf("ETags %s, %s, %s, %s, %s: want a new one after each change", tag, tag1, tag2, tag3, tag4)
			}
		})
	}

	t.Run("an account's ETag changes with a change that sets what was there", func(t *testing.T) {
		path := "/v1/service-accounts/job@shop.iam.test"
		before, _ := f.etagOf(t, path, auth)
		time.Sleep(time.Millisecond) // updated_at counts microseconds
		code, out, hdr := f.callIf(t, "PATCH", path, auth, before, admin.AccountUpdate{TokenFormat: desc("")})
		if code != 200 || hdr.Get("ETag") == before {
			t.Fatalf("%d %v, ETag %s → %s: want a new ETag", code, out, before, hdr.Get("ETag"))
		}
	})

	t.Run("no 412 and no event for what is refused before", func(t *testing.T) {
		// A missing resource is a 404, whatever If-Match says (RFC 9110
		// §13.2.1), and a bad body a 400.
		for _, path := range []string{"/v1/service-accounts/ghost@shop.iam.test", "/v1/apis/ghost"} {
			if code, out, _ := f.callIf(t, "PATCH", path, auth, `"x"`, map[string]any{}); code != 404 {
				t.Errorf("PATCH %s with If-Match: %d %v, want 404", path, code, out)
			}
		}
		if code, out, _ := f.callIf(t, "PATCH", "/v1/service-accounts/job@shop.iam.test", auth, `"x"`, admin.AccountUpdate{Scopes: scopes("nope")}); code != 400 {
			t.Errorf("PATCH of an unknown scope with a stale If-Match: %d %v, want 400", code, out)
		}
	})

	t.Run("the 412 writes no audit event", func(t *testing.T) {
		count := func() int {
			evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{AccountID: job.ID, Action: "account.update", Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			return len(evs)
		}
		n := count()
		if code, out, _ := f.callIf(t, "PATCH", "/v1/service-accounts/"+job.ID, auth, `"stale"`, admin.AccountUpdate{Description: desc("x")}); code != 412 {
			t.Fatalf("%d %v, want 412", code, out)
		}
		if m := count(); m != n {
			t.Fatalf("account.update events: %d before the 412, %d after", n, m)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An If-Match that is empty or not entity tags is a bad request, never
// taken as no condition.
func TestIfMatchMalformed(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	path := "/v1/service-accounts/" + f.admin.Email
	tag, _ := f.etagOf(t, path, auth)
	bare := strings.Trim(tag, `"`)
	for _, h := range []string{
		bare,               // the quotes dropped
		" ",                // empty
		",",                // an empty list
		`*, ` + tag,        // * and a tag
		tag + ` x`,         // garbage after a tag
		tag + tag,          // no comma
		`"a b"`,            // a space inside
		`w/` + tag,         // a lowercase weak marker
		`"` + bare,         // no closing quote
		tag + ", \"\x7f\"", // DEL inside
	} {
		code, out, _ := f.callIf(t, "PATCH", path, auth, h, admin.AccountUpdate{})
		if code != 400 || out["error"] != "invalid_request" || !strings.Contains(out["error_description"].(string), "If-Match") {
			t.Errorf("If-Match %q: %d %v, want 400 invalid_request about If-Match", h, code, out)
		}
	}
	// Two header lines are one list (RFC 9110 §5.3).
	req := httptest.NewRequest("PATCH", path, strings.NewReader(`{"description":"two lines"}`))
	req.Header.Set("Authorization", auth)
	req.Header.Add("If-Match", `"other"`)
	req.Header.Add("If-Match", tag)
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("If-Match over two lines naming the ETag: %d %s, want 200", w.Code, w.Body)
	}
}

// interleaved is a store where another administrator's change commits
// just as an update or a deletion begins: after the admin service has
// read the account or API to check the request, before the store's
// transaction reads it.
// An If-Match checked anywhere but in that transaction misses it.
// interleavedFixture is a fixture on a SQLite store wrapped in an
// interleaved, and an administrator's Authorization header.
func interleavedFixture(t *testing.T) (*fixture, *interleaved, string) {
	t.Helper()
	st := openSQLite(t)
	is := &interleaved{Storage: st}
	f := newFixtureOn(t, is)
	return f, is, "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
}

type interleaved struct {
	storage.Storage
	account func(ctx context.Context, id string)
	api     func(ctx context.Context, name string)
	// org runs as an organization is updated or deleted.
	org    func(ctx context.Context, domain string)
	user   func(ctx context.Context, email string)
	key    func(ctx context.Context, id string)
	secret func(ctx context.Context, id string)
	// project runs as a project is placed in, moved to or removed from
	// the organization domain.
	project func(ctx context.Context, domain string)
}

func (s *interleaved) UpdateKey(ctx context.Context, id string, fn func(storage.Key) (storage.Key, error), ev storage.AuditEvent, guards ...storage.Guard) (storage.Key, error) {
	if s.key != nil {
		s.key(ctx, id)
	}
	return s.Storage.UpdateKey(ctx, id, fn, ev, guards...)
}

func (s *interleaved) DeleteKey(ctx context.Context, id string, check func(storage.Key) error, ev storage.AuditEvent, guards ...storage.Guard) error {
	if s.key != nil {
		s.key(ctx, id)
	}
	return s.Storage.DeleteKey(ctx, id, check, ev, guards...)
}

func (s *interleaved) UpdateSecret(ctx context.Context, id string, fn func(storage.Secret) (storage.Secret, error), check func([]storage.Secret) error, ev storage.AuditEvent, guards ...storage.Guard) (storage.Secret, error) {
	if s.secret != nil {
		s.secret(ctx, id)
	}
	return s.Storage.UpdateSecret(ctx, id, fn, check, ev, guards...)
}

func (s *interleaved) DeleteSecret(ctx context.Context, id string, check func(storage.Secret) error, ev storage.AuditEvent, guards ...storage.Guard) error {
	if s.secret != nil {
		s.secret(ctx, id)
	}
	return s.Storage.DeleteSecret(ctx, id, check, ev, guards...)
}

func (s *interleaved) PutProjectOrg(ctx context.Context, p storage.ProjectOrg, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error {
	if s.project != nil {
		s.project(ctx, p.Org)
	}
	return s.Storage.PutProjectOrg(ctx, p, check, ev)
}

func (s *interleaved) DeleteProjectOrg(ctx context.Context, org, project string, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error {
	if s.project != nil {
		s.project(ctx, org)
	}
	return s.Storage.DeleteProjectOrg(ctx, org, project, check, ev)
}

func (s *interleaved) PutUsers(ctx context.Context, users []storage.User, ev storage.UsersEvent) error {
	if s.user != nil && len(users) == 1 {
		s.user(ctx, users[0].Email)
	}
	return s.Storage.PutUsers(ctx, users, ev)
}

func (s *interleaved) UpdateUser(ctx context.Context, email string, fn func(storage.User) (storage.User, error), ev storage.AuditEvent) (storage.User, error) {
	if s.user != nil {
		s.user(ctx, email)
	}
	return s.Storage.UpdateUser(ctx, email, fn, ev)
}

func (s *interleaved) UpdateOrg(ctx context.Context, domain string, fn func(storage.Org, []storage.ProjectOrg) (storage.Org, error), ev storage.AuditEvent) (storage.Org, []storage.ProjectOrg, error) {
	if s.org != nil {
		s.org(ctx, domain)
	}
	return s.Storage.UpdateOrg(ctx, domain, fn, ev)
}

func (s *interleaved) DeleteOrg(ctx context.Context, domain string, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error {
	if s.org != nil {
		s.org(ctx, domain)
	}
	return s.Storage.DeleteOrg(ctx, domain, check, ev)
}

func (s *interleaved) UpdateAccount(ctx context.Context, id string, fn func(storage.Account) (storage.Account, error), ev storage.AuditEvent, guards ...storage.Guard) (storage.Account, error) {
	if s.account != nil {
		s.account(ctx, id)
	}
	return s.Storage.UpdateAccount(ctx, id, fn, ev, guards...)
}

func (s *interleaved) UpdateAPI(ctx context.Context, name string, fn func(storage.API) (storage.API, error), ev storage.AuditEvent) (storage.API, error) {
	if s.api != nil {
		s.api(ctx, name)
	}
	return s.Storage.UpdateAPI(ctx, name, fn, ev)
}

func (s *interleaved) DeleteAccount(ctx context.Context, id string, check func(storage.Account) error, ev storage.AuditEvent, guards ...storage.Guard) error {
	if s.account != nil {
		s.account(ctx, id)
	}
	return s.Storage.DeleteAccount(ctx, id, check, ev, guards...)
}

func (s *interleaved) DeleteAPI(ctx context.Context, name string, check func(storage.API) error, ev storage.AuditEvent) error {
	if s.api != nil {
		s.api(ctx, name)
	}
	return s.Storage.DeleteAPI(ctx, name, check, ev)
}

// The If-Match check is made in the update's transaction: a change that
// commits between the service's own read and that transaction is not
// overwritten.
func TestIfMatchAtomic(t *testing.T) {
	f, is, auth := interleavedFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	if _, err := f.srv.Admin.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	theirs := storage.AuditEvent{Time: time.Now(), Action: "account.update", Outcome: storage.OutcomeSuccess, Actor: "other"}
	is.account = func(ctx context.Context, id string) {
		is.account = nil
		if _, err := is.Storage.UpdateAccount(ctx, id, func(a storage.Account) (storage.Account, error) {
			a.Scopes, a.UpdatedAt = []string{"orders.read", "orders.write"}, time.Now()
			return a, nil
		}, theirs); err != nil {
			t.Error(err)
		}
	}
	is.api = func(ctx context.Context, name string) {
		is.api = nil
		if _, err := is.Storage.UpdateAPI(ctx, name, func(a storage.API) (storage.API, error) {
			a.Description = "theirs"
			return a, nil
		}, theirs); err != nil {
			t.Error(err)
		}
	}
	none, mine := []string{}, "mine"
	for _, tt := range []struct {
		path string
		body any
		// check fails unless the other change is what is stored.
		check func() error
	}{
		{"/v1/service-accounts/job@shop.iam.test", admin.AccountUpdate{Scopes: &none}, func() error {
			a, err := is.Storage.GetAccountByEmail(ctx, "job@shop.iam.test")
			if err == nil && len(a.Scopes) != 2 {
				return fmt.Errorf("the account's scopes are %q, want the other change's two", a.Scopes)
			}
			return err
		}},
		{"/v1/apis/orders", admin.APIUpdate{Description: &mine}, func() error {
			a, err := is.Storage.GetAPI(ctx, "orders")
			if err == nil && a.Description != "theirs" {
				return fmt.Errorf("the API's description is %q, want the other change's", a.Description)
			}
			return err
		}},
	} {
		tag, _ := f.etagOf(t, tt.path, auth)
		if code, out, _ := f.callIf(t, "PATCH", tt.path, auth, tag, tt.body); code != 412 || out["error"] != admin.ErrPreconditionFailed {
			t.Errorf("PATCH %s as another change commits: %d %v, want 412", tt.path, code, out)
		}
		if err := tt.check(); err != nil {
			t.Errorf("PATCH %s: %v", tt.path, err)
		}
	}
	if is.account != nil || is.api != nil {
		t.Fatal("the other changes were not made")
	}
}

// FuzzIfMatch sends PATCHes with arbitrary If-Match headers, in which
// $ETAG stands for the account's current ETag: the answer is 200, 400 or
// 412; 200 only for *, or for a list that names the ETag (as a strong
// tag: W/ never matches); and 412 only for a list that does not.
func FuzzIfMatch(f *testing.F) {
	for _, seed := range []string{`*`, ` * `, `"x"`, `W/"x"`, `"a", "b"`, ` , "x" ,`, `"`, `""`, `W/`, `"x",,"y"`, "\"\x80\xff\"",
		`$ETAG`, `W/$ETAG`, `"x", $ETAG`, ` $ETAG ,`, `$ETAG"`, `"x",W/$ETAG`} {
		f.Add(seed)
	}
	fx := newFixture(f)
	auth := "Bearer " + fx.token(f, fx.admin, admin.AdminScope, nil)
	path := "/v1/service-accounts/" + fx.admin.Email
	f.Fuzz(func(t *testing.T, h string) {
		if h == "" || strings.ContainsAny(h, "\r\n\x00") {
			return // no header, or not one net/http would pass on
		}
		_, _, hdr := fx.call(t, "GET", path, auth, nil)
		tag := hdr.Get("ETag")
		h = strings.Replace(h, "$ETAG", tag, 1)
		// A change to make: an empty PATCH is refused (400) whatever
		// its If-Match.
		desc := "fuzzed"
		code, out, _ := fx.callIf(t, "PATCH", path, auth, h, admin.AccountUpdate{Description: &desc})
		// The account's tag has no comma: an element of the list that is
		// the tag reads as the tag.
		names := slices.ContainsFunc(strings.Split(h, ","), func(e string) bool { return strings.Trim(e, " \t") == tag })
		switch {
		case code == 200 && strings.Trim(h, " \t") != "*" && !names:
			t.Fatalf("If-Match %q: 200, but it does not name the ETag %s", h, tag)
		case code == 412 && names:
			t.Fatalf("If-Match %q: 412, but it names the ETag %s: %v", h, tag, out)
		case code != 200 && code != 400 && code != 412:
			t.Fatalf("If-Match %q: %d %v, want 200, 400 or 412", h, code, out)
		}
	})
}

// A route that does not evaluate If-Match refuses a request that sends it,
// rather than act as if it had been met (RFC 9110 §13.1.1).
func TestIfMatchElsewhere(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	other, err := f.srv.Admin.CreateAccount(context.Background(), admin.Actor{ID: "t"}, admin.AccountInput{Name: "other", Project: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/service-accounts/" + other.ID
	tag, _ := f.etagOf(t, path, auth)
	for _, tt := range []struct{ method, path string }{
		{"POST", path + "/revoke-tokens"},
		{"GET", path},
		{"POST", path + "/secrets"},
	} {
		code, out, _ := f.callIf(t, tt.method, tt.path, auth, `"stale"`, nil)
		if code != 400 || !strings.Contains(out["error_description"].(string), "take If-Match") {
			t.Errorf("%s %s with If-Match: %d %v, want 400", tt.method, tt.path, code, out)
		}
	}
	// A path or method that is no route's is told so, not that it
	// cannot take If-Match.
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"PATCH", "/v1/service-acounts/" + other.ID, 404},
		{"PATCH", path + "/keys", 405},
	} {
		if code, out, _ := f.callIf(t, tt.method, tt.path, auth, tag, map[string]any{"description": "x"}); code != tt.status {
			t.Errorf("%s %s with If-Match: %d %v, want %d", tt.method, tt.path, code, out, tt.status)
		}
	}
	if a, err := f.srv.Admin.GetAccount(context.Background(), other.ID); err != nil || !a.TokensRevokedBefore.IsZero() {
		t.Fatalf("after the refused requests: %+v, %v; want the account there, its tokens not revoked", a, err)
	}
	if secs, err := f.srv.Admin.ListSecrets(context.Background(), other.ID); err != nil || len(secs) != 0 {
		t.Fatalf("after the refused requests: secrets %v, %v; want none", secs, err)
	}
	// The routes that evaluate it still do.
	if code, out, _ := f.callIf(t, "PATCH", path, auth, tag, map[string]any{"description": "x"}); code != 200 {
		t.Errorf("PATCH with the ETag: %d %v", code, out)
	}
}

// Users and delegations have no ETag: each of their routes refuses a
// request with If-Match (400) saying so, and what the request without it
// would do, rather than the list of the routes that take it; nothing is
// changed.
func TestIfMatchUntagged(t *testing.T) {
	f := newFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "t"}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if _, err := f.srv.Admin.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}}); err != nil {
		t.Fatal(err)
	}
	a, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "delegate", Project: "proj"})
	if err == nil {
		_, err = f.srv.Admin.CreateOrg(ctx, op, "example.com")
	}
	if err == nil {
		_, err = f.srv.Admin.PutUsers(ctx, op, "example.com", []admin.UserInput{{Email: "alice@example.com"}})
	}
	if err == nil {
		_, err = f.srv.Admin.GrantDelegation(ctx, op, "example.com", a.ID, []string{"orders.read"})
	}
	if err != nil {
		t.Fatal(err)
	}
	paths := strings.NewReplacer("{domain}", "example.com", "{email}", "alice@example.com", "{client_id}", a.ID)
	bodies := map[string]any{
		"POST /v1/orgs/{domain}/users":                  map[string]any{"users": []any{map[string]any{"email": "bob@example.com"}}},
		"POST /v1/users":                                map[string]any{"users": []any{map[string]any{"email": "bob@example.com"}}},
		"PUT /v1/orgs/{domain}/delegations/{client_id}": map[string]any{"scopes": []string{"orders.write"}},
	}
	n := 0
	for _, pattern := range admin.RoutePatterns() {
		method, path, _ := strings.Cut(pattern, " ")
		resource := "Users"
		switch {
		case strings.Contains(path, "/delegations"):
			resource = "Delegations"
		case !strings.Contains(path, "/users"):
			continue
		}
		n++
		t.Run(pattern, func(t *testing.T) {
			code, out, _ := f.callIf(t, method, paths.Replace(path), auth, `"x"`, bodies[pattern])
			desc, _ := out["error_description"].(string)
			if code != 400 || out["error"] != "invalid_request" || !strings.HasPrefix(desc, resource+" have no ETag") || !strings.Contains(desc, "without If-Match") {
				t.Fatalf("%s with If-Match: %d %v, want 400 invalid_request saying %s have no ETag", pattern, code, out, resource)
			}
		})
	}
	if n == 0 {
		t.Fatal("no user or delegation route")
	}
	u, err := f.store.GetUser(ctx, "alice@example.com")
	if err != nil || u.Suspended {
		t.Errorf("alice after the refused requests: %+v, %v; want her there, not suspended", u, err)
	}
	if _, err := f.store.GetUser(ctx, "bob@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("bob after the refused requests: %v, want not found", err)
	}
	if g, err := f.store.GetGrant(ctx, "example.com", a.ID); err != nil || !slices.Equal(g.Scopes, []string{"orders.read"}) {
		t.Errorf("the grant after the refused requests: %+v, %v; want orders.read", g, err)
	}
}

// A change sent with If-None-Match is refused, not made: no route
// evaluates it, and RFC 9110 §13.1.2 has a change whose If-None-Match
// names the current version (or * for one that exists) not made. A GET
// is answered in full, as before.
func TestIfNoneMatchChangeRefused(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	a, err := f.srv.Admin.CreateAccount(context.Background(), admin.Actor{ID: "t"}, admin.AccountInput{Name: "guarded", Project: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	sa := "/v1/service-accounts/" + a.ID
	_, _, h := f.call(t, "GET", sa, auth, nil)
	etag := h.Get("ETag")
	const refusal = "The admin API does not evaluate If-None-Match, so a change sent with it is refused rather than made as if the condition held. Send it without If-None-Match; to make a change conditional, send If-Match with the ETag of a GET."
	tests := []struct {
		name, method, path, ifNoneMatch string
		body                            any
		status                          int
	}{
		{"PATCH, *", "PATCH", sa, "*", map[string]string{"description": "changed"}, 400},
		{"PATCH, its ETag", "PATCH", sa, etag, map[string]string{"description": "changed"}, 400},
		{"disable", "POST", sa + "/disable", "*", nil, 400},
		{"DELETE", "DELETE", sa, "*", nil, 400},
		{"create", "POST", "/v1/service-accounts", "*", map[string]string{"name": "created", "project": "proj"}, 400},
		{"GET", "GET", sa, etag, nil, 200},
		{"HEAD", "HEAD", sa, "*", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader
			if tt.body != nil {
				b, _ := json.Marshal(tt.body)
				r = strings.NewReader(string(b))
			}
			req := httptest.NewRequest(tt.method, tt.path, r)
			req.Header.Set("Authorization", auth)
			req.Header.Set("If-None-Match", tt.ifNoneMatch)
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, req)
			var out map[string]any
			json.Unmarshal(w.Body.Bytes(), &out)
			if w.Code != tt.status || tt.status == 400 && out["error_description"] != refusal {
				t.Fatalf("%d %v, want %d", w.Code, out, tt.status)
			}
		})
	}
	got, err := f.srv.Admin.GetAccount(context.Background(), a.ID)
	if err != nil || got.Description != "" || got.Disabled {
		t.Fatalf("the account was changed: %+v, %v", got, err)
	}
}

// revoke-tokens changes the account's ETag, and its answer, the account
// as it is now, carries the new one, as disable's and enable's do: a
// script that revokes and then changes the account with If-Match need
// not GET it in between, leaving a gap another change could slip into.
func TestRevokeTokensAnswersETag(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	other, err := f.srv.Admin.CreateAccount(context.Background(), admin.Actor{ID: "t"}, admin.AccountInput{Name: "other", Project: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/service-accounts/" + other.Email
	before, _ := f.etagOf(t, path, auth)
	code, out, hdr := f.call(t, "POST", path+"/revoke-tokens", auth, nil)
	if code != 200 {
		t.Fatalf("revoke-tokens: %d %v", code, out)
	}
	tag := hdr.Get("ETag")
	if now, _ := f.etagOf(t, path, auth); tag != now || tag == before {
		t.Fatalf("revoke-tokens answered ETag %q; GET now gives %q (before it, %q)", tag, now, before)
	}
	if code, out, _ := f.callIf(t, "PATCH", path, auth, tag, map[string]any{"description": "after"}); code != 200 {
		t.Fatalf("PATCH with the ETag revoke-tokens answered: %d %v", code, out)
	}
}
